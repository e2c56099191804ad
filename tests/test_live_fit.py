"""The live view's periodic decay fit: when it refits, what it returns, in-line and in its own process."""

from __future__ import annotations

import time

import numpy as np
import pytest

from labctl.analysis.lifetime import LifetimeSnapshot
from labctl.analysis.live_fit import PeriodicDecayFit

PERIOD_PS, BIN_PS, TAU_NS = 1_000_000, 200, 35.0


def decay_snapshot(photons: int, seed: int = 0) -> LifetimeSnapshot:
    rng = np.random.default_rng(seed)
    delays = 5_000 + rng.normal(0, 100, photons) + rng.exponential(TAU_NS * 1e3, photons)
    edges = np.arange(0, PERIOD_PS + BIN_PS, BIN_PS, dtype=np.int64)
    summed = np.histogram(np.mod(delays, PERIOD_PS), edges)[0].astype(np.int64)
    return LifetimeSnapshot((1,), BIN_PS, PERIOD_PS, edges, summed[None, :], summed,
                            np.zeros(1, np.int64), np.zeros(1, np.int64))


def test_refits_only_when_due_and_with_enough_photons():
    fitter = PeriodicDecayFit(interval_s=2.0, min_photons=2000)
    assert fitter.update(decay_snapshot(1000), now_s=0.0) is None  # too few photons
    first = fitter.update(decay_snapshot(50_000), now_s=1.0)
    assert first is not None and abs(first.tau_ns[0] - TAU_NS) < 0.02 * TAU_NS
    assert first.photons == 50_000 and first.curve_counts.size == first.curve_x_ns.size > 0
    assert fitter.update(decay_snapshot(80_000, seed=1), now_s=2.5) is first  # not due yet
    assert fitter.update(decay_snapshot(80_000, seed=1), now_s=3.1).photons == 80_000
    fitter.reset()
    assert fitter.latest is None
    with pytest.raises(ValueError, match=r"model = 'tri': must be 'mono' or 'bi'"):
        PeriodicDecayFit(model="tri")


def test_fit_in_its_own_process_returns_later_with_the_same_result():
    inline = PeriodicDecayFit().update(decay_snapshot(50_000), now_s=0.0)
    fitter = PeriodicDecayFit(in_worker_process=True)
    try:
        assert fitter.update(decay_snapshot(50_000), now_s=0.0) is None  # returns at once
        deadline = time.monotonic() + 60
        while fitter.update(None) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fitter.latest is not None and fitter.latest.tau_ns == inline.tau_ns
    finally:
        fitter.close()

"""Shortcuts taken for speed give exactly what the long way gives (speed is in benchmarks/, not here)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from labctl.analysis import FlidAccumulator, IntensityTrace
from labctl.blocks import PhotonBlock


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32), st.lists(st.integers(0, 5000), max_size=12), st.sampled_from([None, 3]))
def test_flid_trace_snapshot_equals_an_intensity_trace(seed, cuts, last_n_bins):
    rng = np.random.default_rng(seed)
    n = 5000
    ts = np.sort(rng.integers(0, 50_000_000_000, n)).astype(np.int64)  # 50 ms, 1 ms bins
    det = rng.integers(1, 4, n).astype(np.uint8)  # detector 3 is not asked for
    nt = rng.integers(-1, 100_000, n).astype(np.int32)
    trace, flid = IntensityTrace([1, 2], bin_ms=1.0), FlidAccumulator([1, 2], bin_ms=1.0)
    edges = [0, *sorted(c % (n + 1) for c in cuts), n]
    for a, b in zip(edges[:-1], edges[1:]):
        block = PhotonBlock(ts[a:b], det[a:b], nt[a:b])
        trace.update(block)
        flid.update(block)
        mid_want, mid_got = trace.snapshot(last_n_bins), flid.trace_snapshot(last_n_bins)
        np.testing.assert_array_equal(mid_got.counts, mid_want.counts)
    want, got = trace.finalize(), (flid.finalize(), flid.trace_snapshot())[1]
    for field in ("detectors", "bin_ms", "bin_ps", "origin_ps", "first_bin", "n_complete_bins", "n_before_origin"):
        assert getattr(got, field) == getattr(want, field), field
    np.testing.assert_array_equal(got.counts, want.counts)
    np.testing.assert_array_equal(got.total, want.total)
    assert got.counts.dtype == want.counts.dtype


def test_background_import_loads_the_module_and_restores_the_switch_interval(tmp_path, monkeypatch):
    import sys

    from labctl.analysis.analyze import _BackgroundImport

    (tmp_path / "labctl_perf_probe_ok.py").write_text("VALUE = 7\n")
    (tmp_path / "labctl_perf_probe_bad.py").write_text("raise RuntimeError('probe')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = sys.getswitchinterval()
    ok, bad = _BackgroundImport("labctl_perf_probe_ok"), _BackgroundImport("labctl_perf_probe_bad")
    ok.start()
    bad.start()
    assert sys.getswitchinterval() <= 0.0005
    ok.join()
    bad.join()  # the failed import is not raised here ...
    assert sys.getswitchinterval() == before
    assert sys.modules["labctl_perf_probe_ok"].VALUE == 7
    try:  # ... but by the ordinary import that follows
        import labctl_perf_probe_bad  # noqa: F401
    except RuntimeError as exc:
        assert "probe" in str(exc)
    else:
        raise AssertionError("the failing module imported")
    monkeypatch.delitem(sys.modules, "labctl_perf_probe_ok")


def test_an_accumulator_on_its_own_thread_gets_every_block_in_order_and_reports_its_error():
    import pytest

    from labctl.analysis.analyze import _OnThread

    class Recorder:
        def __init__(self, fail_at: int | None = None) -> None:
            self.seen: list[int] = []
            self.fail_at = fail_at

        def update(self, block: int) -> None:
            if block == self.fail_at:
                raise ValueError(f"block {block} goes back in time")
            self.seen.append(block)

    ok = _OnThread(Recorder())
    for i in range(50):
        ok.update(i)
    ok.close()
    assert ok.accumulator.seen == list(range(50))

    failing = _OnThread(Recorder(fail_at=3))
    with pytest.raises(ValueError, match="block 3"):
        for i in range(50):
            failing.update(i)
        failing.close()
    failing.stop()  # idempotent after the error
    assert failing.accumulator.seen == [0, 1, 2]

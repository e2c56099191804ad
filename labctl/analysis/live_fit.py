"""A decay fit for the live view: refit the growing TCSPC histogram now and then.

The live lifetime view shows "the latest fit": fitting on every redraw would
spend the CPU the stream needs, so :class:`PeriodicDecayFit` refits at most
every ``interval_s`` and only once the histogram holds ``min_photons``.  The fit
itself is :func:`labctl.analysis.fit.fit_decay` (Poisson maximum likelihood).
"""

from __future__ import annotations

import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labctl.analysis.lifetime import LifetimeSnapshot


@dataclass(frozen=True)
class LiveFit:
    """The latest live fit (plain data: crosses processes).

    Attributes:
        model: ``"mono"`` or ``"bi"``.
        tau_ns, tau_err_ns: lifetimes and 1-sigma errors (ns); empty if the fit failed.
        fractions: amplitude fractions.
        photons: photons in the histogram that was fitted.
        message: why there is no result (too few photons, fit error), else "".
        curve_x_ns: centres of the fitted bins (ns after the laser pulse), float64.
        curve_counts: the fitted model's expected counts there, float64 (draw over the decay).
    """

    model: str
    tau_ns: tuple[float, ...]
    tau_err_ns: tuple[float, ...]
    fractions: tuple[float, ...]
    photons: int
    message: str = ""
    curve_x_ns: np.ndarray = field(default_factory=lambda: np.empty(0))
    curve_counts: np.ndarray = field(default_factory=lambda: np.empty(0))


def fit_snapshot(model: str, summed: np.ndarray, bin_edges_ps: np.ndarray, period_ps: int) -> LiveFit:
    """Fit one summed TCSPC histogram (counts per bin, edges in ps) and return a :class:`LiveFit`."""
    from labctl.analysis.fit import fit_decay  # scipy: only once a fit is due

    photons = int(np.asarray(summed).sum())
    try:
        fit = fit_decay(summed, bin_edges_ps, model=model, period_ps=period_ps)
    except ValueError as exc:
        return LiveFit(model, (), (), (), photons, str(exc))
    edges_ns = np.asarray(fit.model_edges_ps, np.float64) * 1e-3
    return LiveFit(model, tuple(fit.tau_ns), tuple(fit.tau_err_ns), tuple(fit.fractions), photons,
                   curve_x_ns=0.5 * (edges_ns[1:] + edges_ns[:-1]),
                   curve_counts=np.asarray(fit.model_counts, np.float64))


class PeriodicDecayFit:
    """Refit the summed decay at most every ``interval_s`` (s), from ``min_photons`` on.

    Args:
        model: ``"mono"`` or ``"bi"``.
        interval_s: shortest time between two fits (s, wall clock).
        min_photons: photons the histogram needs before the first fit.
        in_process: fit in a worker process of its own, so that ``update`` returns at
            once with the previous result and the fit (0.1-0.5 s of Python and numpy
            on a 10^4-bin histogram) never holds the GIL of the acquisition's process:
            a thread would, and the reader thread would then miss its buffer reads.
    """

    def __init__(self, model: str = "mono", interval_s: float = 2.0, min_photons: int = 2000,
                 in_process: bool = False) -> None:
        if model not in ("mono", "bi"):
            raise ValueError(f"PeriodicDecayFit: model = {model!r}: must be 'mono' or 'bi'")
        self.model = model
        self.interval_s = float(interval_s)
        self.min_photons = int(min_photons)
        self.in_process = in_process
        self.latest: LiveFit | None = None
        self._last_fit_s = -float("inf")
        self._pool: Any = None
        self._pending: Any = None  # the future of a fit in the worker process

    def reset(self) -> None:
        """Forget the last fit (a new run); a fit still running for the old run is dropped."""
        self.latest = None
        self._last_fit_s = -float("inf")
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None

    def update(self, snapshot: LifetimeSnapshot | None, now_s: float | None = None) -> LiveFit | None:
        """Fit ``snapshot`` if due; return the latest fit (None before the first)."""
        if self._pending is not None and self._pending.done():
            try:
                self.latest = self._pending.result()
            except Exception as exc:  # noqa: BLE001 - e.g. the worker died: shown as the fit's message
                self.latest = LiveFit(self.model, (), (), (), 0, f"fit failed: {exc}")
            self._pending = None
        now_s = time.monotonic() if now_s is None else now_s
        if snapshot is None or self._pending is not None or now_s - self._last_fit_s < self.interval_s:
            return self.latest
        if int(snapshot.summed.sum()) < self.min_photons:
            return self.latest
        self._last_fit_s = now_s
        args = (self.model, snapshot.summed, snapshot.bin_edges_ps, snapshot.period_ps)
        if self.in_process:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn"))
            self._pending = self._pool.submit(fit_snapshot, *args)
        else:
            self.latest = fit_snapshot(*args)
        return self.latest

    def close(self) -> None:
        """End the worker process (if any)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

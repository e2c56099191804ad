"""A decay fit for the live view: refit the growing TCSPC histogram now and then.

The live lifetime view shows "the latest fit": fitting on every redraw would
spend the CPU the stream needs, so :class:`PeriodicDecayFit` refits at most
every ``interval_s`` and only once the histogram holds ``min_photons``.  The fit
itself is :func:`labctl.analysis.fit.fit_decay` (Poisson maximum likelihood).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labctl.analysis.fit_process import BLAS_THREAD_VARIABLES
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
        residuals: ``(counts - model) / sqrt(model)`` in the fitted bins, float64.
        reduced_chi2: Pearson χ² / degrees of freedom of the fit (None without a fit).
        fit_range_ns: (start, stop) of the fitted bins (ns after the laser pulse; None without a fit).
    """

    model: str
    tau_ns: tuple[float, ...]
    tau_err_ns: tuple[float, ...]
    fractions: tuple[float, ...]
    photons: int
    message: str = ""
    curve_x_ns: np.ndarray = field(default_factory=lambda: np.empty(0))
    curve_counts: np.ndarray = field(default_factory=lambda: np.empty(0))
    residuals: np.ndarray = field(default_factory=lambda: np.empty(0))
    reduced_chi2: float | None = None
    fit_range_ns: tuple[float, float] | None = None


def fit_snapshot(model: str, summed: np.ndarray, bin_edges_ps: np.ndarray, period_ps: int) -> LiveFit:
    """Fit one summed TCSPC histogram (counts per bin, edges in ps) and return a :class:`LiveFit`."""
    from labctl.analysis.fit import fit_decay  # scipy: only once a fit is due

    photons = int(np.asarray(summed).sum())
    try:
        fit = fit_decay(summed, bin_edges_ps, model=model, period_ps=period_ps)
    except ValueError as exc:
        return LiveFit(model, (), (), (), photons, str(exc))
    from labctl.analysis.views import decay_residuals

    edges_ns = np.asarray(fit.model_edges_ps, np.float64) * 1e-3
    model_counts = np.asarray(fit.model_counts, np.float64)
    return LiveFit(model, tuple(fit.tau_ns), tuple(fit.tau_err_ns), tuple(fit.fractions), photons,
                   curve_x_ns=0.5 * (edges_ns[1:] + edges_ns[:-1]), curve_counts=model_counts,
                   residuals=decay_residuals(summed, bin_edges_ps, fit.model_edges_ps, model_counts),
                   reduced_chi2=float(fit.reduced_chi2),
                   fit_range_ns=(float(edges_ns[0]), float(edges_ns[-1])) if edges_ns.size else None)


def _fit_worker_main(conn: Any) -> None:
    """The fit process: fit what arrives, send back (generation, LiveFit), until the pipe closes."""
    while True:
        try:
            generation, args = conn.recv()
        except (EOFError, OSError):
            return
        conn.send((generation, fit_snapshot(*args)))


class _FitWorker:
    """One daemon process that fits on request: never holds the caller's GIL, never delays its exit."""

    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child_conn = ctx.Pipe()
        self._process = ctx.Process(target=_fit_worker_main, args=(child_conn,), name="labctl-live-fit", daemon=True)
        # One BLAS thread: a 10^4-bin fit gains nothing from more, and idle OpenBLAS threads spin
        # on the core the acquisition needs.  The spawned child reads these at its numpy import.
        saved = {name: os.environ.get(name) for name in BLAS_THREAD_VARIABLES}
        os.environ.update({name: "1" for name in BLAS_THREAD_VARIABLES})
        try:
            self._process.start()
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        child_conn.close()
        self.busy = False

    def submit(self, generation: int, args: tuple) -> None:
        self._conn.send((generation, args))
        self.busy = True

    def result(self) -> tuple[int, LiveFit] | None:
        """(generation, fit) once the fit is done; None while it runs.  EOFError if the worker died."""
        if not self.busy or not self._conn.poll():
            return None
        self.busy = False
        return self._conn.recv()

    def close(self) -> None:
        self._conn.close()
        self._process.terminate()  # a fit in progress is of no use any more
        self._process.join(5)


class PeriodicDecayFit:
    """Refit the summed decay at most every ``interval_s`` (s), from ``min_photons`` on.

    Args:
        model: ``"mono"`` or ``"bi"``.
        interval_s: shortest time between two fits (s, wall clock).
        min_photons: photons the histogram needs before the first fit.
        in_worker_process: fit in a worker process of its own, so that ``update`` returns at
            once with the previous result and the fit (0.1-0.5 s of Python and numpy
            on a 10^4-bin histogram) never holds the GIL of the acquisition's process:
            a thread would, and the reader thread would then miss its buffer reads.
    """

    def __init__(self, model: str = "mono", interval_s: float = 2.0, min_photons: int = 2000,
                 in_worker_process: bool = False) -> None:
        if model not in ("mono", "bi"):
            raise ValueError(f"PeriodicDecayFit: model = {model!r}: must be 'mono' or 'bi'")
        self.model = model
        self.interval_s = float(interval_s)
        self.min_photons = int(min_photons)
        self.in_worker_process = in_worker_process
        self.latest: LiveFit | None = None
        self._last_fit_s = -float("inf")
        self._worker: _FitWorker | None = None
        self._generation = 0  # results of fits started before reset() are dropped

    def reset(self) -> None:
        """Forget the last fit (a new run); a fit still running for the old run is dropped."""
        self.latest = None
        self._last_fit_s = -float("inf")
        self._generation += 1

    def update(self, snapshot: LifetimeSnapshot | None, now_s: float | None = None) -> LiveFit | None:
        """Fit ``snapshot`` if due; return the latest fit (None before the first)."""
        if self._worker is not None:
            try:
                done = self._worker.result()
            except (EOFError, OSError) as exc:  # the worker died: say so, start a new one next time
                self._worker.close()
                self._worker = None
                self.latest = LiveFit(self.model, (), (), (), 0, f"fit process ended: {exc!r}")
            else:
                if done is not None and done[0] == self._generation:
                    self.latest = done[1]
        now_s = time.monotonic() if now_s is None else now_s
        busy = self._worker is not None and self._worker.busy
        if snapshot is None or busy or now_s - self._last_fit_s < self.interval_s:
            return self.latest
        if int(snapshot.summed.sum()) < self.min_photons:
            return self.latest
        self._last_fit_s = now_s
        args = (self.model, snapshot.summed, snapshot.bin_edges_ps, snapshot.period_ps)
        if self.in_worker_process:
            if self._worker is None:
                self._worker = _FitWorker()
            self._worker.submit(self._generation, args)
        else:
            self.latest = fit_snapshot(*args)
        return self.latest

    def close(self) -> None:
        """End the worker process (if any)."""
        if self._worker is not None:
            self._worker.close()
            self._worker = None

"""Streaming TCSPC lifetime histograms: photon nanotimes per detector and summed.

Conventions:

* A photon's nanotime is its delay after the preceding laser pulse (int32 ps,
  see ``labctl.acquisition.photons``).  Bins are left-closed, ``[k w, (k + 1) w)``, with
  ``bin_edges_ps = np.arange(0, n w + 1, w)`` and ``n = ceil(period / w)``: they
  cover ``[0, period)`` (the last bin reaches past the period if the period is
  not a whole number of bins).
* Photons without a nanotime (-1: before the run's first laser sync; any
  negative value is treated so) are left out and counted in ``n_no_nanotime``;
  nanotimes past the last edge (possible where the laser period drifts above
  its nominal value) in ``n_out_of_range``.
* The histogram does not depend on block boundaries (each photon is binned on
  its own); block order does not matter either.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from labctl.analysis import _kernels as K
from labctl.blocks import PhotonBlock
from labctl.run import RunInfo, RunSummary

_OWNER = "LifetimeAccumulator"


@dataclass(frozen=True)
class LifetimeSnapshot:
    """TCSPC histograms at one moment (numpy copies).

    Attributes:
        detectors: tagger channels, in the order of the rows of ``counts``.
        bin_width_ps, period_ps: binning (ps).
        bin_edges_ps: int64 edges (ps), ``counts.shape[1] + 1`` of them.
        counts: int64, shape (detectors, bins): photons per nanotime bin and detector.
        summed: int64, shape (bins,): ``counts.sum(axis=0)``.
        n_no_nanotime: int64 per detector: photons without a nanotime (left out).
        n_out_of_range: int64 per detector: nanotimes past the last edge (left out).
    """

    detectors: tuple[int, ...]
    bin_width_ps: int
    period_ps: int
    bin_edges_ps: np.ndarray
    counts: np.ndarray
    summed: np.ndarray
    n_no_nanotime: np.ndarray
    n_out_of_range: np.ndarray


class LifetimeAccumulator:
    """Nanotime histograms per detector; a labctl ``Sink`` and a standalone accumulator.

    Args:
        detectors: tagger channels (None: the run's SPADs, at ``open``).
        bin_width_ps: histogram bin width (ps).
        period_ps: laser pulse period (ps), the histogram's range; None takes the
            run's ``nominal_sync_period_ps`` at ``open``.
        name: the sink's name.

    Threads: ``update``/``write``/``finalize`` from one thread; ``snapshot`` from any.
    """

    def __init__(self, detectors: Sequence[int] | None = None, *, bin_width_ps: int = 100,
                 period_ps: int | None = None, name: str = "lifetime") -> None:
        self._wanted_detectors = K.check_detectors(_OWNER, detectors)
        self.bin_width_ps = K.check_positive_int(_OWNER, "bin_width_ps", bin_width_ps)
        self._wanted_period = None if period_ps is None else K.check_positive_int(_OWNER, "period_ps", period_ps)
        self.name = name
        self._lock = threading.Lock()
        self.detectors: tuple[int, ...] | None = self._wanted_detectors
        self.period_ps: int | None = self._wanted_period
        self.reset()

    # ------------------------------------------------------------------ Sink protocol
    def open(self, run: RunInfo) -> None:
        """Reset; take the detectors (if not given) and the pulse period (if None) from the run."""
        self.detectors = K.run_detectors(_OWNER, self._wanted_detectors, run)
        if self._wanted_period is None:
            self.period_ps = K.check_positive_int(_OWNER, "run.nominal_sync_period_ps", run.nominal_sync_period_ps)
        self.reset()

    def write(self, block: PhotonBlock) -> None:
        """Sink entry point: ``update(block)``."""
        self.update(block)

    def close(self, summary: RunSummary) -> None:
        """Sink exit point: ``finalize()``."""
        self.finalize()

    # ------------------------------------------------------------------ accumulation
    @property
    def bin_edges_ps(self) -> np.ndarray:
        """int64 bin edges (ps) for the current period (empty while it is unknown)."""
        if self.period_ps is None:
            return np.empty(0, np.int64)
        n_bins = -(-self.period_ps // self.bin_width_ps)
        return np.arange(0, n_bins * self.bin_width_ps + 1, self.bin_width_ps, dtype=np.int64)

    def reset(self) -> None:
        """Forget all data (settings stay)."""
        n_det = len(self.detectors) if self.detectors else 0
        n_bins = max(self.bin_edges_ps.size - 1, 0)
        with self._lock:
            self._counts = np.zeros((n_det, n_bins), np.int64)
            self._no_nanotime = np.zeros(n_det, np.int64)
            self._out_of_range = np.zeros(n_det, np.int64)
        self._code_of = K.code_table(self.detectors) if self.detectors else None
        self._finalized = False

    def update(self, block: PhotonBlock) -> None:
        """Histogram the block's nanotimes.

        Raises:
            ValueError: detectors or period unknown (give them or call ``open``).
            RuntimeError: called after ``finalize``.
        """
        if self._finalized:
            raise RuntimeError(f"{_OWNER}: update after finalize: call reset() or open(run) first")
        if self._code_of is None or self.period_ps is None:
            raise ValueError(f"{_OWNER}: detectors / period_ps unknown: pass them or call open(run) first")
        if len(block) == 0:
            return
        counts = self._counts.copy()
        no_nanotime = self._no_nanotime.copy()
        out_of_range = self._out_of_range.copy()
        K.add_nanotime_histograms(block.detectors, block.nanotimes, self._code_of, np.int64(self.bin_width_ps),
                                  counts, no_nanotime, out_of_range)
        with self._lock:
            self._counts, self._no_nanotime, self._out_of_range = counts, no_nanotime, out_of_range

    def finalize(self) -> LifetimeSnapshot:
        """End of data (nothing is pending); returns the snapshot."""
        self._finalized = True
        return self.snapshot()

    # ------------------------------------------------------------------ reading
    def snapshot(self) -> LifetimeSnapshot:
        """The current histograms; safe from any thread, O(bins)."""
        with self._lock:  # published arrays are never modified in place: take references, copy outside
            counts, no_nanotime, out_of_range = self._counts, self._no_nanotime, self._out_of_range
            detectors, period = self.detectors, self.period_ps
        counts = counts.copy()
        return LifetimeSnapshot(
            detectors=tuple(detectors or ()), bin_width_ps=self.bin_width_ps, period_ps=int(period or 0),
            bin_edges_ps=self.bin_edges_ps, counts=counts, summed=counts.sum(axis=0),
            n_no_nanotime=no_nanotime.copy(), n_out_of_range=out_of_range.copy(),
        )

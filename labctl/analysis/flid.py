"""Average-lifetime trace and FLID (fluorescence-lifetime-intensity distribution), streaming.

The photon stream is cut into time bins exactly as by the intensity trace
(``labctl.analysis.trace``: ``time_bin_index``, ``_TimeBinner``).

FLID conventions (``FlidAccumulator``):

* Per bin: the photon count (all photons on the detectors, with or without a
  nanotime), the number of photons with a nanotime (>= 0) and their mean
  ``(nanotime - nanotime_offset_ps)`` in ns (the average-lifetime trace; NaN
  where a bin has no photon with a nanotime).  ``nanotime_offset_ps`` is the
  IRF position (the delay of the detection path relative to the sync), so
  the mean is the mean delay after excitation, not clipped at zero.
* 2-D histogram (intensity x mean lifetime) of complete bins that have at
  least ``min_nanotime_photons`` photons with a nanotime (others:
  ``n_bins_skipped``), left-closed bins ``[e_i, e_i+1)`` on both axes; a bin
  outside the edges is counted in ``n_bins_outside``.  Default lifetime edges:
  0..100 ns in 1 ns.  Default intensity edges: 256 bins of width w counts,
  w the smallest power of two with every intensity seen < 256 w (the width
  doubles as brighter bins arrive, merging bin pairs, which is exact).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from labctl.analysis import _kernels as K
from labctl.analysis.trace import (_NO_INDEX, AUTO_INTENSITY_BINS, DEFAULT_LIFETIME_EDGES_NS, IntensityTrace,
                                   TraceSnapshot, _last_rows, _TimeBinner)


@dataclass(frozen=True)
class FlidSnapshot:
    """Average-lifetime trace and FLID (numpy copies).

    Attributes:
        detectors, bin_ms, bin_ps, origin_ps, first_bin, n_complete_bins,
        n_before_origin: as in ``TraceSnapshot``.
        nanotime_offset_ps: subtracted from every nanotime.
        intensity: int64 per bin: photons on the detectors (summed).
        nanotime_counts: int64 per bin: photons with a nanotime.
        mean_lifetime_ns: float64 per bin: mean (nanotime - offset) in ns; NaN without nanotimes.
        intensity_edges: float64 edges of the FLID's intensity axis (counts per bin).
        lifetime_edges_ns: float64 edges of its lifetime axis (ns).
        counts: int64, shape (intensity bins, lifetime bins): complete bins of the whole run.
        n_bins_in_histogram, n_bins_skipped, n_bins_outside: complete bins counted,
            left out for too few photons with a nanotime, left out for falling outside the edges.
    """

    detectors: tuple[int, ...]
    bin_ms: float
    bin_ps: int
    origin_ps: int | None
    nanotime_offset_ps: int
    first_bin: int
    intensity: np.ndarray
    nanotime_counts: np.ndarray
    mean_lifetime_ns: np.ndarray
    intensity_edges: np.ndarray
    lifetime_edges_ns: np.ndarray
    counts: np.ndarray
    n_bins_in_histogram: int
    n_bins_skipped: int
    n_bins_outside: int
    n_complete_bins: int
    n_before_origin: int


def _check_edges(owner: str, name: str, edges: object) -> np.ndarray:
    try:
        out = np.array(edges, np.float64)
    except (TypeError, ValueError):
        out = np.empty(0)
    if out.ndim != 1 or out.size < 2 or not np.all(np.isfinite(out)) or np.any(np.diff(out) <= 0):
        raise ValueError(f"{owner}: {name} = {edges!r}: must be at least two finite, strictly increasing numbers")
    return out


class FlidAccumulator(IntensityTrace):
    """Average-lifetime trace and fluorescence-lifetime-intensity distribution (FLID).

    Args:
        detectors: tagger channels (None: the run's SPADs, at ``open``).
        bin_ms: time bin (ms).
        nanotime_offset_ps: subtracted from nanotimes before averaging (the IRF
            position: SPAD cable delay minus sync delay).
        intensity_edges: FLID intensity axis (counts per bin); None: automatic (module doc).
        lifetime_edges_ns: FLID lifetime axis (ns); None: 0..100 ns in 1 ns.
        origin_ps: start of bin 0 (ps); None: the first photon's timestamp.
        min_nanotime_photons: complete bins with fewer photons with a nanotime stay out of the FLID.
        rolling_bins: length of the rolling window (``rolling_snapshot``).
        name: the sink's name.
    """

    _OWNER = "FlidAccumulator"

    def __init__(self, detectors: Sequence[int] | None = None, *, bin_ms: float = 10.0, nanotime_offset_ps: int = 0,
                 intensity_edges: Sequence[float] | np.ndarray | None = None,
                 lifetime_edges_ns: Sequence[float] | np.ndarray | None = None, origin_ps: int | None = None,
                 min_nanotime_photons: int = 1, rolling_bins: int = 1000, name: str = "flid") -> None:
        if isinstance(nanotime_offset_ps, bool) or not isinstance(nanotime_offset_ps, (int, np.integer)):
            raise ValueError(f"{self._OWNER}: nanotime_offset_ps = {nanotime_offset_ps!r}: must be an integer (ps)")
        self.nanotime_offset_ps = int(nanotime_offset_ps)
        self._fixed_intensity_edges = (None if intensity_edges is None
                                       else _check_edges(self._OWNER, "intensity_edges", intensity_edges))
        self.lifetime_edges_ns = (DEFAULT_LIFETIME_EDGES_NS.copy() if lifetime_edges_ns is None
                                  else _check_edges(self._OWNER, "lifetime_edges_ns", lifetime_edges_ns))
        self.min_nanotime_photons = K.check_positive_int(self._OWNER, "min_nanotime_photons", min_nanotime_photons)
        super().__init__(detectors, bin_ms=bin_ms, rolling_bins=rolling_bins, origin_ps=origin_ps, name=name)

    def _make_binner(self, origin_ps: int | None) -> _TimeBinner:
        return _TimeBinner(self._OWNER, self.bin_ps, origin_ps, with_nanotimes=True,
                           nanotime_offset_ps=self.nanotime_offset_ps)

    def _reset_extra(self) -> None:
        n_int = (AUTO_INTENSITY_BINS if self._fixed_intensity_edges is None
                 else self._fixed_intensity_edges.size - 1)
        # (counts, automatic intensity bin width (a power of two), bins in, skipped, outside)
        self._histogram = (np.zeros((n_int, self.lifetime_edges_ns.size - 1), np.int64), 1, 0, 0, 0)

    @property
    def intensity_edges(self) -> np.ndarray:
        """Current edges of the FLID's intensity axis (counts per bin)."""
        if self._fixed_intensity_edges is not None:
            return self._fixed_intensity_edges.copy()
        return np.arange(AUTO_INTENSITY_BINS + 1, dtype=np.float64) * self._histogram[1]

    def _publish(self, rows: np.ndarray) -> None:
        i, j, widened, n_in, n_skipped, n_outside = self._histogram_entries(rows)
        b = self._binner
        buffer, length = b.prepare(rows)
        with self._lock:  # O(new entries): the histogram is updated in place, snapshot copies it under the lock
            b.buffer, b.length = buffer, length
            self._published = (buffer, length, b.origin_ps, b.n_before_origin)
            counts, width, used, skipped, outside = self._histogram
            if widened is not None:
                counts, width = widened
            np.add.at(counts, (i, j), 1)
            self._histogram = (counts, width, used + n_in, skipped + n_skipped, outside + n_outside)

    def _histogram_entries(self, rows: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, int] | None, int, int, int]:
        """Where the complete ``rows`` go in the FLID: (intensity indices, lifetime indices, the histogram
        widened to a new automatic intensity width or None, bins in, skipped, outside)."""
        counts, width, _, _, _ = self._histogram  # only this thread changes it
        if rows.shape[0] == 0:
            return _NO_INDEX, _NO_INDEX, None, 0, 0, 0
        n_det = len(self.detectors or ())
        intensity = rows[:, :n_det].sum(axis=1)
        nt_n, nt_sum = rows[:, n_det], rows[:, n_det + 1]
        keep = nt_n >= self.min_nanotime_photons
        intensity, mean_ns = intensity[keep], nt_sum[keep] / nt_n[keep] * 1e-3
        widened = None
        if self._fixed_intensity_edges is None:
            if intensity.size and intensity.max() >= AUTO_INTENSITY_BINS * width:
                while intensity.max() >= AUTO_INTENSITY_BINS * width:  # merge bin pairs: exact
                    half = counts.reshape(AUTO_INTENSITY_BINS // 2, 2, -1).sum(axis=1)
                    counts = np.concatenate((half, np.zeros_like(half)))
                    width *= 2
                widened = (counts, width)
            i = intensity // width
        else:
            i = np.searchsorted(self._fixed_intensity_edges, intensity, side="right") - 1
        n_int, n_life = counts.shape
        j = np.searchsorted(self.lifetime_edges_ns, mean_ns, side="right") - 1
        inside = (i >= 0) & (i < n_int) & (j >= 0) & (j < n_life)
        n_in = int(np.count_nonzero(inside))
        return i[inside], j[inside], widened, n_in, int(np.count_nonzero(~keep)), int(intensity.size - n_in)

    def trace_snapshot(self, last_n_bins: int | None = None) -> TraceSnapshot:
        """The intensity trace of the same bins: equal to what an ``IntensityTrace`` with the same
        detectors, ``bin_ms`` and origin gives for the same blocks, without binning the photons twice.
        Safe from any thread."""
        with self._lock:
            buffer, length, origin, before = self._published
        first, rows = _last_rows(buffer, length, last_n_bins)
        counts = np.ascontiguousarray(rows[:, :len(self.detectors or ())])
        return TraceSnapshot(detectors=tuple(self.detectors or ()), bin_ms=self.bin_ms, bin_ps=self.bin_ps,
                             origin_ps=origin, first_bin=first, counts=counts, total=counts.sum(axis=1),
                             n_complete_bins=length, n_before_origin=before)

    def snapshot(self, last_n_bins: int | None = None) -> FlidSnapshot:  # type: ignore[override]
        """The average-lifetime trace (whole run or the last ``last_n_bins``) and the FLID.  Safe from any thread."""
        with self._lock:
            buffer, length, origin, before = self._published
            counts, width, used, skipped, outside = self._histogram
            counts = counts.copy()
        first, rows = _last_rows(buffer, length, last_n_bins)
        n_det = len(self.detectors or ())
        nt_n, nt_sum = rows[:, n_det], rows[:, n_det + 1]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_ns = np.where(nt_n > 0, nt_sum / np.maximum(nt_n, 1) * 1e-3, np.nan)
        intensity_edges = (self._fixed_intensity_edges.copy() if self._fixed_intensity_edges is not None
                           else np.arange(AUTO_INTENSITY_BINS + 1, dtype=np.float64) * width)
        return FlidSnapshot(
            detectors=tuple(self.detectors or ()), bin_ms=self.bin_ms, bin_ps=self.bin_ps, origin_ps=origin,
            nanotime_offset_ps=self.nanotime_offset_ps, first_bin=first, intensity=rows[:, :n_det].sum(axis=1),
            nanotime_counts=nt_n.copy(), mean_lifetime_ns=mean_ns, intensity_edges=intensity_edges,
            lifetime_edges_ns=self.lifetime_edges_ns.copy(), counts=counts, n_bins_in_histogram=used,
            n_bins_skipped=skipped, n_bins_outside=outside, n_complete_bins=length, n_before_origin=before,
        )

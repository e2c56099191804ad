"""Streaming g(2) cross-correlation of two detectors (HBT), exact over any block boundaries.

Conventions:

* lag = t_B - t_A - delay_ps for every pair (a photon on detector A, a photon on
  detector B), all pairs, not only nearest neighbours (a start-stop histogram would
  be biased).  ``delay_ps`` (default 0) is the detectors' cable delay: B's path
  longer by ``delay_ps`` moves the zero-delay peak back to lag 0.
* Bins are left-closed: bin k holds lags in ``[e_k, e_k+1)`` with
  ``lag_edges_ps = np.arange(-range_ps, range_ps + 1, bin_width_ps)``; a pair
  with lag exactly ``+range_ps`` is outside, one with ``-range_ps`` inside.
* Exact integer counts, equal to a brute-force pair count on the whole stream:
  the photons of the previous blocks that can still pair with later ones
  (those within ``range_ps`` of the last timestamp seen) are kept, and a pair
  is counted when the later of its two photons arrives.
* Normalisations (in the snapshot, computed from the counts at snapshot time):
  pulsed, ``g2_zero`` = centre-peak area / mean side-peak area, each peak the
  sum of the bins whose centre lies in ``[k P - P/2, k P + P/2)`` for every k
  whose whole window lies inside the range; continuous, ``g2_cw`` = counts /
  (n_A n_B bin / T) per bin with T the time from the first to the last photon
  on A or B.  Both use Poisson errors (see ``pulsed_g2_zero``, ``cw_g2``).

Photons must come in time order (sorted within a block, blocks in order);
a ``ValueError`` says so otherwise.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

from labctl.analysis import _kernels as K
from labctl.blocks import PhotonBlock, went_back_message
from labctl.run import RunInfo, RunSummary

_OWNER = "G2Accumulator"
_EMPTY = np.empty(0, np.int64)
_INT64_MIN = np.int64(np.iinfo(np.int64).min)


@dataclass(frozen=True)
class G2Snapshot:
    """The g(2) histogram at one moment, with its normalisations (numpy copies).

    Attributes:
        detector_a, detector_b: tagger channels; lag = t_B - t_A - delay_ps.
        bin_width_ps, range_ps: binning (ps).
        period_ps: laser pulse period used for ``g2_zero`` (None: continuous).
        lag_edges_ps: int64 bin edges (ps), ``len(counts) + 1``.
        counts: int64 pairs per lag bin.
        n_a, n_b: photons seen on A and on B.
        duration_ps: time from the first to the last photon on A or B (ps).
        g2_zero: centre-peak area / mean side-peak area (None: no period, or no
            side-peak counts yet).
        g2_zero_err: its one-sigma Poisson error.
        center_peak_area: pairs in the centre peak (None without period).
        side_peak_lags_ps: int64 k * period of each side peak used.
        side_peak_areas: int64 pairs in each side peak.
        g2_cw: counts / (n_a n_b bin / duration) per bin (None until n_a, n_b, duration > 0).
        g2_cw_err: its Poisson error per bin (a bin with 0 counts is given the error of 1 count).
    """

    detector_a: int
    detector_b: int
    bin_width_ps: int
    range_ps: int
    period_ps: int | None
    lag_edges_ps: np.ndarray
    counts: np.ndarray
    n_a: int
    n_b: int
    duration_ps: int
    g2_zero: float | None
    g2_zero_err: float | None
    center_peak_area: int | None
    side_peak_lags_ps: np.ndarray
    side_peak_areas: np.ndarray
    g2_cw: np.ndarray | None
    g2_cw_err: np.ndarray | None


class G2Accumulator:
    """g(2) histogram of detector B against detector A; a labctl ``Sink`` and a standalone accumulator.

    Args:
        detector_a, detector_b: tagger channels (None: the run's SPAD A / SPAD B, at ``open``).
        bin_width_ps: lag bin width (ps).
        range_ps: lags in ``[-range_ps, range_ps)`` are counted; a whole multiple of ``bin_width_ps``.
        period_ps: laser pulse period for the pulsed normalisation; None takes the
            run's ``nominal_sync_period_ps`` at ``open`` (standalone: unknown),
            0 means continuous excitation (no ``g2_zero``).
        delay_ps: cable delay of B relative to A (ps, any integer): lag = t_B - t_A - delay_ps.
        name: the sink's name.

    Threads: ``update``/``write``/``finalize`` from one thread; ``snapshot`` from any.
    """

    def __init__(self, detector_a: int | None = None, detector_b: int | None = None, *, bin_width_ps: int = 1000,
                 range_ps: int = 3_500_000, period_ps: int | None = None, delay_ps: int = 0,
                 name: str = "g2") -> None:
        self._wanted_a = None if detector_a is None else K.check_channel(_OWNER, "detector_a", detector_a)
        self._wanted_b = None if detector_b is None else K.check_channel(_OWNER, "detector_b", detector_b)
        if self._wanted_a is not None and self._wanted_a == self._wanted_b:
            raise ValueError(f"{_OWNER}: detector_a = detector_b = {detector_a}: must be two different channels "
                             "(cross-correlation)")
        self.bin_width_ps = K.check_positive_int(_OWNER, "bin_width_ps", bin_width_ps)
        self.range_ps = K.check_positive_int(_OWNER, "range_ps", range_ps)
        if self.range_ps % self.bin_width_ps:
            lower = self.range_ps - self.range_ps % self.bin_width_ps
            raise ValueError(f"{_OWNER}: range_ps = {range_ps}: must be a whole multiple of bin_width_ps = "
                             f"{self.bin_width_ps} (e.g. {max(lower, self.bin_width_ps)} or "
                             f"{lower + self.bin_width_ps})")
        if period_ps is not None:
            if isinstance(period_ps, bool) or not isinstance(period_ps, (int, np.integer)) or period_ps < 0:
                raise ValueError(f"{_OWNER}: period_ps = {period_ps!r}: must be None (take it from the run), "
                                 "0 (continuous excitation) or an integer > 0 (ps)")
            period_ps = int(period_ps)
        self._wanted_period = period_ps
        if isinstance(delay_ps, bool) or not isinstance(delay_ps, (int, np.integer)):
            raise ValueError(f"{_OWNER}: delay_ps = {delay_ps!r}: must be an integer (ps)")
        self.delay_ps = int(delay_ps)
        self.name = name
        self.lag_edges_ps = np.arange(-self.range_ps, self.range_ps + 1, self.bin_width_ps, dtype=np.int64)
        self._lock = threading.Lock()
        self.detector_a: int | None = self._wanted_a
        self.detector_b: int | None = self._wanted_b
        self.period_ps: int | None = self._wanted_period or None
        self.reset()

    # ------------------------------------------------------------------ Sink protocol
    def open(self, run: RunInfo) -> None:
        """Reset; take the detectors (if not given) and the pulse period (if None) from the run."""
        given = tuple(d for d in (self._wanted_a, self._wanted_b) if d is not None)
        K.run_detectors(_OWNER, given or None, run)  # the channels given must be SPADs of the run
        self.detector_a = self._wanted_a if self._wanted_a is not None else run.channels.spad_a
        self.detector_b = self._wanted_b if self._wanted_b is not None else run.channels.spad_b
        if self.detector_a == self.detector_b:
            raise ValueError(f"{_OWNER}: detector_a = detector_b = {self.detector_a}: must be two different channels")
        if self._wanted_period is None:
            self.period_ps = int(run.nominal_sync_period_ps) if run.nominal_sync_period_ps > 0 else None
        self.reset()

    def write(self, block: PhotonBlock) -> None:
        """Sink entry point: ``update(block)``."""
        self.update(block)

    def close(self, summary: RunSummary) -> None:
        """Sink exit point: ``finalize()``."""
        self.finalize()

    # ------------------------------------------------------------------ accumulation
    def reset(self) -> None:
        """Forget all data (settings stay)."""
        with self._lock:
            self._counts = np.zeros(self.lag_edges_ps.size - 1, np.int64)
            self._n_a = 0
            self._n_b = 0
            self._first_ps: int | None = None
            self._last_ab_ps: int | None = None
        self._tail_a = _EMPTY
        self._tail_b = _EMPTY
        self._last_ps: int | None = None
        self._finalized = False

    def update(self, block: PhotonBlock) -> None:
        """Add the pairs that the block's photons make with each other and with the photons before.

        Raises:
            ValueError: the block goes back in time, or the detectors are unknown.
            RuntimeError: called after ``finalize`` (call ``reset``/``open`` first).
        """
        if self._finalized:
            raise RuntimeError(f"{_OWNER}: update after finalize: call reset() or open(run) first")
        if self.detector_a is None or self.detector_b is None:
            raise ValueError(f"{_OWNER}: detector_a / detector_b unknown: pass them or call open(run) first")
        ts = block.timestamps
        if ts.size == 0:
            return
        previous = _INT64_MIN if self._last_ps is None else np.int64(self._last_ps)
        a, b, ok = K.split_two_detectors(ts, block.detectors, self.detector_a, self.detector_b,
                                         self._tail_a, self._tail_b, previous)
        if not ok:
            raise ValueError(went_back_message(_OWNER, ts, self._last_ps))
        old_a, old_b = self._tail_a.size, self._tail_b.size
        if self.delay_ps:  # B's new photons on A's clock: lag = (t_B - delay) - t_A
            b[old_b:] -= np.int64(self.delay_ps)
        counts = self._counts.copy()
        K.add_pair_counts(a, b, old_a, old_b, np.int64(self.range_ps), np.int64(self.bin_width_ps), counts)
        last = int(ts[-1])
        self._last_ps = last
        # photons that may still pair with later ones: later A photons have t >= last, later
        # (shifted) B photons t >= last - delay; a pair needs lag in [-range, range)
        cut = last - self.range_ps
        self._tail_a = a[np.searchsorted(a, cut - self.delay_ps, side="right"):].copy()
        self._tail_b = b[np.searchsorted(b, cut, side="left"):].copy()
        new_a, new_b = a[old_a:], b[old_b:] + np.int64(self.delay_ps)  # B's own times for the duration
        first_ab = self._first_ps
        if first_ab is None and (new_a.size or new_b.size):
            first_ab = int(min(new_a[0] if new_a.size else new_b[0], new_b[0] if new_b.size else new_a[0]))
        last_ab = self._last_ab_ps
        if new_a.size or new_b.size:
            last_ab = int(max(new_a[-1] if new_a.size else new_b[-1], new_b[-1] if new_b.size else new_a[-1]))
        with self._lock:
            self._counts = counts
            self._n_a += int(new_a.size)
            self._n_b += int(new_b.size)
            self._first_ps, self._last_ab_ps = first_ab, last_ab

    def finalize(self) -> G2Snapshot:
        """End of data: nothing is pending (pairs are counted as photons arrive); returns the snapshot."""
        self._finalized = True
        self._tail_a = self._tail_b = _EMPTY
        return self.snapshot()

    # ------------------------------------------------------------------ reading
    def snapshot(self) -> G2Snapshot:
        """The current histogram and its normalisations; safe from any thread, O(bins)."""
        with self._lock:  # published arrays are never modified in place: take references, copy outside
            counts, n_a, n_b = self._counts, self._n_a, self._n_b
            first, last = self._first_ps, self._last_ab_ps
            period = self.period_ps
        counts = counts.copy()
        duration = 0 if first is None or last is None else last - first
        center, side_lags, side_areas, g2_zero, g2_zero_err = pulsed_g2_zero(
            counts, self.lag_edges_ps, period) if period else (None, _EMPTY, _EMPTY, None, None)
        g2_cw, g2_cw_err = cw_g2(counts, n_a, n_b, self.bin_width_ps, duration)
        return G2Snapshot(
            detector_a=int(self.detector_a) if self.detector_a is not None else -1,
            detector_b=int(self.detector_b) if self.detector_b is not None else -1,
            bin_width_ps=self.bin_width_ps, range_ps=self.range_ps, period_ps=period,
            lag_edges_ps=self.lag_edges_ps.copy(), counts=counts, n_a=n_a, n_b=n_b, duration_ps=duration,
            g2_zero=g2_zero, g2_zero_err=g2_zero_err, center_peak_area=center,
            side_peak_lags_ps=side_lags, side_peak_areas=side_areas, g2_cw=g2_cw, g2_cw_err=g2_cw_err,
        )


# ----------------------------------------------------------------------------- normalisations


def peak_index(lag_edges_ps: np.ndarray, period_ps: int) -> np.ndarray:
    """Per bin, the k of the peak ``[k P - P/2, k P + P/2)`` that holds the bin's centre (int64).

    Exact integer arithmetic on doubled times: centre2 = e_k + e_k+1.
    """
    centre2 = lag_edges_ps[:-1] + lag_edges_ps[1:]
    return (centre2 + period_ps) // (2 * period_ps)


def pulsed_g2_zero(counts: np.ndarray, lag_edges_ps: np.ndarray, period_ps: int
                   ) -> tuple[int, np.ndarray, np.ndarray, float | None, float | None]:
    """Pulsed g2(0): centre-peak area over the mean side-peak area.

    Peaks k = -K..K (k != 0 for the sides) with ``K = floor((2 R - P) / (2 P))``,
    i.e. every peak whose window ``[k P - P/2, k P + P/2)`` lies inside the
    edges' range R; a bin belongs to the peak that holds its centre.  The error
    propagates Poisson variances, ``var(C0) = max(C0, 1)`` (an empty centre peak
    is given the error of one count) and ``var(sum S) = sum S``:
    ``err = sqrt(max(C0, 1) / M^2 + g^2 / sum S)`` with M the mean side area.

    Returns:
        (centre area, side-peak lags k*P (int64 ps), side-peak areas (int64),
        g2_zero or None if the side peaks are empty or absent, its error or None).
    """
    lo, hi = int(lag_edges_ps[0]), int(lag_edges_ps[-1])
    range_ps = min(-lo, hi)
    k_max = (2 * range_ps - period_ps) // (2 * period_ps)
    k = peak_index(lag_edges_ps, period_ps)
    inside = np.abs(k) <= max(k_max, 0)
    areas = np.bincount((k[inside] + max(k_max, 0)).astype(np.intp), weights=counts[inside],
                        minlength=2 * max(k_max, 0) + 1)
    areas = np.rint(areas).astype(np.int64)  # sums of int64 counts below 2**53: exact
    center = int(areas[max(k_max, 0)])
    if k_max < 1:
        return center, _EMPTY.copy(), _EMPTY.copy(), None, None
    ks = np.arange(-k_max, k_max + 1, dtype=np.int64)
    side = ks != 0
    side_lags, side_areas = ks[side] * period_ps, areas[side]
    total = int(side_areas.sum())
    if total == 0:
        return center, side_lags, side_areas, None, None
    mean = total / side_areas.size
    g2 = center / mean
    err = math.sqrt(max(center, 1) / mean**2 + g2**2 / total)
    return center, side_lags, side_areas, g2, err


def cw_g2(counts: np.ndarray, n_a: int, n_b: int, bin_width_ps: int, duration_ps: int
          ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Continuous-wave normalisation: counts / (n_a n_b bin / T) and its Poisson error per bin.

    For two uncorrelated (Poissonian) streams over T the expected count per bin
    is n_a n_b bin / T (up to a relative ``|lag| / T``), so g2 = 1 at every lag.
    A bin with 0 counts is given the error of one count.  (None, None) until
    n_a, n_b and T are all > 0.
    """
    if n_a <= 0 or n_b <= 0 or duration_ps <= 0:
        return None, None
    norm = float(n_a) * float(n_b) * bin_width_ps / duration_ps
    return counts / norm, np.sqrt(np.maximum(counts, 1)) / norm

"""The numeric core of the accumulators: numba kernels, and the argument checks they share.

Each kernel is a small pure function of arrays, compiled with ``nogil=True`` so
that a GUI thread keeps running while the acquisition thread is inside one.
Each has a plain numpy version (``*_numpy``, same signature and results): the
kernel's test oracle, and what the first run after an install runs while numba
compiles for the next one (:mod:`labctl.analysis.kernel_backend`).

Loops here are over photons of one block; they replace what numpy would do
in several passes over memory (masks, divisions, bincounts) with one pass.
The g(2) walk over two sorted streams cannot be vectorised at all without
materialising every pair.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from labctl.analysis.kernel_backend import kernel
from labctl.run import RunInfo

WARM_UP = "labctl.analysis.accumulator_warm_up:compile_kernels"
"""What calls these kernels with a run's types (:func:`labctl.analysis.kernel_backend.kernel`)."""

# ----------------------------------------------------------------------------- kernels


def channel_counts_numpy(channels: np.ndarray) -> np.ndarray:
    """numpy version of :func:`channel_counts`."""
    return np.bincount(channels, minlength=256)[:256].astype(np.int64)


@kernel(channel_counts_numpy, warm_up=WARM_UP, nogil=True)
def channel_counts(channels):  # pragma: no cover - compiled
    """Tags per channel number: int64[256] (``np.bincount(channels, minlength=256)`` of a uint8 array).

    Four interleaved histograms, so that runs of one channel (the syncs) do not
    wait on their own previous increment; ~5x faster than ``np.bincount``, which
    first widens the uint8 channels to intp.
    """
    partial = np.zeros((4, 256), np.int64)
    n = channels.shape[0]
    whole = n - n % 4
    for i in range(0, whole, 4):
        partial[0, channels[i]] += 1
        partial[1, channels[i + 1]] += 1
        partial[2, channels[i + 2]] += 1
        partial[3, channels[i + 3]] += 1
    for i in range(whole, n):
        partial[0, channels[i]] += 1
    out = np.empty(256, np.int64)
    for c in range(256):  # a loop: numba compiles an array sum (a ufunc) ~3x slower than this kernel
        out[c] = partial[0, c] + partial[1, c] + partial[2, c] + partial[3, c]
    return out


def split_two_detectors_numpy(timestamps: np.ndarray, detectors: np.ndarray, detector_a: int, detector_b: int,
                              tail_a: np.ndarray, tail_b: np.ndarray, previous_ps: np.int64,
                              ) -> tuple[np.ndarray, np.ndarray, bool]:
    """numpy version of :func:`split_two_detectors` (same arguments and results)."""
    ordered = timestamps.shape[0] == 0 or bool(timestamps[0] >= previous_ps and np.all(timestamps[1:] >= timestamps[:-1]))
    a = np.concatenate((tail_a, timestamps[detectors == detector_a])).astype(np.int64, copy=False)
    b = np.concatenate((tail_b, timestamps[detectors == detector_b])).astype(np.int64, copy=False)
    return a, b, ordered


@kernel(split_two_detectors_numpy, warm_up=WARM_UP, nogil=True)
def split_two_detectors(
    timestamps: np.ndarray, detectors: np.ndarray, detector_a: int, detector_b: int,
    tail_a: np.ndarray, tail_b: np.ndarray, previous_ps: np.int64,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """The photons of A and of B, each appended to its kept tail, and whether time never went back.

    ``previous_ps`` is the last timestamp of the blocks before; the block must be
    sorted and start at or after it.  On ``False`` the arrays are meaningless.
    """
    n = timestamps.shape[0]
    n_a = tail_a.shape[0]
    n_b = tail_b.shape[0]
    a = np.empty(n_a + n + 1, np.int64)  # +1: every photon is written to both, then kept or overwritten
    b = np.empty(n_b + n + 1, np.int64)
    for i in range(n_a):  # element by element: a slice assignment compiles numba's shape-error message (~3 s)
        a[i] = tail_a[i]
    for i in range(n_b):
        b[i] = tail_b[i]
    went_back = False
    previous = previous_ps
    for i in range(n):  # branch-free: A and B alternate at random, a branch would mispredict half the time
        t = timestamps[i]
        went_back |= t < previous
        previous = t
        d = detectors[i]
        a[n_a] = t
        n_a += d == detector_a
        b[n_b] = t
        n_b += d == detector_b
    return a[:n_a], b[:n_b], not went_back


def add_pair_counts_numpy(a: np.ndarray, b: np.ndarray, old_a: int, old_b: int, range_ps: np.int64,
                          bin_width_ps: np.int64, counts: np.ndarray) -> None:
    """numpy version of :func:`add_pair_counts` (same arguments and results): every pair at once (memory O(pairs))."""
    lo = np.searchsorted(a, b - range_ps, side="right")
    hi = np.searchsorted(a, b + range_ps, side="right")
    lo[:old_b] = np.maximum(lo[:old_b], old_a)  # pairs of two old photons were counted before
    n = np.maximum(hi - lo, 0)
    if not n.sum():
        return
    b_rep = np.repeat(b, n)
    starts = np.repeat(lo - np.concatenate(([0], np.cumsum(n)[:-1])), n)
    lags = b_rep - a[np.arange(b_rep.size) + starts]
    counts += np.bincount((lags + range_ps) // bin_width_ps, minlength=counts.shape[0]).astype(np.int64)


@kernel(add_pair_counts_numpy, warm_up=WARM_UP, nogil=True)
def add_pair_counts(
    a: np.ndarray, b: np.ndarray, old_a: int, old_b: int, range_ps: np.int64, bin_width_ps: np.int64,
    counts: np.ndarray,
) -> None:
    """Add to ``counts`` every pair (a[i], b[j]) with lag b[j] - a[i] in [-range, range) and i >= old_a or j >= old_b.

    ``a`` and ``b`` are sorted; their first ``old_a`` / ``old_b`` elements are
    photons whose pairs among themselves were counted before.  Bin k holds lags in
    ``[-range + k * bin, -range + (k + 1) * bin)``; ``range_ps`` must be a whole number of bins
    and ``counts`` hold ``2 * range_ps // bin_width_ps`` of them (``G2Accumulator`` checks both).  One pointer walks ``a`` as
    ``b`` advances, so the cost is O(len(a) + len(b) + pairs).
    """
    n_a = a.shape[0]
    width = np.uint64(bin_width_ps)
    lo = 0
    for j in range(b.shape[0]):
        t_b = b[j]
        low = t_b - range_ps  # a pairs if low < a <= t_b + range
        while lo < n_a and a[lo] <= low:
            lo += 1
        high = t_b + range_ps
        i = lo
        if j < old_b and i < old_a:
            i = old_a
        while i < n_a and a[i] <= high:
            counts[np.uint64(high - a[i]) // width] += 1  # lag + range, in [0, 2 range)
            i += 1


def add_nanotime_histograms_numpy(detectors: np.ndarray, nanotimes: np.ndarray, code_of: np.ndarray,
                                  bin_width_ps: np.int64, counts: np.ndarray, no_nanotime: np.ndarray,
                                  out_of_range: np.ndarray) -> None:
    """numpy version of :func:`add_nanotime_histograms` (same arguments and results)."""
    n_rows, n_bins = counts.shape
    rows = code_of[detectors]
    taken = rows >= 0
    rows, nt = rows[taken], nanotimes[taken].astype(np.int64)
    missing = nt < 0
    no_nanotime += np.bincount(rows[missing], minlength=n_rows)
    rows, k = rows[~missing], nt[~missing] // bin_width_ps
    late = k >= n_bins
    out_of_range += np.bincount(rows[late], minlength=n_rows)
    counts += np.bincount(rows[~late] * n_bins + k[~late], minlength=n_rows * n_bins).reshape(n_rows, n_bins)


@kernel(add_nanotime_histograms_numpy, warm_up=WARM_UP, nogil=True)
def add_nanotime_histograms(
    detectors: np.ndarray, nanotimes: np.ndarray, code_of: np.ndarray, bin_width_ps: np.int64,
    counts: np.ndarray, no_nanotime: np.ndarray, out_of_range: np.ndarray,
) -> None:
    """Add each photon's nanotime to the histogram row of its detector.

    ``code_of[channel]`` is the row of a detector channel, -1 for channels left
    out.  Negative nanotimes go to ``no_nanotime[row]``, nanotimes past the last
    bin to ``out_of_range[row]``.
    """
    n_bins = counts.shape[1]
    for i in range(detectors.shape[0]):
        row = code_of[detectors[i]]
        if row < 0:
            continue
        nt = nanotimes[i]
        if nt < 0:
            no_nanotime[row] += 1
            continue
        k = np.int64(nt) // bin_width_ps
        if k >= n_bins:
            out_of_range[row] += 1
        else:
            counts[row, k] += 1


def add_time_bins_numpy(
    timestamps: np.ndarray, detectors: np.ndarray, nanotimes: np.ndarray, code_of: np.ndarray,
    origin_ps: np.int64, bin_ps: np.int64, first_bin: np.int64, previous_ps: np.int64,
    counts: np.ndarray, nanotime_counts: np.ndarray, nanotime_sums_ps: np.ndarray,
    nanotime_offset_ps: np.int64, with_nanotimes: bool,
) -> bool:
    """numpy version of :func:`add_time_bins` (same arguments and results; on False nothing is added)."""
    n = timestamps.shape[0]
    if n and (timestamps[0] < previous_ps or np.any(timestamps[1:] < timestamps[:-1])):
        return False
    columns = code_of[detectors]
    taken = columns >= 0
    t, columns = timestamps[taken], columns[taken]
    rows = np.maximum((t - origin_ps) // bin_ps - first_bin, 0)
    n_rows, n_columns = counts.shape
    if rows.size and rows[-1] >= n_rows:
        return False
    counts += np.bincount(rows * n_columns + columns, minlength=n_rows * n_columns).reshape(n_rows, n_columns)
    if with_nanotimes:
        nt = nanotimes[taken].astype(np.int64)
        has = nt >= 0
        nanotime_counts += np.bincount(rows[has], minlength=n_rows)
        np.add.at(nanotime_sums_ps, rows[has], nt[has] - nanotime_offset_ps)  # int64: exact, unlike bincount's weights
    return True


@kernel(add_time_bins_numpy, warm_up=WARM_UP, nogil=True)
def add_time_bins(
    timestamps: np.ndarray, detectors: np.ndarray, nanotimes: np.ndarray, code_of: np.ndarray,
    origin_ps: np.int64, bin_ps: np.int64, first_bin: np.int64, previous_ps: np.int64,
    counts: np.ndarray, nanotime_counts: np.ndarray, nanotime_sums_ps: np.ndarray,
    nanotime_offset_ps: np.int64, with_nanotimes: bool,
) -> bool:
    """Bin sorted photons by time: row r covers ``[origin + (first_bin + r) * bin, ... + bin)``.

    Adds per row and detector column (``code_of`` as above) the photon count;
    with ``with_nanotimes`` also, per row, the number of photons with a nanotime
    (>= 0) and the sum of their ``nanotime - nanotime_offset_ps`` (int64).
    Every timestamp must be >= the start of row 0 and fall within the rows.
    Returns False (and stops) if time goes back (before ``previous_ps`` or
    within the block) or runs past the last row.
    """
    n_rows = counts.shape[0]
    row = 0
    row_end = origin_ps + (first_bin + 1) * bin_ps
    previous = previous_ps
    went_back = False
    nt_n = np.int64(0)  # the current row's nanotime count and sum, kept in registers
    nt_sum = np.int64(0)
    for i in range(timestamps.shape[0]):
        t = timestamps[i]
        went_back |= t < previous
        previous = t
        column = code_of[detectors[i]]
        if column < 0:
            continue
        if t >= row_end:
            nanotime_counts[row] += nt_n
            nanotime_sums_ps[row] += nt_sum
            nt_n = 0
            nt_sum = 0
            while t >= row_end:
                row += 1
                row_end += bin_ps
            if row >= n_rows:
                return False
        counts[row, column] += 1
        if with_nanotimes:
            nt = nanotimes[i]
            if nt >= 0:
                nt_n += 1
                nt_sum += np.int64(nt) - nanotime_offset_ps
    nanotime_counts[row] += nt_n
    nanotime_sums_ps[row] += nt_sum
    return not went_back


# ----------------------------------------------------------------------------- shared checks


def check_positive_int(owner: str, name: str, value: object) -> int:
    """``value`` as an int if it is a whole number > 0, else a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{owner}: {name} = {value!r}: must be an integer > 0")
    return int(value)


def check_channel(owner: str, name: str, value: object) -> int:
    """A tagger channel number 0..255."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value <= 255:
        raise ValueError(f"{owner}: {name} = {value!r}: must be a tagger channel number between 0 and 255")
    return int(value)


def check_detectors(owner: str, detectors: Sequence[int] | None) -> tuple[int, ...] | None:
    """Distinct channel numbers (None = take them from the run at ``open``)."""
    if detectors is None:
        return None
    if isinstance(detectors, (int, np.integer)) or not isinstance(detectors, Sequence) and not isinstance(
        detectors, np.ndarray
    ):
        raise ValueError(f"{owner}: detectors = {detectors!r}: must be a sequence of tagger channel numbers")
    out = tuple(check_channel(owner, "detectors", d) for d in detectors)
    if not out or len(set(out)) != len(out):
        raise ValueError(f"{owner}: detectors = {detectors!r}: must be one or more distinct channel numbers")
    return out


def run_detectors(owner: str, wanted: tuple[int, ...] | None, run: RunInfo) -> tuple[int, ...]:
    """The detectors to use for ``run``: ``wanted``, each of which must be one of the run's SPADs, or all of them."""
    available = tuple(run.channels.detectors)
    if wanted is None:
        return available
    for d in wanted:
        if d not in available:
            raise ValueError(f"{owner}: detector channel {d} is not a photon detector of this run: "
                             f"allowed {available} (run.channels)")
    return wanted


def code_table(detectors: Sequence[int]) -> np.ndarray:
    """``table[channel]`` = position of the channel in ``detectors``, -1 for the other 256 - n channels."""
    table = np.full(256, -1, np.int64)
    table[np.asarray(detectors, np.int64)] = np.arange(len(detectors))
    return table

"""Streaming time traces: intensity (blinking) trace, average-lifetime trace and FLID.

Both accumulators cut the photon stream into time bins the same way
(``time_bin_index``, ``_TimeBinner``):

* Bin i covers ``[origin + i * bin, origin + (i + 1) * bin)`` (int64 ps).  The
  origin is ``origin_ps`` if given, else the timestamp of the first photon
  seen (on any detector).  Photons before ``origin_ps`` are not binned; they
  are counted in ``n_before_origin``.
* A bin is complete once a photon (on any detector) at or after its end has
  arrived, or at ``finalize``; only complete bins are published.  Bins
  without photons are complete like any other and count zero (blinking OFF).
  ``finalize(end_ps)`` completes the bins up to the one holding ``end_ps - 1``
  (the run's end: trailing empty bins), else up to the last photon's bin; the
  last bin may then cover less than ``bin_ms`` of data.
* Results do not depend on where the stream is cut into blocks.

FLID: ``labctl.analysis.flid`` (same time bins).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from labctl.analysis import _kernels as K
from labctl.blocks import PhotonBlock, went_back_message
from labctl.run import RunInfo, RunSummary

AUTO_INTENSITY_BINS = 256
"""Number of intensity bins of the FLID with automatic intensity edges."""

DEFAULT_LIFETIME_EDGES_NS = np.arange(0.0, 101.0, 1.0)
"""FLID lifetime axis by default: 0..100 ns in 1 ns bins."""

_NO_INDEX = np.empty(0, np.int64)


def time_bin_index(timestamps_ps: np.ndarray, origin_ps: int, bin_ps: int) -> np.ndarray:
    """Bin of each timestamp: ``(t - origin) // bin`` (int64; negative before the origin)."""
    return (np.asarray(timestamps_ps, np.int64) - np.int64(origin_ps)) // np.int64(bin_ps)


def bin_ps_from_ms(owner: str, bin_ms: float) -> int:
    """``bin_ms`` as whole picoseconds (> 0), or a ValueError naming it."""
    if isinstance(bin_ms, bool) or not isinstance(bin_ms, (int, float, np.integer, np.floating)) \
            or not math.isfinite(bin_ms) or bin_ms <= 0:
        raise ValueError(f"{owner}: bin_ms = {bin_ms!r}: must be a number > 0 (ms)")
    bin_ps = round(bin_ms * 1e9)
    if bin_ps < 1 or abs(bin_ms * 1e9 - bin_ps) > 1e-6 * bin_ps:
        raise ValueError(f"{owner}: bin_ms = {bin_ms!r}: must be a whole number of picoseconds (>= 1e-9 ms)")
    return int(bin_ps)


class _TimeBinner:
    """Cuts a photon stream into time bins: per bin and detector the photon count, optionally per bin the
    number and the int64 sum of (nanotime - offset) of the photons with a nanotime.

    Complete bins are appended to a row store (int64 rows: one column per detector,
    then, with nanotimes, count and sum); the bin still open is kept apart.  The
    store is published by reference under the owner's lock: rows below the
    published length are never written again, so a reader copies them outside it.
    """

    def __init__(self, owner: str, bin_ps: int, origin_ps: int | None, with_nanotimes: bool,
                 nanotime_offset_ps: int = 0) -> None:
        self.owner = owner
        self.bin_ps = bin_ps
        self.origin_wanted = origin_ps
        self.with_nanotimes = with_nanotimes
        self.offset_ps = nanotime_offset_ps
        self.reset(())

    def reset(self, detectors: Sequence[int]) -> None:
        self.detectors = tuple(detectors)
        self.code_of = K.code_table(self.detectors) if self.detectors else None
        self.width = len(self.detectors) + (2 if self.with_nanotimes else 0)
        self.origin_ps: int | None = self.origin_wanted
        self.open_bin: int | None = None  # bin index of the open row
        self.open_row = np.zeros(self.width, np.int64)
        self.last_ps: int | None = None
        self.n_before_origin = 0
        self.buffer = np.zeros((256, self.width), np.int64)  # published with ``length``
        self.length = 0

    def add(self, block: PhotonBlock) -> np.ndarray:
        """Bin the block; return the rows of the bins it completed (the caller publishes them).

        On an error (time going back) nothing has changed.
        """
        if self.code_of is None:
            raise ValueError(f"{self.owner}: detectors unknown: pass them or call open(run) first")
        ts = block.timestamps
        if ts.size == 0:
            return np.zeros((0, self.width), np.int64)
        if self.last_ps is not None and ts[0] < self.last_ps:
            self._went_back(ts)
        origin = int(ts[0]) if self.origin_ps is None else self.origin_ps
        start = 0
        if ts[0] < origin:  # only with origin_ps given
            start = int(np.searchsorted(ts, origin, side="left"))
            if np.any(np.diff(ts[:start + 1]) < 0):
                self._went_back(ts)
        rows = np.zeros((0, self.width), np.int64)
        open_bin = 0 if self.open_bin is None else self.open_bin
        if start < ts.size:
            ts_in = ts[start:]
            n_rows = max(int(ts_in[-1] - origin) // self.bin_ps - open_bin + 1, 1)
            counts = np.zeros((n_rows, len(self.detectors)), np.int64)
            nt_n = np.zeros(n_rows, np.int64)
            nt_sum = np.zeros(n_rows, np.int64)
            if not K.add_time_bins(ts_in, block.detectors[start:], block.nanotimes[start:], self.code_of,
                                   np.int64(origin), np.int64(self.bin_ps), np.int64(open_bin), ts_in[0],
                                   counts, nt_n, nt_sum, np.int64(self.offset_ps), self.with_nanotimes):
                self._went_back(ts)
            rows = np.column_stack((counts, nt_n, nt_sum)) if self.with_nanotimes else counts
            rows[0] += self.open_row
            self.open_bin, self.open_row = open_bin + n_rows - 1, rows[-1].copy()
            rows = rows[:-1]
        if start:
            self.n_before_origin += int(np.count_nonzero(self.code_of[block.detectors[:start]] >= 0))
        self.origin_ps = origin
        self.last_ps = int(ts[-1])
        return rows

    def finish(self, end_ps: int | None) -> np.ndarray:
        """Complete the open bin (and the empty bins up to the one holding ``end_ps - 1``); return their rows."""
        if self.open_bin is None:
            if end_ps is None or self.origin_ps is None or end_ps <= self.origin_ps or self.code_of is None:
                return np.zeros((0, self.width), np.int64)
            self.open_bin = 0
        last_bin = self.open_bin
        if end_ps is not None and self.origin_ps is not None:
            last_bin = max(last_bin, (int(end_ps) - 1 - self.origin_ps) // self.bin_ps)
        rows = np.zeros((last_bin - self.open_bin + 1, self.width), np.int64)
        rows[0] = self.open_row
        self.open_bin, self.open_row = last_bin + 1, np.zeros(self.width, np.int64)
        return rows

    def prepare(self, rows: np.ndarray) -> tuple[np.ndarray, int]:
        """(buffer, length) holding the published rows and then ``rows``, written without the lock.

        Rows below the published length are untouched (or copied to a new buffer),
        so a reader holding the old (buffer, length) stays valid.
        """
        n = self.length + rows.shape[0]
        buffer = self.buffer
        if n > buffer.shape[0]:
            buffer = np.zeros((max(2 * buffer.shape[0], n), self.width), np.int64)
            buffer[:self.length] = self.buffer[:self.length]
        buffer[self.length:n] = rows
        return buffer, n

    def _went_back(self, ts: np.ndarray) -> None:
        raise ValueError(went_back_message(self.owner, ts, self.last_ps))


def _last_rows(buffer: np.ndarray, length: int, last_n_bins: int | None) -> tuple[int, np.ndarray]:
    """(index of the first row returned, copy of the last ``last_n_bins`` rows, or of all)."""
    first = 0 if last_n_bins is None else max(0, length - int(last_n_bins))
    return first, buffer[first:length].copy()


# ----------------------------------------------------------------------------- intensity trace


@dataclass(frozen=True)
class TraceSnapshot:
    """Complete bins of an intensity trace (numpy copies).

    Attributes:
        detectors: tagger channels, the columns of ``counts``.
        bin_ms, bin_ps: bin width.
        origin_ps: start of bin 0 (ps, tagger clock); None before the first photon.
        first_bin: index of the bin in row 0 (> 0 for a rolling window / ``last_n_bins``).
        counts: int64, shape (bins, detectors): photons per bin and detector.
        total: int64, shape (bins,): photons per bin, detectors summed.
        n_complete_bins: complete bins in the whole run.
        n_before_origin: photons before ``origin_ps`` (not binned).
    """

    detectors: tuple[int, ...]
    bin_ms: float
    bin_ps: int
    origin_ps: int | None
    first_bin: int
    counts: np.ndarray
    total: np.ndarray
    n_complete_bins: int
    n_before_origin: int

    def bin_start_s(self) -> np.ndarray:
        """Start of each bin in seconds after the origin (float64)."""
        return (self.first_bin + np.arange(self.total.size)) * (self.bin_ps * 1e-12)


class IntensityTrace:
    """Photon counts per time bin and detector; a labctl ``Sink`` and a standalone accumulator.

    Args:
        detectors: tagger channels (None: the run's SPADs, at ``open``).
        bin_ms: bin width (ms), a whole number of picoseconds.
        rolling_bins: length of the rolling window (``rolling_snapshot``).
        origin_ps: start of bin 0 (ps); None: the first photon's timestamp.
        name: the sink's name.

    The whole run is kept (8 bytes per bin and detector) and ``snapshot`` copies it;
    a live view should ask for ``rolling_snapshot()`` or ``snapshot(last_n_bins=n)``.
    Threads: ``update``/``write``/``finalize`` from one thread; snapshots from any.
    """

    _OWNER = "IntensityTrace"

    def __init__(self, detectors: Sequence[int] | None = None, *, bin_ms: float = 10.0, rolling_bins: int = 1000,
                 origin_ps: int | None = None, name: str = "trace") -> None:
        self._wanted_detectors = K.check_detectors(self._OWNER, detectors)
        self.bin_ms = float(bin_ms)
        self.bin_ps = bin_ps_from_ms(self._OWNER, bin_ms)
        self.rolling_bins = K.check_positive_int(self._OWNER, "rolling_bins", rolling_bins)
        if origin_ps is not None and (isinstance(origin_ps, bool) or not isinstance(origin_ps, (int, np.integer))):
            raise ValueError(f"{self._OWNER}: origin_ps = {origin_ps!r}: must be None or an integer (ps)")
        self.name = name
        self._lock = threading.Lock()
        self._binner = self._make_binner(None if origin_ps is None else int(origin_ps))
        self.detectors = self._wanted_detectors
        self.reset()

    def _make_binner(self, origin_ps: int | None) -> _TimeBinner:
        return _TimeBinner(self._OWNER, self.bin_ps, origin_ps, with_nanotimes=False)

    # ------------------------------------------------------------------ Sink protocol
    def open(self, run: RunInfo) -> None:
        """Reset; take the detectors from the run if they were not given."""
        self.detectors = K.run_detectors(self._OWNER, self._wanted_detectors, run)
        self.reset()

    def write(self, block: PhotonBlock) -> None:
        """Sink entry point: ``update(block)``."""
        self.update(block)

    def close(self, summary: RunSummary) -> None:
        """Sink exit point: ``finalize`` up to the run's end (``summary.start_ps + duration_ps``)."""
        self.finalize(summary.start_ps + summary.duration_ps if summary.duration_ps > 0 else None)

    # ------------------------------------------------------------------ accumulation
    def reset(self) -> None:
        """Forget all data (settings stay)."""
        with self._lock:
            self._binner.reset(self.detectors or ())
            self._published = (self._binner.buffer, 0, self._binner.origin_ps, 0)  # buffer, length, origin, before
            self._reset_extra()
        self._finalized = False

    def _reset_extra(self) -> None:
        """Reset what a subclass publishes besides the trace (called under the lock)."""

    def update(self, block: PhotonBlock) -> None:
        """Bin the block's photons; publish the bins it completed.

        Raises:
            ValueError: detectors unknown, or the block goes back in time.
            RuntimeError: called after ``finalize``.
        """
        if self._finalized:
            raise RuntimeError(f"{self._OWNER}: update after finalize: call reset() or open(run) first")
        self._publish(self._binner.add(block))

    def finalize(self, end_ps: int | None = None) -> TraceSnapshot:
        """Complete the last bin (and empty bins up to ``end_ps``, if given); return the whole-run snapshot."""
        if not self._finalized:
            self._publish(self._binner.finish(end_ps))
            self._finalized = True
        return self.snapshot()

    def _publish(self, rows: np.ndarray) -> None:
        b = self._binner
        buffer, length = b.prepare(rows)
        with self._lock:
            b.buffer, b.length = buffer, length
            self._published = (buffer, length, b.origin_ps, b.n_before_origin)

    # ------------------------------------------------------------------ reading
    def snapshot(self, last_n_bins: int | None = None) -> TraceSnapshot:
        """Complete bins: the whole run, or the last ``last_n_bins``.  Safe from any thread."""
        with self._lock:
            buffer, length, origin, before = self._published
        first, rows = _last_rows(buffer, length, last_n_bins)
        return TraceSnapshot(detectors=tuple(self.detectors or ()), bin_ms=self.bin_ms, bin_ps=self.bin_ps,
                             origin_ps=origin, first_bin=first, counts=rows, total=rows.sum(axis=1),
                             n_complete_bins=length, n_before_origin=before)

    def rolling_snapshot(self) -> TraceSnapshot:
        """The last ``rolling_bins`` complete bins (cheap: for live views)."""
        return self.snapshot(last_n_bins=self.rolling_bins)

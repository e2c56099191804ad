"""Photon-HDF5 file sink: streams photon blocks to disk so that a crash loses at most seconds.

The recipe measured in DESIGN.md ("Data file") is followed, with one change:
``libver=layout.LIBVER`` (1.10 format) instead of "latest" (see ``layout.LIBVER``
for why); every group, dataset and attribute created *before*
``swmr_mode = True``; uncompressed chunked resizable datasets; ``ds.flush()``
on every dataset every ``flush_interval_s / 2`` (a crash loses at most ``flush_interval_s``); free space checked before every
append and flush, stopping cleanly before the disk is full.  The end-of-run
record (``/user/labctl/run_end``) needs new attributes, which SWMR forbids, so
it is written after the SWMR session is closed, by reopening the file "r+".
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable

import h5py
import numpy as np

from labctl.blocks import FrameBlock, LossRecord, PhotonBlock
from labctl.errors import ConfigError, DiskSpaceError
from labctl.run import RunInfo
from labctl.storage import h5_io
from labctl.storage import layout as L
from labctl.storage.file_end import reserve_space
from labctl.storage.hdf5_open import open_caching_one_chunk
from labctl.storage.writer_end import RUN_END_ROOM_BYTES, WriterEnding, _DiskFull, _GuardFailed

NOTES_PATH = "/user/labctl/notes"  # UTF-8 text: the sample notes given to the writer (absent if none)
PHOTON_BYTES = L.TIMESTAMPS_DTYPE.itemsize + L.DETECTORS_DTYPE.itemsize + L.NANOTIMES_DTYPE.itemsize
"""Bytes per photon in the file (13)."""


CHUNK_CACHE_BYTES = 3 * 2**20
"""HDF5 chunk cache of the file (bytes): what a dataset opened without its own cache gets."""


_LIVE_PATHS = (*L.SPECTRA_FRAME_PATHS, L.SPECTRA_SKIPPED, L.MARKERS, L.LOSSES, L.RUN_LOG, L.ACQUISITION_DURATION, L.SETUP_DETECTOR_COUNTS,
               *L.STREAM_PATHS, L.WRITER_DONE)
"""Datasets written during the run, in flush order: side tables first, photons last, so that
a SWMR reader that sees photons up to t also sees the markers and losses up to t."""


_GROWING_PATHS = tuple(p for p in _LIVE_PATHS if p not in (L.ACQUISITION_DURATION, L.SETUP_DETECTOR_COUNTS, L.WRITER_DONE))
"""Datasets that grow during the run (cut back to their flushed length after a failed write)."""

class PhotonHDF5Writer(WriterEnding):
    """Sink that writes the run's photons, markers, losses and log to a Photon-HDF5 v0.5 file.

    Args:
        path: the file to create; it must not exist (data are never overwritten).
        flush_interval_s: the longest time (s) data may wait unflushed: every dataset is
            flushed every ``flush_interval_s / 2`` on a fixed schedule (checked on each
            ``write`` and by ``flush_if_due``), leaving the other half for the flush itself
            and for the time a block takes to arrive; so a crash (kill -9) loses at most
            about ``flush_interval_s`` of data.  0 flushes on every write.
        min_free_bytes: stop (``DiskSpaceError``) when the free space on the file's
            folder would drop below this margin.
        chunk_photons: HDF5 chunk length of the photon datasets; small blocks are
            staged in memory and appended in whole chunks.
        author, description: go to ``/identity/author`` and ``/description``
            (``description`` empty: the run's description is used).
        free_bytes: ``folder -> free bytes``; default ``shutil.disk_usage``. For tests.
        excitation_wavelength_m, detection_wavelength_m: ``/setup`` wavelengths (m).
        notes: free text about the sample (QD, power...), written to ``/user/labctl/notes``
            when not empty.

    Threads: ``open``, ``write``, ``flush`` and ``close`` run on the sink's thread;
    ``log`` may be called from any thread.
    """

    name = "file"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        flush_interval_s: float = 1.0,
        min_free_bytes: int = 256 * 2**20,
        chunk_photons: int = 1 << 18,
        author: str = "",
        description: str = "",
        free_bytes: Callable[[str], int] | None = None,
        excitation_wavelength_m: float = L.EXCITATION_WAVELENGTH_M,
        detection_wavelength_m: float = L.DETECTION_WAVELENGTH_M,
        notes: str = "",
    ) -> None:
        if not flush_interval_s >= 0:
            raise ConfigError("PhotonHDF5Writer.flush_interval_s", flush_interval_s, "must be >= 0 s")
        if min_free_bytes < 0:
            raise ConfigError("PhotonHDF5Writer.min_free_bytes", min_free_bytes, "must be >= 0 bytes")
        if chunk_photons < 1:
            raise ConfigError("PhotonHDF5Writer.chunk_photons", chunk_photons, "must be >= 1")
        self._path = os.path.abspath(os.fspath(path))
        self._folder = os.path.dirname(self._path)
        self._flush_interval_s = float(flush_interval_s)
        self._flush_period_s = self._flush_interval_s / 2  # the rest is margin for the flush and the read latency
        self._min_free_bytes = int(min_free_bytes)
        self._chunk = int(chunk_photons)
        self._author = author
        self._description = description
        self._notes = notes
        self._free_bytes = free_bytes or (lambda folder: shutil.disk_usage(folder).free)
        self._excitation_wavelength_m = excitation_wavelength_m
        self._detection_wavelength_m = detection_wavelength_m
        self._lock = threading.RLock()
        self._log_lock = threading.Lock()
        self._log_queue: list[tuple[float, str, str]] = []
        self._file: h5py.File | None = None
        self._opened = False
        self._closed = False
        self._t_open = time.monotonic()

    # ----------------------------------------------------------------- properties
    @property
    def path(self) -> str:
        """Absolute path of the data file."""
        return self._path

    @property
    def photons_written(self) -> int:
        """Photons accepted so far (in the file, or staged for the next flush); after a failed
        write (full disk), the photons the file holds (up to its last flush)."""
        return self._n_accepted if self._opened else 0

    @property
    def end_reason(self) -> str | None:
        """Why the file ended early ("disk space", or "error: ..." for another failed write); None if it did not."""
        if not self._opened or self._failure is None:
            return None
        return "disk space" if self._disk_full else f"error: {self._failure}"

    @property
    def own_losses(self) -> list[LossRecord]:
        """Losses the writer itself caused (``disk_space:file``: photons it could not write)."""
        return list(self._own_losses)

    # ----------------------------------------------------------------- Sink API
    def open(self, run: RunInfo) -> None:
        """Create the file and its whole layout, then switch to SWMR mode.

        Raises:
            FileExistsError: the file exists.
            DiskSpaceError: less than ``min_free_bytes`` free on the folder (no file made).
        """
        with self._lock:
            if self._opened:
                raise RuntimeError(f"{self._path}: PhotonHDF5Writer.open called twice")
            if run.nominal_sync_period_ps <= 0:
                raise ConfigError("RunInfo.nominal_sync_period_ps", run.nominal_sync_period_ps,
                                  "must be > 0 ps (it sets tcspc_num_bins and the laser repetition rate)")
            os.makedirs(self._folder, exist_ok=True)
            free = int(self._free_bytes(self._folder))
            if free < self._min_free_bytes:
                raise DiskSpaceError(
                    f"{self._path}: {free} bytes free on {self._folder}, below the margin of "
                    f"{self._min_free_bytes} bytes (min_free_bytes): the file was not created"
                )
            self._ids = L.detector_ids(run)
            self._n_accepted = 0
            self._n_committed = 0
            self._stage = (  # the dataset's last, incomplete chunk
                np.zeros(self._chunk, L.TIMESTAMPS_DTYPE),
                np.zeros(self._chunk, L.DETECTORS_DTYPE),
                np.zeros(self._chunk, L.NANOTIMES_DTYPE),
            )
            self._stage_n = 0  # photons in the stage
            self._stage_written = 0  # of which already in the file (written by a flush)
            self._pending_markers: list[np.ndarray] = []
            self._pending_frames: list[FrameBlock] = []
            self._pending_skipped: list[np.ndarray] = []
            self._pending_losses: list[LossRecord] = []
            self._loss_keys: set[tuple[int, int, str]] = set()
            self._counts = np.zeros(len(self._ids), np.int64)  # photons per id in self._ids
            self._span_ps: list[int] | None = None
            self._last_committed_ps: int | None = None
            self._warned_channels = False
            self._own_losses: list[LossRecord] = []
            self._failure: str | None = None  # why the file stopped early (free-space guard, failed write)
            self._disk_full = False
            self._abandoned = False  # a write failed: the file was closed as it was at its last flush
            self._n_received = 0  # photons handed to write, all of them
            self._n_flushed = 0  # state at the last successful flush (what a crash or full disk keeps)
            self._flushed_ps: int | None = None
            self._flushed_counts = self._counts.copy()
            self._flushed_len: dict[str, int] = {path: 0 for path in _GROWING_PATHS}
            self._unflushed_losses: list[LossRecord] = []  # appended since the last flush (lost if it fails)
            self._unflushed_log: list[tuple[float, str, str]] = []
            self._t_open = time.monotonic()
            self._next_flush = self._t_open + self._flush_period_s
            # Each growing dataset gets a chunk cache of one of its own chunks (open_caching_one_chunk):
            # the default (8 MiB per dataset here), and later one 3 MiB size for all, filled up
            # with finished chunks over a run's first minutes and, for the slow side tables
            # (markers, frame times: 32 KiB chunks), over hours (benchmarks/soak.py); no cache at
            # all (0) moved HDF5's chunk index behind the data, so a truncated file lost the
            # photons `labctl repair` recovers otherwise (tests/test_repair.py).
            f = h5py.File(self._path, "w-", libver=L.LIBVER, rdcc_nbytes=CHUNK_CACHE_BYTES)
            try:
                L.create_layout(f, run, chunk_photons=self._chunk, author=self._author,
                                description=self._description or run.description,
                                excitation_wavelength_m=self._excitation_wavelength_m,
                                detection_wavelength_m=self._detection_wavelength_m)
                if self._notes:
                    f[NOTES_PATH] = L.text_scalar(self._notes)
                f.swmr_mode = True
                self._ds = {path: open_caching_one_chunk(f, path) for path in _LIVE_PATHS}
            except BaseException:
                f.close()
                os.remove(self._path)
                raise
            self._file = f
            self._opened = True
            self._reserve = reserve_space(self._path, RUN_END_ROOM_BYTES)

    def write(self, block: PhotonBlock) -> None:
        """Append one block (photons, markers, losses); flush if the flush schedule says so.

        Raises:
            TypeError / ValueError: malformed block (nothing of it is written).
            DiskSpaceError: the free-space guard tripped, or the disk is full (ENOSPC); the file is
                already closed, holding everything up to its last flush.
            OSError: another write error; the file is closed as it was at its last flush.
        """
        ts, det, nt, markers = _checked_arrays(block)
        with self._lock:
            if not self._opened or self._closed:
                raise RuntimeError(f"{self._path}: write() on a writer that is not open")
            if self._file is None:  # the file ended early (full disk): it stops at its last flush
                raise (DiskSpaceError if self._disk_full else OSError)(f"{self._failure}; nothing more is written")
            self._n_accepted += len(ts)
            self._n_received += len(ts)
            self._note_span(block.span_ps, ts)
            if len(markers):
                self._pending_markers.append(markers.copy())
            if block.frames is not None and len(block.frames):
                self._pending_frames.append(block.frames)
            if len(block.skipped_frames):
                self._pending_skipped.append(np.asarray(block.skipped_frames, np.int64))
            for loss in block.losses:
                self._queue_loss(loss)
            with self._guarded():
                self._add_photons(ts, det, nt)
                if time.monotonic() >= self._next_flush:
                    self._flush()
                elif self._log_queue:
                    self._commit_log()

    def flush(self) -> None:
        """Append everything staged and flush every dataset now (normally done by ``write``)."""
        with self._lock:
            if self._file is None:
                return
            with self._guarded():
                self._flush()

    def flush_if_due(self) -> None:
        """Flush if the schedule says so (the engine calls this when no block came for a while)."""
        with self._lock:
            if self._file is None or time.monotonic() < self._next_flush:
                return
            with self._guarded():
                self._flush()

    def log(self, message: str, level: str = "INFO") -> None:
        """Queue a run-log line (any thread); written at the next write/flush/close.

        Messages longer than 240 UTF-8 bytes are cut and end with "…".
        Lines logged after ``close`` are dropped (the file is closed).
        """
        if self._closed:
            return
        with self._log_lock:
            self._log_queue.append((time.monotonic(), str(level), str(message)))

    # ----------------------------------------------------------------- appending
    def _add_photons(self, ts: np.ndarray, det: np.ndarray, nt: np.ndarray) -> None:
        """Append in whole chunks: runs of whole chunks straight from the block, the rest via the stage.

        The stage mirrors the dataset's last, incomplete chunk.  Every HDF5 write is a
        whole chunk (H5Dwrite_chunk: no chunk cache, no read-modify-write, no copies),
        which is as fast as ``ndarray.tofile``; ``ds[a:b] = x`` is about half as fast.
        """
        n, i, cap = len(ts), 0, self._chunk
        while i < n:
            if self._stage_n == 0 and n - i >= cap:  # stage empty: the dataset ends on a chunk boundary
                k = (n - i) // cap * cap
                self._write_chunks(ts[i:i + k], det[i:i + k], nt[i:i + k])
            else:
                k = min(cap - self._stage_n, n - i)
                s = self._stage_n
                for buf, arr in zip(self._stage, (ts, det, nt)):
                    buf[s:s + k] = arr[i:i + k]
                self._stage_n += k
                if self._stage_n == cap:
                    self._write_stage()
            i += k

    def _write_chunks(self, ts: np.ndarray, det: np.ndarray, nt: np.ndarray) -> None:
        """Append whole chunks (``len(ts)`` is a multiple of the chunk) at a chunk boundary."""
        self._check_space(len(ts) * PHOTON_BYTES)
        self._commit_side()
        old, new, cap = self._n_committed, self._n_committed + len(ts), self._chunk
        for path, arr in zip(L.STREAM_PATHS, (ts, det, nt)):
            ds = self._ds[path]
            h5_io.set_extent(ds, new)
            arr = np.ascontiguousarray(arr)
            for start in range(0, new - old, cap):
                h5_io.write_chunk(ds, old + start, arr[start:start + cap])
        self._written(ts, det, new)

    def _write_stage(self) -> None:
        """Write the stage's chunk (again, if a flush wrote part of it before); reset it once full."""
        s, done = self._stage_n, self._stage_written
        if s == done:
            return
        self._check_space((s - done + self._chunk) * PHOTON_BYTES)  # a whole chunk is (re)written
        self._commit_side()
        start = self._n_committed - done
        for path, buf in zip(L.STREAM_PATHS, self._stage):
            ds = self._ds[path]
            if done:  # rewrite: data first, then the extent, so the new extent never shows old bytes
                h5_io.write_chunk(ds, start, buf)  # past start + s: outside the extent, never read
                h5_io.set_extent(ds, start + s)
            else:  # a new chunk must lie inside the extent before it is written
                h5_io.set_extent(ds, start + s)
                h5_io.write_chunk(ds, start, buf)
        self._written(self._stage[0][done:s], self._stage[1][done:s], start + s)
        self._stage_n, self._stage_written = (0, 0) if s == self._chunk else (s, s)

    def _written(self, ts: np.ndarray, det: np.ndarray, new_length: int) -> None:
        self._n_committed = new_length
        counts = [np.count_nonzero(det == i) for i in self._ids]  # bincount is 10x slower on uint8
        self._counts += counts
        self._last_committed_ps = int(ts[-1])
        if sum(counts) != len(det) and not self._warned_channels:
            self._warned_channels = True
            self.log(f"photons on tagger channels other than the SPADs {self._ids}: they are in "
                     f"{L.DETECTORS} but not in {L.SETUP_DETECTOR_ID}", "WARNING")

    def _commit_side(self) -> None:
        """Append queued markers, loss records and log lines (small)."""
        if self._pending_markers:
            h5_io.append_rows(self._ds[L.MARKERS], np.concatenate(self._pending_markers))
            self._pending_markers = []
        if self._pending_frames:
            frames, self._pending_frames = self._pending_frames, []
            h5_io.append_rows(self._ds[L.SPECTRA_FRAMES], np.concatenate([b.frames for b in frames]).astype(L.FRAMES_DTYPE, copy=False))
            h5_io.append_rows(self._ds[L.SPECTRA_FRAME_INDEX], np.concatenate([b.indices for b in frames]))
            h5_io.append_rows(self._ds[L.SPECTRA_EXPOSURE_START], np.concatenate([b.exposure_start_ps for b in frames]))
            h5_io.append_rows(self._ds[L.SPECTRA_EXPOSURE_STOP], np.concatenate([b.exposure_stop_ps for b in frames]))
        if self._pending_skipped:
            h5_io.append_rows(self._ds[L.SPECTRA_SKIPPED], np.concatenate(self._pending_skipped))
            self._pending_skipped = []
        if self._pending_losses:
            h5_io.append_rows(self._ds[L.LOSSES], L.loss_rows(self._pending_losses))
            self._unflushed_losses += self._pending_losses
            self._pending_losses = []
        self._commit_log()

    def _commit_log(self) -> None:
        with self._log_lock:
            queued, self._log_queue = self._log_queue, []
        if queued:
            self._unflushed_log += queued
            h5_io.append_rows(self._ds[L.RUN_LOG], L.log_rows([(t - self._t_open, lv, msg) for t, lv, msg in queued]))

    def _note_span(self, span_ps: tuple[int, int], ts: np.ndarray) -> None:
        lo, hi = int(span_ps[0]), int(span_ps[1])
        if (lo, hi) == (0, 0):  # span not given: use the photons
            if not len(ts):
                return
            lo, hi = int(ts[0]), int(ts[-1]) + 1
        if self._span_ps is None:
            self._span_ps = [lo, hi]
        else:
            self._span_ps = [min(self._span_ps[0], lo), max(self._span_ps[1], hi)]

    def _queue_loss(self, loss: LossRecord) -> None:
        key = (int(loss.start_ps), int(loss.stop_ps), str(loss.source))
        if key not in self._loss_keys:
            self._loss_keys.add(key)
            self._pending_losses.append(loss)

    def _check_space(self, needed_bytes: int) -> None:
        try:
            free = int(self._free_bytes(self._folder))
        except Exception as exc:
            raise _GuardFailed(exc) from exc
        if free < self._min_free_bytes + needed_bytes:
            raise _DiskFull(free, needed_bytes)

    def _update_totals(self, duration_s: float | None = None) -> None:
        if duration_s is None:
            duration_s = (self._span_ps[1] - self._span_ps[0]) * 1e-12 if self._span_ps else 0.0
        h5_io.assign(self._ds[L.ACQUISITION_DURATION], duration_s)
        h5_io.assign(self._ds[L.SETUP_DETECTOR_COUNTS], self._counts)

    def _flush(self) -> None:
        staged = ((self._stage_n - self._stage_written) * PHOTON_BYTES + sum(m.nbytes for m in self._pending_markers)
                  + sum(b.frames.size * L.FRAMES_DTYPE.itemsize for b in self._pending_frames))
        self._check_space(staged + L.LOSS_DTYPE.itemsize * len(self._pending_losses))
        self._write_stage()
        self._commit_side()
        self._update_totals()
        self._flush_datasets()
        self._mark_flushed()
        # on a fixed schedule, not "a period after the last flush ended": the time a flush takes
        # (long on a loaded machine) does not add to the age of the data at a crash
        self._next_flush = max(self._next_flush + self._flush_period_s, time.monotonic())

    def _flush_datasets(self) -> None:
        for ds in self._ds.values():
            h5_io.flush_dataset(ds)

    def _mark_flushed(self) -> None:
        """Remember what the file holds now: a failed write later falls back to exactly this."""
        self._n_flushed, self._flushed_ps = self._n_committed, self._last_committed_ps
        self._flushed_counts = self._counts.copy()
        self._flushed_len = {path: self._ds[path].shape[0] for path in _GROWING_PATHS}
        self._unflushed_losses, self._unflushed_log = [], []

def _checked_arrays(block: PhotonBlock) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The block's arrays, after checking dtypes (no conversion) and shapes."""
    arrays = (("timestamps", block.timestamps, L.TIMESTAMPS_DTYPE), ("detectors", block.detectors, L.DETECTORS_DTYPE),
              ("nanotimes", block.nanotimes, L.NANOTIMES_DTYPE), ("markers", block.markers, L.MARKERS_DTYPE))
    for name, arr, dtype in arrays:
        if not isinstance(arr, np.ndarray) or arr.dtype != dtype or arr.ndim != 1:
            got = f"{arr.dtype} {arr.shape}" if isinstance(arr, np.ndarray) else type(arr).__name__
            raise TypeError(f"PhotonBlock.{name}: {got}; must be a one-dimensional {dtype} array")
    n = len(block.timestamps)
    if len(block.detectors) != n or len(block.nanotimes) != n:
        raise ValueError(f"PhotonBlock: {n} timestamps, {len(block.detectors)} detectors, "
                         f"{len(block.nanotimes)} nanotimes: must be equal")
    return block.timestamps, block.detectors, block.nanotimes, block.markers


"""How the Photon-HDF5 writer ends: normally, at the free-space guard, or after a failed write.

* normally (``close``): the rest of the stage and side tables, final totals, ``writer_done`` = 1,
  flush, close the SWMR session; then reopen "r+" for ``run_end`` (SWMR forbids new attributes);
* the free-space guard (less than ``min_free_bytes`` + what is to be written): the SWMR session
  is closed the normal way at once, ``run_end`` follows at ``close`` with the run's summary;
* a failed write (ENOSPC: another process filled the disk; any other I/O error): the file is
  abandoned as it was at its last flush (:mod:`labctl.storage.file_end`), then reopened with
  SWMR's mark cleared, cut back to that flush, and given the losses, log lines and ``run_end``
  of the end of the run, in the room the writer reserved beside the file.

:class:`WriterEnding` is a part of :class:`~labctl.storage.writer.PhotonHDF5Writer`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import h5py

from labctl.blocks import LossRecord
from labctl.errors import DiskSpaceError
from labctl.run import RunSummary
from labctl.storage import h5_io
from labctl.storage import layout as L
from labctl.storage.file_end import abandon, clear_mark, is_disk_full, release, reopen_rw

RUN_END_ROOM_BYTES = 1 << 20
"""Free bytes needed to add the end record to a file whose writing failed (full disk); the writer
keeps this much reserved beside the file during the run (see ``file_end.reserve_space``)."""


class _GuardFailed(Exception):
    """The free-space reading itself failed (the file was not touched)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


class _DiskFull(Exception):
    def __init__(self, free_bytes: int, needed_bytes: int) -> None:
        super().__init__(free_bytes, needed_bytes)
        self.free_bytes = free_bytes
        self.needed_bytes = needed_bytes


class WriterEnding:
    """The ending half of PhotonHDF5Writer (its state is the writer's; see writer.py)."""

    _path: str
    _folder: str

    def close(self, summary: RunSummary) -> None:
        """Write what is staged and the losses only the summary knows, close, write ``run_end``.

        Idempotent.  Safe after an exception in ``write``: data already appended stay.  After the
        free-space guard or a failed write the file already ended; ``run_end`` then says why
        (``clean`` 0, ``end_reason`` "disk space") with the summary's counts.

        Raises:
            DiskSpaceError: the disk filled up while writing the rest (the file keeps its last flush).
            OSError: the file could not be finished (the message says which step).
        """
        with self._lock:
            if self._closed or not self._opened:
                self._closed = True
                return
            for loss in summary.losses:
                self._queue_loss(loss)
            errors: list[str] = []
            failure: Exception | None = None
            if self._file is not None:
                try:
                    with self._guarded():
                        self._write_stage()
                        self._end_session(int(summary.duration_ps))
                except OSError as exc:  # DiskSpaceError included: the file ended at its last flush
                    failure = exc
            end = {
                "clean": bool(summary.clean),
                "end_reason": summary.end_reason,
                "duration_ps": int(summary.duration_ps),
                "counts": {int(k): int(v) for k, v in summary.counts.items()},
                "measured_sync_period_ps": summary.measured_sync_period_ps,
                "errors": list(summary.errors),
                "safe_state_actions": list(summary.safe_state_actions),
                "safe_state_warnings": list(summary.safe_state_warnings),
            }
            if self._failure is not None:
                end["clean"] = False
                end["end_reason"] = self.end_reason
                if not any(self._failure in e for e in end["errors"]):
                    end["errors"].append(self._failure)
            self._closed = True
            try:
                self._write_run_end(end)
            except Exception as exc:  # noqa: BLE001 - the data stay readable without it
                errors.append(f"{L.RUN_END} was not written ({exc})")
            if failure is not None:
                if errors:
                    raise type(failure)(f"{failure}; {'; '.join(errors)}") from failure
                raise failure
            if errors:
                raise (DiskSpaceError if self._disk_full else OSError)(
                    f"{self._path}: the data file was not finished cleanly: " + "; ".join(errors))

    # ----------------------------------------------------------------- ending
    @contextlib.contextmanager
    def _guarded(self) -> Iterator[None]:
        """Around every HDF5 write: the free-space guard ends the file cleanly; a failed write
        (full disk) abandons it at its last flush.  Both raise DiskSpaceError (or OSError) once."""
        try:
            yield
        except _DiskFull as full:
            self._stop_for_disk_space(full)
        except _GuardFailed as failed:  # free space could not be read: the file is untouched
            raise failed.error from None
        except Exception as exc:
            raise self._fail(exc) from exc

    def _stop_for_disk_space(self, full: _DiskFull) -> None:
        lost = self._n_accepted - self._n_committed
        msg = (f"{self._path}: {full.free_bytes} bytes free on {self._folder}, below the margin of "
               f"{self._min_free_bytes} bytes (min_free_bytes) + {full.needed_bytes} bytes to write; "
               f"the file was closed (run_end clean=False, end_reason 'disk space')")
        if lost and self._span_ps is not None:
            start = self._last_committed_ps if self._last_committed_ps is not None else self._span_ps[0]
            self._lose(LossRecord(start, self._span_ps[1], "disk_space:file"))
            msg += f"; {lost} photons after {start} ps were not written (recorded as a loss)"
        self._stage_n = self._stage_written
        self._n_accepted = self._n_committed
        self._pending_markers, self._pending_frames, self._pending_skipped = [], [], []
        self._failure, self._disk_full = msg, True
        self.log(msg, "ERROR")
        try:
            self._end_session(None)
        except Exception as exc:  # the margin was not enough after all (another process wrote)
            raise self._fail(exc, retract=msg) from exc
        raise DiskSpaceError(msg)

    def _fail(self, exc: Exception, retract: str = "") -> OSError:
        """A write failed: close the file as it was at its last flush; the error to raise (one line)."""
        disk_full = is_disk_full(exc)
        lost = self._n_received - self._n_flushed
        # a free-space stop that failed to end the file: its loss record gives way to this one
        dropped = [x for x in self._own_losses if x.source == "disk_space:file"]
        self._own_losses = [x for x in self._own_losses if x not in dropped]
        self._loss_keys -= {(int(x.start_ps), int(x.stop_ps), x.source) for x in dropped}
        problem = abandon(self._file) if self._file is not None else None
        self._file, self._ds, self._abandoned = None, {}, True
        self._n_accepted = self._n_committed = self._n_flushed
        self._counts = self._flushed_counts.copy()
        self._stage_n = self._stage_written = 0
        self._pending_markers, self._pending_frames, self._pending_skipped = [], [], []
        self._pending_losses = [x for x in self._unflushed_losses + self._pending_losses if x not in dropped]
        with self._log_lock:  # the lines logged since the last flush are lost with it: log them again
            self._log_queue = [x for x in self._unflushed_log + self._log_queue if x[2] != retract]
        cause = f"no space left on {self._folder} (ENOSPC)" if disk_full else f"writing failed ({type(exc).__name__}: {exc})"
        msg = f"disk full: {cause}" if disk_full else cause
        msg = (f"{msg}; {self._path} keeps the run up to its last flush ({self._n_flushed:,d} photons)")
        if lost and self._span_ps is not None:
            start = self._flushed_ps if self._flushed_ps is not None else self._span_ps[0]
            self._lose(LossRecord(start, self._span_ps[1], "disk_space:file" if disk_full else "write_error:file"))
            msg += f"; {lost:,d} photons after {start} ps were lost (recorded as a loss)"
        if problem:
            msg += f"; {problem}"
        self._failure, self._disk_full = msg, disk_full
        self.log(msg, "ERROR")
        return DiskSpaceError(msg) if disk_full else OSError(msg)

    def _lose(self, loss: LossRecord) -> None:
        self._own_losses.append(loss)
        self._queue_loss(loss)

    def _end_session(self, duration_ps: int | None) -> None:
        """Close the SWMR session: the rest of the side tables, final totals, writer_done = 1, flush, close."""
        self._commit_side()
        self._update_totals(duration_ps * 1e-12 if duration_ps else None)
        h5_io.assign(self._ds[L.WRITER_DONE], 1)
        self._flush_datasets()
        self._mark_flushed()
        h5_io.close_file(self._file)  # if this fails, the handle is abandoned (it is still self._file)
        self._file, self._ds = None, {}

    def _write_run_end(self, end: dict[str, Any]) -> None:
        """Reopen the closed file read/write and add the end record.

        After a failed write (the file was abandoned at its last flush) only with room on the
        disk: SWMR's "open for writing" mark is cleared, datasets are cut back to their
        flushed length (a failed flush can leave one of them longer), and the losses and log
        lines of the lost stretch are added.  If this fails too, the file is abandoned again:
        it stays as it was, readable with ``swmr=True``, without run_end.
        """
        release(self._reserve)  # the room kept for this moment
        if self._abandoned:
            free = int(self._free_bytes(self._folder))
            if free < RUN_END_ROOM_BYTES:
                raise DiskSpaceError(f"{free} bytes free on {self._folder}, {RUN_END_ROOM_BYTES} needed "
                                     "for the end record: the file ends at its last flush without it")
        f = reopen_rw(self._path, clear_flags=self._abandoned)
        try:
            if self._abandoned:
                for path, length in self._flushed_len.items():
                    if f[path].shape[0] != length:
                        f[path].resize(length, axis=0)
                h5_io.assign(f[L.WRITER_DONE], 1)
            if self._pending_losses:
                h5_io.append_rows(f[L.LOSSES], L.loss_rows(self._pending_losses))
                self._pending_losses = []
            with self._log_lock:
                queued, self._log_queue = self._log_queue, []
            if queued:
                h5_io.append_rows(f[L.RUN_LOG], L.log_rows([(t - self._t_open, lv, msg) for t, lv, msg in queued]))
            # Filled unlinked, then linked in one step: a reader that looks for the record sees all of
            # it or none (a SWMR reader of this same process shares this open file and would see
            # attributes appear one by one; a crash before the link leaves no half record).
            record = h5py.Group(h5py.h5g.create(f.id, None))
            L.write_run_end(record, {**end, "photons_written": self._n_committed, "losses": f[L.LOSSES].shape[0]})
            f[L.RUN_END] = record
            h5_io.close_file(f)
        except BaseException as exc:
            abandon(f)  # nothing of this session reaches the file ...
            problem = clear_mark(self._path)  # ... but its mark: readers would refuse the file
            if problem:
                raise OSError(f"{exc}; {problem}") from exc
            raise

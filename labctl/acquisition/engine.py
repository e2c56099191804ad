"""The acquisition engine: tagger -> photons -> sinks (file writer, live views), in threads.

One reader thread polls the time tagger every ``poll_interval_ms``, converts the tags to photons
(:mod:`labctl.acquisition.photons`), finds losses and hands each block to every sink through the
sink's own bounded queue and thread.  Nothing here loops over tags in Python.

Losses are never silent: the tagger's data-lost flag, gaps in the periodic
laser sync (losses the tagger did not flag), and blocks a sink could not take
(its queue full) all become :class:`~labctl.blocks.LossRecord` entries with
their time range, in the file and in the run summary.

The excitation is switched on when the run starts.  Every end (duration, :meth:`stop`, a signal,
a full disk, an error in the tagger or a sink) takes one path, the reader thread's ``finally``: excitation
to its safe state (:mod:`labctl.station.safe_state`: laser trigger, SPAD gate, shutter; what it did goes into the
run log and ``run_end``), tagger stopped, sinks closed.  With a ``camera`` the run also records spectra,
frames matched to the frame-marker tags of the run (:mod:`labctl.acquisition.camera_path`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
import traceback
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from labctl.blocks import LossRecord, PhotonBlock, TagBlock, merge_flag_loss, tagger_flag_loss
from labctl.acquisition.camera_path import CameraPath
from labctl.station.engine_settings import EngineSettings
from labctl.errors import AcquisitionError, ConfigError, DiskSpaceError
from labctl.interfaces import Sink
from labctl.acquisition.malloc_tuning import tune_for_long_runs
from labctl.analysis._kernels import channel_counts
from labctl.acquisition.photons import PhotonConverter
from labctl.acquisition.rate_protection import RateProtection
from labctl.run import RunInfo, RunSummary, SpectralInfo
from labctl.station.safe_state import SafeStateReport, start_excitation
from labctl.signals import end_reason
from labctl.acquisition.sink_runner import SinkRunner
from labctl.station.station import Station
from labctl.acquisition.warmup import warm_up
from labctl.station.watchdog import CallGuard, InstrumentHung, call_with_timeout

log = logging.getLogger(__name__)


class AcquisitionEngine:
    """Record the station's tag stream to a Photon-HDF5 file and/or other sinks.

    Args:
        station: the built station (tagger, laser, SPADs).
        out_path: Photon-HDF5 file to write (None = no file).
        sinks: extra sinks (live accumulators, test probes), each fed every block.
        settings: engine settings (default: the station file's ``engine:`` section).
        description: free text stored in the file.
        notes: sample notes stored in the file (``/user/labctl/notes``).

    Use ``with AcquisitionEngine(...) as engine: engine.run(duration_s)``, or
    ``start()`` / ``stop()`` / ``wait()``.
    """

    def __init__(
        self,
        station: Station,
        out_path: str | Path | None = None,
        *,
        sinks: Sequence[Sink] = (),
        settings: EngineSettings | None = None,
        description: str = "",
        notes: str = "",
    ) -> None:
        self.station = station
        self.settings = settings if settings is not None else station.config.engine
        self.description = description
        self.notes = notes
        self.out_path = Path(out_path) if out_path is not None else None
        self._extra_sinks = list(sinks)
        self._runners: list[SinkRunner] = []
        self._file_runner: SinkRunner | None = None
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()
        self._done = threading.Event()
        self._end_reason = ""
        self._errors: list[str] = []
        self._summary: RunSummary | None = None
        self._status: dict[str, Any] = {"state": "idle"}
        self._losses: list[LossRecord] = []
        self._counts = np.zeros(256, dtype=np.int64)
        self._safe = SafeStateReport()  # what the end of the run's safe state did
        self._lock = threading.Lock()
        self._guard = CallGuard(self.settings.watchdog_s, hung=station.hung)  # every instrument call of a run
        self._camera_path = CameraPath(station, self.settings, self._log, calls=self._guard)

    # -- control ------------------------------------------------------------------------
    def start(self, duration_s: float | None = None) -> None:
        """Open the sinks, switch the excitation on and start recording.

        Args:
            duration_s: tagger time to record (s), measured from the first tag; None = until :meth:`stop`.
        """
        if self._thread is not None:
            raise AcquisitionError("this engine has already run; make a new AcquisitionEngine for the next run")
        if duration_s is not None and not (isinstance(duration_s, (int, float)) and math.isfinite(duration_s) and duration_s > 0):
            raise ConfigError("duration_s", duration_s, "must be a number of seconds > 0 (or None to run until stopped)")
        tune_for_long_runs()  # freed large buffers back to the system, no huge pages (flat memory on long runs)
        spectra = self._camera_path.prepare()
        # numba kernels compile (or load) now, not on the first block: seconds of compiling there
        # would let the tagger's buffer overflow at the start of the first run after an install.
        ready_s = warm_up(self.station.channels)
        if ready_s > 0.1:
            log.info("photon-path kernels compiled or loaded in %.1f s (before the excitation)", ready_s)
        run = self._run_info(duration_s, spectra)
        sinks: list[Sink] = list(self._extra_sinks)
        if self.out_path is not None:
            from labctl.storage import PhotonHDF5Writer

            writer = PhotonHDF5Writer(
                self.out_path,
                flush_interval_s=self.settings.flush_interval_s,
                min_free_bytes=int(self.settings.min_free_mb * 2**20),
                description=self.description,
                notes=self.notes,
            )
            sinks.insert(0, writer)
        opened: list[Sink] = []
        try:
            for sink in sinks:
                sink.open(run)
                opened.append(sink)
        except BaseException:
            aborted = self._make_summary(clean=False, reason="error: a sink could not open", duration_ps=0, measured=None)
            for sink in opened:
                sink.close(aborted)
            raise
        self._runners = [SinkRunner(s, self.settings.queue_blocks, self._sink_failed) for s in sinks]
        self._file_runner = self._runners[0] if self.out_path is not None else None
        for runner in self._runners:
            runner.thread.start()
        self._run = run
        self._status = {"state": "starting"}
        self._thread = threading.Thread(target=self._reader, args=(duration_s,), name="labctl-reader", daemon=False)
        self._thread.start()

    def stop(self, reason: str = "stopped") -> None:
        """Ask the run to end (returns at once; :meth:`wait` for the summary)."""
        with self._lock:
            if not self._end_reason:
                self._end_reason = reason
        self._stop_event.set()

    def wait(self, timeout_s: float | None = None) -> RunSummary:
        """Block until the run has ended and every sink is closed; return the summary.

        Interruptible by Ctrl-C (the caller should then :meth:`stop` and wait again).
        """
        if self._thread is None:
            raise AcquisitionError("wait() before start(): nothing is running")
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not self._done.wait(0.1):
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"the run did not end within {timeout_s} s")
        self._thread.join()
        assert self._summary is not None
        return self._summary

    def run(self, duration_s: float) -> RunSummary:
        """Record for ``duration_s`` seconds of tagger time and return the summary."""
        self.start(duration_s)
        try:
            return self.wait()
        except BaseException as exc:
            self.stop(end_reason(exc) if isinstance(exc, KeyboardInterrupt) else f"error: {type(exc).__name__}: {exc}")
            self.wait()
            raise

    def status(self) -> dict[str, Any]:
        """A small snapshot for progress bars and GUIs (safe to call from any thread)."""
        return dict(self._status)

    @property
    def started(self) -> bool:
        """True once :meth:`start` has started the run (it then ends through the engine's end path)."""
        return self._thread is not None

    @property
    def running(self) -> bool:
        return self._thread is not None and not self._done.is_set()

    @property
    def frame_stats(self) -> dict[str, int]:
        """After a run with a camera: counts of frame markers of the run, frames, skipped frames and unmatched markers."""
        return self._camera_path.frame_stats

    def __enter__(self) -> "AcquisitionEngine":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._thread is not None and not self._done.is_set():
            self.stop(end_reason(exc) if isinstance(exc, KeyboardInterrupt) else ("error" if exc_type else "stopped"))
            self.wait()
        self.station.safe_state()

    # -- the reader thread ----------------------------------------------------------------
    def _reader(self, duration_s: float | None) -> None:
        tagger, laser = self.station.tagger, self.station.laser
        call = self._guard.call  # an instrument call that hangs raises InstrumentHung after watchdog_s
        converter = PhotonConverter(self.station.channels, int(tagger.sync_divider()), self.settings.software_sync_divider)
        first_ps: int | None = None
        last_ps: int | None = None
        end_ps: int | None = None
        wall_start = time.monotonic()
        protection = RateProtection(self.station.detectors, self.settings.rate_protection_hold_s)
        clean = True
        finished = False
        try:
            # Excitation first, then the stream: the run starts at the first tag read, so it
            # holds laser syncs from its first microsecond whatever the timing of these calls.
            start_excitation(self.station, call)  # shutter open, SPAD gate on, laser pulses on
            call("tagger", "start_stream", tagger.start_stream)
            self._log(f"excitation on at {call('laser', 'repetition_rate_hz', laser.repetition_rate_hz):g} Hz; recording")
            self._camera_path.start()  # armed before the frame clock starts (no-op without a camera)
            poll_s = self.settings.poll_interval_ms / 1000.0
            next_poll = time.monotonic()
            while True:
                stopping = self._stop_event.is_set()
                block = call("tagger", "read_tags", tagger.read_tags)
                flagged = call("tagger", "data_lost", tagger.data_lost)
                if len(block) and first_ps is None:
                    first_ps = int(block.timestamps[0])
                    end_ps = first_ps + int(round(duration_s * 1e12)) if duration_s is not None else None
                    log.info("first tags read; the run starts at %d ps of tagger time", first_ps)  # bench_start.py
                if flagged and last_ps is None:
                    self._log("the tagger buffer overflowed before the first read; the run starts at the first tag "
                              "read", "WARNING")
                flag_loss = tagger_flag_loss(flagged, block, last_ps, end_ps)
                reached_end = False
                if end_ps is not None and len(block) and block.timestamps[-1] >= end_ps:
                    cut = int(np.searchsorted(block.timestamps, end_ps, side="left"))
                    block = TagBlock(block.timestamps[:cut], block.channels[:cut])
                    reached_end = True
                if len(block):
                    last_ps = int(block.timestamps[-1])
                    self._count(block.channels)
                photons = converter.process(block)
                self._camera_path.poll(block, photons)
                losses = photons.losses
                if reached_end:  # the end of the run closes the stream: flush it here, with its losses
                    tail = converter.finish(end_ps)
                    finished = True
                    losses = losses + tail.losses
                    tail.losses = []
                photons.losses = merge_flag_loss(flag_loss, losses)
                self._dispatch(photons)
                if reached_end:
                    self._dispatch(tail)
                if self._protect(block, protection):
                    clean = False
                    break
                self._update_status("recording", first_ps, last_ps, wall_start)
                if reached_end:
                    self.stop("duration")
                    self._camera_path.finish(end_ps)  # excitation still on: the last frame is being read out
                    break
                if stopping:
                    self._camera_path.finish(last_ps)
                    break
                if duration_s is not None and first_ps is None and time.monotonic() - wall_start > duration_s:
                    self._log("no tag arrived during the whole duration", "WARNING")
                    self.stop("duration")
                    break
                next_poll += poll_s
                delay = next_poll - time.monotonic()
                if delay > 0:
                    self._stop_event.wait(delay)
                else:
                    next_poll = time.monotonic()
        except BaseException as exc:  # noqa: BLE001 - every error ends the run safely and is reported
            clean = False
            what = str(exc) if isinstance(exc, InstrumentHung) else f"{type(exc).__name__}: {exc}"
            self._errors.append(what)
            with self._lock:  # an error while finishing a run that reached its end still makes it an error
                if self._end_reason in ("duration", "stopped"):
                    self._end_reason = ""
            self.stop(f"error: {what}")
            self._log(f"acquisition failed: {what}", "ERROR")  # one line; the traceback at DEBUG (run log too)
            self._log_debug_lines(traceback.format_exception(exc), getattr(exc, "where", ""))
        finally:  # the one end path: excitation safe, tagger stopped, sinks closed
            self._make_safe()
            self._errors.extend(self._camera_path.stop(end_ps if finished else last_ps, self._dispatch))
            try:
                call("tagger", "stop_stream", tagger.stop_stream)
            except Exception as exc:  # noqa: BLE001
                self._errors.append(f"stop_stream: {exc}")
            try:
                if not finished:
                    self._dispatch(converter.finish())
            except Exception as exc:  # noqa: BLE001
                self._errors.append(f"finish: {exc}")
            reason = self._end_reason or "stopped"
            if any(r.error is not None for r in self._runners) or self._errors:
                clean = False
            if reason.startswith(("error", "interrupted", "protection", "disk space")):
                clean = False
            duration_ps = (last_ps - first_ps) if (first_ps is not None and last_ps is not None) else 0
            if end_ps is not None and reason == "duration" and first_ps is not None:
                duration_ps = end_ps - first_ps
            summary = self._make_summary(clean, reason, duration_ps, converter.measured_pulse_period_ps)
            summary.start_ps = first_ps or 0
            box = [summary]
            for runner in self._runners:
                runner.finish(box)
            for runner in self._runners:
                runner.thread.join()
            if self._file_runner is not None:  # what the file really holds (after a full disk: up to its last flush)
                writer = self._file_runner.sink
                summary.photons_written = int(getattr(writer, "photons_written", summary.photons_written))
                summary.losses.extend(getattr(writer, "own_losses", []))
                if getattr(writer, "end_reason", None):  # the file ended early (full disk): say so, as its run_end does
                    summary.end_reason, summary.clean = writer.end_reason, False
            for runner in self._runners:
                if runner.error is not None and f"sink {runner.sink.name}" not in " ".join(summary.errors):
                    summary.errors.append(f"sink {runner.sink.name}: {type(runner.error).__name__}: {runner.error}")
                    summary.clean = False
            if self.out_path is not None and self.out_path.exists():
                summary.file_size_bytes = self.out_path.stat().st_size
            self._summary = summary
            self._status = dict(self._status, state="done", end_reason=summary.end_reason)
            self._guard.close()
            self._done.set()

    def _count(self, channels: np.ndarray) -> None:
        self._counts += channel_counts(channels)  # numba; np.bincount widens uint8 to intp first (5x slower)

    def _dispatch(self, block: PhotonBlock) -> None:
        """Hand a block to every sink; a full queue becomes a loss record (never a wait)."""
        refused = [r for r in self._runners if not r.offer(block)]
        for runner in refused:
            start, stop = block.span_ps
            if len(block):
                start, stop = min(start, int(block.timestamps[0])), max(stop, int(block.timestamps[-1]))
            block.losses.append(LossRecord(start, stop, f"queue_full:{runner.sink.name}", -1))
            self._log(f"sink {runner.sink.name} could not keep up: {len(block)} photons not handed to it", "ERROR")
        self._losses.extend(block.losses)
        for loss in block.losses:
            if not loss.source.startswith("queue_full"):
                self._log(f"loss ({loss.source}): {loss.start_ps} .. {loss.stop_ps} ps, {loss.missing_syncs} syncs missing", "WARNING")

    def _protect(self, block: TagBlock, protection: RateProtection) -> bool:
        """Cut the excitation if a SPAD's count rate stayed above its limit for the hold time."""
        reason = protection.check(block)
        if reason is None:
            return False
        self.station.safe_state()  # laser trigger off; SPAD gate off and shutter closed where the station has them
        self._log(reason + ("; light cut" if self.station.last_safe_state.light_cut else "; NOTHING could cut the light"), "ERROR")
        self._errors.append(reason)
        self.stop(reason)
        return True

    def _sink_failed(self, sink: Sink, exc: BaseException) -> None:
        self._errors.append(f"sink {sink.name}: {type(exc).__name__}: {exc}")
        self.station.safe_state()
        self.stop("disk space" if isinstance(exc, DiskSpaceError) else f"error: sink {sink.name}: {type(exc).__name__}: {exc}")

    def _make_safe(self) -> None:
        """Excitation to its safe state by every means the station has (within the watchdog's time); what
        it did (laser trigger, SPAD gate, shutter) into the run log and summary; then read it back."""
        done, self._safe = self.station.safe_state(), self.station.last_safe_state
        for line, level in [(a, "INFO") for a in self._safe.actions] + [(w, "WARNING") for w in self._safe.warnings]:
            self._log(f"safe state: {line}", level)
        if not done:
            self._log("the excitation could NOT be put in its safe state: switch the laser off by hand", "CRITICAL")
            self._errors.append("the excitation could not be put in its safe state")
            return
        self._log("excitation in safe state" if self._safe.light_cut else "safe state reached, but the laser's light is NOT cut")
        done, state = call_with_timeout(self.station.excitation_state, self.settings.watchdog_s, "laser read-back")
        state = state if done else f"unknown ({state})"
        internal = "the laser runs on its internal clock; " + ("its light is cut (above)" if self._safe.light_cut else "lock it")
        advice = {"on": "ON; switch the laser off by hand", "internal": internal}
        self._log(f"excitation read back after the safe state: {advice.get(state, state)}",
                  {"on": "CRITICAL", "internal": "INFO" if self._safe.light_cut else "WARNING"}.get(state, "INFO"))
        if state == "on":
            self._errors.append("the excitation is still on after the safe state")

    # -- records ----------------------------------------------------------------------------
    def _run_info(self, duration_s: float | None, spectra: SpectralInfo | None) -> RunInfo:
        channels = self.station.channels
        rate_hz = float(self.station.laser.repetition_rate_hz())
        return RunInfo(
            run_id=uuid.uuid4().hex,
            start_time_iso=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            channels=channels,
            detector_labels={channels.spad_a: "spad_a", channels.spad_b: "spad_b"},
            nominal_sync_period_ps=int(round(1e12 / rate_hz)),
            sync_divider=int(self.station.tagger.sync_divider()) * self.settings.software_sync_divider,
            duration_s=duration_s,
            seed=self.station.seed,
            station_snapshot=self.station.snapshot(),
            description=self.description,
            spectra=spectra,
        )

    def _make_summary(self, clean: bool, reason: str, duration_ps: int, measured: float | None) -> RunSummary:
        counts = {int(ch): int(n) for ch, n in enumerate(self._counts) if n}
        return RunSummary(
            clean=clean,
            end_reason=reason,
            duration_ps=int(duration_ps),
            counts=counts,
            photons_written=self._file_runner.photons_taken if self._file_runner is not None else 0,
            losses=list(self._losses),
            measured_sync_period_ps=measured,
            file_path=str(self.out_path) if self.out_path is not None else None,
            errors=list(self._errors),
            safe_state_actions=list(self._safe.actions),
            safe_state_warnings=list(self._safe.warnings),
        )

    def _update_status(self, state: str, first_ps: int | None, last_ps: int | None, wall_start: float) -> None:
        elapsed_ps = (last_ps - first_ps) if (first_ps is not None and last_ps is not None) else 0
        self._status = {
            "state": state,
            "elapsed_s": elapsed_ps * 1e-12,
            "wall_s": time.monotonic() - wall_start,
            "counts": {int(ch): int(n) for ch, n in enumerate(self._counts) if n},
            "photons_written": self._file_runner.photons_taken if self._file_runner is not None else 0,
            "losses": len(self._losses),
            "errors": list(self._errors),
            "last_tag_ps": last_ps,  # tagger time of the newest tag read (None before the first)
            "read_monotonic_s": time.monotonic(),  # when it was read (time.monotonic, shared by processes)
        }

    def _log_debug_lines(self, *texts: str | list[str]) -> None:
        """A traceback (and where a hung call is blocked) at DEBUG, one run-log row per line."""
        for text in texts:
            for line in "".join(text).splitlines():
                if line.strip():
                    self._log(line, "DEBUG")

    def _log(self, message: str, level: str = "INFO") -> None:
        log.log(getattr(logging, level, logging.INFO), message)
        for runner in self._runners:
            sink_log = getattr(runner.sink, "log", None)
            if callable(sink_log):
                sink_log(message, level)

"""The camera side of a run: frame clock, camera and frame-to-marker matching.

With a ``camera`` (and its frame clock, a function-generator output: the station file's
``instruments.camera.frame_clock``, by default ``function_generator`` ch2) in the station,
a run also records spectra.  The camera is armed before the frame clock starts, so frame i belongs to the i-th frame-marker tag of the run
(:mod:`labctl.acquisition.frames`); frames travel to the sinks inside the photon blocks
(``PhotonBlock.frames``), lost frames as ``skipped_frames`` plus a ``camera_skip``
loss record with their marker window.  At the end the frame clock stops and the
tagger is read on until the frame of the last marker of the run is read out.

:class:`CameraPath` does only that; the acquisition engine (:mod:`labctl.acquisition.engine`)
calls it from its reader thread and keeps the excitation, the sinks and the losses.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from labctl.blocks import LossRecord, PhotonBlock, TagBlock
from labctl.station.engine_settings import EngineSettings
from labctl.errors import ConfigError
from labctl.acquisition.frames import FrameMatcher
from labctl.interfaces import Camera, FrameClock
from labctl.run import SpectralInfo
from labctl.station.station import Station
from labctl.station.watchdog import CallGuard


class CameraPath:
    """Arms the camera, runs the frame clock and hands matched frames on with the photon blocks.

    Args:
        station: the built station; without an ``instruments.camera`` every method does nothing.
        settings: engine settings (``poll_interval_ms`` paces the final read-out wait).
        log: ``log(message, level)`` with a logging level name ("INFO", "WARNING", ...).
        calls: makes every instrument call (the engine's :class:`labctl.station.watchdog.CallGuard`: a
            hung call raises ``InstrumentHung``; the safe-state calls of :meth:`stop` are
            attempted even on a hung camera); None: plain calls.

    Call :meth:`prepare` before anything starts, :meth:`start` once the tag stream
    runs, :meth:`poll` on every tagger read, :meth:`finish` at the normal end of the
    run and :meth:`stop` always (in the engine's ``finally``).  All but
    :meth:`prepare` run on the engine's reader thread.
    """

    def __init__(self, station: Station, settings: EngineSettings, log: Callable[[str, str], None],
                 calls: CallGuard | None = None) -> None:
        self.station = station
        self._call = calls.call if calls is not None else _plain_call
        self._attempt = calls.attempt if calls is not None else _plain_call
        self.settings = settings
        self._log = log
        self._camera: Camera | None = station.instruments.get("camera")
        self._clock_role = "function_generator"
        self._frame_clock: FrameClock | None = None
        self._spectra: SpectralInfo | None = None
        self._matcher: FrameMatcher | None = None
        self._armed = False
        self._cycle_s = 0.0
        self.frame_stats: dict[str, int] = {}
        """After :meth:`stop`: markers of the run, frames, skipped frames, unmatched markers (counts)."""

    def prepare(self) -> SpectralInfo | None:
        """Check the camera against the frame clock (before anything starts); the spectra layout.

        Returns:
            the spectra layout of the run (frame shape, wavelength axis in nm, exposure in s,
            frame rate in Hz), or None without a camera.

        Raises:
            ConfigError: no function generator or frame-marker channel for the camera, or a
                frame-clock period shorter than the camera's kinetic cycle (it would miss
                triggers and frames would no longer match their markers).
        """
        camera = self._camera
        if camera is None:
            return None
        source = self.station.config.source
        clock_ref = self.station.config.outputs.get("frame_clock")
        if clock_ref is None or self.station.frame_clock is None:
            raise ConfigError("instruments.function_generator", None, "is required with a camera: an output of it is "
                              "the frame clock that triggers the frames (instruments.camera.frame_clock)", source)
        if self.station.channels.frame_marker is None:
            raise ConfigError("channels.frame_marker", None,
                              "is required with a camera: the tagger input that records the frame clock", source)
        self._frame_clock = clock = self.station.frame_clock
        self._clock_role, c = clock_ref.instrument, self._call
        c(self._clock_role, "frame_clock.set_enabled", clock.set_enabled, False)  # no edge before the camera is armed
        rate_hz = float(c(self._clock_role, "frame_clock.rate_hz", clock.rate_hz))
        cycle_s = float(c("camera", "kinetic_cycle_s", camera.kinetic_cycle_s))
        if not rate_hz > 0 or 1.0 / rate_hz < cycle_s * (1 - 1e-9):
            raise ConfigError(
                f"instruments.{self._clock_role}.settings.ch{clock_ref.channel}.frequency_hz", rate_hz,
                f"the frame-clock period ({1.0 / rate_hz if rate_hz > 0 else float('inf'):.6g} s) must be >= the camera's "
                f"kinetic cycle ({cycle_s:.6g} s = exposure + readout): at most {1.0 / cycle_s:.6g} Hz, "
                "or shorten instruments.camera.settings.exposure_s", source)
        exposure_s = float(c("camera", "actual_exposure_s", camera.actual_exposure_s))
        shape = tuple(int(n) for n in c("camera", "frame_shape", camera.frame_shape))
        spectrograph = self.station.instruments.get("spectrograph")
        if spectrograph is not None:
            axis = c("spectrograph", "wavelength_axis_nm", spectrograph.wavelength_axis_nm, shape[-1])
            wavelength = np.asarray(axis, np.float64)
        else:  # no calibration: the axis is unknown, not invented
            wavelength = np.full(shape[-1], np.nan)
        self._cycle_s = cycle_s
        self._matcher = FrameMatcher(int(round(exposure_s * 1e12)), shape)
        self._spectra = SpectralInfo(frame_shape=shape, wavelength_nm=wavelength, exposure_s=exposure_s, frame_rate_hz=rate_hz)
        return self._spectra

    def start(self) -> None:
        """Arm the camera, then start the frame clock: frame i <-> the i-th marker of the run.

        Does nothing if :meth:`prepare` found no camera.
        """
        if self._spectra is None:
            return
        self._log_sensor_temperature()
        self._call("camera", "start_frames", self._camera.start_frames)
        self._armed = True
        self._call(self._clock_role, "frame_clock.set_enabled", self._frame_clock.set_enabled, True)
        self._log(f"camera armed; frame clock on at {self._spectra.frame_rate_hz:g} Hz, "
                  f"exposure {self._spectra.exposure_s:g} s", "INFO")

    def _log_sensor_temperature(self) -> None:
        """Record the sensor temperature at the start in the run log; warn if it is not stable.

        Frames exposed while the sensor still cools carry more dark charge (it doubles
        every ~6 degC), so a run started right after the cooler was switched on has
        brighter first frames: the run log says so.  Never fails the run.
        """
        try:
            temperature_c = self._call("camera", "temperature_c", self._camera.temperature_c)
            state = self._call("camera", "temperature_state", self._camera.temperature_state)
        except Exception as exc:  # noqa: BLE001 - a reading, not a reason to stop
            self._log(f"camera temperature could not be read: {exc}", "WARNING")
            return
        if state == "stabilized":
            self._log(f"camera sensor at {temperature_c} degC (stabilized)", "INFO")
        else:
            self._log(f"camera sensor at {temperature_c} degC ({state}): frames exposed before it is stable "
                      "carry extra dark charge", "WARNING")

    def poll(self, block: TagBlock, photons: PhotonBlock) -> None:
        """Feed the block's markers and the camera's new frames to the matcher; attach what matched to ``photons``."""
        if self._matcher is None or not self._armed:
            return
        marker = self.station.channels.frame_marker
        if len(block):
            self._matcher.add_markers(block.timestamps[block.channels == marker])
        self._read_camera()
        _attach(photons, *self._matcher.take(None))

    def finish(self, run_end_ps: int | None) -> None:
        """End of a normal run: frame clock off, read the tagger on until the last frame is read out.

        Args:
            run_end_ps: tagger time of the end of the run (ps); None = only switch the frame clock off.

        The excitation stays on meanwhile (the frame of the last marker is still exposing);
        tags after the end of the run only feed the marker count, they are not recorded.
        """
        if self._matcher is None or not self._armed:
            return
        self._call(self._clock_role, "frame_clock.set_enabled", self._frame_clock.set_enabled, False)
        if run_end_ps is None:
            return
        tagger = self.station.tagger
        marker = self.station.channels.frame_marker
        wait_until_ps = run_end_ps + int(round(self._cycle_s * 1e12)) + 10_000_000_000  # + 10 ms
        wall_deadline = time.monotonic() + max(2.0, 4 * self._cycle_s + 1.0)
        poll_s = self.settings.poll_interval_ms / 1000.0
        while True:
            block = self._call("tagger", "read_tags", tagger.read_tags)
            self._call("tagger", "data_lost", tagger.data_lost)  # after the end of the run: not a loss of the run
            if len(block):
                self._matcher.add_markers(block.timestamps[block.channels == marker])
                if int(block.timestamps[-1]) >= wait_until_ps:
                    break
            if time.monotonic() > wall_deadline:
                self._log("the tagger stopped advancing while the last camera frame was read out", "WARNING")
                break
            time.sleep(poll_s)

    def stop(self, run_end_ps: int | None, dispatch: Callable[[PhotonBlock], None]) -> list[str]:
        """Frame clock off, camera stopped, the last frames drained and handed to ``dispatch`` (never raises).

        Args:
            run_end_ps: tagger time of the end of the run (ps): frames of markers after it are
                not the run's; None = no tag was read.
            dispatch: hands a photon block (here an empty one carrying frames) to the sinks.

        Returns:
            the errors met, for the run summary (empty if none).  Sets :attr:`frame_stats`.
        """
        errors: list[str] = []
        if self._matcher is None:
            return errors
        if self._frame_clock is not None:
            try:
                self._call(self._clock_role, "frame_clock.set_enabled", self._frame_clock.set_enabled, False)
            except Exception as exc:  # noqa: BLE001
                _note(errors, f"frame clock off: {exc}", self._log)
        if not self._armed:
            return errors
        self._armed = False
        try:
            self._attempt("camera", "stop_frames", self._camera.stop_frames)
        except Exception as exc:  # noqa: BLE001
            _note(errors, f"camera stop_frames: {exc}", self._log)
        try:
            self._read_camera()
            limit = run_end_ps if run_end_ps is not None else -1
            frames, skipped, losses = self._matcher.take(limit)
            tail = PhotonBlock.empty()
            _attach(tail, frames, skipped, losses)
            if frames is not None or skipped.size:
                dispatch(tail)
            m = self._matcher
            n_run = int(np.searchsorted(m.markers, limit, side="right"))
            missing = n_run - m.frames_matched - m.skipped_matched
            self.frame_stats = {"markers": n_run, "frames": m.frames_matched, "skipped": m.skipped_matched, "unmatched_markers": missing}
            self._log(f"camera: {m.frames_matched} frames, {m.skipped_matched} skipped, for {n_run} frame markers of the run",
                      "WARNING" if m.skipped_matched else "INFO")
            if missing:
                self._log(f"camera: {missing} frame marker(s) of the run have no frame (run ended during their exposure)", "WARNING")
        except Exception as exc:  # noqa: BLE001
            _note(errors, f"camera drain: {type(exc).__name__}: {exc}", self._log)
        return errors

    def _read_camera(self) -> None:
        assert self._matcher is not None
        indices, frames = self._call("camera", "read_frames", self._camera.read_frames)
        self._matcher.add_frames(indices, frames)
        self._matcher.add_skipped(self._call("camera", "read_skipped_frames", self._camera.read_skipped_frames))


def _note(errors: list[str], error: str, log: Callable[[str, str], None]) -> None:
    """An error of the end of the run: for the summary, and in the run log."""
    errors.append(error)
    log(error, "WARNING")


def _plain_call(role: str, name: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``call`` without a watchdog: ``fn(*args)``."""
    return fn(*args)


def _attach(photons: PhotonBlock, frames: Any, skipped: np.ndarray, losses: list[LossRecord]) -> None:
    """Put matched frames, skipped frame indices and their loss records into ``photons``."""
    if frames is not None:
        if photons.frames is not None:  # never the case today; keep both if it happens
            old = photons.frames
            frames = type(frames)(*(np.concatenate([a, b]) for a, b in (
                (old.indices, frames.indices), (old.frames, frames.frames),
                (old.exposure_start_ps, frames.exposure_start_ps), (old.exposure_stop_ps, frames.exposure_stop_ps))))
        photons.frames = frames
    if skipped.size:
        photons.skipped_frames = np.concatenate([photons.skipped_frames, skipped])
        photons.losses = photons.losses + losses

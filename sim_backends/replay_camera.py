"""Replay of a recording's camera frames and wavelength axis through the Andor SDK2 / Shamrock APIs.

``ReplayAndorSDK`` is the simulated iXon library (:class:`sim_backends.andor_sim.SimAndorSDK`,
every SDK2 function and behaviour unchanged: triggers, circular buffer, skip
detection, cooler) whose frames come from a labctl file's ``/user/labctl/spectra``
instead of the scene, and whose clock is the replay tagger's device time
(:meth:`sim_backends.replay_source.ReplaySource.generated_until_ps`, shared through
the station's scene as the simulated tagger and camera share the scene clock).  So
``drivers.andor.IXonUltra888`` and ``labctl.acquisition.camera_path`` run unchanged on a recording:

* **Triggers.** The file's frame markers are the frame-clock edges: a frame starts when
  the replay tagger has served its marker (external trigger) and is read out at the end
  of its exposure (marker + the file's exposure; no readout time: the frames are
  already read out), in order.
* **Frames.** The frame that starts at the file's marker ``j`` is the file's frame of
  frame index ``j``, pixel for pixel (uint16).  A marker whose index is in
  ``skipped_frames`` (or has no frame although a later marker has one) is acquired but
  never stored, as the recording's lost frame was, so the driver reports it skipped;
  markers after the last frame or skip of the file (the run ended during their
  exposure) never finish exposing.
* **Cooler.** The sensor reaches its set point at once and is stable (the frames carry
  the recording's dark charge, whatever the replay camera's temperature).
* **Exposure.** ``GetAcquisitionTimings`` reports the file's exposure (``exposure_stop_ps
  - exposure_start_ps`` of its first frame), so the run's ``exposure_stop_ps`` is
  ``exposure_start_ps`` + that, as in the file.

``ReplayShamrock`` is the simulated Shamrock library whose ``GetCalibration`` gives the
file's ``wavelength_nm`` axis (as float32, the SDK's type: a labctl recording's axis came
from that call, so it comes back exactly).  ``labctl.station.replay`` builds the station.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import h5py
import numpy as np

from labctl.storage import layout as L
from labctl.storage.hdf5_open import open_hdf5
from sim_backends.andor_sim import SimAndorSDK
from sim_backends.emccd_frames import EmccdModel
from sim_backends.replay_source import ReplaySource, shared_source
from sim_backends.shamrock_sim import SimShamrock

_NO_FRAME = -1
"""Row of a marker whose frame the recording lost (acquired, never stored)."""
_AFTER_RECORDING = -2
"""Row of a marker after the recording's last frame or skip (its exposure never ends)."""


class RecordedFrames:
    """The camera side of a labctl file: frame markers, frames by frame index, exposure, skips.

    Args:
        path: a labctl Photon-HDF5 file with FVB spectra (``/user/labctl/spectra/frames`` of
            shape frames x pixels).

    Raises:
        ValueError: the file holds no frames, or 2-D (image) frames.
    """

    def __init__(self, path: str) -> None:
        f, _ = open_hdf5(str(path), swmr=True)  # as the replay tagger's reader opens it
        with f:
            frames = f.get(L.SPECTRA_FRAMES)
            if not isinstance(frames, h5py.Dataset) or frames.shape[0] == 0:
                raise ValueError(f"{path}: no camera frames ({L.SPECTRA_FRAMES}) to replay")
            if frames.ndim != 2:
                raise ValueError(f"{path}: {L.SPECTRA_FRAMES} has shape {frames.shape}: only FVB spectra "
                                 "(frames x pixels) are replayed")
            self.frames = np.asarray(frames[()], L.FRAMES_DTYPE)
            self.frame_index = np.asarray(f[L.SPECTRA_FRAME_INDEX][()], np.int64)
            start = np.asarray(f[L.SPECTRA_EXPOSURE_START][()], np.int64)
            stop = np.asarray(f[L.SPECTRA_EXPOSURE_STOP][()], np.int64)
            skipped = f.get(L.SPECTRA_SKIPPED)
            self.skipped = np.asarray(skipped[()] if isinstance(skipped, h5py.Dataset) else [], np.int64)
            markers = f.get(L.MARKERS)
            self.markers_ps = np.asarray(markers[()] if isinstance(markers, h5py.Dataset) else [], np.int64)
            self.frame_rate_hz = float(f[L.SPECTRA].attrs.get("frame_rate_hz", np.nan))
        self.exposure_ps = int(stop[0] - start[0])
        """Exposure of a frame (ps): the file's first frame's."""
        self.pixels = int(self.frames.shape[1])
        last = max(int(self.frame_index.max(initial=-1)), int(self.skipped.max(initial=-1)))
        self.row_of_index = np.full(last + 1, _NO_FRAME, np.int64)
        """Row in :attr:`frames` of each frame index up to the last one recorded (``_NO_FRAME`` if lost)."""
        self.row_of_index[self.frame_index] = np.arange(self.frame_index.size)

    def row_of_marker(self, marker_ps: int) -> int:
        """Row of the frame that starts at ``marker_ps``: a row of :attr:`frames`, ``_NO_FRAME`` or ``_AFTER_RECORDING``."""
        j = int(np.searchsorted(self.markers_ps, marker_ps))
        if j >= self.markers_ps.size or int(self.markers_ps[j]) != marker_ps or j >= self.row_of_index.size:
            return _AFTER_RECORDING
        return int(self.row_of_index[j])


class _ReplayClock:
    """What ``SimAndorSDK`` asks of its scene, from the replay: the tagger's time and the file's markers."""

    seed = 0
    spectrograph_calibration_nm = None

    def __init__(self, source: ReplaySource, recorded: RecordedFrames) -> None:
        self._source = source
        self._recorded = recorded

    @property
    def generated_until_ps(self) -> int:
        return self._source.generated_until_ps

    def frame_edges_ps(self, t0_ps: int, t1_ps: int) -> np.ndarray:
        """The file's frame markers in [t0, t1) (int64 ps)."""
        m = self._recorded.markers_ps
        return m[np.searchsorted(m, t0_ps, side="left"):np.searchsorted(m, t1_ps, side="left")]

    def frame_clock(self) -> tuple[float, bool]:
        return self._recorded.frame_rate_hz, True

    def emitted_spectrum(self, t0_ps: int, t1_ps: int, energy_ev: np.ndarray) -> np.ndarray:
        raise NotImplementedError("a replayed frame comes from the file, not from the scene")


class ReplayAndorSDK(SimAndorSDK):
    """The simulated iXon Ultra 888 SDK2 library serving a labctl file's frames (see the module docstring).

    Args:
        path: the labctl Photon-HDF5 file (FVB spectra) being replayed by the station's tagger.
        scene: the station's shared scene, with which the replay tagger registered its source
            (the station passes it).
        clock: wall clock in s (the cooler's time).
        circular_buffer_frames: size of the circular buffer in frames; None = 64 MiB worth.

    Raises:
        ValueError: no replay tagger registered with ``scene``, or the file has no FVB frames.
    """

    def __init__(self, path: str, scene: Any = None, *, clock: Callable[[], float] = time.monotonic,
                 circular_buffer_frames: int | None = None) -> None:
        source = shared_source(scene)
        if source is None:
            raise ValueError("ReplayAndorSDK: no replay tagger in this station (library "
                             "sim_backends.replay_tagger.ReplayTDCBase, built before the camera)")
        self.recorded = RecordedFrames(str(path))
        super().__init__(_ReplayClock(source, self.recorded), clock=clock,
                         model=replace(EmccdModel(), width_px=self.recorded.pixels, thermal_rate_c_per_s=1e9,
                                       stabilize_s=0.0),
                         circular_buffer_frames=circular_buffer_frames)

    def _exposure_ps(self) -> int:
        return self.recorded.exposure_ps

    def _readout_s(self) -> float:
        return 0.0

    def _finish_frame(self, index: int, start_ps: int, stop_ps: int) -> None:
        row = self.recorded.row_of_marker(start_ps)
        if row == _AFTER_RECORDING:
            return
        self._drop = frozenset({index}) if row == _NO_FRAME else frozenset()
        super()._finish_frame(index, start_ps, stop_ps)

    def _make_frame(self, index: int, start_ps: int, stop_ps: int) -> np.ndarray:
        return self.recorded.frames[self.recorded.row_of_marker(start_ps)].copy()


class ReplayShamrock(SimShamrock):
    """The simulated Shamrock library whose calibration is a labctl file's wavelength axis.

    Args:
        path: the labctl Photon-HDF5 file (``/user/labctl/spectra/wavelength_nm``).
        scene: the station's shared scene (as ``SimShamrock``).

    ``GetCalibration`` for as many pixels as the file's axis gives that axis (float32);
    for another number of pixels, the simulated Kymera's own calibration.
    """

    def __init__(self, path: str, scene: Any = None) -> None:
        f, _ = open_hdf5(str(path), swmr=True)
        with f:
            self.recorded_axis_nm = np.asarray(f[L.SPECTRA_WAVELENGTH][()], np.float64)
        super().__init__(scene)

    def calibration_nm(self) -> np.ndarray:
        if self.number_pixels == self.recorded_axis_nm.size:
            return self.recorded_axis_nm.astype(np.float32).astype(np.float64)
        return super().calibration_nm()

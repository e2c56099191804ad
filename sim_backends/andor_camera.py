"""The simulated iXon Ultra 888 as hardware: settings, timing, the acquisition state machine, the buffer.

``SimIXonCamera`` holds what the camera head does on its own: the settings in force,
the readout and cycle times they give, the frames of a running acquisition (started
by triggers, finished after readout, kept in the circular buffer) and the sensor
temperature during each exposure.  ``SimAndorSDK`` (``andor_sim``) puts the SDK2
function table in front of it: argument checks, status codes, the call log, faults.

Behaviour (what a test can rely on):

* **One timeline.** The camera's "now" is ``scene.generated_until_ps``: the simulated
  tagger's reads drive the scene, so camera and tagger share one clock.  Nothing
  happens on the camera while nobody advances the scene.
* **Triggers.** ``external`` (1): frame k of an acquisition starts at the k-th
  frame-clock edge at or after ``StartAcquisition`` (edges from
  ``scene.frame_edges_ps``) and lasts the exposure time; an edge that comes before the
  camera can take it (previous start + minimum cycle time, see
  ``GetAcquisitionTimings``) is ignored and counted in ``ignored_triggers``, as a real
  camera would miss it.  ``external_exposure`` (7): as external, exposure = the high
  time of the frame clock (50 % duty square wave *assumed*: half its period).
  ``external_start`` (6): the first edge starts the series, then the internal cycle.
  ``internal`` (0): frames at ``StartAcquisition`` time + k x kinetic cycle time.
  ``software`` (10): a frame at the scene time of each ``SendSoftwareTrigger``.
  (The timeline lives in ``sim_backends.andor_acquisition``.)
* **Availability.** A frame enters the circular buffer once the scene has been generated
  past its exposure end plus the readout time.  Numbers are 1-based from
  ``StartAcquisition`` (the SDK's); the driver reports 0-based indices (number - 1).
* **Circular buffer.** It holds the last ``GetSizeOfCircularBuffer`` frames acquired
  (64 MiB worth, at most 1000, unless ``circular_buffer_frames`` is given); older ones
  are overwritten.  As a real camera's, it is allocated whole (and written, so resident)
  at ``StartAcquisition``; frames are copied into its slots.  ``GetNumberNewImages``
  gives the oldest not-retrieved frame still held and the end of the contiguous run
  after it (``DRV_NO_NEW_DATA`` if none);
  ``GetImages16(first, last, ...)`` copies the contiguous run starting at the first
  held frame >= first into the start of the array and reports it in
  validfirst/validlast (*assumed* semantics).  Retrieved frames stay in the buffer.
* **Dropped frames.** ``drop_frame_indices`` (0-based, every acquisition) are acquired
  (counted by ``GetTotalNumberImagesAcquired``) but never stored, as if overwritten.
* **Frames.** FVB: the expected photons per pixel column of ``scene.emitted_spectrum``
  for the exposure window, on the spectrograph's calibration
  (``scene.spectrograph_calibration_nm``, else 600 nm centre, 0.4 nm/pixel), times QE;
  plus dark current (temperature dependent) and clock-induced charge; Poisson
  photo-electrons; stochastic EM gain (gamma, shape = electrons, scale = gain); read
  noise; baseline 200 counts; 16-bit clip.  Single track: the rows of the track get
  their share of a Gaussian spot along y.  Image: spectrum along x, the spot along y,
  cropped and binned.  Random numbers from (scene seed, acquisition number, frame
  index): the same seed and call sequence give the same frames.  (The physics of a
  frame lives in ``sim_backends.emccd_frames``.)
* **Cooler.** The sensor temperature ramps linearly (``thermal_rate_c_per_s``, fast in
  the sim) towards the set point (cooler on; not below ``coldest_in_air_c``) or
  ambient (off).  ``GetTemperature`` returns the state: OFF, NOT_REACHED while
  ramping (or for ever if the set point is below what air cooling reaches),
  NOT_STABILIZED for ``stabilize_s`` after reaching it, then STABILIZED; DRIFT after
  ``perturb_temperature`` moved a stabilised sensor off its set point
  (``sim_backends.andor_cooler``).  A frame's dark current is that of the temperatures
  during its exposure (sampled on the scene clock at every call that looks at the
  acquisition, interpolated, averaged over the window), not of the moment it is read.
  So frames exposed while the sensor is still cooling (a run started right after the
  cooler was switched on: NOT_REACHED) genuinely have more dark counts: from 20 degC
  at 100 degC/s, the first 10 Hz frames of a station built with a -60 degC set point
  are ~10-25 counts per FVB pixel above the cold baseline, decaying by ~2^(10/6) per frame.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from sim_backends import atmcd_header as H
from sim_backends.andor_acquisition import TRIGGER_EXTERNAL_EXPOSURE, TRIGGER_INTERNAL, Acquisition
from sim_backends.andor_cooler import SensorCooler
from sim_backends.emccd_frames import (
    EmccdModel,
    emccd_counts,
    exposure_dark_e_per_px,
    frame_rng,
    full_vertical_binning_e,
    image_e,
    image_shape,
    single_track_e,
    spot_row_fractions,
    wavelength_axis_nm,
)
from sim_backends.spectra import HC_EV_NM

READ_FVB, READ_SINGLE_TRACK, READ_IMAGE = 0, 3, 4
ACQ_SINGLE, ACQ_KINETIC, ACQ_RUN_TILL_ABORT = 1, 3, 5
SHUTTER_CLOSED = H.SHUTTER_MODE_CLOSED


class Scene(Protocol):
    """What the simulated camera needs of the shared scene."""

    seed: int
    generated_until_ps: int
    spectrograph_calibration_nm: np.ndarray | None

    def frame_edges_ps(self, t0_ps: int, t1_ps: int) -> np.ndarray: ...

    def frame_clock(self) -> tuple[float, bool]: ...

    def emitted_spectrum(self, t0_ps: int, t1_ps: int, energy_ev: np.ndarray) -> np.ndarray: ...


class SimIXonCamera:
    """The camera head of the simulated iXon Ultra 888 (see the module docstring); no vendor functions.

    Built by ``SimAndorSDK``, which gives the defaults.

    Args:
        scene: the shared scene (``sim_backends.scene.Scene``).
        drop_frame_indices: 0-based frame indices (of every acquisition) that are never
            delivered, as if overwritten: a test hook for the driver's skip detection.
        clock: wall clock in s (the cooler's time); a test may pass a fake one.
        model: the camera head's numbers (``EmccdModel``).
        circular_buffer_frames: size of the circular buffer in frames; None = 64 MiB worth.
    """

    def __init__(self, scene: Scene, drop_frame_indices: Sequence[int], clock: Callable[[], float],
                 model: EmccdModel | None, circular_buffer_frames: int | None) -> None:
        if circular_buffer_frames is not None and circular_buffer_frames < 1:
            raise ValueError(f"SimAndorSDK: circular_buffer_frames = {circular_buffer_frames!r}: must be >= 1")
        self._scene = scene
        self._drop = frozenset(int(i) for i in drop_frame_indices)
        self._clock = clock
        self.model = model or EmccdModel()
        self._buffer_frames = circular_buffer_frames
        self._acq_started_ps: int | None = None  # scene time of the last StartAcquisition
        self._lock = threading.RLock()
        """Guards the camera state: every vendor function and test hook holds it."""
        self._cooler = SensorCooler(self.model, clock)  # physical: survives Initialize/ShutDown
        self.shutdown_temperature_c: float | None = None
        """Sensor temperature at the last ShutDown (None before the first)."""
        self.ignored_triggers = 0
        """Frame-clock edges the camera could not take (still busy with the previous frame)."""
        self._acq_count = 0
        self._acq: Acquisition | None = None
        self._pending: deque[tuple[int, int, int]] = deque()
        self._temperature_log: list[tuple[int, float]] = []
        """(scene time ps, sensor degC) sampled at every look at the acquisition: the temperature of an exposure."""
        self._ring = np.zeros((0, 0), np.uint16)
        """The circular buffer: one flat row of pixels per slot, allocated whole when an acquisition is armed."""
        self._ring_numbers = np.zeros(0, np.int64)
        """Frame number (1-based) held in each slot of ``_ring``; 0: none."""
        self._retrieved_until = 0
        self._total_acquired = 0
        self._acq_shape: tuple[int, ...] = (self.model.width_px,)
        self._row_fractions = spot_row_fractions(self.model)
        self._power_on_settings()

    def _run_elapsed_s(self) -> float:
        """Scene seconds since the last StartAcquisition; 0 before the first."""
        if self._acq_started_ps is None:
            return 0.0
        return (int(self._scene.generated_until_ps) - self._acq_started_ps) / 1e12

    def perturb_temperature(self, delta_c: float) -> None:
        """Move the sensor temperature by ``delta_c`` now (a stabilised cooler then reports DRIFT)."""
        with self._lock:
            self._cooler.perturb(delta_c)

    @property
    def acquiring(self) -> bool:
        return self._acq is not None

    @property
    def temperature_c(self) -> float:
        """Sensor temperature (degC) as of the last call that looked at it."""
        return self._cooler.temperature_c

    @property
    def cooler_on(self) -> bool:
        """The cooler is switched on."""
        return self._cooler.cooler_on

    @property
    def setpoint_c(self) -> int:
        """Temperature set point (degC) last accepted by SetTemperature."""
        return self._cooler.setpoint_c

    def _power_on_settings(self) -> None:
        """Settings after Initialize (the driver sets every one it uses)."""
        m = self.model
        self.read_mode = READ_IMAGE
        self.acquisition_mode = ACQ_SINGLE
        self.exposure_s = 0.01
        self.kinetic_cycle_s = 0.0
        self.number_kinetics = 1
        self.frame_transfer = False
        self.image = (1, 1, 1, m.width_px, 1, m.height_px)
        """(hbin, vbin, hstart, hend, vstart, vend), 1-based inclusive as SetImage takes them."""
        self.single_track = (m.height_px // 2, 1)
        """(centre row 1-based, height in rows)."""
        self.em_advanced = False
        self.em_gain = 1
        self.trigger_mode = TRIGGER_INTERNAL
        self.shutter = (H.SHUTTER_TTL_HIGH_OPEN, 0, 0, 0)
        """(typ, mode, closing ms, opening ms)."""

    # --- geometry and timing -----------------------------------------------------------
    def _frame_shape(self) -> tuple[int, ...]:
        if self.read_mode == READ_IMAGE:
            return image_shape(self.image)
        return (self.model.width_px,)

    def _readout_s(self) -> float:
        pixels = int(np.prod(self._frame_shape()))
        return self.model.height_px * self.model.vertical_shift_us * 1e-6 + pixels / self.model.readout_rate_hz

    def _exposure_ps(self) -> int:
        """Exposure in ps, whole microseconds (as GetAcquisitionTimings reports it)."""
        if self.trigger_mode == TRIGGER_EXTERNAL_EXPOSURE:
            rate_hz, _ = self._scene.frame_clock()
            return int(round(0.5e6 / rate_hz)) * 1_000_000
        return int(round(self.exposure_s * 1e6)) * 1_000_000

    def _min_cycle_s(self) -> float:
        exposure_s = self._exposure_ps() * 1e-12
        readout_s = self._readout_s()
        return max(exposure_s, readout_s) if self.frame_transfer else exposure_s + readout_s

    def _internal_cycle_s(self) -> float:
        return max(float(self.kinetic_cycle_s), self._min_cycle_s())

    def _buffer_capacity(self) -> int:
        if self._buffer_frames is not None:
            return self._buffer_frames
        frame_bytes = 2 * int(np.prod(self._frame_shape()))
        return max(1, min(self.model.buffer_frames_max, self.model.buffer_bytes // frame_bytes))

    # --- acquisition -------------------------------------------------------------------
    def _advance(self) -> None:
        """Start the frames whose trigger has happened and finish those whose readout is over."""
        acq = self._acq
        if acq is None:
            return
        now = int(self._scene.generated_until_ps)
        self._sample_temperature(now)
        starts, ignored = acq.new_starts(self._scene.frame_edges_ps, now)
        self.ignored_triggers += ignored
        for start in starts:
            self._pending.append((acq.take(start), start, start + acq.exposure_ps))
        while self._pending and self._pending[0][2] + acq.readout_ps <= now:
            index, start, stop = self._pending.popleft()
            self._finish_frame(index, start, stop)
        if acq.started >= acq.series and not self._pending:
            self._acq = None
        self._prune_temperature_log(self._pending[0][1] if self._pending else now)

    def _sample_temperature(self, now_ps: int) -> None:
        """Log the sensor temperature (wall-clock cooler) at scene time ``now_ps``.

        Samples at the same scene time replace each other: while the scene stands still
        the wall clock runs on, and the scene resumes from there at the latest one.
        """
        temperature_c = self._cooler.update()
        if self._temperature_log and self._temperature_log[-1][0] >= now_ps:
            self._temperature_log[-1] = (self._temperature_log[-1][0], temperature_c)
        else:
            self._temperature_log.append((now_ps, temperature_c))

    def _prune_temperature_log(self, needed_from_ps: int) -> None:
        """Drop samples no exposure still needs (keep the last one at or before ``needed_from_ps``)."""
        log = self._temperature_log
        keep = 0
        while keep + 1 < len(log) and log[keep + 1][0] <= needed_from_ps:
            keep += 1
        if keep:
            del log[:keep]

    def _finish_frame(self, index: int, start_ps: int, stop_ps: int) -> None:
        self._total_acquired += 1
        number = index + 1
        numbers = self._ring_numbers
        numbers[numbers < self._total_acquired - numbers.size + 1] = 0  # overwritten (or about to be)
        slot = (number - 1) % numbers.size
        if index not in self._drop:
            self._ring[slot] = self._make_frame(index, start_ps, stop_ps).ravel()
            numbers[slot] = number

    def _make_frame(self, index: int, start_ps: int, stop_ps: int) -> np.ndarray:
        """One frame (uint16) of the photons emitted in [start, stop), with EMCCD statistics."""
        m = self.model
        acq_number = self._acq.number if self._acq is not None else self._acq_count
        rng = frame_rng(self._scene.seed, acq_number, index)
        axis_nm = wavelength_axis_nm(getattr(self._scene, "spectrograph_calibration_nm", None), m.width_px)
        if self.shutter[1] == SHUTTER_CLOSED:
            signal_e = np.zeros(m.width_px)
        else:
            signal_e = self._scene.emitted_spectrum(start_ps, stop_ps, HC_EV_NM / axis_nm) * m.qe(axis_nm)
        log_ps, log_c = zip(*self._temperature_log) if self._temperature_log else ((0,), (self._cooler.update(),))
        dark_e = exposure_dark_e_per_px(m, start_ps, stop_ps, np.array(log_ps), np.array(log_c)) + m.cic_e_per_px
        if self.read_mode == READ_FVB:
            mean_e = full_vertical_binning_e(m, signal_e, dark_e)
        elif self.read_mode == READ_SINGLE_TRACK:
            mean_e = single_track_e(signal_e, dark_e, self._row_fractions, *self.single_track)
        else:
            mean_e = image_e(signal_e, dark_e, self._row_fractions, self.image)
        return emccd_counts(m, mean_e, self.em_gain, rng)

    # --- runs: start, stop, software trigger, the circular buffer --------------------------
    def _start_run(self) -> None:
        """Arm a new acquisition with the settings in force; the buffer starts empty (the caller checked idle)."""
        self._acq_count += 1
        series = {ACQ_SINGLE: 1, ACQ_KINETIC: self.number_kinetics}.get(self.acquisition_mode, math.inf)
        now = int(self._scene.generated_until_ps)
        self._acq = Acquisition(
            number=self._acq_count,
            arm_ps=now,
            series=series,
            trigger=self.trigger_mode,
            exposure_ps=self._exposure_ps(),
            readout_ps=int(round(self._readout_s() * 1e12)),
            min_cycle_ps=int(round(self._min_cycle_s() * 1e12)),
            internal_cycle_ps=int(round(self._internal_cycle_s() * 1e12)),
            edge_cursor_ps=now,
        )
        self._acq_started_ps = now
        self._acq_shape = self._frame_shape()
        self._pending.clear()
        self._temperature_log = []
        self._sample_temperature(now)
        capacity = self._buffer_capacity()
        if self._ring.shape != (capacity, int(np.prod(self._acq_shape))):  # as a real camera: the whole ring at arm,
            self._ring = np.full((capacity, int(np.prod(self._acq_shape))), 0, np.uint16)  # written: resident now
            self._ring_numbers = np.zeros(capacity, np.int64)
        self._ring_numbers[:] = 0
        self._retrieved_until = 0
        self._total_acquired = 0

    def _stop_run(self) -> None:
        """End the acquisition now; exposures in progress are lost (frames already in the buffer stay)."""
        self._acq = None
        self._pending.clear()

    def _software_trigger(self, acq: Acquisition) -> None:
        """A trigger at the scene's now: a frame starts if the camera is ready for it, else it is ignored."""
        now = int(self._scene.generated_until_ps)
        if acq.ready_at(now):
            self._pending.append((acq.take(now), now, now + acq.exposure_ps))
        else:
            self.ignored_triggers += 1

    def _new_run(self, first: int) -> tuple[int, int] | None:
        """(first, last) of the contiguous run of held frames starting at the first held number >= first."""
        held = np.sort(self._ring_numbers[self._ring_numbers >= max(first, 1)])
        if not held.size:
            return None
        gaps = np.flatnonzero(np.diff(held) != 1)
        return int(held[0]), int(held[gaps[0]] if gaps.size else held[-1])

    def _take_run(self, first: int, last: int) -> tuple[int, int, np.ndarray] | None:
        """(first, last, pixels) of the contiguous held frames from the first held number >= ``first`` up to
        ``last``, all frames' pixels in one flat array; they count as retrieved.  None: no such frame."""
        run = self._new_run(first)
        if run is None or run[0] > last:
            return None
        v_first, v_last = run[0], min(run[1], last)
        data = self._ring[np.arange(v_first - 1, v_last) % self._ring_numbers.size].ravel()
        self._retrieved_until = max(self._retrieved_until, v_last)
        return v_first, v_last, data

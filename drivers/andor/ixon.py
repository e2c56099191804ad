"""QCoDeS driver of the Andor iXon Ultra 888 EMCCD (Andor SDK2), a labctl ``Camera``.

The driver calls the SDK2 functions through :class:`drivers.andor.atmcd.AndorSDK` with
Python values; its library object is injected (the real ``atmcd64d.dll`` /
``libandor.so``, loaded by :func:`drivers.andor.atmcd.load_atmcd`, or
``sim_backends.andor_sim.SimAndorSDK``), and it never knows which.

Settings are QCoDeS parameters whose value is cached: a set validates, sends the
value and, only if the camera accepts it, stores it; a get returns the cached value,
so a snapshot never talks to the camera.  Read-backs (``temperature_c``,
``temperature_state``, ``actual_exposure_s``, ``kinetic_cycle_s``) ask the camera and
are left out of ``snapshot(update=True)``.  At construction the driver brings the
camera to the parameters' initial values (FVB, run till abort, external trigger,
50 ms, EM gain 1, shutter auto); the cooler is left as found.

Frames (the :class:`labctl.interfaces.Camera` protocol, polled by the engine):
``start_frames`` arms the acquisition; ``read_frames`` reads the camera's circular
buffer BY IMAGE NUMBER (:mod:`drivers.andor.ixon_frames`), so a frame that was
overwritten or never delivered leaves a gap in the numbers: it is counted in
``frames_skipped`` and its index reported by ``read_skipped_frames()`` /
``skipped_frame_indices()``, never silently shifted.  Frame index = SDK image number
- 1: 0-based, counted from ``start_frames``.  In external trigger mode frame i was
exposed from the i-th frame-clock edge after ``start_frames`` for ``actual_exposure_s``.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np
from qcodes.instrument import Instrument
from qcodes.parameters import Parameter
from qcodes.validators import Bool, Enum, Ints, Numbers

from drivers.andor import atmcd
from drivers.andor.atmcd import (
    CONSTANTS,
    DRV_ACQUIRING,
    DRV_IDLE,
    DRV_SUCCESS,
    LIMITS,
    TEMPERATURE_STATES,
    AndorSDK,
    default_init_dir,
    load_atmcd,
)
from drivers.andor.ixon_area import ReadoutArea
from drivers.andor.ixon_frames import FrameBuffer
from drivers.andor.ixon_settings import CameraSettingError, EmGain, PositiveNumber  # noqa: F401 - re-exported
from labctl.errors import InstrumentError

log = logging.getLogger(__name__)


class IXonUltra888(Instrument):
    """Andor iXon Ultra 888 EMCCD camera (SDK2), a labctl ``Camera``.

    Args:
        name: QCoDeS instrument name.
        library: the SDK2 library object (real or ``SimAndorSDK``); None loads the real
            library with :func:`load_atmcd` (``library_path``).
        library_path: path of ``atmcd64d.dll`` / ``libandor.so`` when ``library`` is None.
        init_dir: directory given to ``Initialize`` (None: the platform default).
        warmup_target_c: ``close()`` switches the cooler off and waits until the sensor
            is warmer than this before ``ShutDown`` (Andor's advice: above -20 degC).
        warmup_timeout_s: give up waiting after this long (a warning is logged).
        warmup_poll_s: temperature polling period during the warm-up.

    Raises:
        VendorLibraryNotFound: ``library`` is None and the vendor library is absent.
        AndorError: the camera refused to initialize or to take the initial settings.
    """

    vendor_library_functions = {"atmcd": tuple(atmcd.PROTOTYPES)}
    """Functions a ``library`` object must define (checked by the station)."""

    def __init__(
        self,
        name: str,
        library: object | None = None,
        library_path: str | None = None,
        *,
        init_dir: str | None = None,
        warmup_target_c: float = LIMITS["warmup_target_c"],
        warmup_timeout_s: float = 600.0,
        warmup_poll_s: float = 1.0,
        **kwargs: Any,
    ) -> None:
        if library is None:
            library = load_atmcd(library_path)
        sdk = AndorSDK(library)
        directory = default_init_dir() if init_dir is None else init_dir
        # Initialize before registering with QCoDeS, so a failure leaves nothing behind.
        sdk.call("Initialize", directory)
        super().__init__(name, **kwargs)
        self._sdk = sdk
        self._initialized = True
        self._lock = threading.RLock()
        self._warmup = (float(warmup_target_c), float(warmup_timeout_s), float(warmup_poll_s))
        self._streaming = False
        self._frames = FrameBuffer(sdk, name)
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    # --- construction -----------------------------------------------------------------
    def _build(self) -> None:
        width, height = self._call("GetDetector")
        pixel_x, _ = self._call("GetPixelSize")
        model = self._call("GetHeadModel")
        serial = self._call("GetCameraSerialNumber")
        t_min, t_max = self._call("GetTemperatureRange")
        gain_low, _ = self._call("GetEMGainRange")
        cooler_on = self._call("IsCoolerOn")
        self._serial = serial

        def fixed(name: str, value: Any, **kw: Any) -> Parameter:
            return Parameter(name, instrument=self, initial_cache_value=value, get_cmd=None, set_cmd=False, **kw)

        self.detector_shape = fixed("detector_shape", (width, height), label="Detector (columns, rows)", unit="px")
        """Sensor size as (columns x, rows y) from GetDetector: (1024, 1024) on the iXon Ultra 888."""

        self.pixel_width_um = fixed("pixel_width_um", float(pixel_x), unit="um")
        """Pixel pitch along x (the dispersion axis) from GetPixelSize: 13 um."""

        self.head_model = fixed("head_model", model)
        """Head model string from GetHeadModel."""

        self.temperature_range_c = fixed("temperature_range_c", (t_min, t_max), unit="degC")
        """Allowed set-point range (min, max) in degC from GetTemperatureRange."""

        self.cooler = Parameter(
            "cooler", instrument=self, vals=Bool(), initial_cache_value=bool(cooler_on),
            get_cmd=None, set_cmd=lambda on: self._call("CoolerON" if on else "CoolerOFF"),
        )
        """Thermo-electric cooler on/off (initially as found); close() switches it off and warms up."""

        self.temperature_setpoint_c = Parameter(
            "temperature_setpoint_c", instrument=self, label="Set point", unit="degC", vals=Ints(t_min, t_max),
            initial_cache_value=int(min(max(LIMITS["default_setpoint_c"], t_min), t_max)),
            get_cmd=None, set_cmd=lambda c: self._call("SetTemperature", int(c)),
        )
        """Sensor temperature set point in degC, within GetTemperatureRange; ~-80 is reachable in air."""

        self.temperature_c = Parameter(
            "temperature_c", instrument=self, label="Sensor temperature", unit="degC",
            get_cmd=lambda: self.read_temperature()[0], set_cmd=False, snapshot_get=False,
        )
        """Sensor temperature read back (GetTemperature), whole degC."""

        self.temperature_state = Parameter(
            "temperature_state", instrument=self, vals=Enum(*TEMPERATURE_STATES.values()),
            get_cmd=lambda: self.read_temperature()[1], set_cmd=False, snapshot_get=False,
        )
        """Cooler state: off, not_reached, not_stabilized, stabilized or drift (GetTemperature's return)."""

        self.exposure_s = Parameter(
            "exposure_s", instrument=self, label="Exposure", unit="s",
            vals=PositiveNumber(LIMITS["exposure_s_max"], "s"), initial_cache_value=0.05,
            get_cmd=None, set_cmd=lambda s: self._call("SetExposureTime", float(s)),
        )
        """Exposure time per frame in s (> 0); the camera rounds it: see actual_exposure_s."""

        self.actual_exposure_s = Parameter(
            "actual_exposure_s", instrument=self, unit="s", set_cmd=False, snapshot_get=False,
            get_cmd=lambda: self._acquisition_timings()[0],
        )
        """Exposure the camera will use (GetAcquisitionTimings), after its rounding."""

        self.kinetic_cycle_s = Parameter(
            "kinetic_cycle_s", instrument=self, unit="s", set_cmd=False, snapshot_get=False,
            get_cmd=lambda: self._acquisition_timings()[2],
        )
        """Frame period the camera can sustain (GetAcquisitionTimings): a faster frame clock loses triggers."""

        self.kinetic_cycle_time_s = Parameter(
            "kinetic_cycle_time_s", instrument=self, unit="s", vals=Numbers(0.0, LIMITS["exposure_s_max"]),
            initial_cache_value=0.0, get_cmd=None, set_cmd=lambda s: self._call("SetKineticCycleTime", float(s)),
        )
        """Frame period for the internal trigger in s (0 = as fast as possible)."""

        self.number_kinetics = Parameter(
            "number_kinetics", instrument=self, vals=Ints(1, 2**31 - 1), initial_cache_value=1,
            get_cmd=None, set_cmd=lambda n: self._call("SetNumberKinetics", int(n)),
        )
        """Frames in a series (acquisition_mode "kinetic")."""

        self.frame_transfer = Parameter(
            "frame_transfer", instrument=self, vals=Bool(), initial_cache_value=False,
            get_cmd=None, set_cmd=lambda on: self._call("SetFrameTransferMode", int(bool(on))),
        )
        """Frame-transfer mode: expose the next frame while the previous one is read out."""

        self.em_advanced = Parameter(
            "em_advanced", instrument=self, vals=Bool(), initial_cache_value=False,
            get_cmd=None, set_cmd=self._set_em_advanced,
        )
        """Allow EM gain above 300 (SetEMAdvanced): strong light can then damage the sensor."""

        self.em_gain = Parameter(
            "em_gain", instrument=self, label="EM gain",
            vals=EmGain(gain_low, lambda: bool(self.em_advanced.cache.get())), initial_cache_value=gain_low,
            get_cmd=None, set_cmd=lambda g: self._call("SetEMCCDGain", int(g)),
        )
        """EM gain; above 300 needs em_advanced (sensor damage risk); the manual advises <= 1000."""

        self.read_mode = Parameter(
            "read_mode", instrument=self, val_mapping=CONSTANTS["read_modes"], initial_cache_value="fvb",
            get_cmd=None, set_cmd=lambda code: self._call("SetReadMode", int(code)),
        )
        """fvb (full vertical binning: one spectrum), single_track (rows of the track binned) or image."""

        self._area = ReadoutArea(self, width, height)

        self.acquisition_mode = Parameter(
            "acquisition_mode", instrument=self, val_mapping=CONSTANTS["acquisition_modes"],
            initial_cache_value="run_till_abort", get_cmd=None,
            set_cmd=lambda code: self._call("SetAcquisitionMode", int(code)),
        )
        """single (one frame), kinetic (number_kinetics frames) or run_till_abort (until stop_frames)."""

        self.trigger_mode = Parameter(
            "trigger_mode", instrument=self, val_mapping=CONSTANTS["trigger_modes"],
            initial_cache_value="external", get_cmd=None,
            set_cmd=lambda code: self._call("SetTriggerMode", int(code)),
        )
        """internal, external (a frame per frame-clock edge), external_start, external_exposure or software."""

        self.shutter = Parameter(
            "shutter", instrument=self, val_mapping=CONSTANTS["shutter_modes"], initial_cache_value="auto",
            get_cmd=None, set_cmd=self._send_shutter,
        )
        """Shutter: auto (open while exposing), open or closed (dark frames)."""

        self.frames_skipped = Parameter(
            "frames_skipped", instrument=self, get_cmd=lambda: self._frames.skipped_count, set_cmd=False,
        )
        """Frames lost since start_frames (overwritten in the circular buffer or never delivered)."""

        self.frame_shape = Parameter(
            "frame_shape", instrument=self, unit="px", get_cmd=self._frame_shape, set_cmd=False,
        )
        """Shape of one frame for the current read mode: (columns,) or (rows, columns) for image."""

        # Bring the camera to the cached values.
        for param in (self.read_mode, self.acquisition_mode, self.trigger_mode, self.exposure_s,
                      self.kinetic_cycle_time_s, self.number_kinetics, self.frame_transfer,
                      self.em_advanced, self.em_gain, self.shutter, self.temperature_setpoint_c):
            param.set(param.cache.get())
        self._area.send_image()
        self._area.send_single_track()

    # --- vendor calls -----------------------------------------------------------------
    def _call(self, function: str, *inputs: Any, ok: tuple[int, ...] = (DRV_SUCCESS,)) -> Any:
        """Call an SDK2 function; return its outputs; raise AndorError unless its status is one of ``ok``."""
        with self._lock:
            return self._sdk.call(function, *inputs, ok=ok)

    def _acquisition_timings(self) -> tuple[float, float, float]:
        """(exposure, accumulate, kinetic cycle) in s as the camera will run them."""
        exposure, accumulate, kinetic = self._call("GetAcquisitionTimings")
        return exposure, accumulate, kinetic

    def read_temperature(self) -> tuple[int, str]:
        """Sensor temperature (degC) and cooler state, read from the camera; updates both caches.

        While an acquisition runs the SDK may answer ``DRV_ACQUIRING`` instead of a reading
        (SDK2 manual, GetTemperature): the last reading is returned then, unchanged.

        Raises:
            AndorError: another status, or ``DRV_ACQUIRING`` before any reading was made.
        """
        with self._lock:
            code, value = self._sdk.call_status("GetTemperature", ok=(*TEMPERATURE_STATES, DRV_ACQUIRING))
        if code == DRV_ACQUIRING:
            last = (self.temperature_c.cache.raw_value, self.temperature_state.cache.raw_value)
            if last[0] is None or last[1] is None:
                raise atmcd.AndorError("GetTemperature", code)
            return int(last[0]), str(last[1])
        state = TEMPERATURE_STATES[code]
        self.temperature_c.cache.set(int(value))
        self.temperature_state.cache.set(state)
        return int(value), state

    def _set_em_advanced(self, on: bool) -> None:
        safe = LIMITS["em_gain_safe_max"]
        gain = self.em_gain.cache.get() if hasattr(self, "em_gain") else 0
        if not on and gain > safe:
            raise CameraSettingError(
                f"{self.name}.em_advanced = False: em_gain is {gain}, above {safe}; set em_gain to "
                f"{safe} or less first; nothing was sent to the camera"
            )
        self._call("SetEMAdvanced", int(bool(on)))

    def _send_shutter(self, mode: int) -> None:
        self._call(
            "SetShutter", CONSTANTS["shutter_ttl_type"], int(mode),
            CONSTANTS["shutter_closing_ms"], CONSTANTS["shutter_opening_ms"],
        )

    def set_image_area(self, **area: int) -> None:
        """Set several of hbin, vbin, hstart, hend, vstart, vend at once (one SetImage call).

        Raises:
            CameraSettingError / ValueError: unknown key, value out of range, or crop not a
                multiple of the binning; nothing is sent and no parameter changes.
        """
        self._area.set_image_area(**area)

    def _frame_shape(self) -> tuple[int, ...]:
        return self._area.frame_shape(self.read_mode.cache.get())

    # --- labctl.interfaces.Camera ------------------------------------------------------
    def start_frames(self) -> None:
        """Arm the acquisition (StartAcquisition) and reset the frame numbering and skip records.

        In trigger_mode external the camera then takes a frame at each frame-clock edge:
        arm it BEFORE starting the frame clock, so that frame 0 belongs to the first marker.
        """
        with self._lock:
            if self._streaming:
                raise InstrumentError(f"{self.name}.start_frames: already acquiring; call stop_frames() first")
            shape = self._frame_shape()
            self._call("StartAcquisition")
            self._frames.start(shape)
            self._streaming = True

    def read_frames(self) -> tuple[np.ndarray, np.ndarray]:
        """Frames acquired since the previous call, by index.

        Returns:
            ``(indices, frames)``: ``int64`` frame indices (0-based since start_frames,
            increasing, with gaps where frames were lost) and ``uint16`` frames of shape
            ``(n, *frame_shape)``.  Allowed after stop_frames (drains what is left).
        """
        with self._lock:
            if self._frames.shape is None:
                raise InstrumentError(f"{self.name}.read_frames: no acquisition; call start_frames() first")
            return self._frames.read()

    def read_skipped_frames(self) -> np.ndarray:
        """Indices (int64) of the frames found lost since the previous call; clears them."""
        with self._lock:
            return self._frames.read_skipped()

    def skipped_frame_indices(self) -> np.ndarray:
        """Indices (int64) of every frame found lost since start_frames."""
        with self._lock:
            return self._frames.skipped_indices()

    def stop_frames(self) -> None:
        """Abort the acquisition (AbortAcquisition); frames already acquired stay readable."""
        with self._lock:
            if self._streaming:
                self._call("AbortAcquisition", ok=(DRV_SUCCESS, DRV_IDLE))
                self._streaming = False

    def send_software_trigger(self) -> None:
        """Take one frame now (trigger_mode software)."""
        self._call("SendSoftwareTrigger")

    # --- QCoDeS ---------------------------------------------------------------------------
    def get_idn(self) -> dict[str, str | None]:
        """Identification from the SDK (the camera has no *IDN? query)."""
        return {
            "vendor": "Andor",
            "model": f"iXon Ultra 888 ({self.head_model.cache.get()})",
            "serial": str(self._serial),
            "firmware": None,
        }

    def _warm_up(self) -> None:
        """Cooler off, then wait until the sensor is warmer than the target (or until the timeout)."""
        target_c, timeout_s, poll_s = self._warmup
        temperature, state = self.read_temperature()
        if state != "off":
            self._call("CoolerOFF")
            self.cooler.cache.set(False)
        deadline = time.monotonic() + timeout_s
        while temperature <= target_c:
            if time.monotonic() >= deadline:
                log.warning("%s: sensor still at %d degC after %.0f s of warm-up (target > %g degC); "
                            "shutting down anyway", self.name, temperature, timeout_s, target_c)
                return
            time.sleep(poll_s)
            temperature, _ = self.read_temperature()

    def close(self) -> None:
        """Stop any acquisition, warm the sensor up (cooler off, wait above -20 degC), ShutDown."""
        if getattr(self, "_initialized", False):
            steps = (("stop", self.stop_frames), ("warm-up", self._warm_up), ("ShutDown", lambda: self._call("ShutDown")))
            for what, step in steps:
                try:
                    step()
                except Exception as exc:  # noqa: BLE001 - every step must be tried, and close must not raise
                    log.warning("%s: %s failed on close: %s", getattr(self, "name", "camera"), what, exc)
            self._initialized = False
        super().close()

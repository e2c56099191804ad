"""Simulated Andor SDK2 library (iXon Ultra 888 EMCCD) over the shared scene.

``SimAndorSDK`` implements the SDK2 functions that ``drivers.andor.IXonUltra888``
calls, with the same names, ctypes-level argument conventions and status codes
(``DRV_SUCCESS`` = 20002), so the driver runs unchanged on it.  Outputs are written
through the ctypes objects the caller passes (``byref(c_int())``, ``POINTER(c_uint16)``
from ``ndarray.ctypes.data_as``, ``create_string_buffer``).

The camera head itself (settings, timing, acquisition state machine, circular buffer,
frames, cooler) is :class:`sim_backends.andor_camera.SimIXonCamera`, whose docstring says
what a test can rely on; this module is the SDK2 function table in front of it.

Errors: out-of-range arguments return ``DRV_P<n>INVALID``; calls before ``Initialize``
``DRV_NOT_INITIALIZED``; most setters during an acquisition ``DRV_ACQUIRING``;
``AbortAcquisition`` when idle ``DRV_IDLE``.  ``inject_error(name, code)`` makes the next
call of ``name`` return ``code`` and change nothing.  Scheduled faults (option ``faults``:
fail once, always, or hang; :mod:`sim_backends.faults`) count scene seconds from the last
``StartAcquisition``.  Every call is logged in ``calls`` (the last 1000; pointer and buffer
arguments by their type name only, so the log keeps no caller's buffer alive).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from sim_backends import atmcd_header as H
from sim_backends.andor_acquisition import (
    TRIGGER_EXTERNAL,
    TRIGGER_EXTERNAL_EXPOSURE,
    TRIGGER_EXTERNAL_START,
    TRIGGER_INTERNAL,
    TRIGGER_SOFTWARE,
)
from sim_backends.andor_camera import (
    ACQ_KINETIC,
    ACQ_RUN_TILL_ABORT,
    ACQ_SINGLE,
    READ_FVB,
    READ_IMAGE,
    READ_SINGLE_TRACK,
    Scene,
    SimIXonCamera,
)
from sim_backends.ctypes_out import copy_out, num as _num, store as _store
from sim_backends.emccd_frames import EmccdModel
from sim_backends.faults import FaultSchedule, nonzero_status
from sim_backends.vendor_entry import SimVendorLibrary, status_function, status_functions

OK = H.DRV_SUCCESS
NO_NEW_DATA = H.DRV_NO_NEW_DATA
ACQUIRING = H.DRV_ACQUIRING
IDLE = H.DRV_IDLE
NOT_INITIALIZED = H.DRV_NOT_INITIALIZED
INVALID_MODE = H.DRV_INVALID_MODE
P_INVALID = dict(H.DRV_P_INVALID)


def _logged(arg: Any) -> Any:
    """An argument as the call log keeps it: plain values, and only the type name of pointers and buffers.

    Keeping the objects would keep the caller's buffers alive (a pointer from
    ``ndarray.ctypes.data_as`` holds its array) for as long as the call stays in the log.
    """
    value = _num(arg)
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    return f"<{type(arg).__name__}>"


def _idle(library: "SimAndorSDK", values: list[Any]) -> int | None:
    """Entry check of the setters that need an idle camera: DRV_ACQUIRING during an acquisition."""
    library._advance()
    return ACQUIRING if library.acquiring else None


def _vendor(requires_init: bool = True, idle_only: bool = False) -> Callable[[Callable[..., int]], Callable[..., int]]:
    """The common entry (:mod:`sim_backends.vendor_entry`); ``idle_only``: refused during an acquisition."""
    return status_function(requires_init, _idle if idle_only else None)


class SimAndorSDK(SimIXonCamera, SimVendorLibrary):
    """Simulated Andor SDK2 library of an iXon Ultra 888 (see the module docstring).

    Args:
        scene, drop_frame_indices, clock, model, circular_buffer_frames: the camera head
            (:class:`sim_backends.andor_camera.SimIXonCamera`).
        faults: scheduled faults (:mod:`sim_backends.faults`); the fault clock is scene
            seconds since the last ``StartAcquisition`` (0 before the first).
    """

    NOT_INITIALIZED = NOT_INITIALIZED

    def __init__(
        self,
        scene: Scene,
        *,
        drop_frame_indices: Sequence[int] = (),
        clock: Callable[[], float] = time.monotonic,
        model: EmccdModel | None = None,
        circular_buffer_frames: int | None = None,
        faults: Sequence[dict[str, Any]] = (),
    ) -> None:
        super().__init__(scene, drop_frame_indices, clock, model, circular_buffer_frames)
        self._fault_schedule = FaultSchedule(
            faults,
            status_functions=status_functions(type(self)),
            check_code=nonzero_status(OK, f"{H.DRV_ERROR_ACK} (DRV_ERROR_ACK: no acknowledge from the camera)"),
            elapsed_s=self._run_elapsed_s,
        )
        self._injected: dict[str, int] = {}
        self.calls: deque[tuple[str, tuple[Any, ...]]] = deque(maxlen=1000)
        """Every vendor call as (name, arguments), newest last."""
        self.initialized = False

    def _log_call(self, name: str, args: tuple[Any, ...]) -> None:
        self.calls.append((name, tuple(_logged(a) for a in args)))

    # --- vendor functions: lifetime and identity ------------------------------------
    @_vendor(requires_init=False)
    def Initialize(self, directory: Any) -> int:
        self._stop_run()
        self._power_on_settings()
        self.initialized = True
        return OK

    @_vendor(requires_init=False)
    def ShutDown(self) -> int:
        self._stop_run()
        self.shutdown_temperature_c = self._cooler.update()
        self._cooler.switch_off()  # SDK2 switches the cooler off at ShutDown (cooler mode 0)
        self.initialized = False
        return OK

    @_vendor()
    def GetDetector(self, xpixels: Any, ypixels: Any) -> int:
        _store(xpixels, self.model.width_px)
        _store(ypixels, self.model.height_px)
        return OK

    @_vendor()
    def GetPixelSize(self, x_um: Any, y_um: Any) -> int:
        _store(x_um, self.model.pixel_um)
        _store(y_um, self.model.pixel_um)
        return OK

    @_vendor()
    def GetHeadModel(self, name: Any) -> int:
        name.value = self.model.head_model.encode()
        return OK

    @_vendor()
    def GetCameraSerialNumber(self, number: Any) -> int:
        _store(number, self.model.serial_number)
        return OK

    # --- vendor functions: cooling -----------------------------------------------------
    @_vendor()
    def GetTemperatureRange(self, low: Any, high: Any) -> int:
        _store(low, self.model.temperature_range_c[0])
        _store(high, self.model.temperature_range_c[1])
        return OK

    @_vendor()
    def SetTemperature(self, temperature_c: int) -> int:
        low, high = self.model.temperature_range_c
        if not low <= temperature_c <= high:
            return P_INVALID[1]
        self._cooler.set_setpoint(temperature_c)
        return OK

    @_vendor()
    def CoolerON(self) -> int:
        self._cooler.switch_on()
        return OK

    @_vendor()
    def CoolerOFF(self) -> int:
        self._cooler.switch_off()
        return OK

    @_vendor()
    def IsCoolerOn(self, status: Any) -> int:
        _store(status, 1 if self.cooler_on else 0)
        return OK

    @_vendor()
    def GetTemperature(self, temperature: Any) -> int:
        _store(temperature, int(round(self._cooler.update())))
        return self._cooler.status()

    # --- vendor functions: settings --------------------------------------------------------
    @_vendor(idle_only=True)
    def SetReadMode(self, mode: int) -> int:
        if mode not in (READ_FVB, READ_SINGLE_TRACK, READ_IMAGE):  # multi/random track not simulated
            return P_INVALID[1]
        self.read_mode = int(mode)
        return OK

    @_vendor(idle_only=True)
    def SetAcquisitionMode(self, mode: int) -> int:
        if mode not in (ACQ_SINGLE, ACQ_KINETIC, ACQ_RUN_TILL_ABORT):  # accumulate, fast kinetics not simulated
            return P_INVALID[1]
        self.acquisition_mode = int(mode)
        return OK

    @_vendor(idle_only=True)
    def SetExposureTime(self, exposure_s: float) -> int:
        if not (exposure_s >= 0.0 and math.isfinite(exposure_s)):
            return P_INVALID[1]
        self.exposure_s = float(exposure_s)
        return OK

    @_vendor(idle_only=True)
    def SetKineticCycleTime(self, cycle_s: float) -> int:
        if not (cycle_s >= 0.0 and math.isfinite(cycle_s)):
            return P_INVALID[1]
        self.kinetic_cycle_s = float(cycle_s)
        return OK

    @_vendor(idle_only=True)
    def SetNumberKinetics(self, number: int) -> int:
        if number < 1:
            return P_INVALID[1]
        self.number_kinetics = int(number)
        return OK

    @_vendor(idle_only=True)
    def SetFrameTransferMode(self, mode: int) -> int:
        if mode not in (0, 1):
            return P_INVALID[1]
        self.frame_transfer = bool(mode)
        return OK

    @_vendor(idle_only=True)
    def SetImage(self, hbin: int, vbin: int, hstart: int, hend: int, vstart: int, vend: int) -> int:
        width, height = self.model.width_px, self.model.height_px
        checks = (
            1 <= hbin <= width,
            1 <= vbin <= height,
            1 <= hstart <= width,
            hstart <= hend <= width,
            1 <= vstart <= height,
            vstart <= vend <= height,
        )
        for n, good in enumerate(checks, start=1):
            if not good:
                return P_INVALID[n]
        if (hend - hstart + 1) % hbin:
            return P_INVALID[1]
        if (vend - vstart + 1) % vbin:
            return P_INVALID[2]
        self.image = (int(hbin), int(vbin), int(hstart), int(hend), int(vstart), int(vend))
        return OK

    @_vendor(idle_only=True)
    def SetSingleTrack(self, centre: int, height: int) -> int:
        rows = self.model.height_px
        if not 1 <= centre <= rows:
            return P_INVALID[1]
        top = centre - height // 2
        if height < 1 or top < 1 or top + height - 1 > rows:
            return P_INVALID[2]
        self.single_track = (int(centre), int(height))
        return OK

    @_vendor()
    def GetEMGainRange(self, low: Any, high: Any) -> int:
        gain_range = self.model.em_gain_range_advanced if self.em_advanced else self.model.em_gain_range
        _store(low, gain_range[0])
        _store(high, gain_range[1])
        return OK

    @_vendor(idle_only=True)
    def SetEMAdvanced(self, state: int) -> int:
        if state not in (0, 1):
            return P_INVALID[1]
        if not state and self.em_gain > self.model.em_gain_range[1]:
            self.em_gain = self.model.em_gain_range[1]  # the SDK clamps the gain back into the normal range
        self.em_advanced = bool(state)
        return OK

    @_vendor()
    def SetEMCCDGain(self, gain: int) -> int:
        low, high = self.model.em_gain_range_advanced if self.em_advanced else self.model.em_gain_range
        if not low <= gain <= high:
            return P_INVALID[1]
        self.em_gain = int(gain)
        return OK

    @_vendor(idle_only=True)
    def SetTriggerMode(self, mode: int) -> int:
        if mode not in (TRIGGER_INTERNAL, TRIGGER_EXTERNAL, TRIGGER_EXTERNAL_START, TRIGGER_EXTERNAL_EXPOSURE, TRIGGER_SOFTWARE):
            return P_INVALID[1]
        self.trigger_mode = int(mode)
        return OK

    @_vendor()
    def SetShutter(self, typ: int, mode: int, closing_ms: int, opening_ms: int) -> int:
        for n, good in enumerate((typ in (0, 1), mode in (0, 1, 2), closing_ms >= 0, opening_ms >= 0), start=1):
            if not good:
                return P_INVALID[n]
        self.shutter = (int(typ), int(mode), int(closing_ms), int(opening_ms))
        return OK

    @_vendor()
    def GetAcquisitionTimings(self, exposure: Any, accumulate: Any, kinetic: Any) -> int:
        exposure_s = self._exposure_ps() * 1e-12
        _store(exposure, exposure_s)
        _store(accumulate, exposure_s + self._readout_s())
        cycle = self._internal_cycle_s() if self.trigger_mode == TRIGGER_INTERNAL else self._min_cycle_s()
        _store(kinetic, cycle)
        return OK

    # --- vendor functions: acquisition ----------------------------------------------------
    @_vendor()
    def StartAcquisition(self) -> int:
        self._advance()
        if self.acquiring:
            return ACQUIRING
        self._start_run()
        return OK

    @_vendor()
    def AbortAcquisition(self) -> int:
        self._advance()
        if not self.acquiring:
            return IDLE
        self._stop_run()
        return OK

    @_vendor()
    def GetStatus(self, status: Any) -> int:
        self._advance()
        _store(status, ACQUIRING if self.acquiring else IDLE)
        return OK

    @_vendor()
    def SendSoftwareTrigger(self) -> int:
        self._advance()
        acq = self._acq
        if acq is None:
            return IDLE
        if acq.trigger != TRIGGER_SOFTWARE:
            return INVALID_MODE
        self._software_trigger(acq)
        return OK

    @_vendor()
    def GetSizeOfCircularBuffer(self, size: Any) -> int:
        _store(size, self._buffer_capacity())
        return OK

    @_vendor()
    def GetTotalNumberImagesAcquired(self, number: Any) -> int:
        self._advance()
        _store(number, self._total_acquired)
        return OK

    @_vendor()
    def GetNumberNewImages(self, first: Any, last: Any) -> int:
        self._advance()
        run = self._new_run(self._retrieved_until + 1)
        if run is None:
            return NO_NEW_DATA
        _store(first, run[0])
        _store(last, run[1])
        return OK

    @_vendor()
    def GetImages16(self, first: int, last: int, array: Any, size: int, valid_first: Any, valid_last: Any) -> int:
        self._advance()
        if first < 1:
            return P_INVALID[1]
        if last < first or last > self._total_acquired:
            return P_INVALID[2]
        pixels = int(np.prod(self._acq_shape))
        if size < (last - first + 1) * pixels:
            return P_INVALID[4]
        run = self._take_run(first, last)
        if run is None:
            return NO_NEW_DATA
        v_first, v_last, data = run
        copy_out(array, data)
        _store(valid_first, v_first)
        _store(valid_last, v_last)
        return OK

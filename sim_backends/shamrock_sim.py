"""Simulated Andor spectrograph library: a Kymera 193i behind the ``Shamrock*`` / ``ATSpectrograph*`` functions.

``SimShamrock`` (``ShamrockCIF64.dll`` names) and ``SimATSpectrograph``
(``atspectrograph.dll`` names, output strings with a size argument) implement the
functions of ``ShamrockCIF.h`` / ``atspectrograph.h`` that labctl uses, with the same
ctypes-level conventions as the real library: status codes as return values, outputs
written through ``byref(...)`` objects, char buffers and float arrays the caller owns.
Codes, names, slit indices and ranges come from the simulator's own transcription of
the headers (:mod:`sim_backends.shamrock_header`); the optics from
:mod:`sim_backends.kymera_optics`.

Validation like the device: a bad device index returns P1INVALID, the first bad
argument after it P2..P5INVALID, calls before ``Initialize`` NOT_INITIALIZED; a failed
call changes nothing.  ``inject_error(function, code)`` makes the next call of
``function`` (logical or exported name) return ``code`` without touching any state;
``calls`` lists the logical name of every function called.  Scheduled faults (option
``faults``: fail once, always, or hang; :mod:`sim_backends.faults`) count wall seconds
from the library's creation.

Scene link: with a ``scene``, the current calibration (the same float32 values
``GetCalibration`` returns, as float64) is stored in ``scene.spectrograph_calibration_nm``
at ``Initialize`` and every time the grating, centre wavelength, number of pixels or
pixel width changes.  The simulated camera reads it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from sim_backends import shamrock_header as H
from sim_backends.ctypes_out import copy_out, store as _store, store_text
from sim_backends.faults import FaultSchedule, nonzero_status
from sim_backends.kymera_optics import (
    CAMERA_NUMBER_PIXELS,
    CAMERA_PIXEL_WIDTH_UM,
    KYMERA_193I_GRATINGS,
    SIM_OPTICS,
    SimGrating,
    calibration_nm,
    max_wavelength_nm,
)
from sim_backends.vendor_entry import SimVendorLibrary, status_function, status_functions

SUCCESS, NOT_INITIALIZED, NOT_AVAILABLE = H.SUCCESS, H.NOT_INITIALIZED, H.NOT_AVAILABLE
P1INVALID, P2INVALID, P3INVALID = H.P_INVALID[1], H.P_INVALID[2], H.P_INVALID[3]
SIM_DEVICE = 0
"""Index of the one simulated spectrograph."""

NUMBER_PIXELS_RANGE = (1, 16384)
PIXEL_WIDTH_UM_RANGE = (1.0, 100.0)
"""What the simulated SetNumberPixels / SetPixelWidth accept (the headers state no limit: sanity
bounds of this simulator, an *assumption*)."""


def _logical_name(name: str) -> str:
    """``"_SetGrating"``, ``"ShamrockSetGrating"``, ``"ATSpectrographSetGrating"`` -> ``"SetGrating"``."""
    name = name.lstrip("_")
    for generation, prefix in H.PREFIXES.items():
        if name.startswith(prefix):
            suffix = name[len(prefix):]
            renamed = {vendor: logical for logical, vendor in H.RENAMED.get(generation, {}).items()}
            return renamed.get(suffix, suffix)
    return name


def _one_device(library: Any, values: list[Any]) -> int | None:
    """Entry check of the per-device functions: a device index other than the one simulated is P1INVALID."""
    return None if values and values[0] == SIM_DEVICE else P1INVALID


def _vendor(requires_init: bool = True, per_device: bool = True) -> Callable[[Callable[..., int]], Callable[..., int]]:
    """The common entry (:mod:`sim_backends.vendor_entry`) under the logical name; ``per_device``: the
    first argument is the device index, and any but 0 returns P1INVALID."""
    return status_function(requires_init, _one_device if per_device else None)


class _SimSpectrographCore(SimVendorLibrary):
    """The Kymera 193i behind logical function names (``_SetGrating``...); see the module docstring.

    Args:
        scene: the shared scene; gets ``spectrograph_calibration_nm`` (None: no link).
        gratings: the turret.
        serial: serial number reported.
        has_slit / has_shutter: whether the motorised input slit / shutter are fitted.
        faults: scheduled faults (:mod:`sim_backends.faults`; ``function`` by logical or
            exported name); the fault clock is wall seconds since the library was created.
    """

    generation = "shamrock"
    NOT_INITIALIZED = NOT_INITIALIZED

    def __init__(
        self,
        scene: Any = None,
        *,
        gratings: Sequence[SimGrating] = KYMERA_193I_GRATINGS,
        serial: str = "KY193-SIM01",
        has_slit: bool = True,
        has_shutter: bool = True,
        faults: Sequence[dict[str, Any]] = (),
    ) -> None:
        if not gratings:
            raise ValueError("SimShamrock: gratings = (): at least one grating is needed")
        self._scene = scene
        self._gratings = tuple(gratings)
        self._serial = serial
        self._has_slit = bool(has_slit)
        self._has_shutter = bool(has_shutter)
        created_s = time.monotonic()
        self._fault_schedule = FaultSchedule(
            faults,
            status_functions={_logical_name(n) for n in status_functions(type(self))},
            check_code=nonzero_status(SUCCESS, f"{H.COMMUNICATION_ERROR} (communication error)"),
            elapsed_s=lambda: time.monotonic() - created_s,
            canonical=_logical_name,
        )
        self._lock = threading.RLock()
        self._injected: dict[str, int] = {}
        self.calls: list[str] = []
        """Logical name of every function called, in order (a test hook)."""
        self.initialized = False
        self.optics = dict(SIM_OPTICS)
        self.limits_nm = [(0.0, round(max_wavelength_nm(g.lines_per_mm, self.optics), 1)) for g in self._gratings]
        # Device state (persists across Initialize/Close, as the instrument's does).
        self.grating = 1
        self.center_nm = 600.0
        self.slit_width_um = {index: 100.0 for index in H.SLIT_INDICES.values()}
        self.shutter_mode = H.SHUTTER_MODES["closed"]
        self.number_pixels = CAMERA_NUMBER_PIXELS
        self.pixel_width_um = CAMERA_PIXEL_WIDTH_UM

    # --- the entry under logical names, and read-only views ----------------------------
    def _entry_name(self, function: str) -> str:
        return _logical_name(function)

    def _log_call(self, name: str, args: tuple[Any, ...]) -> None:
        self.calls.append(name)

    def calibration_nm(self) -> np.ndarray:
        """The current calibration exactly as GetCalibration returns it (float32 values, as float64)."""
        lines = self._gratings[self.grating - 1].lines_per_mm
        axis = calibration_nm(
            lines, self.center_nm, self.number_pixels, self.pixel_width_um,
            self.optics["focal_length_mm"], self.optics["deviation_angle_deg"],
        )
        return axis.astype(np.float32).astype(np.float64)

    def _publish(self) -> None:
        if self._scene is not None:
            self._scene.spectrograph_calibration_nm = self.calibration_nm()

    # --- basic ---------------------------------------------------------------------------
    @_vendor(requires_init=False, per_device=False)
    def _Initialize(self, ini_path: Any) -> int:
        self.initialized = True
        self._publish()
        return SUCCESS

    @_vendor(requires_init=False, per_device=False)
    def _Close(self) -> int:
        self.initialized = False
        return SUCCESS

    @_vendor(per_device=False)
    def _GetNumberDevices(self, count: Any) -> int:
        _store(count, 1)
        return SUCCESS

    @_vendor(requires_init=False, per_device=False)
    def _GetFunctionReturnDescription(self, code: int, text: Any, size: int) -> int:
        if code not in H.RETURN_DESCRIPTIONS:
            return P1INVALID
        store_text(text, H.RETURN_DESCRIPTIONS[code], size)
        return SUCCESS

    @_vendor()
    def _GetSerialNumber(self, device: int, serial: Any, size: int | None = None) -> int:
        store_text(serial, self._serial, size)
        return SUCCESS

    @_vendor()
    def _EepromGetOpticalParams(self, device: int, focal_length: Any, deviation: Any, tilt: Any) -> int:
        _store(focal_length, self.optics["focal_length_mm"] * 1e-3 / H.FOCAL_LENGTH_UNIT_M)
        _store(deviation, self.optics["deviation_angle_deg"])
        _store(tilt, self.optics["focal_tilt_deg"])
        return SUCCESS

    # --- gratings and wavelength --------------------------------------------------------
    def _valid_grating(self, grating: int) -> bool:
        return H.GRATING_MIN <= grating < H.GRATING_MIN + len(self._gratings)

    @_vendor()
    def _GetNumberGratings(self, device: int, count: Any) -> int:
        _store(count, len(self._gratings))
        return SUCCESS

    @_vendor()
    def _SetGrating(self, device: int, grating: int) -> int:
        if not self._valid_grating(grating):
            return P2INVALID
        low, high = self.limits_nm[grating - 1]
        self.grating = int(grating)
        self.center_nm = min(max(self.center_nm, low), high)  # the drive stays within the new grating's range
        self._publish()
        return SUCCESS

    @_vendor()
    def _GetGrating(self, device: int, grating: Any) -> int:
        _store(grating, self.grating)
        return SUCCESS

    def _grating_info(self, device: int, grating: int, lines: Any, blaze: Any, size: int | None,
                      home: Any, offset: Any) -> int:
        if not self._valid_grating(grating):
            return P2INVALID
        info = self._gratings[grating - 1]
        _store(lines, info.lines_per_mm)
        store_text(blaze, info.blaze, size)
        _store(home, info.home)
        _store(offset, info.offset)
        return SUCCESS

    @_vendor()
    def _SetWavelength(self, device: int, wavelength_nm: float) -> int:
        low, high = self.limits_nm[self.grating - 1]
        if not low <= wavelength_nm <= high:
            return P2INVALID
        self.center_nm = float(wavelength_nm)
        self._publish()
        return SUCCESS

    @_vendor()
    def _GetWavelength(self, device: int, wavelength_nm: Any) -> int:
        _store(wavelength_nm, self.center_nm)
        return SUCCESS

    @_vendor()
    def _GetWavelengthLimits(self, device: int, grating: int, low: Any, high: Any) -> int:
        if not self._valid_grating(grating):
            return P2INVALID
        _store(low, self.limits_nm[grating - 1][0])
        _store(high, self.limits_nm[grating - 1][1])
        return SUCCESS

    # --- slit and shutter ---------------------------------------------------------------
    def _valid_slit(self, index: int) -> bool:
        return index in self.slit_width_um

    @_vendor()
    def _AutoSlitIsPresent(self, device: int, index: int, present: Any) -> int:
        if not self._valid_slit(index):
            return P2INVALID
        _store(present, int(self._has_slit))
        return SUCCESS

    @_vendor()
    def _SetAutoSlitWidth(self, device: int, index: int, width_um: float) -> int:
        if not self._valid_slit(index) or not self._has_slit:
            return P2INVALID
        low, high = H.SLIT_WIDTH_UM
        if not low <= width_um <= high:
            return P3INVALID
        self.slit_width_um[index] = float(width_um)
        return SUCCESS

    @_vendor()
    def _GetAutoSlitWidth(self, device: int, index: int, width_um: Any) -> int:
        if not self._valid_slit(index) or not self._has_slit:
            return P2INVALID
        _store(width_um, self.slit_width_um[index])
        return SUCCESS

    @_vendor()
    def _ShutterIsPresent(self, device: int, present: Any) -> int:
        _store(present, int(self._has_shutter))
        return SUCCESS

    @_vendor()
    def _SetShutter(self, device: int, mode: int) -> int:
        if not self._has_shutter:
            return NOT_AVAILABLE
        if mode not in H.SHUTTER_MODES.values():
            return P2INVALID
        self.shutter_mode = int(mode)
        return SUCCESS

    @_vendor()
    def _GetShutter(self, device: int, mode: Any) -> int:
        if not self._has_shutter:
            return NOT_AVAILABLE
        _store(mode, self.shutter_mode)
        return SUCCESS

    # --- calibration --------------------------------------------------------------------
    @_vendor()
    def _SetNumberPixels(self, device: int, number: int) -> int:
        low, high = NUMBER_PIXELS_RANGE
        if not low <= number <= high:
            return P2INVALID
        self.number_pixels = int(number)
        self._publish()
        return SUCCESS

    @_vendor()
    def _GetNumberPixels(self, device: int, number: Any) -> int:
        _store(number, self.number_pixels)
        return SUCCESS

    @_vendor()
    def _SetPixelWidth(self, device: int, width_um: float) -> int:
        low, high = PIXEL_WIDTH_UM_RANGE
        if not low <= width_um <= high:
            return P2INVALID
        self.pixel_width_um = float(width_um)
        self._publish()
        return SUCCESS

    @_vendor()
    def _GetPixelWidth(self, device: int, width_um: Any) -> int:
        _store(width_um, self.pixel_width_um)
        return SUCCESS

    @_vendor()
    def _GetCalibration(self, device: int, values: Any, number: int) -> int:
        if number != self.number_pixels:  # strict: the array must hold exactly the pixels set
            return P3INVALID
        copy_out(values, self.calibration_nm().astype(np.float32))
        return SUCCESS


def _exported(logical: str) -> Callable[..., int]:
    core = getattr(_SimSpectrographCore, "_" + logical)

    def function(self: _SimSpectrographCore, *args: Any) -> int:
        return core(self, *args)

    function.__name__ = logical
    return function


def _with_vendor_names(cls: type) -> type:
    """Give a generation class the exported name (prefix, renames: ``shamrock_header``) of every vendor
    function of the core (the ``_<Logical>`` methods)."""
    prefix, renamed = H.PREFIXES[cls.generation], H.RENAMED.get(cls.generation, {})
    for attribute in dir(_SimSpectrographCore):
        if attribute[1:2].isupper() and getattr(getattr(_SimSpectrographCore, attribute), "returns_status", False):
            logical = attribute[1:]
            name = prefix + renamed.get(logical, logical)
            if name not in cls.__dict__:
                setattr(cls, name, _exported(logical))
    return cls


@_with_vendor_names
class SimShamrock(_SimSpectrographCore):
    """Simulated ``ShamrockCIF64.dll`` (``Shamrock*`` names): a Kymera 193i over the scene."""

    generation = "shamrock"

    @_vendor()
    def ShamrockGetGratingInfo(self, device: int, grating: int, lines: Any, blaze: Any, home: Any,
                               offset: Any) -> int:
        return self._grating_info(device, grating, lines, blaze, None, home, offset)


@_with_vendor_names
class SimATSpectrograph(_SimSpectrographCore):
    """Simulated ``atspectrograph.dll`` (``ATSpectrograph*`` names, sized output strings)."""

    generation = "atspectrograph"

    @_vendor()
    def ATSpectrographGetGratingInfo(self, device: int, grating: int, lines: Any, blaze: Any, size: int,
                                     home: Any, offset: Any) -> int:
        return self._grating_info(device, grating, lines, blaze, size, home, offset)

"""Thin ctypes layer over Andor's SDK2 library (``atmcd64d.dll`` / ``libandor.so``) for the iXon.

Three things live here and nowhere else:

* ``PROTOTYPES``: the C prototypes of the SDK2 functions the driver calls, as
  ``{name: (restype, argument specs)}`` (every SDK2 function returns ``unsigned int``;
  specs as in :mod:`drivers.vendor_library`);
* ``STATUS_NAMES`` and ``check()``: the one error check, which turns a status other
  than the accepted ones into an :class:`AndorError` carrying the function name and
  the vendor's name for the code (``DRV_P1INVALID``).  The temperature codes
  ``DRV_TEMP_OFF`` .. ``DRV_TEMP_DRIFT`` that ``GetTemperature`` returns are *states*,
  accepted by that call (``TEMPERATURE_STATES``), not errors;
* ``CONSTANTS`` / ``LIMITS``: facts about the library and the camera, the *unverified*
  ones marked so, in one place so that a lab can correct them.

:class:`AndorSDK` calls a function with Python values and returns its outputs as
Python values (and fills the caller's numpy arrays); the driver never touches ctypes.
The library is loaded lazily by :func:`load_atmcd`; importing this module never
touches the vendor library.  The simulated library (``sim_backends.andor_sim.SimAndorSDK``)
implements the same function names.
"""

from __future__ import annotations

from collections.abc import Iterable
from ctypes import c_char_p, c_float, c_int, c_int32, c_uint, c_uint16, c_uint32
from typing import Any

from drivers.errors import DriverError
from drivers.vendor_library import (
    Buffer,
    Length,
    Out,
    OutText,
    Prototype,
    VendorLibrary,
    apply_prototypes as apply_table,
    load_library,
    platform_key,
    require_functions,
)

# --- C types of atmcdLXd.h / ATMCD32D.h ------------------------------------------------
at_32 = c_int32
"""``at_32``: ``long`` in the Windows header (32-bit on Win64); ``int`` in the Linux header."""
at_u32 = c_uint32
"""``at_u32`` / ``unsigned long`` of the Windows header (32-bit on Win64)."""
WORD = c_uint16

HEAD_MODEL_BYTES = 256
"""Size of the buffer given to ``GetHeadModel(char* name)`` (the header passes no size)."""

# --- prototypes --------------------------------------------------------------------
PROTOTYPES: dict[str, Prototype] = {
    "Initialize": (c_uint, [c_char_p]),
    "ShutDown": (c_uint, []),
    "GetDetector": (c_uint, [Out(c_int), Out(c_int)]),
    "GetPixelSize": (c_uint, [Out(c_float), Out(c_float)]),
    "GetHeadModel": (c_uint, [OutText(HEAD_MODEL_BYTES)]),
    "GetCameraSerialNumber": (c_uint, [Out(c_int)]),
    "GetTemperatureRange": (c_uint, [Out(c_int), Out(c_int)]),
    "SetTemperature": (c_uint, [c_int]),
    "CoolerON": (c_uint, []),
    "CoolerOFF": (c_uint, []),
    "IsCoolerOn": (c_uint, [Out(c_int)]),
    "GetTemperature": (c_uint, [Out(c_int)]),
    "SetReadMode": (c_uint, [c_int]),
    "SetAcquisitionMode": (c_uint, [c_int]),
    "SetExposureTime": (c_uint, [c_float]),
    "SetKineticCycleTime": (c_uint, [c_float]),
    "SetNumberKinetics": (c_uint, [c_int]),
    "SetFrameTransferMode": (c_uint, [c_int]),
    "SetImage": (c_uint, [c_int, c_int, c_int, c_int, c_int, c_int]),
    "SetSingleTrack": (c_uint, [c_int, c_int]),
    "GetEMGainRange": (c_uint, [Out(c_int), Out(c_int)]),
    "SetEMAdvanced": (c_uint, [c_int]),
    "SetEMCCDGain": (c_uint, [c_int]),
    "SetTriggerMode": (c_uint, [c_int]),
    "SetShutter": (c_uint, [c_int, c_int, c_int, c_int]),
    "GetAcquisitionTimings": (c_uint, [Out(c_float), Out(c_float), Out(c_float)]),
    "StartAcquisition": (c_uint, []),
    "AbortAcquisition": (c_uint, []),
    "GetStatus": (c_uint, [Out(c_int)]),
    "SendSoftwareTrigger": (c_uint, []),
    "GetSizeOfCircularBuffer": (c_uint, [Out(at_32)]),
    "GetTotalNumberImagesAcquired": (c_uint, [Out(at_32)]),
    "GetNumberNewImages": (c_uint, [Out(at_32), Out(at_32)]),
    # GetImages16(first, last, WORD* arr, at_u32 size, at_32* validfirst, at_32* validlast): the
    # caller's uint16 array, its size in pixels passed by the layer.
    "GetImages16": (c_uint, [at_32, at_32, Buffer(WORD), Length(at_u32), Out(at_32), Out(at_32)]),
}
"""SDK2 functions the driver calls: ``{name: (restype, argument specs)}`` (atmcdLXd.h)."""

# --- status codes ------------------------------------------------------------------
STATUS_NAMES: dict[int, str] = {
    20001: "DRV_ERROR_CODES",
    20002: "DRV_SUCCESS",
    20003: "DRV_VXDNOTINSTALLED",
    20004: "DRV_ERROR_SCAN",
    20005: "DRV_ERROR_CHECK_SUM",
    20006: "DRV_ERROR_FILELOAD",
    20007: "DRV_UNKNOWN_FUNCTION",
    20008: "DRV_ERROR_VXD_INIT",
    20009: "DRV_ERROR_ADDRESS",
    20010: "DRV_ERROR_PAGELOCK",
    20011: "DRV_ERROR_PAGEUNLOCK",
    20012: "DRV_ERROR_BOARDTEST",
    20013: "DRV_ERROR_ACK",
    20014: "DRV_ERROR_UP_FIFO",
    20015: "DRV_ERROR_PATTERN",
    20017: "DRV_ACQUISITION_ERRORS",
    20018: "DRV_ACQ_BUFFER",
    20019: "DRV_ACQ_DOWNFIFO_FULL",
    20020: "DRV_PROC_UNKONWN_INSTRUCTION",
    20021: "DRV_ILLEGAL_OP_CODE",
    20022: "DRV_KINETIC_TIME_NOT_MET",
    20023: "DRV_ACCUM_TIME_NOT_MET",
    20024: "DRV_NO_NEW_DATA",
    20025: "DRV_PCI_DMA_FAIL",
    20026: "DRV_SPOOLERROR",
    20027: "DRV_SPOOLSETUPERROR",
    20028: "DRV_FILESIZELIMITERROR",
    20029: "DRV_ERROR_FILESAVE",
    20033: "DRV_TEMPERATURE_CODES",
    20034: "DRV_TEMPERATURE_OFF",
    20035: "DRV_TEMPERATURE_NOT_STABILIZED",
    20036: "DRV_TEMPERATURE_STABILIZED",
    20037: "DRV_TEMPERATURE_NOT_REACHED",
    20038: "DRV_TEMPERATURE_OUT_RANGE",
    20039: "DRV_TEMPERATURE_NOT_SUPPORTED",
    20040: "DRV_TEMPERATURE_DRIFT",
    20049: "DRV_GENERAL_ERRORS",
    20050: "DRV_INVALID_AUX",
    20051: "DRV_COF_NOTLOADED",
    20052: "DRV_FPGAPROG",
    20053: "DRV_FLEXERROR",
    20054: "DRV_GPIBERROR",
    20055: "DRV_EEPROMVERSIONERROR",
    20064: "DRV_DATATYPE",
    20065: "DRV_DRIVER_ERRORS",
    20066: "DRV_P1INVALID",
    20067: "DRV_P2INVALID",
    20068: "DRV_P3INVALID",
    20069: "DRV_P4INVALID",
    20070: "DRV_INIERROR",
    20071: "DRV_COFERROR",
    20072: "DRV_ACQUIRING",
    20073: "DRV_IDLE",
    20074: "DRV_TEMPCYCLE",
    20075: "DRV_NOT_INITIALIZED",
    20076: "DRV_P5INVALID",
    20077: "DRV_P6INVALID",
    20078: "DRV_INVALID_MODE",
    20079: "DRV_INVALID_FILTER",
    20080: "DRV_I2CERRORS",
    20081: "DRV_I2CDEVNOTFOUND",
    20082: "DRV_I2CTIMEOUT",
    20083: "DRV_P7INVALID",
    20089: "DRV_USBERROR",
    20090: "DRV_IOCERROR",
    20091: "DRV_VRMVERSIONERROR",
    20093: "DRV_USB_INTERRUPT_ENDPOINT_ERROR",
    20094: "DRV_RANDOM_TRACK_ERROR",
    20095: "DRV_INVALID_TRIGGER_MODE",
    20096: "DRV_LOAD_FIRMWARE_ERROR",
    20097: "DRV_DIVIDE_BY_ZERO_ERROR",
    20098: "DRV_INVALID_RINGEXPOSURES",
    20115: "DRV_ERROR_MAP",
    20116: "DRV_ERROR_UNMAP",
    20117: "DRV_ERROR_MDL",
    20118: "DRV_ERROR_UNMDL",
    20119: "DRV_ERROR_BUFFSIZE",
    20121: "DRV_ERROR_NOHANDLE",
    20130: "DRV_GATING_NOT_AVAILABLE",
    20131: "DRV_FPGA_VOLTAGE_ERROR",
    20990: "DRV_ERROR_NOCAMERA",
    20991: "DRV_NOT_SUPPORTED",
    20992: "DRV_NOT_AVAILABLE",
}
"""The vendor's names of the SDK2 return codes (atmcd32d.h)."""

CODE_OF_NAME: dict[str, int] = {name: code for code, name in STATUS_NAMES.items()}

DRV_SUCCESS = 20002
DRV_NO_NEW_DATA = 20024
DRV_GENERAL_ERRORS = 20049
DRV_ACQUIRING = 20072
DRV_IDLE = 20073

TEMPERATURE_STATES: dict[int, str] = {
    20034: "off",
    20035: "not_stabilized",
    20036: "stabilized",
    20037: "not_reached",
    20040: "drift",
}
"""``GetTemperature`` return codes that are states of the cooler, not errors -> labctl's state names.
(20038 OUT_RANGE and 20039 NOT_SUPPORTED stay errors.)"""

STATUS_HINTS: dict[str, str] = {
    "DRV_NOT_INITIALIZED": "the SDK is not initialized (Initialize failed or ShutDown was called)",
    "DRV_ACQUIRING": "an acquisition is running; call stop_frames() first",
    "DRV_ERROR_ACK": "no answer from the camera (cable, power)",
    "DRV_ERROR_NOCAMERA": "no camera found (connected, powered, in use by another program?)",
    "DRV_P1INVALID": "argument 1 out of range",
    "DRV_P2INVALID": "argument 2 out of range",
    "DRV_P3INVALID": "argument 3 out of range",
    "DRV_P4INVALID": "argument 4 out of range",
    "DRV_P5INVALID": "argument 5 out of range",
    "DRV_P6INVALID": "argument 6 out of range",
    "DRV_NOT_SUPPORTED": "not supported by this camera",
    "DRV_NOT_AVAILABLE": "not available in the current mode",
    "DRV_INVALID_MODE": "not valid in the current acquisition/read mode",
}
"""Short explanations appended to an AndorError message (labctl's words, not Andor's)."""

# --- facts about library and camera -------------------------------------------------
CONSTANTS: dict[str, Any] = {
    # Library per platform; Linux name *unverified* (SDK2 for Linux installs libandor.so).
    "library_names": {"win32": "atmcd64d.dll", "linux": "libandor.so", "darwin": "libandor.dylib"},
    "library_env_var": "LABCTL_ANDOR_LIBRARY",
    # Directory given to Initialize(): "" on Windows (the DLL's own folder); the Linux
    # installer puts detector.ini under /usr/local/etc/andor (*unverified*).
    "init_dir": {"win32": "", "linux": "/usr/local/etc/andor", "darwin": ""},
    "read_modes": {"fvb": 0, "single_track": 3, "image": 4},
    "acquisition_modes": {"single": 1, "kinetic": 3, "run_till_abort": 5},
    "trigger_modes": {"internal": 0, "external": 1, "external_start": 6, "external_exposure": 7, "software": 10},
    "shutter_modes": {"auto": 0, "open": 1, "closed": 2},
    # SetShutter(typ, mode, closing_ms, opening_ms): typ 1 = TTL high opens;
    # transfer times of the iXon's shutter *unverified*.
    "shutter_ttl_type": 1,
    "shutter_closing_ms": 0,
    "shutter_opening_ms": 0,
    "status_acquiring": DRV_ACQUIRING,
    "status_idle": DRV_IDLE,
}
"""Facts about the library; entries marked *unverified* in the comments need checking in a lab."""

LIMITS: dict[str, Any] = {
    "em_gain_safe_max": 300,  # above this SetEMAdvanced(1) is required
    "em_gain_max_advanced": 1000,  # the manual advises against more
    "exposure_s_max": 3600.0,  # *unverified* (no SDK2 query used here; GetMaximumExposure exists)
    "warmup_target_c": -20.0,  # warm above this before ShutDown (Andor's advice)
    "default_setpoint_c": -80,  # about the lowest reachable in air (*unverified*)
}
"""Limits of camera settings used by the driver's validators and guards."""


# --- errors ------------------------------------------------------------------------
class AndorError(DriverError):
    """An SDK2 function returned a status other than the accepted ones.

    Attributes:
        function: vendor function name, e.g. ``"SetExposureTime"``.
        code: the status code (e.g. 20066).
        code_name: the vendor's name for it (e.g. ``"DRV_P1INVALID"``).
    """

    def __init__(self, function: str, code: int) -> None:
        self.function = function
        self.code = int(code)
        self.code_name = STATUS_NAMES.get(self.code, "unknown status")
        hint = STATUS_HINTS.get(self.code_name)
        super().__init__(f"{function}: {self.code_name} ({self.code})" + (f": {hint}" if hint else ""))


def check(function: str, code: int, ok: Iterable[int] = (DRV_SUCCESS,)) -> int:
    """Return ``code`` if it is one of ``ok``; otherwise raise :class:`AndorError`."""
    code = int(code)
    if code not in ok:
        raise AndorError(function, code)
    return code


class AndorSDK(VendorLibrary):
    """The SDK2 library (real or simulated) behind Python values: inputs in, outputs out, status checked.

    ``sdk.call("GetDetector")`` returns ``(1024, 1024)``; ``sdk.call_status("GetTemperature",
    ok=...)`` returns ``(status, temperature)`` when the status itself carries information.
    Arrays are the caller's numpy arrays (``GetImages16`` fills a ``uint16`` array).

    Raises:
        InstrumentError: the library lacks a function of :data:`PROTOTYPES`.
    """

    def __init__(self, lib: Any) -> None:
        require_functions(lib, PROTOTYPES, "Andor library", REQUIREMENT)
        super().__init__(lib, PROTOTYPES)

    def call_status(self, function: str, *inputs: Any, ok: Iterable[int] = (DRV_SUCCESS,)) -> tuple[int, Any]:
        """Call ``function``; return ``(status, outputs)``; raise :class:`AndorError` unless the status is in ``ok``."""
        code, outputs = self.invoke(function, *inputs)
        return check(function, code, ok), outputs

    def call(self, function: str, *inputs: Any, ok: Iterable[int] = (DRV_SUCCESS,)) -> Any:
        """Call ``function``; return its outputs (None, one value or a tuple); raise :class:`AndorError` on failure."""
        return self.call_status(function, *inputs, ok=ok)[1]


# --- loading -----------------------------------------------------------------------
def default_library_name() -> str:
    """File name of the SDK2 library on this platform (``atmcd64d.dll`` / ``libandor.so``)."""
    return CONSTANTS["library_names"][platform_key()]


def default_init_dir() -> str:
    """Directory passed to ``Initialize`` on this platform (see ``CONSTANTS["init_dir"]``)."""
    return CONSTANTS["init_dir"][platform_key()]


REQUIREMENT = "an Andor SDK2 library (atmcd64d.dll / libandor.so) is required"


def apply_prototypes(lib: Any) -> None:
    """Set ``restype``/``argtypes`` of every declared function on a loaded library.

    Raises:
        InstrumentError: the library lacks a function the driver needs (not an SDK2 library).
    """
    require_functions(lib, PROTOTYPES, "Andor library", REQUIREMENT)
    apply_table(lib, PROTOTYPES)


def load_atmcd(path: str | None = None) -> Any:
    """Load the real SDK2 library and apply the prototypes.

    Looks at, in order: ``path``; the environment variable ``LABCTL_ANDOR_LIBRARY``; the
    platform's library name (``atmcd64d.dll`` / ``libandor.so``) on the system search
    path.  Uses ``ctypes.WinDLL`` (stdcall) on Windows and ``ctypes.CDLL`` elsewhere.

    Raises:
        VendorLibraryNotFound: nothing could be loaded; the message names the library
            file, the place tried and how to fix it.
    """
    lib = load_library(
        path, CONSTANTS["library_env_var"], (default_library_name(),), "Andor SDK2 library",
        "Install Andor SDK2 (Windows: atmcd64d.dll in the SDK folder; Linux: libandor.so)",
        "library=SimAndorSDK(scene)",
    )
    apply_prototypes(lib)
    return lib

"""Thin ctypes layer over Andor's spectrograph SDK (Kymera / Shamrock).

Two generations of the library exist, with the same functions under different
prefixes: ``ShamrockCIF64.dll`` (``Shamrock*`` names) and the newer
``atspectrograph.dll`` (``ATSpectrograph*`` names).  Their arguments are the same
except that the newer one passes the size of every output string buffer
(``GetGratingInfo`` and ``GetSerialNumber`` gain a max-length argument) and names
the slit and shutter-mode functions differently (``SetSlitWidth`` for
``SetAutoSlitWidth``, ``IsShutterModePossible`` for ``IsModePossible``).

What lives here and nowhere else:

* ``FUNCTIONS``: one declarative table per generation, ``{logical name: argument
  specs}`` (specs of :mod:`drivers.vendor_library`: a ctypes type is an input,
  ``Out`` a pointer the layer allocates and whose value it returns, ``OutText`` a char
  buffer returned as ``str``, :data:`TEXT_LENGTH` the size of the preceding buffer,
  ``OutArray`` a float array whose length is the next input).  Every function
  returns ``unsigned int`` (a status code).
* ``STATUS_NAMES`` and :func:`check`: the one error check, which turns a status other
  than ``SUCCESS`` (20202) into a :class:`ShamrockError` carrying the vendor's name
  for the code (``SHAMROCK_P2INVALID`` / ``ATSPECTROGRAPH_P2INVALID``).
* :class:`ShamrockSDK`: calls a function by its logical name with the inputs only,
  and returns the outputs; the driver never touches ctypes.
* ``CONSTANTS`` / ``LIMITS``: facts about the library and the Kymera 193i, the
  *unverified* ones marked so.

The library is loaded lazily by :func:`load_shamrock`; importing this module never
touches the vendor library.  The simulated libraries
(``sim_backends.shamrock_sim.SimShamrock`` / ``SimATSpectrograph``) implement the
same function names.
"""

from __future__ import annotations

from ctypes import c_char_p, c_float, c_int, c_uint
from typing import Any

from drivers.errors import DriverError
from drivers.vendor_library import (
    Length,
    Out,
    OutArray,
    OutText,
    Prototype,
    VendorLibrary,
    apply_prototypes as apply_table,
    library_name,
    load_library,
    platform_key,
    require_functions,
)
from labctl.errors import InstrumentError

TEXT_LENGTH = Length(c_int)
"""An ``int`` input: the size of the preceding :class:`OutText` buffer (atspectrograph only)."""

DEVICE = c_int
"""The device index argument (0-based) of every per-device function."""

_COMMON: dict[str, list[Any]] = {
    "Initialize": [c_char_p],
    "Close": [],
    "GetNumberDevices": [Out(c_int)],
    "GetFunctionReturnDescription": [c_int, OutText(64), TEXT_LENGTH],
    "EepromGetOpticalParams": [DEVICE, Out(c_float), Out(c_float), Out(c_float)],
    "GetNumberGratings": [DEVICE, Out(c_int)],
    "SetGrating": [DEVICE, c_int],
    "GetGrating": [DEVICE, Out(c_int)],
    "SetWavelength": [DEVICE, c_float],
    "GetWavelength": [DEVICE, Out(c_float)],
    "GetWavelengthLimits": [DEVICE, c_int, Out(c_float), Out(c_float)],
    "AutoSlitIsPresent": [DEVICE, c_int, Out(c_int)],
    "SetAutoSlitWidth": [DEVICE, c_int, c_float],
    "GetAutoSlitWidth": [DEVICE, c_int, Out(c_float)],
    "ShutterIsPresent": [DEVICE, Out(c_int)],
    "SetShutter": [DEVICE, c_int],
    "GetShutter": [DEVICE, Out(c_int)],
    "SetNumberPixels": [DEVICE, c_int],
    "GetNumberPixels": [DEVICE, Out(c_int)],
    "SetPixelWidth": [DEVICE, c_float],
    "GetPixelWidth": [DEVICE, Out(c_float)],
    "GetCalibration": [DEVICE, OutArray(c_float), c_int],
}

FUNCTIONS: dict[str, dict[str, list[Any]]] = {
    # ShamrockCIF.h: output strings without a size argument.
    "shamrock": {
        **_COMMON,
        "GetSerialNumber": [DEVICE, OutText(64)],
        "GetGratingInfo": [DEVICE, c_int, Out(c_float), OutText(64), Out(c_int), Out(c_int)],
    },
    # atspectrograph.h: every output string is followed by its buffer size.
    "atspectrograph": {
        **_COMMON,
        "GetSerialNumber": [DEVICE, OutText(64), TEXT_LENGTH],
        "GetGratingInfo": [DEVICE, c_int, Out(c_float), OutText(64), TEXT_LENGTH, Out(c_int), Out(c_int)],
    },
}
"""Per generation: ``{logical function name: argument specs}`` (see the module docstring)."""

PREFIXES = {"shamrock": "Shamrock", "atspectrograph": "ATSpectrograph"}
RENAMED: dict[str, dict[str, str]] = {
    "shamrock": {},
    "atspectrograph": {
        "AutoSlitIsPresent": "SlitIsPresent",
        "SetAutoSlitWidth": "SetSlitWidth",
        "GetAutoSlitWidth": "GetSlitWidth",
    },
}
"""Logical names (the Shamrock suffixes) that a generation spells differently."""


def vendor_name(generation: str, function: str) -> str:
    """The exported name of a logical function, e.g. ``("atspectrograph", "SetAutoSlitWidth")`` ->
    ``"ATSpectrographSetSlitWidth"``."""
    return PREFIXES[generation] + RENAMED[generation].get(function, function)


def vendor_names(generation: str) -> set[str]:
    """Every exported name this layer declares for one generation."""
    return {vendor_name(generation, f) for f in FUNCTIONS[generation]}


def prototypes_of(generation: str) -> dict[str, Prototype]:
    """``{exported name: (restype, argument specs)}`` of one generation (every function returns ``unsigned int``)."""
    return {vendor_name(generation, function): (c_uint, specs) for function, specs in FUNCTIONS[generation].items()}


# --- status codes --------------------------------------------------------------------------
SUCCESS = 20202

STATUS_SUFFIXES: dict[int, str] = {
    20201: "COMMUNICATION_ERROR",
    20202: "SUCCESS",
    20249: "ERROR",  # atspectrograph.h only
    20266: "P1INVALID",
    20267: "P2INVALID",
    20268: "P3INVALID",
    20269: "P4INVALID",
    20270: "P5INVALID",
    20275: "NOT_INITIALIZED",
    20292: "NOT_AVAILABLE",
}
"""Status codes of both headers, without their prefix (``SHAMROCK_`` / ``ATSPECTROGRAPH_``)."""

STATUS_PREFIXES = {"shamrock": "SHAMROCK_", "atspectrograph": "ATSPECTROGRAPH_"}


def status_name(generation: str, code: int) -> str:
    """The vendor's name of a status code, e.g. ``"SHAMROCK_P2INVALID"``."""
    suffix = STATUS_SUFFIXES.get(int(code))
    return STATUS_PREFIXES[generation] + suffix if suffix else f"unknown status {int(code)}"


# --- facts about library and device ----------------------------------------------------------
CONSTANTS: dict[str, Any] = {
    # Library file names per platform, newest first.  Linux names *unverified*.
    "library_names": {
        "win32": ("atspectrograph.dll", "ShamrockCIF64.dll"),
        "linux": ("libatspectrograph.so", "libshamrockcif.so"),
        "darwin": ("libatspectrograph.dylib",),
    },
    "library_env_var": "LABCTL_SHAMROCK_LIBRARY",
    # Slit indices (ShamrockCIF.h SHAMROCK_INPUT_SLIT_SIDE ... OUTPUT_SLIT_DIRECT).
    "slit_indices": {"input_side": 1, "input_direct": 2, "output_side": 3, "output_direct": 4},
    # Which slit the microscope's light enters through (*unverified*: depends on the
    # lab's wiring; Kymera 193i with a direct fibre/relay input assumed).
    "default_slit_index": 2,
    # Shutter modes (atspectrograph.h eATSpectrographShutterMode; BNC mode not offered).
    "shutter_modes": {"closed": 0, "open": 1},
    # Detector the spectrograph images onto: Andor iXon Ultra 888, 1024 x 1024, 13 um pixels.
    "camera_number_pixels": 1024,
    "camera_pixel_width_um": 13.0,
    # Unit of EepromGetOpticalParams' focal length (*unverified*: public wrappers treat it
    # as metres) and angular deviation / focal tilt (*unverified*: degrees).
    "focal_length_unit_m": 1.0,
    "blaze_buffer_bytes": 64,
}
"""Facts about the library; entries marked *unverified* in the comments need checking in a lab."""

LIMITS: dict[str, Any] = {
    # ShamrockCIF.h SHAMROCK_SLITWIDTHMIN / MAX.
    "slit_width_um": (10.0, 2500.0),
    # Sanity bounds of the detector geometry given to the SDK (not vendor limits).
    "number_pixels": (1, 16384),
    "pixel_width_um": (1.0, 100.0),
}
"""Allowed ranges of device settings (used by the driver's validators and by the sim)."""

HC_EV_NM = 1239.84198
"""h*c in eV*nm: photon energy (eV) = HC_EV_NM / wavelength (nm)."""


# --- errors -----------------------------------------------------------------------------------
class ShamrockError(DriverError):
    """A spectrograph SDK function returned a status other than SUCCESS.

    Attributes:
        function: exported function name, e.g. ``"ShamrockSetWavelength"``.
        code: the status code (e.g. 20267).
        code_name: the vendor's name for it (e.g. ``"SHAMROCK_P2INVALID"``).
        text: the SDK's description of the code (``GetFunctionReturnDescription``), or "".
    """

    def __init__(self, function: str, code: int, code_name: str, text: str = "") -> None:
        self.function = function
        self.code = code
        self.code_name = code_name
        self.text = text
        detail = f": {text}" if text else ""
        super().__init__(f"{function}: {code_name} ({code}){detail}")


def check(sdk: "ShamrockSDK", function: str, code: int) -> None:
    """The one error check: raise :class:`ShamrockError` unless ``code`` is SUCCESS (20202)."""
    if int(code) != SUCCESS:
        raise ShamrockError(
            vendor_name(sdk.generation, function), int(code), status_name(sdk.generation, code),
            sdk.describe(int(code)),
        )


def detect_generation(lib: Any) -> str:
    """``"atspectrograph"`` if the library exports ``ATSpectrograph*`` names, else ``"shamrock"``.

    Raises:
        InstrumentError: the library exports neither ``ATSpectrographInitialize`` nor
            ``ShamrockInitialize``.
    """
    for generation in ("atspectrograph", "shamrock"):
        if hasattr(lib, vendor_name(generation, "Initialize")):
            return generation
    raise InstrumentError(
        f"spectrograph library {library_name(lib)} exports neither ATSpectrographInitialize "
        f"nor ShamrockInitialize: it is not Andor's atspectrograph / ShamrockCIF library"
    )


REQUIREMENT = "a newer Andor spectrograph SDK is required"


def _require(lib: Any, generation: str) -> None:
    require_functions(lib, vendor_names(generation), f"spectrograph library ({generation})", REQUIREMENT)


class ShamrockSDK(VendorLibrary):
    """The vendor library behind logical names: inputs in, outputs out, status checked.

    ``sdk.call("GetWavelengthLimits", device, grating)`` returns ``(min_nm, max_nm)``;
    a call with one output returns it alone, one with none returns None.  Thread-safe
    (one lock around every call).

    Args:
        lib: the loaded library (real, with prototypes applied, or simulated).
    """

    def __init__(self, lib: Any) -> None:
        self.generation = detect_generation(lib)
        _require(lib, self.generation)
        super().__init__(lib, prototypes_of(self.generation))

    def call(self, function: str, *inputs: Any) -> Any:
        """Call a logical function with its inputs; return its outputs; raise ShamrockError on failure."""
        code, outputs = self.invoke(vendor_name(self.generation, function), *inputs)
        check(self, function, code)
        return outputs

    def describe(self, code: int) -> str:
        """The SDK's description of a status code; "" if it has none.  Never raises."""
        try:
            status, text = self.invoke(vendor_name(self.generation, "GetFunctionReturnDescription"), int(code))
        except Exception:  # noqa: BLE001 - the error path must not hide the original error
            return ""
        return text if int(status) == SUCCESS else ""


# --- loading ------------------------------------------------------------------------------------
def default_library_names() -> tuple[str, ...]:
    """File names of the vendor library on this platform, newest generation first."""
    return CONSTANTS["library_names"][platform_key()]


def apply_prototypes(lib: Any) -> str:
    """Set ``restype`` (unsigned int) and ``argtypes`` of every declared function.

    Returns:
        The detected generation (``"shamrock"`` or ``"atspectrograph"``).

    Raises:
        InstrumentError: not a spectrograph library, or one lacking a needed function.
    """
    generation = detect_generation(lib)
    _require(lib, generation)
    apply_table(lib, prototypes_of(generation))
    return generation


def load_shamrock(path: str | None = None) -> Any:
    """Load the real spectrograph library and apply the prototypes.

    Looks at, in order: ``path`` (only it, if given); the environment variable
    ``LABCTL_SHAMROCK_LIBRARY``; the platform's library names (``atspectrograph.dll``,
    then ``ShamrockCIF64.dll``) on the system search path.  Uses ``ctypes.WinDLL``
    (stdcall) on Windows and ``ctypes.CDLL`` elsewhere.

    Raises:
        VendorLibraryNotFound: nothing could be loaded; the message names the library
            files looked for, every place tried and how to fix it.
    """
    lib = load_library(
        path, CONSTANTS["library_env_var"], default_library_names(), "Andor spectrograph library",
        "Install Andor's spectrograph SDK (or Solis; the library sits in its installation folder)",
        "library=SimShamrock(scene)",
    )
    apply_prototypes(lib)
    return lib

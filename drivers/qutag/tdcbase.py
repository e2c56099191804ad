"""Thin ctypes layer over qutools' ``tdcbase`` library (quTAG time-to-digital converter).

Three things live here and nowhere else:

* ``PROTOTYPES`` / ``GENERATION_PROTOTYPES``: the C prototypes of the vendor
  functions the driver calls, as ``{name: (restype, argument specs)}``;
* ``STATUS_NAMES`` and ``check()``: the one error check, which turns a non-zero
  status into a :class:`QuTAGError` carrying the function name, the vendor's name
  for the code and the text of ``TDC_perror(rc)``;
* ``CONSTANTS`` / ``LIMITS``: facts about the library and the device, the
  *unverified* ones marked so, in one place so that a lab can correct them.

:class:`TDCBase` calls a function with Python values and returns its outputs (and
fills the caller's numpy arrays); the driver never touches ctypes.  The library is
loaded lazily by :func:`load_tdcbase`; importing this module never touches the vendor
library.  The simulated library
(``sim_backends.qutag_sim.SimTDCBase``) implements the same function names.
"""

from __future__ import annotations

from ctypes import c_char_p, c_double, c_int, c_int32, c_int64, c_uint8
from typing import Any

import numpy as np

from drivers.errors import DriverError
from drivers.vendor_library import (
    Buffer,
    Out,
    Prototype,
    VendorLibrary,
    apply_prototypes as apply_table,
    load_library,
    platform_key,
    require_functions,
)

# --- C types of tdcdecl.h -------------------------------------------------------
Int32 = c_int32
Int64 = c_int64
Uint8 = c_uint8
Bln32 = c_int32
"""``Bln32`` is a 32-bit int used as a boolean (0 = false)."""

# --- prototypes (argument specs as in drivers.vendor_library) --------------------------
PROTOTYPES: dict[str, Prototype] = {
    "TDC_getVersion": (c_double, []),
    "TDC_perror": (c_char_p, [c_int]),
    "TDC_init": (c_int, [c_int]),
    "TDC_deInit": (c_int, []),
    "TDC_getTimebase": (c_int, [Out(c_double)]),
    "TDC_checkFeatures": (Int32, []),
    "TDC_configureSignalConditioning": (c_int, [Int32, c_int, Bln32, c_double]),
    "TDC_configureSyncDivider": (c_int, [Int32, Bln32]),
    "TDC_setExposureTime": (c_int, [Int32]),
    "TDC_setTimestampBufferSize": (c_int, [Int32]),
    # the caller's int64 / uint8 arrays of the buffer size, filled by the library
    "TDC_getLastTimestamps": (c_int, [Bln32, Buffer(Int64), Buffer(Uint8), Out(Int32)]),
    "TDC_getDataLost": (c_int, [Out(Bln32)]),
    "TDC_freezeBuffers": (c_int, [Bln32]),
}
"""Functions common to both library generations: ``{name: (restype, argtypes)}``."""

GENERATION_PROTOTYPES: dict[str, dict[str, Prototype]] = {
    # standard quTAG, library v1.5.x (tdcbase.h v1.15, 2019)
    "standard": {
        "TDC_enableChannels": (c_int, [Int32]),
        "TDC_setFiveChannelMode": (c_int, [Bln32]),
        "TDC_setChannelDelays": (c_int, [Buffer(Int32)]),
        "TDC_setDeadTime": (c_int, [Int32, Int32]),
    },
    # quTAG MC / HR library (tdcbase.h v1.8, 2022): one delay per call, no dead time
    "mc": {
        "TDC_enableChannels": (c_int, [Bln32, Int32]),
        "TDC_getChannelCount": (Int32, []),
        "TDC_setChannelDelay": (c_int, [Int32, Int32]),
    },
}
"""Functions whose presence or signature depends on the library generation."""


def all_function_names() -> set[str]:
    """Every vendor function name this layer declares (all generations)."""
    names = set(PROTOTYPES)
    for table in GENERATION_PROTOTYPES.values():
        names |= set(table)
    return names


# --- status codes ------------------------------------------------------------------
STATUS_NAMES: dict[int, str] = {
    0: "Ok",
    -1: "Error",
    1: "Timeout",
    2: "NotConnected",
    3: "DriverError",
    7: "DeviceLocked",
    8: "Unknown",
    9: "NoDevice",
    10: "OutOfRange",
    11: "CantOpen",
    12: "NotInitialized",
    13: "NotEnabled",
    14: "NotAvailable",
}
"""The vendor's names of the ``TDC_*`` return codes (tdcdecl.h)."""

TDC_OK = 0

# --- facts about library and device -------------------------------------------------
CONSTANTS: dict[str, Any] = {
    # File name of the library per platform; Linux name *unverified*
    # (public projects load "libtdcbase.so").
    "library_names": {"win32": "tdcbase.dll", "linux": "libtdcbase.so", "darwin": "libtdcbase.dylib"},
    "library_env_var": "LABCTL_QUTAG_LIBRARY",
    # Runtime dependencies to keep beside the library (*unverified*, from a public project).
    "library_dependencies": {"win32": "FTD3XX.dll", "linux": "libftd3xx.so"},
    # Generation rule (*unverified*): the MC/HR header declares TDC_getChannelCount,
    # the standard v1.5 header does not.
    "generation_marker_mc": "TDC_getChannelCount",
    # Feature flags of TDC_checkFeatures (standard header v1.5.2).
    "feature_flags": {"HBT": 0x1, "LIFETIME": 0x2, "3_CHAN": 0x4, "4_CHAN": 0x8, "5_CHAN": 0x10,
                      "MARKERS": 0x20, "FILTERS": 0x40, "EXTCLK": 0x80, "DEVSYNC": 0x100, "HIRES": 0x200},
    # Inputs handled by the driver: 0 = start input, 1..4 = stop inputs.
    "inputs": (0, 1, 2, 3, 4),
    # Length of the Int32 array given to TDC_setChannelDelays (standard library), index =
    # input number (*unverified*: header says "at least 5", getChannelDelays "at least 8").
    # The MC/HR library sets one delay per call (TDC_setChannelDelay); "mc" sizes the sim's table.
    "delay_array_length": {"standard": 8, "mc": 33},
    # Signal-conditioning codes (TDC_SignalCond).
    "signal_conditioning_codes": {"LVTTL": 1, "NIM": 2, "MISC": 3},
    # Channel number that input N carries in the TDC_getLastTimestamps stream.  labctl's
    # convention is 0 = start input, 1..4 = stop inputs, and this table maps the vendor's
    # numbers onto it (numbers not listed pass unchanged, e.g. markers 100..104).
    # Sources (docs/vendor_facts.md): tdcbase.h v1.15 and qutools' own example say the
    # stream's channels are "0...7 for channels 1...8" (MC/HR header: "0...31 for channels
    # 1...32"), so stop input N arrives as N-1; in five-channel mode the start input is
    # "used as regular channel 5", so it arrives as 4 (the start-input number is the one
    # entry no source states outright: *unverified on a device*, check with a known signal).
    "stream_channel_of_input": {0: 4, 1: 0, 2: 1, 3: 2, 4: 3},
}
"""Facts about the library; entries marked *unverified* in the comments need checking in a lab."""

LIMITS: dict[str, Any] = {
    # From the standard tdcbase.h v1.5.2 unless marked.
    "sync_divider_values": (1, 2, 4, 8),
    "threshold_v": (-2.0, 3.0),
    "delay_ps": (-100_000, 100_000),
    "exposure_time_ms": (0, 65535),
    "buffer_size_tags": (1, 1_000_000),
    "channel_mask_max": 0xFF,
    # *unverified*: the header only says "must be positive".
    "dead_time_ps": (0, 1_000_000),
}
"""Allowed ranges of device settings (used by the driver's validators and by the sim)."""


def stream_channel_tables() -> tuple[np.ndarray, np.ndarray]:
    """Lookup tables between the vendor's stream channel numbers and labctl's.

    Returns:
        ``(labctl_of_vendor, vendor_of_labctl)``: two ``uint8`` arrays of 256 entries,
        built from ``CONSTANTS["stream_channel_of_input"]``; numbers not listed map to
        themselves.  ``labctl_of_vendor[raw_channels]`` converts a block.
    """
    labctl_of_vendor = np.arange(256, dtype=np.uint8)
    vendor_of_labctl = np.arange(256, dtype=np.uint8)
    for labctl_channel, vendor_channel in CONSTANTS["stream_channel_of_input"].items():
        labctl_of_vendor[vendor_channel] = labctl_channel
        vendor_of_labctl[labctl_channel] = vendor_channel
    return labctl_of_vendor, vendor_of_labctl


# --- errors ------------------------------------------------------------------------
class QuTAGError(DriverError):
    """A ``TDC_*`` function returned a non-zero status.

    Attributes:
        function: vendor function name, e.g. ``"TDC_setTimestampBufferSize"``.
        code: the status code (e.g. 10).
        code_name: the vendor's name for it (e.g. ``"OutOfRange"``).
        text: the text of ``TDC_perror(code)``.
    """

    def __init__(self, function: str, code: int, text: str) -> None:
        self.function = function
        self.code = code
        self.code_name = STATUS_NAMES.get(code, "unknown status")
        self.text = text
        super().__init__(f"{function}: {self.code_name} ({code}): {text}")


def perror_text(lib: Any, code: int) -> str:
    """Text of ``TDC_perror(code)``, decoded; never raises."""
    try:
        raw = lib.TDC_perror(code)
    except Exception as exc:  # the error path must not hide the original error
        return f"(TDC_perror failed: {exc})"
    if isinstance(raw, bytes):
        return raw.decode("latin-1", errors="replace")
    return str(raw)


def check(lib: Any, function: str, rc: int) -> None:
    """The one error check: raise :class:`QuTAGError` if ``rc`` is not ``TDC_Ok`` (0)."""
    if rc != TDC_OK:
        raise QuTAGError(function, int(rc), perror_text(lib, int(rc)))


def detect_generation(lib: Any) -> str:
    """``"mc"`` for the quTAG MC/HR library, ``"standard"`` otherwise (rule in ``CONSTANTS``)."""
    return "mc" if hasattr(lib, CONSTANTS["generation_marker_mc"]) else "standard"


def prototypes_of(generation: str) -> dict[str, Prototype]:
    """Every function the driver calls in a library of ``generation``."""
    return {**PROTOTYPES, **GENERATION_PROTOTYPES[generation]}


REQUIREMENT = "a tdcbase library of version 1.5 or newer is required"


class TDCBase(VendorLibrary):
    """The tdcbase library (real or simulated) behind Python values: inputs in, outputs out, status checked.

    ``tdc.call("TDC_getTimebase")`` returns the timebase in s; ``tdc.value("TDC_getVersion")``
    returns a function's own return value.  Arrays are the caller's numpy arrays
    (``TDC_getLastTimestamps`` fills an ``int64`` and a ``uint8`` array).

    Attributes:
        generation: ``"standard"`` or ``"mc"`` (:func:`detect_generation`).

    Raises:
        InstrumentError: the library lacks a function of its generation.
    """

    def __init__(self, lib: Any) -> None:
        self.generation = detect_generation(lib)
        table = prototypes_of(self.generation)
        require_functions(lib, table, f"quTAG library ({self.generation} generation)", REQUIREMENT)
        super().__init__(lib, table)

    def call(self, function: str, *inputs: Any) -> Any:
        """Call a status-returning function; return its outputs (None, one value or a tuple); raise QuTAGError."""
        code, outputs = self.invoke(function, *inputs)
        check(self.lib, function, code)
        return outputs

    def value(self, function: str, *inputs: Any) -> Any:
        """Call a function that returns a value (``TDC_getVersion``, ``TDC_checkFeatures``); return it unchecked."""
        return self.invoke(function, *inputs)[0]


# --- loading -----------------------------------------------------------------------
def default_library_name() -> str:
    """File name of the vendor library on this platform (``tdcbase.dll``, ``libtdcbase.so``)."""
    return CONSTANTS["library_names"][platform_key()]


def apply_prototypes(lib: Any) -> str:
    """Set ``restype``/``argtypes`` of every declared function on a loaded library.

    Returns:
        The detected generation (``"standard"`` or ``"mc"``).

    Raises:
        InstrumentError: the library lacks a function the driver needs (wrong version).
    """
    generation = detect_generation(lib)
    table = prototypes_of(generation)
    require_functions(lib, table, f"quTAG library ({generation} generation)", REQUIREMENT)
    apply_table(lib, table)
    return generation


def load_tdcbase(path: str | None = None) -> Any:
    """Load the real tdcbase library and apply the prototypes.

    Looks at, in order: ``path``; the environment variable ``LABCTL_QUTAG_LIBRARY``;
    the platform's library name (``tdcbase.dll`` / ``libtdcbase.so``) on the system
    search path (PATH / LD_LIBRARY_PATH).  Uses ``ctypes.WinDLL`` (stdcall) on Windows
    and ``ctypes.CDLL`` elsewhere.

    Raises:
        VendorLibraryNotFound: nothing could be loaded; the message names the
            library file, every place tried and how to fix it.
    """
    name = default_library_name()
    dependency = CONSTANTS["library_dependencies"].get(platform_key(), "")
    lib = load_library(
        path, CONSTANTS["library_env_var"], (name,), "quTAG vendor library",
        f"Install the quTAG software (its userlib/lib folder holds {name}{' and ' + dependency if dependency else ''})",
        "library=SimTDCBase(scene)",
    )
    apply_prototypes(lib)
    return lib

"""What every thin vendor layer shares: the loader, the prototype tables and the call machinery.

A layer (``drivers/andor/atmcd.py``, ``drivers/qutag/tdcbase.py``,
``drivers/andor_shamrock/shamrock.py``) declares its functions as
``{exported name: (restype, argument specs)}``.  An argument spec is a ctypes type (an
input, passed as the Python value given) or one of:

* :class:`Out`: an output scalar; the layer passes ``byref(ctype())`` and returns its value;
* :class:`OutText`: an output ``char*`` buffer of ``size`` bytes, returned decoded (``str``);
* :class:`OutArray`: an output array the layer allocates, of the length given by the next
  input; returned as a numpy array;
* :class:`Buffer`: a numpy array the caller owns (an input array, or one the library
  fills), passed as a pointer to its data; its dtype's element size must match;
* :class:`Length`: the length of the preceding buffer (bytes of an ``OutText``, elements of
  a ``Buffer``), which the layer passes itself.

:class:`VendorLibrary` calls a function with the inputs only and returns ``(return value,
outputs)``: the drivers above it pass and receive Python values and numpy arrays, never
ctypes objects.  :func:`apply_prototypes` sets ``restype``/``argtypes`` from the same
table on a loaded library, :func:`require_functions` is the one check that a library
exports them, and :func:`load_library` the one loader (``ctypes.WinDLL`` on Windows,
``CDLL`` elsewhere) with the message that says how to fix a missing library.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from labctl.errors import InstrumentError, VendorLibraryNotFound


# --- argument specs ----------------------------------------------------------------------
@dataclass(frozen=True)
class Out:
    """An output scalar: the layer passes ``byref(ctype())`` and returns its value."""

    ctype: Any


@dataclass(frozen=True)
class OutText:
    """An output string: the layer passes a char buffer of ``size`` bytes and returns it decoded."""

    size: int = 256


@dataclass(frozen=True)
class OutArray:
    """An output array the layer allocates; its length is the next input of the call."""

    ctype: Any


@dataclass(frozen=True)
class Buffer:
    """A numpy array of the caller's, passed as ``ctype*`` (read or filled by the library)."""

    ctype: Any


@dataclass(frozen=True)
class Length:
    """An input the layer fills: the length of the preceding :class:`OutText` (bytes) or :class:`Buffer` (elements)."""

    ctype: Any = ctypes.c_int


Prototype = tuple[Any, list[Any]]
"""``(restype, argument specs)`` of one vendor function."""

_LAYER_FILLED = (Out, OutText, OutArray, Length)


def argtypes_of(specs: Iterable[Any]) -> list[Any]:
    """ctypes ``argtypes`` of an argument-spec list."""
    types: list[Any] = []
    for spec in specs:
        if isinstance(spec, (Out, OutArray, Buffer)):
            types.append(ctypes.POINTER(spec.ctype))
        elif isinstance(spec, OutText):
            types.append(ctypes.c_char_p)
        elif isinstance(spec, Length):
            types.append(spec.ctype)
        else:
            types.append(spec)
    return types


def _pointer_to(function: str, position: int, array: Any, ctype: Any) -> Any:
    """``array.ctypes.data_as(POINTER(ctype))``, after checking that the array fits the C type."""
    if not isinstance(array, np.ndarray) or not array.flags.c_contiguous or array.itemsize != ctypes.sizeof(ctype):
        got = f"{array.dtype} array" if isinstance(array, np.ndarray) else type(array).__name__
        raise TypeError(
            f"{function}: argument {position} must be a C-contiguous numpy array of {ctypes.sizeof(ctype)}-byte "
            f"elements ({ctype.__name__}); got {got}"
        )
    return array.ctypes.data_as(ctypes.POINTER(ctype))


def marshal(function: str, specs: list[Any], inputs: tuple[Any, ...]) -> tuple[list[Any], list[Any]]:
    """The C arguments of one call, and the objects the library writes its outputs into.

    Raises:
        TypeError: wrong number of inputs, or a buffer that does not fit its C type.
    """
    n_inputs = sum(1 for spec in specs if not isinstance(spec, _LAYER_FILLED))
    if len(inputs) != n_inputs:
        raise TypeError(f"{function} takes {n_inputs} inputs, got {len(inputs)}")
    args: list[Any] = []
    outputs: list[Any] = []
    pending = list(inputs)
    length = 0
    for position, spec in enumerate(specs, start=1):
        if isinstance(spec, Out):
            value = spec.ctype()
            outputs.append(value)
            args.append(ctypes.byref(value))
        elif isinstance(spec, OutText):
            text = ctypes.create_string_buffer(spec.size)
            outputs.append(text)
            args.append(text)
            length = spec.size
        elif isinstance(spec, Length):
            args.append(length)
        elif isinstance(spec, OutArray):
            array = (spec.ctype * max(int(pending[0]), 0))()  # the next input is its length
            outputs.append(array)
            args.append(array)
        elif isinstance(spec, Buffer):
            array = pending.pop(0)
            args.append(_pointer_to(function, position, array, spec.ctype))
            length = int(array.size)
        else:
            value = pending.pop(0)
            args.append(value.encode() if spec is ctypes.c_char_p and isinstance(value, str) else value)
    return args, outputs


def _output_value(output: Any) -> Any:
    if isinstance(output, ctypes.Array) and output._type_ is ctypes.c_char:
        return output.value.decode("latin-1", errors="replace").strip()
    if isinstance(output, ctypes.Array):
        return np.ctypeslib.as_array(output).copy()
    return output.value


def pack(outputs: list[Any]) -> Any:
    """Output values of a call: None for none, the value for one, a tuple for several."""
    values = [_output_value(output) for output in outputs]
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


# --- libraries ---------------------------------------------------------------------------
def library_name(lib: Any) -> str:
    """The file name of a loaded library (``lib._name``) or the repr of a simulated one."""
    return repr(getattr(lib, "_name", lib))


def require_functions(lib: Any, names: Iterable[str], what: str, requirement: str) -> None:
    """The one check that a library (real or simulated) exports every function a layer declares.

    Raises:
        InstrumentError: ``"<what> <library> lacks A, B: <requirement>"``.
    """
    missing = sorted(name for name in names if not hasattr(lib, name))
    if missing:
        raise InstrumentError(f"{what} {library_name(lib)} lacks {', '.join(missing)}: {requirement}")


def apply_prototypes(lib: Any, table: dict[str, Prototype]) -> None:
    """Set ``restype``/``argtypes`` of every function of ``table`` on a loaded library."""
    for name, (restype, specs) in table.items():
        func = getattr(lib, name)
        func.restype = restype
        func.argtypes = argtypes_of(specs)


class VendorLibrary:
    """A vendor library behind its prototype table: inputs in, ``(return value, outputs)`` out.

    Thread-safe: one lock around every call.  Subclasses add the vendor's status check.

    Args:
        lib: the loaded library (real, with prototypes applied, or simulated).
        table: ``{exported name: (restype, argument specs)}``.
    """

    def __init__(self, lib: Any, table: dict[str, Prototype]) -> None:
        self.lib = lib
        self._table = table
        self._lock = threading.RLock()

    def invoke(self, name: str, *inputs: Any) -> tuple[Any, Any]:
        """Call ``name`` with its inputs; return its return value (unchecked) and its outputs (see :func:`pack`)."""
        _, specs = self._table[name]
        args, outputs = marshal(name, specs, inputs)
        with self._lock:
            result = getattr(self.lib, name)(*args)
        return result, pack(outputs)


# --- loading -----------------------------------------------------------------------------
def platform_key() -> str:
    """``"win32"``, ``"darwin"`` or ``"linux"``: the key of the layers' library-name tables."""
    if sys.platform.startswith("win"):
        return "win32"
    if sys.platform == "darwin":
        return "darwin"
    return "linux"


def library_candidates(path: str | None, env_var: str, default_names: Iterable[str]) -> list[str]:
    """Where to look for a vendor library: ``path`` if given, else ``$env_var`` if set, else the default names."""
    if path:
        return [path]
    if os.environ.get(env_var):
        return [os.environ[env_var]]
    return list(default_names)


def load_first(candidates: list[str]) -> tuple[Any | None, list[str]]:
    """Load the first candidate that loads (``ctypes.WinDLL`` on Windows, ``CDLL`` elsewhere).

    Returns:
        (the library or None, one text per failed candidate naming it and the OS error).
    """
    loader = getattr(ctypes, "WinDLL") if platform_key() == "win32" else ctypes.CDLL
    failures: list[str] = []
    for candidate in candidates:
        try:
            return loader(candidate), failures
        except OSError as exc:
            where = "" if os.sep in candidate or "/" in candidate else " on the system library search path (PATH / LD_LIBRARY_PATH)"
            failures.append(f"{candidate!r}{where} ({exc})")
    return None, failures


def load_library(path: str | None, env_var: str, names: tuple[str, ...], what: str, install: str, simulated: str) -> Any:
    """The one loader of a vendor library: ``path``, else ``$env_var``, else ``names`` on the search path.

    Args:
        path: the library file given by the caller, or None.
        env_var: environment variable naming the file (e.g. ``LABCTL_ANDOR_LIBRARY``).
        names: the platform's file names, preferred first.
        what: what the library is, for the message (e.g. ``"Andor SDK2 library"``).
        install: how to install it, for the message.
        simulated: how to run without it, for the message (e.g. ``"library=SimAndorSDK(scene)"``).

    Raises:
        VendorLibraryNotFound: nothing could be loaded; the message names the library
            files, every place tried and how to fix it.
    """
    lib, failures = load_first(library_candidates(path, env_var, names))
    if lib is not None:
        return lib
    wanted = " or ".join(repr(name) for name in names)
    raise VendorLibraryNotFound(
        f"{what} {wanted} could not be loaded: tried {'; '.join(failures)}. {install}, then pass "
        f"library_path='/path/to/{names[0]}', or set {env_var}=/path/to/{names[0]}, or put its folder on "
        f"the library search path; for a simulated instrument pass {simulated}"
    )

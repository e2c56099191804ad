"""ctypes arguments of the simulated vendor libraries: scalars in, values and arrays out.

``num`` and ``store`` are the scalar conventions every simulated library shares;
``store_text`` fills a caller's char buffer.
``copy_out`` copies an output array into the caller's ctypes array.

``np.ctypeslib.as_array(pointer, shape=(n,))`` would be the obvious way, but every
new ``n`` makes two ctypes types (``c_int64 * n`` and a pointer to it) that ctypes
caches for the life of the process: a read of a varying number of tags per poll
leaked ~2 kB per poll.  ``copy_out`` copies the bytes instead.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np


def num(arg: Any) -> Any:
    """A Python value from a plain value or a ctypes scalar."""
    return arg.value if isinstance(arg, ctypes._SimpleCData) else arg


def store(out: Any, value: float | int) -> None:
    """Write an output value through ``byref(x)`` or a ``POINTER`` instance."""
    target = out._obj if hasattr(out, "_obj") else out.contents
    target.value = value


def store_text(buffer: Any, text: str, size: int | None = None) -> None:
    """Copy ``text`` into a caller's char buffer, truncated to its size (NUL-terminated).

    ``size``: the buffer size the caller declares (the C API's max-length argument); None = the
    buffer's own size.
    """
    capacity = ctypes.sizeof(buffer) if size is None else min(int(size), ctypes.sizeof(buffer))
    raw = text.encode("latin-1")[: max(capacity - 1, 0)]
    ctypes.memmove(buffer, raw + b"\0", len(raw) + 1)


def copy_out(pointer: Any, values: np.ndarray) -> None:
    """Copy ``values`` into the memory behind ``pointer`` (a ctypes ``POINTER(c_<type>)`` instance).

    Raises:
        TypeError: the element size of ``pointer`` and ``values`` differ.
    """
    values = np.ascontiguousarray(values)
    element_bytes = ctypes.sizeof(pointer._type_)
    if element_bytes != values.itemsize:
        raise TypeError(f"copy_out: {values.dtype} values into a pointer to {pointer._type_.__name__} "
                        f"({element_bytes} bytes each): element sizes differ")
    if values.size:
        ctypes.memmove(pointer, values.ctypes.data, values.nbytes)

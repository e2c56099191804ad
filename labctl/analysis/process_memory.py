"""Keep freed memory in the process for reuse (glibc ``mallopt``): for ``labctl analyze``'s fit worker.

The decay fit makes arrays of ~10^4 numbers a few hundred times.  By default glibc
gives freed memory at the top of the heap back to the system (trim threshold
128 kB) and serves allocations above 128 kB with a fresh ``mmap``: a fresh
process then faults in and zeroes new pages for much of its first fit.  Raising
the mmap threshold to 32 MiB and the trim threshold to 256 MiB keeps that memory
for reuse: the worker's answer to a 10^4-bin mono fit came after 0.03-0.13 s
(median 0.07 s) instead of 0.09-0.22 s (median 0.13 s; six alternated pairs on
a loaded 2-core machine).  In the ``labctl analyze`` process itself the same
settings changed neither its page faults nor its CPU time (measured), so it is
not used there.  The price, up to 256 MiB of freed memory kept until the process
ends, suits a process that ends after one request.  Values are unchanged; on a
C library without ``mallopt`` (macOS, Windows, musl) nothing is done.
"""

from __future__ import annotations

import ctypes

__all__ = ["keep_freed_memory_for_reuse", "mallopt", "M_MMAP_THRESHOLD", "MMAP_THRESHOLD_BYTES",
           "TRIM_THRESHOLD_BYTES", "TOP_PAD_BYTES"]

MMAP_THRESHOLD_BYTES = 32 << 20
"""Allocations up to this size come from the heap (glibc's largest allowed threshold on 64-bit)."""
TRIM_THRESHOLD_BYTES = 256 << 20
"""Free memory at the top of the heap kept for reuse, up to this much."""
TOP_PAD_BYTES = 64 << 20
"""Extra memory asked of the system each time the heap grows."""

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
"""mallopt parameter numbers (glibc ``<malloc.h>``)."""


def mallopt(option: int, value: int) -> bool:
    """glibc's ``mallopt(option, value)`` for this process; True if the C library took it.

    False where the C library the interpreter runs on has no ``mallopt`` (macOS, Windows,
    musl) or refuses the value: nothing changes.  The one access to ``mallopt`` in labctl
    (also ``labctl.acquisition.malloc_tuning``'s).
    """
    try:
        function = ctypes.CDLL(None).mallopt  # the C library the interpreter runs on
    except (OSError, AttributeError, TypeError):
        return False
    function.argtypes = [ctypes.c_int, ctypes.c_int]
    function.restype = ctypes.c_int
    return function(int(option), int(value)) == 1


def keep_freed_memory_for_reuse() -> bool:
    """Set glibc's mmap threshold, trim threshold and top pad for this process; True if all were set.

    False (nothing, or not all, set) where the C library has no ``mallopt`` or refuses a value.
    """
    settings = ((M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES), (M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES),
                (M_TOP_PAD, TOP_PAD_BYTES))
    return all([mallopt(option, value) for option, value in settings])

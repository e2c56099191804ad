"""A fixed glibc mmap threshold, so that large buffers freed during a run go back to the system.

glibc serves allocations above its mmap threshold (128 KiB at start) with ``mmap`` and
returns them with ``munmap`` when freed, but it raises the threshold to the size of every
such block freed (up to 32 MiB).  After the first seconds of a run, the engine's per-poll
buffers (tag and photon arrays, 0.1-2 MB) therefore come from the heap, whose high-water
mark and fragmentation kept growing for several minutes.  Fixing the threshold (which
also turns the dynamic adjustment off) keeps them on ``mmap``.  Measured with
``benchmarks/soak.py`` (RSS growth from minute 1 to 6, less the live-trace data):
+6.9 MiB with the dynamic threshold, +4.8 MiB with a fixed one.
"""

from __future__ import annotations

import ctypes
import sys

M_MMAP_THRESHOLD = -3
"""mallopt parameter number (glibc ``malloc.h``)."""

_done = False


def fix_mmap_threshold(threshold_bytes: int = 128 * 1024) -> bool:
    """Set glibc's mmap threshold to ``threshold_bytes`` once per process.

    Returns:
        True if it was set (now or before); False where there is no glibc ``mallopt``
        (other platforms or C libraries: nothing changes).
    """
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _done = bool(mallopt(M_MMAP_THRESHOLD, int(threshold_bytes)))
    return _done

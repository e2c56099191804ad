"""Memory settings for long runs: a fixed glibc mmap threshold, and no transparent huge pages.

``tune_for_long_runs`` (called by the engine when a run starts) applies both, once per process.

**mmap threshold.**

glibc serves allocations above its mmap threshold (128 KiB at start) with ``mmap`` and
returns them with ``munmap`` when freed, but it raises the threshold to the size of every
such block freed (up to 32 MiB).  After the first seconds of a run, the engine's per-poll
buffers (tag and photon arrays, 0.1-2 MB) therefore come from the heap, whose high-water
mark and fragmentation kept growing for several minutes.  Fixing the threshold (which
also turns the dynamic adjustment off) keeps them on ``mmap``.  Measured with
``benchmarks/soak.py`` (RSS growth from minute 1 to 6, less the live-trace data):
+6.9 MiB with the dynamic threshold, +4.8 MiB with a fixed one.

**Transparent huge pages.** numpy asks the kernel for huge pages (``madvise``) on every
array of 4 MiB or more, and with THP in ``madvise`` or ``always`` mode the kernel then maps
2 MiB at the first touch of each 2 MiB region, and its ``khugepaged`` later collapses
partly used regions into huge pages.  The live trace and FLID row stores grow by doubling
and are written front to back: once they pass 4 MiB (11, 22 and 44 minutes into a run) the
resident memory ran up to 2 MiB ahead of the rows written, per store, and at every doubling
(the irregular 2-4 MiB steps of the 1-hour soak).  Measured with an emulation of the two
stores (``benchmarks/soak.py`` subtracts their rows): resident beyond the rows +2.8 MiB after
an hour (+3.6 MiB at its worst, minute 50) with huge pages, +0.25 MiB throughout without.
``prctl(PR_SET_THP_DISABLE)`` turns THP off for the whole process (both modes, numpy's
``madvise`` included); results are unchanged, large-array operations lose the TLB benefit.
"""

from __future__ import annotations

import ctypes
import sys

from labctl.analysis.process_memory import M_MMAP_THRESHOLD, mallopt

PR_SET_THP_DISABLE = 41
PR_GET_THP_DISABLE = 42
"""prctl options (Linux ``prctl.h``, since 3.15)."""

_done = False


def tune_for_long_runs() -> tuple[bool, bool]:
    """Apply both settings of the module docstring (once per process; later calls change nothing).

    Returns:
        (mmap threshold fixed, transparent huge pages off); False where the platform has no such setting.
    """
    return fix_mmap_threshold(), disable_transparent_huge_pages()


def disable_transparent_huge_pages() -> bool:
    """Turn transparent huge pages off for this process (``prctl(PR_SET_THP_DISABLE, 1)``).

    Returns:
        True if they are off (now or before); False where there is no such ``prctl`` (not Linux, or a
        kernel before 3.15): nothing changes.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        prctl = ctypes.CDLL(None).prctl
    except (OSError, AttributeError):
        return False
    prctl.restype = ctypes.c_int
    if prctl(ctypes.c_int(PR_GET_THP_DISABLE), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0),
             ctypes.c_ulong(0)) == 1:
        return True
    return prctl(ctypes.c_int(PR_SET_THP_DISABLE), ctypes.c_ulong(1), ctypes.c_ulong(0), ctypes.c_ulong(0),
                 ctypes.c_ulong(0)) == 0


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
    _done = mallopt(M_MMAP_THRESHOLD, threshold_bytes)
    return _done

"""Start numba's CPU target without importing ``scipy.linalg`` (``labctl analyze`` does it first thing).

The first call of any numba kernel in a process, even one loaded from the on-disk
cache, initialises numba's CPU target; among other things it imports
``numba.np.arraymath``, whose module-level ``_check_blas()`` imports
``scipy.linalg.cython_blas`` and with it all of ``scipy.linalg`` (0.12 s of a
1.0 s ``labctl analyze`` on an idle machine, 0.34 s on a loaded one; measured).
numba uses the answer (``arraymath._HAVE_BLAS``) for one thing only: whether
``np.convolve`` / ``np.correlate`` of floats, compiled in this process, call BLAS
for their inner products or a loop.  labctl's kernels use neither
(``tests/test_numba_start.py`` checks their sources), so they compile and run the
same; numba's linear algebra (``np.dot``, ``np.linalg``) imports scipy's BLAS
itself when it is compiled, as before.
"""

from __future__ import annotations

import sys

__all__ = ["start_numba_without_scipy_blas"]

_BLAS_MODULE = "scipy.linalg.cython_blas"


def start_numba_without_scipy_blas() -> bool:
    """Initialise numba's CPU target now, with ``scipy.linalg.cython_blas`` unimportable meanwhile.

    Returns True if it did so; False (nothing done) where the target's modules are loaded already
    or scipy's BLAS is imported anyway (nothing to save).  ``sys.modules`` is restored in any case.
    For a process's start (``labctl analyze``), before other threads run: a thread importing
    scipy.linalg meanwhile would fail.
    """
    if "numba.np.arraymath" in sys.modules or _BLAS_MODULE in sys.modules:
        return False
    from numba.core.compiler_lock import global_compiler_lock
    from numba.core.registry import cpu_target

    with global_compiler_lock:  # as numba holds it when it starts the target for a kernel
        sys.modules[_BLAS_MODULE] = None  # type: ignore[assignment]  # its import raises ImportError: "no BLAS"
        try:
            cpu_target.target_context.refresh()
        finally:
            if sys.modules.get(_BLAS_MODULE, 0) is None:
                del sys.modules[_BLAS_MODULE]
    return True

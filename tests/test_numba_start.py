"""``labctl analyze`` starts numba without importing scipy.linalg (issue 13, "Faster start and analysis"),
which is harmless only while no labctl kernel uses what numba would then do without BLAS."""

from __future__ import annotations

import importlib
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FRESH_PROCESS = """
import sys
import numpy as np
from labctl.analysis.numba_start import start_numba_without_scipy_blas
first = start_numba_without_scipy_blas()
no_linalg = "scipy.linalg" not in sys.modules and "scipy.linalg.cython_blas" not in sys.modules
from labctl.analysis._kernels import channel_counts
detectors = np.array([0, 3, 3, 255, 7, 3], np.uint8)
counts_ok = np.array_equal(channel_counts(detectors), np.bincount(detectors, minlength=256))
import numba.np.arraymath
import scipy.linalg.cython_blas  # importable again, as before
print(first, no_linalg, counts_ok, numba.np.arraymath._HAVE_BLAS, start_numba_without_scipy_blas())
"""


def test_numba_starts_without_scipy_linalg_and_the_kernels_run_and_scipy_imports_after():
    out = subprocess.run([sys.executable, "-c", FRESH_PROCESS], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["True", "True", "True", "False", "False"]


def test_nothing_is_done_where_numba_is_started_already():
    from labctl.analysis._kernels import channel_counts
    from labctl.analysis.numba_start import start_numba_without_scipy_blas

    channel_counts(__import__("numpy").zeros(3, "uint8"))  # numba's target is started in this process
    before = dict(sys.modules)
    assert start_numba_without_scipy_blas() is False
    assert sys.modules.keys() == before.keys()


def _kernel_modules() -> list[str]:
    """The modules of labctl and sim_backends whose source defines numba kernels (``@kernel``, or plain numba)."""
    names = []
    for package in ("labctl", "sim_backends"):
        for path in sorted((ROOT / package).rglob("*.py")):
            text = path.read_text()
            if "@kernel(" in text or "@njit" in text or "numba.njit" in text or "@jit" in text:
                names.append(".".join(path.relative_to(ROOT).with_suffix("").parts))
    return names


@pytest.mark.parametrize("module", _kernel_modules())
def test_no_kernel_uses_what_numba_compiles_differently_without_blas(module):
    """Without scipy's BLAS at numba's start, ``np.convolve`` / ``np.correlate`` of floats compiled in the
    process would use a loop instead of BLAS (other sums, other rounding): no labctl kernel may use them."""
    from numba.core.dispatcher import Dispatcher

    from labctl.analysis.kernel_backend import Kernel

    kernels = {name: obj for name, obj in vars(importlib.import_module(module)).items()
               if isinstance(obj, (Kernel, Dispatcher))}
    assert kernels, f"{module} names numba but defines no kernel"
    for name, kernel in kernels.items():
        source = inspect.getsource(kernel.py_func)
        for word in ("convolve", "correlate"):
            assert word not in source, f"{module}.{name} uses np.{word}: see labctl/analysis/numba_start.py"

"""``labctl analyze``'s fits in a worker process (issue 13, "Faster start and analysis"): the same result as
in this process, the same result when the worker fails in any way, and no worker left behind."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import labctl.analysis.fit_process as fit_process
from labctl.analysis.analyze import AnalyzeOptions, analyze_file
from labctl.analysis.fit_process import FitProcess
from tests.photon_hdf5_files import write_ps_h5py

PERIOD_PS = 1_000_000
OPTIONS = AnalyzeOptions(g2_range_ps=3_000_000, g2_bin_ps=10_000, per_detector_fits=True)


@pytest.fixture(scope="module")
def small_file(tmp_path_factory) -> Path:
    """Two detectors, 30 000 photons on 1 MHz pulses, 20 ns decay: g2, lifetime, three fits, trace, FLID."""
    rng = np.random.default_rng(7)
    n = 30_000
    ts = np.sort(rng.integers(0, 3_000_000, n)) * PERIOD_PS + (2_000 + rng.exponential(20_000, n)).astype(np.int64)
    ts.sort()
    path = tmp_path_factory.mktemp("fit_process") / "small.h5"
    write_ps_h5py(path, ts, rng.integers(0, 2, n).astype(np.uint8), nanotimes_ps=ts % PERIOD_PS, period_ps=PERIOD_PS)
    return path


@pytest.fixture(scope="module")
def in_process(small_file) -> dict:
    return analyze_file(small_file, OPTIONS)


def gone(pid: int) -> bool:
    """The process ``pid`` has ended and was reaped (no zombie left)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def no_fit_here(*args, **kwargs):
    raise AssertionError("the fits ran in this process, not in the worker")


def test_the_worker_gives_exactly_the_in_process_result(small_file, in_process, monkeypatch):
    assert len(in_process["lifetime"]["detector_fits"]) == 2 and in_process["lifetime"]["fit"]["tau_ns"]
    monkeypatch.setattr(fit_process, "fit_histograms", no_fit_here)  # the fallback: must not be needed
    worker = FitProcess()
    try:
        by_worker = analyze_file(small_file, OPTIONS, fit_process=worker)
    finally:
        worker.close()
    assert by_worker == in_process
    assert worker.pid is not None and gone(worker.pid)


WORKER_FAILURES = {
    "cannot start": ["/nonexistent/python3"],
    "exits at once": [sys.executable, "-c", "pass"],
    "dies on the request": [sys.executable, "-c", "import os, sys; sys.stdin.buffer.read(10); os._exit(3)"],
    "answers garbage": [sys.executable, "-c", "import sys; sys.stdin.buffer.read(); sys.stdout.write('garbage')"],
    "answers an error": [sys.executable, "-c", "import pickle, sys; sys.stdin.buffer.read(); "
                                               "sys.stdout.buffer.write(pickle.dumps(('error', 'boom')))"],
    "answers too late": [sys.executable, "-c", "import time; time.sleep(60)"],
}


@pytest.mark.parametrize("failure", list(WORKER_FAILURES))
def test_a_failing_worker_leaves_the_fits_to_this_process_with_the_same_result(small_file, in_process, failure,
                                                                               monkeypatch):
    monkeypatch.setattr(fit_process, "FIT_TIMEOUT_S", 1.0)
    worker = FitProcess(WORKER_FAILURES[failure])
    assert (worker.pid is None) == (failure == "cannot start")
    try:
        result = analyze_file(small_file, OPTIONS, fit_process=worker)
    finally:
        worker.close()
    assert result == in_process
    assert worker.pid is None or gone(worker.pid)


def test_a_fit_that_warns_in_the_worker_is_fitted_again_here(monkeypatch):
    """The worker answers "error" for a fit that warned: here the warning shows as without a worker."""
    script = ("import warnings, labctl.analysis.fit_process as m; "
              "m.fit_histograms = lambda *a: (warnings.warn('probe warning'), [])[1]; "
              "import os; os._exit(m._serve())")
    worker = FitProcess([sys.executable, "-c", script])
    fitted_here = []
    monkeypatch.setattr(fit_process, "fit_histograms", lambda *a: fitted_here.append(a) or [{"tau_ns": [1.0]}])
    assert worker.fit([np.arange(5)], np.arange(6.0), "mono", 100) == [{"tau_ns": [1.0]}]
    assert len(fitted_here) == 1 and worker.pid is not None and gone(worker.pid)


def test_the_worker_runs_blas_on_one_thread_and_imports_this_checkouts_code():
    script = ("import os, pickle, sys; import numpy, labctl; from threadpoolctl import threadpool_info; "
              "sys.stdin.buffer.read(); blas = {i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas'}; "
              "sys.stdout.buffer.write(pickle.dumps(('fits', [sorted(blas), labctl.__file__])))")
    blas_threads, labctl_file = FitProcess([sys.executable, "-c", script]).fit([], np.arange(2.0), "mono", 1)
    assert blas_threads == [1]
    assert Path(labctl_file).resolve() == Path(fit_process.__file__).resolve().parents[1] / "__init__.py"


def test_close_kills_a_worker_that_was_never_asked_and_a_second_close_is_harmless():
    worker = FitProcess([sys.executable, "-c", "import time; time.sleep(60)"])
    pid = worker.pid
    assert pid is not None and not gone(pid)
    with worker:
        pass
    assert gone(pid)
    worker.close()


def test_the_worker_imports_no_numba_and_answers_nothing_without_a_request():
    """``labctl.analysis`` loads its accumulators lazily: the worker's imports are the fit's alone."""
    script = ("import sys, labctl.analysis.fit_process as m; code = m._serve(); "
              "print('numba' in sys.modules, 'scipy.optimize' in sys.modules, code, file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", script], input=b"", capture_output=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(Path(fit_process.__file__).resolve().parents[2])})
    assert out.stdout == b""
    assert out.stderr.decode().split() == ["False", "True", "0"]


CLI_CHECK = """
import os, sys
import labctl.analysis.fit_process as m
pids = []
real = m.FitProcess.__init__
def recorded(self, *args, **kwargs):
    real(self, *args, **kwargs)
    pids.append(self.pid)
m.FitProcess.__init__ = recorded
here = []
fit_here = m.fit_histograms
m.fit_histograms = lambda *args: here.append(1) or fit_here(*args)  # the fallback's fits
from labctl.cli import main
code = main(sys.argv[1:])
children = [p for p in os.listdir("/proc") if p.isdigit() and os.path.exists(f"/proc/{p}/stat")
            and open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1] == str(os.getpid())]
blas = getattr(sys.modules.get("numba.np.arraymath"), "_HAVE_BLAS", None)  # False: numba started without scipy.linalg
print("workers", len(pids), "children", len(children), "fitted here", len(here), "numba BLAS", blas)
sys.exit(code)
"""


def labctl_checked(*args: str) -> subprocess.CompletedProcess:
    """``labctl ARGS`` in a fresh process (the worker is started there) that prints, last, how many fit
    workers it started, how many child processes (running or not reaped) it has left, how many
    times it fitted in its own process (the fallback) and whether numba started with scipy's BLAS."""
    env = {**os.environ, "PYTHONPATH": str(Path(fit_process.__file__).resolve().parents[2])}
    return subprocess.run([sys.executable, "-c", CLI_CHECK, *args], capture_output=True, text=True, timeout=120,
                          env=env)


def test_labctl_analyze_fits_in_the_worker_and_leaves_no_process(small_file, in_process, tmp_path):
    out = labctl_checked("analyze", str(small_file), "--g2-range-ps", "3000000", "--g2-bin-ps", "10000",
                         "--per-detector-fits", "--json", str(tmp_path / "a.json"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "workers 1 children 0 fitted here 0 numba BLAS False"
    import json

    assert json.loads((tmp_path / "a.json").read_text()) == json.loads(json.dumps(in_process, allow_nan=False))


@pytest.mark.parametrize("case", ["not HDF5", "bad option for the file"])
def test_labctl_analyze_on_bad_input_one_line_exit_2_and_no_worker_left(small_file, tmp_path, case):
    (tmp_path / "random.h5").write_bytes(np.random.default_rng(0).bytes(5000))
    args = {"not HDF5": [str(tmp_path / "random.h5")],
            "bad option for the file": [str(small_file), "--trace-bin-ms", "1e-7"]}[case]
    out = labctl_checked("analyze", *args)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("labctl analyze: ") and args[0] in lines[0], out.stderr
    assert out.stdout.strip().splitlines()[-1] == "workers 1 children 0 fitted here 0 numba BLAS False"


def test_a_fit_process_is_started_only_where_the_fit_code_is_not_loaded(monkeypatch):
    import labctl.analysis.fit  # noqa: F401

    assert fit_process.fit_process_if_useful() is None
    monkeypatch.delitem(sys.modules, "labctl.analysis.fit")
    worker = fit_process.fit_process_if_useful()
    try:
        assert worker is not None and worker.pid is not None
    finally:
        worker.close()


def test_the_request_and_answer_are_plain_data():
    """The answer is unpickled here without importing anything (no scipy in this process for it)."""
    worker = FitProcess()
    counts = np.bincount(np.minimum((np.random.default_rng(3).exponential(20.0, 20_000)).astype(int), 199),
                         minlength=200).astype(np.int64)
    try:
        fits = worker._ask(([counts], np.arange(201, dtype=np.float64) * 500.0, "mono", 100_000))
    finally:
        worker.close()
    assert fits is not None and fits == fit_process.fit_histograms([counts], np.arange(201.0) * 500.0, "mono", 100_000)
    assert all(type(v) in (str, float, int, bool, list, type(None)) for v in fits[0].values())
    assert pickle.loads(pickle.dumps(fits)) == fits


@pytest.mark.skipif(__import__("platform").libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_the_worker_keeps_freed_memory_for_reuse_on_glibc():
    script = ("import ctypes, numpy as np; from labctl.analysis.process_memory import keep_freed_memory_for_reuse as k; "
              "ok = k(); a = np.ones(10**7); a += 1; print(ok, a.sum())")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(Path(fit_process.__file__).resolve().parents[2])})
    assert out.stdout.split() == ["True", "20000000.0"], out.stderr

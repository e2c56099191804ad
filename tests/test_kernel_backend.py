"""numba kernels or numpy ones: the numpy versions agree exactly, and the choice follows numba's cache.

The first run after an install runs the numpy versions while a background process compiles the
numba kernels for the next run (labctl.analysis.kernel_backend; issue 13, "Faster start").
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labctl.analysis import _kernels as K
from labctl.analysis import kernel_backend

REPO = Path(__file__).resolve().parents[1]
INT64_MIN = np.int64(np.iinfo(np.int64).min)


def both(kernel, *args):
    """(numba result, numpy result), each on its own copy of the arguments (some kernels add in place)."""
    copies = [[a.copy() if isinstance(a, np.ndarray) else a for a in args] for _ in range(2)]
    return (kernel.numba(*copies[0]), copies[0]), (kernel.numpy(*copies[1]), copies[1])


def photon_stream(seed: int, n: int, channels=(1, 2, 5)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ts = np.sort(rng.integers(0, 50_000_000, n)).astype(np.int64)
    if n:
        ts[: n // 5] = ts[0]  # ties
    det = rng.choice(np.array(channels, np.uint8), n)
    nt = rng.integers(-1, 120_000, n).astype(np.int32)
    return ts, det, nt


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32), st.integers(0, 400), st.integers(0, 5), st.booleans())
def test_split_two_detectors_numba_and_numpy_agree(seed, n, n_tail, back):
    ts, det, _ = photon_stream(seed, n)
    if back and n > 3:
        ts[n // 2] = ts[0] - 1  # time goes back: both say so
    tail_a = np.arange(n_tail, dtype=np.int64) - 100
    tail_b = np.arange(n_tail + 1, dtype=np.int64) - 50
    (got, _), (want, _) = both(K.split_two_detectors, ts, det, 1, 2, tail_a, tail_b, np.int64(-1000))
    assert got[2] == want[2] == (not (back and n > 3))
    if got[2]:
        for g, w in zip(got[:2], want[:2]):
            np.testing.assert_array_equal(g, w)
            assert g.dtype == w.dtype == np.int64


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32), st.integers(0, 300), st.integers(0, 40), st.integers(0, 40),
       st.sampled_from([(2_500_000, 1000), (300_006, 7), (5_000, 5_000)]))  # range: whole bins, as G2Accumulator requires
def test_pair_counts_numba_and_numpy_agree(seed, n, old_a, old_b, window):
    range_ps, width_ps = window
    rng = np.random.default_rng(seed)
    a = np.sort(rng.integers(0, 3_000_000, n)).astype(np.int64)
    b = np.sort(rng.integers(0, 3_000_000, n + 3)).astype(np.int64)
    counts = rng.integers(0, 3, 2 * range_ps // width_ps).astype(np.int64)
    (_, got), (_, want) = both(K.add_pair_counts, a, b, min(old_a, a.size), min(old_b, b.size), np.int64(range_ps),
                               np.int64(width_ps), counts)
    np.testing.assert_array_equal(got[6], want[6])


def test_pair_counts_numpy_version_on_a_case_worked_by_hand():
    """a = 0, 10; b = 5, 30; range 20, bin 10: lags 5 (bin 2), -5 (bin 1), 30 out, 20 out -> bins [0, 1, 1, 0]."""
    counts = np.zeros(4, np.int64)
    K.add_pair_counts.numpy(np.array([0, 10], np.int64), np.array([5, 30], np.int64), 0, 0, np.int64(20),
                            np.int64(10), counts)
    assert counts.tolist() == [0, 1, 1, 0]
    counts[:] = 0  # a[0] and b[0] are old: their pair (lag 5) was counted before
    K.add_pair_counts.numpy(np.array([0, 10], np.int64), np.array([5, 30], np.int64), 1, 1, np.int64(20),
                            np.int64(10), counts)
    assert counts.tolist() == [0, 1, 0, 0]


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32), st.integers(0, 500), st.sampled_from([100, 1000, 7]))
def test_nanotime_histograms_numba_and_numpy_agree(seed, n, width):
    _, det, nt = photon_stream(seed, n)
    code_of = K.code_table([2, 1])
    counts = np.zeros((2, 50), np.int64)
    (_, got), (_, want) = both(K.add_nanotime_histograms, det, nt, code_of, np.int64(width), counts,
                               np.zeros(2, np.int64), np.zeros(2, np.int64))
    for g, w in zip(got[4:], want[4:]):
        np.testing.assert_array_equal(g, w)
    assert got[4].sum() + got[5].sum() + got[6].sum() == np.count_nonzero(det != 5)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32), st.integers(1, 500), st.integers(0, 3), st.booleans(), st.booleans())
def test_time_bins_numba_and_numpy_agree(seed, n, first_bin, with_nanotimes, too_few_rows):
    ts, det, nt = photon_stream(seed, n)
    origin, bin_ps = int(ts[0]) - 5, 1_000_000
    n_rows = max(int(ts[-1] - origin) // bin_ps - first_bin + 1, 1) - (1 if too_few_rows else 0)
    n_rows = max(n_rows, 1)
    args = (ts, det, nt, K.code_table([1, 2]), np.int64(origin), np.int64(bin_ps), np.int64(first_bin), ts[0],
            np.zeros((n_rows, 2), np.int64), np.zeros(n_rows, np.int64), np.zeros(n_rows, np.int64), np.int64(30_000),
            with_nanotimes)
    (ok, got), (ok_numpy, want) = both(K.add_time_bins, *args)
    assert ok == ok_numpy
    if ok:
        for g, w in zip(got[8:11], want[8:11]):
            np.testing.assert_array_equal(g, w)
        assert got[8].sum() == np.count_nonzero(det != 5)


def test_time_bins_both_refuse_time_going_back():
    ts = np.array([10, 20, 15], np.int64)
    args = (ts, np.ones(3, np.uint8), np.zeros(3, np.int32), K.code_table([1]), np.int64(0), np.int64(100),
            np.int64(0), np.int64(0), np.zeros((1, 1), np.int64), np.zeros(1, np.int64), np.zeros(1, np.int64),
            np.int64(0), True)
    (ok, _), (ok_numpy, _) = both(K.add_time_bins, *args)
    assert ok is False and ok_numpy is False


# ----------------------------------------------------------------------------- the choice

TINY_KERNEL = '''
import numpy as np
from labctl.analysis.kernel_backend import kernel


def double_numpy(x):
    return x * 2


@kernel(double_numpy, warm_up="tiny_kernels:warm")
def double(x):
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = x[i] * 2
    return out


def warm():
    double(np.arange(3, dtype=np.int64))
'''

CHOOSE = '''
import logging, sys
import numpy as np
logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
from labctl.analysis import kernel_backend
started = []
kernel_backend.compile_in_background = lambda warm_ups: started.append(warm_ups)  # nothing started here
kernel_backend._kernels.clear()  # only the tiny kernel (importing labctl.analysis registered its kernels)
kernel_backend._warm_ups.clear()
import tiny_kernels
print("numba" if kernel_backend.use_numba() else "numpy", started)
assert tiny_kernels.double(np.arange(3, dtype=np.int64)).tolist() == [0, 2, 4]
if "compile" in sys.argv:
    tiny_kernels.double.numba(np.arange(3, dtype=np.int64))  # what the background compiler does
'''


def _choose(tmp_path: Path, cache: Path, *extra: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != kernel_backend.ENV_VAR}
    env.update(NUMBA_CACHE_DIR=str(cache), PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO)]))
    out = subprocess.run([sys.executable, "-c", CHOOSE, *extra], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_an_empty_cache_chooses_numpy_and_a_filled_one_numba(tmp_path):
    (tmp_path / "tiny_kernels.py").write_text(TINY_KERNEL)
    cache = tmp_path / "numba_cache"
    assert _choose(tmp_path, cache, "compile") == [kernel_backend.FIRST_RUN_MESSAGE, "numpy [['tiny_kernels:warm']]"]
    assert _choose(tmp_path, cache) == ["numba []"]  # the cache filled by the first: numba, nothing to compile
    (tmp_path / "tiny_kernels.py").write_text(TINY_KERNEL.replace("x[i] * 2", "2 * x[i]"))  # source changed
    assert _choose(tmp_path, cache)[-1] == "numpy [['tiny_kernels:warm']]"


def test_the_variable_forces_either_choice(tmp_path, monkeypatch):
    (tmp_path / "tiny_kernels.py").write_text(TINY_KERNEL)
    code = ("from labctl.analysis import kernel_backend\nkernel_backend.compile_in_background = None\nimport tiny_kernels\n"
            "print(kernel_backend.use_numba())")
    for value, expected in (("numba", "True"), ("numpy", "False")):
        env = {**os.environ, kernel_backend.ENV_VAR: value, "NUMBA_CACHE_DIR": str(tmp_path / "empty"),
               "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        assert out.stdout.strip() == expected, out.stderr


def test_every_kernel_calls_its_chosen_version_once_chosen():
    with kernel_backend.chosen(False):
        assert K.channel_counts(np.array([3, 3], np.uint8))[3] == 2
        assert K.channel_counts._impl is K.channel_counts.numpy
    with kernel_backend.chosen(True):
        assert K.channel_counts(np.array([3, 3], np.uint8))[3] == 2
        assert K.channel_counts._impl is K.channel_counts.numba


def test_the_background_compiler_runs_niced_in_a_session_of_its_own(tmp_path, monkeypatch):
    """It runs the warm-ups it is given, with a niceness COMPILER_NICE above ours, in a session of its own (Ctrl-C in
    the terminal does not reach it), with numba forced; once per warm-up per process."""
    probe = tmp_path / "probe.txt"
    (tmp_path / "nice_probe.py").write_text(
        "import os\n"
        f"def record():\n    open({str(probe)!r}, 'w').write(f'{{os.nice(0)}} {{os.getsid(0)}} {{os.environ[\"LABCTL_KERNELS\"]}}')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "cache"))  # a lock of its own
    monkeypatch.setattr(kernel_backend, "_compiling", [])
    child = kernel_backend.compile_in_background(["nice_probe:record"])
    assert child is not None
    assert kernel_backend.compile_in_background(["nice_probe:record"]) is None  # started once per process
    assert child.wait(timeout=60) == 0
    nice, session, forced = probe.read_text().split()
    assert int(nice) == os.nice(0) + kernel_backend.COMPILER_NICE
    assert int(session) == child.pid != os.getsid(0)
    assert forced == "numba"


def test_a_second_compiler_waits_while_one_holds_the_lock(tmp_path, monkeypatch):
    import threading

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    ran = []
    monkeypatch.setitem(sys.modules, "fake_warm", type(sys)("fake_warm"))
    sys.modules["fake_warm"].go = lambda: ran.append(True)
    with open(kernel_backend.compiler_lock_path(), "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        second = threading.Thread(target=kernel_backend.compile_kernels, args=(["fake_warm:go"],))
        second.start()
        second.join(0.5)
        assert second.is_alive() and ran == []  # waits for the first
    second.join(10)
    assert ran == [True]


def _wait_for_compiler(timeout_s: float = 300.0) -> None:
    """Until no background compiler holds the lock of this NUMBA_CACHE_DIR."""
    deadline = time.monotonic() + timeout_s
    with open(kernel_backend.compiler_lock_path(), "a") as lock:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except OSError:
                assert time.monotonic() < deadline, "the background compiler did not finish"
                time.sleep(0.2)


@pytest.mark.slow
def test_the_run_after_a_first_run_finds_every_kernel_in_the_cache(tmp_path, monkeypatch):
    """labctl acquire on an empty cache runs numpy and leaves a compiler behind; once it is done, the next run
    is warm: numba, no message, every kernel (photon path and simulated scene) cached."""
    from tests.test_cli import fast_station_file, labctl

    cache = tmp_path / "numba_cache"
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(cache))
    monkeypatch.delenv(kernel_backend.ENV_VAR)
    env = dict(os.environ)
    station = fast_station_file(tmp_path)
    first = labctl("-v", "acquire", "--duration", "1", "--out", str(tmp_path / "a.h5"), "--config", station,
                   "--no-progress", env=env)
    assert first.returncode == 0, first.stderr
    assert kernel_backend.FIRST_RUN_MESSAGE in first.stderr
    _wait_for_compiler()
    second = labctl("-v", "acquire", "--duration", "1", "--out", str(tmp_path / "b.h5"), "--config", station,
                    "--no-progress", env=env)
    assert second.returncode == 0, second.stderr
    assert kernel_backend.FIRST_RUN_MESSAGE not in second.stderr
    check = ("import labctl.acquisition.photons, labctl.analysis._kernels, sim_backends.scene\n"
             "from labctl.analysis import kernel_backend\nprint(len(kernel_backend._kernels), kernel_backend.all_cached())")
    out = subprocess.run([sys.executable, "-c", check], env={**env, "PYTHONPATH": str(REPO)}, capture_output=True,
                         text=True, timeout=120)
    assert out.stdout.split() == ["12", "True"], out.stderr


def test_a_cold_cache_chooses_numpy_for_the_photon_path_and_the_scene_and_compiles_all_three_modules(tmp_path):
    code = ("from labctl.analysis import kernel_backend\nstarted = []\n"
            "kernel_backend.compile_in_background = lambda warm_ups: started.append(warm_ups)\n"
            "import labctl.acquisition.photons, labctl.analysis._kernels, sim_backends.scene\n"
            "print(kernel_backend.use_numba(), len(kernel_backend._kernels), *started[0])")
    env = {k: v for k, v in os.environ.items() if k != kernel_backend.ENV_VAR}
    env.update(NUMBA_CACHE_DIR=str(tmp_path), PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    words = out.stdout.split()
    assert words[:2] == ["False", "12"], out.stderr
    assert sorted(words[2:]) == ["labctl.acquisition.warmup:compile_kernels",  # in the order of import
                                 "labctl.analysis.accumulator_warm_up:compile_kernels",
                                 "sim_backends.scene:compile_kernels"], out.stderr


RUN_AFTER_WARM_UPS = '''
import importlib, tempfile, pathlib
from labctl.analysis import kernel_backend, live_set
from labctl.acquisition.engine import AcquisitionEngine
from labctl.station.station import Station
from tests.conftest import sim_config
import labctl.acquisition.photons, sim_backends.scene
for entry in list(kernel_backend._warm_ups):
    module, _, function = entry.partition(":")
    getattr(importlib.import_module(module), function)()
def signatures():
    return {k.__qualname__: sorted(map(str, k.numba.signatures)) for k in kernel_backend._kernels}
after_warm_ups = signatures()
with Station(sim_config()) as station, tempfile.TemporaryDirectory() as folder:
    with AcquisitionEngine(station, pathlib.Path(folder) / "run.h5", sinks=live_set()) as engine:
        summary = engine.run(0.5)
assert summary.photons_written > 0, summary
print(len(after_warm_ups), all(after_warm_ups.values()), signatures() == after_warm_ups)
'''


def test_the_warm_ups_compile_every_kernel_with_the_types_a_run_calls():
    """What the background compiler runs (each module's warm-up) covers every kernel with the argument types a real
    run on the simulated station calls: the run adds no signature, so the next run finds all it needs in the cache."""
    env = {**os.environ, kernel_backend.ENV_VAR: "numba", "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", RUN_AFTER_WARM_UPS], env=env, capture_output=True, text=True,
                         timeout=300, cwd=REPO)
    assert out.stdout.splitlines()[-1].split() == ["12", "True", "True"], out.stdout + out.stderr[-3000:]


def _snapshot_arrays(snapshot) -> dict:
    import dataclasses

    return {f.name: getattr(snapshot, f.name) for f in dataclasses.fields(snapshot)}


def test_the_photon_path_gives_the_same_photons_and_live_views_on_numba_and_on_numpy_kernels():
    """Tags of the simulated scene -> converter (software divider 2) -> g(2), lifetime, trace, FLID: every photon and
    every snapshot array equal, bit for bit, whichever kernels ran (the first run after an install and later ones)."""
    from labctl.acquisition.photons import PhotonConverter
    from labctl.analysis import FlidAccumulator, G2Accumulator, IntensityTrace, LifetimeAccumulator
    from labctl.blocks import ChannelMap
    from sim_backends.scene import Scene

    wiring = ChannelMap(laser_sync=0, spad_a=1, spad_b=2, frame_marker=3)
    results = []
    for numba in (True, False):
        with kernel_backend.chosen(numba):
            scene = Scene({"emitter": {"kind": "single_qd"}, "frame_clock": {"enabled": True}}, wiring=wiring, seed=3)
            converter = PhotonConverter(wiring, 1, 2)
            views = [G2Accumulator(1, 2, period_ps=2_000_000), LifetimeAccumulator([1, 2], period_ps=2_000_000),
                     IntensityTrace([1, 2], bin_ms=1.0), FlidAccumulator([1, 2], bin_ms=5.0)]
            photons = []
            blocks = (converter.process(scene.generate(stop_ms * 10**9)) for stop_ms in (37, 120, 121, 800, 1500))
            for block in (*blocks, converter.finish()):
                photons.append((block.timestamps, block.detectors, block.nanotimes, block.markers))
                for view in views:
                    view.update(block)
            results.append((photons, [_snapshot_arrays(view.finalize()) for view in views]))
    (photons_numba, views_numba), (photons_numpy, views_numpy) = results
    assert sum(p[0].size for p in photons_numba) > 1000
    for got, want in zip(photons_numba, photons_numpy):
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)
            assert g.dtype == w.dtype
    for got, want in zip(views_numba, views_numpy):
        assert got.keys() == want.keys()
        for name in got:
            np.testing.assert_equal(got[name], want[name], err_msg=name)


@pytest.mark.slow
def test_a_compiler_killed_half_way_leaves_a_cache_the_next_one_completes(tmp_path, monkeypatch):
    """kill -9 in the middle of compiling (shutdown, OOM killer): what numba wrote stays loadable (each file is written
    to a temporary name and renamed), the next compiler finishes the rest, and every kernel is then cached."""
    import signal

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setattr(kernel_backend, "_compiling", [])
    warm_ups = ["labctl.analysis.accumulator_warm_up:compile_kernels", "labctl.acquisition.warmup:compile_kernels",
                "sim_backends.scene:compile_kernels"]
    child = kernel_backend.compile_in_background(warm_ups)
    deadline = time.monotonic() + 120
    while not list(tmp_path.rglob("*.nbi")):  # the first kernel is in the cache: kill it while it does the others
        assert time.monotonic() < deadline and child.poll() is None
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    check = ("import labctl.acquisition.photons, labctl.analysis._kernels, sim_backends.scene\n"
             "from labctl.analysis import kernel_backend\n"
             "print(sum(k.cached() for k in kernel_backend._kernels), len(kernel_backend._kernels))")
    env = {**os.environ, kernel_backend.ENV_VAR: "numba"}
    cached, total = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True,
                                   timeout=120).stdout.split()
    assert 1 <= int(cached) < int(total) == 12
    monkeypatch.setattr(kernel_backend, "_compiling", [])
    assert kernel_backend.compile_in_background(warm_ups).wait(timeout=300) == 0
    out = subprocess.run([sys.executable, "-c", RUN_AFTER_WARM_UPS], env=env, capture_output=True, text=True,
                         timeout=300, cwd=REPO)
    assert out.stdout.splitlines()[-1].split() == ["12", "True", "True"], out.stdout + out.stderr[-3000:]
    cached, total = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True,
                                   timeout=120).stdout.split()
    assert cached == total == "12"

"""Start-up: ``labctl acquire`` and the lab window's station, first run after an install (cold) and warm.

Run: ``python benchmarks/bench_start.py [--duration 5] [--warm-runs 5] [--cold-runs 1] [--no-gui]``
(prints figures, not a test).

"First run after install" (cold) is a fresh, empty numba cache: ``NUMBA_CACHE_DIR``
pointing to a new temporary folder (numba then neither reads nor writes the
``__pycache__`` caches beside the sources), set before the process starts; child
processes inherit it.  Every kernel compiles, as after ``pip install``.  Warm runs use
the cache the cold run filled.

``labctl acquire --duration 5`` on the built-in simulated microscope, each run a fresh
process (``python -m labctl.cli -v acquire ...``): time from starting the process to the
first photon (the engine's log line "first tags read", read from stderr as it comes) and
to the process's exit, each with the process's CPU time by then (user + system, children
included; on a loaded machine the CPU times are the figures that compare).  Targets
(issue 13): first photon <= 1.5 s warm; the whole 5 s run <= 8 s cold.

The lab window's station (``StationProcess``, as ``labctl gui`` opens it): from ``open()``
to the station ready and to the first live data (``start_run`` and a poll with tagger
time elapsed > 0), and, on the open station, from ``start_run`` (pressing Start) to the
first live data.  Targets (issue 12): first live data within 2 s of pressing Start warm,
under 15 s on the first run after install (both measured from ``open()``, the worst case:
Start pressed as the window opens).

Warm figures are medians of ``--warm-runs``; the load average is printed (the machine
may be shared: medians and CPU times are the figures to compare).

A cold run runs the numpy kernels and leaves a background process compiling numba's cache
(``labctl.analysis.kernel_backend``); it is waited for before the warm runs, and its CPU
time and how long after the cold run's exit it ended are printed (it is not a child that
``labctl acquire`` waits for, so the run's own CPU figures leave it out).  Each run's
kernels (numpy or numba) are read from its log.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TARGET_ACQUIRE_WARM_FIRST_PHOTON_S = 1.5
TARGET_ACQUIRE_COLD_TOTAL_S = 8.0
TARGET_GUI_WARM_FIRST_DATA_S = 2.0
TARGET_GUI_COLD_FIRST_DATA_S = 15.0
FIRST_PHOTON_LINE = "first tags read"
"""What the engine logs (INFO, ``labctl -v``) when the run's first tags are read."""
NUMPY_KERNELS_LINE = "numpy kernels for this run"
"""What a run on the numpy kernels logs (INFO; ``labctl.analysis.kernel_backend.FIRST_RUN_MESSAGE``)."""


def _process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system, waited-for children included) of a running process so far (Linux
    ``/proc``; NaN elsewhere): a figure that other load on a shared machine changes little."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def background_compilers(cache_dir: str) -> list[int]:
    """Pids of the background kernel compilers working on ``cache_dir`` (Linux ``/proc``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"labctl.analysis.kernel_backend" in command and f"NUMBA_CACHE_DIR={cache_dir}".encode() in environ:
            found.append(int(entry.name))
    return found


def wait_for_compilers(cache_dir: str) -> tuple[float, float]:
    """(s until the background compilers of ``cache_dir`` ended, their CPU s: the last reading before each ended)."""
    started = time.perf_counter()
    cpu: dict[int, float] = {}
    while pids := background_compilers(cache_dir):
        for pid in pids:
            reading = _process_cpu_s(pid)
            if reading == reading:
                cpu[pid] = reading
        time.sleep(0.05)
    return time.perf_counter() - started, sum(cpu.values())


def acquire_once(cache_dir: str, duration_s: float, folder: str) -> tuple[float, float, float, float, bool]:
    """(s to the first photon, s to the process's exit, CPU s in all, CPU s to the first photon, ran on numpy
    kernels) of one ``labctl acquire`` process."""
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir, "PYTHONPATH": os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    out = os.path.join(folder, "bench_start.h5")
    command = [sys.executable, "-m", "labctl.cli", "-v", "acquire", "--duration", f"{duration_s:g}", "--out", out,
               "--overwrite", "--no-progress"]
    cpu0 = _children_cpu_s()
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    first_s, first_cpu_s, lines = float("nan"), float("nan"), []
    assert process.stderr is not None
    for line in process.stderr:
        if first_s != first_s and FIRST_PHOTON_LINE in line:
            first_s = time.perf_counter() - started
            first_cpu_s = _process_cpu_s(process.pid)
        lines.append(line)
    code = process.wait()
    total_s = time.perf_counter() - started
    if code not in (0, 3) or first_s != first_s:
        raise RuntimeError(f"labctl acquire exited {code} (first photon line seen: {first_s == first_s}):\n"
                           + "".join(lines[-20:]))
    return first_s, total_s, _children_cpu_s() - cpu0, first_cpu_s, any(NUMPY_KERNELS_LINE in line for line in lines)


def station_once() -> tuple[float, float, float]:
    """(s from open() to the station ready, to the first live data; s from start_run to the first live data)."""
    from labctl.station.station import StationConfig
    from labctl.processes.station_process import StationProcess

    started = time.perf_counter()
    process = StationProcess(StationConfig.load())
    process.open()
    ready_s = time.perf_counter() - started
    try:
        pressed = time.perf_counter()
        process.start_run(None, sinks=[("labctl.analysis.LifetimeAccumulator", {})])
        while process.poll(["lifetime"])["status"].get("elapsed_s", 0.0) <= 0.0:
            time.sleep(0.02)
        now = time.perf_counter()
        process.stop_run()
    finally:
        process.close()
    return ready_s, now - started, now - pressed


def _ratio(value: float, target: float) -> str:
    return f"{value / target:.2f}x the target of {target:g} s ({'MET' if value <= target else 'MISSED'})"


def bench_acquire(args: argparse.Namespace, folder: str) -> None:
    cold: list[tuple[float, float, float, float, bool]] = []
    compilers: list[tuple[float, float]] = []
    cache = os.environ.get("NUMBA_CACHE_DIR", "")  # no cold run: numba's usual cache (warm once run)
    for _ in range(args.cold_runs):
        cache = tempfile.mkdtemp(prefix="numba-cold-", dir=folder)
        cold.append(acquire_once(cache, args.duration, folder))
        compilers.append(wait_for_compilers(cache))
    warm = [acquire_once(cache, args.duration, folder) for _ in range(args.warm_runs)]
    print(f"labctl acquire --duration {args.duration:g} (simulated microscope; fresh process each run; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    for label, runs in (("cold (empty numba cache)", cold), ("warm", warm)):
        if not runs:
            continue
        print(f"  {label:26s} first photon {statistics.median(r[0] for r in runs):5.2f} s "
              f"(CPU {statistics.median(r[3] for r in runs):4.2f} s), exit {statistics.median(r[1] for r in runs):5.2f} s "
              f"(CPU {statistics.median(r[2] for r in runs):5.2f} s)   (runs, first photon / exit: "
              f"{', '.join(f'{r[0]:.2f}/{r[1]:.2f}' for r in runs)}; kernels: "
              f"{', '.join('numpy' if r[4] else 'numba' for r in runs)})")
    for ended_s, cpu_s in compilers:
        print(f"  background numba compiler after the cold run: ended {ended_s:.2f} s after its exit, CPU {cpu_s:.2f} s "
              "(niced; not in the run's CPU)")
    print(f"  warm time to the first photon: {_ratio(statistics.median(r[0] for r in warm), TARGET_ACQUIRE_WARM_FIRST_PHOTON_S)}")
    if cold:
        print(f"  cold first run, whole process: "
              f"{_ratio(statistics.median(r[1] for r in cold), TARGET_ACQUIRE_COLD_TOTAL_S)}")


def bench_gui_station(args: argparse.Namespace, folder: str) -> None:
    os.environ["NUMBA_CACHE_DIR"] = cache = tempfile.mkdtemp(prefix="numba-gui-", dir=folder)
    cold = station_once()
    compiler = wait_for_compilers(cache)  # the warm runs below: numba
    warm = [station_once() for _ in range(args.warm_runs)]
    print(f"\nlab window's station (StationProcess; load average {os.getloadavg()[0]:.1f})")
    print(f"  cold (empty numba cache): station ready {cold[0]:.2f} s, first live data {cold[1]:.2f} s after open()")
    print(f"  background numba compiler after the cold open: ended {compiler[0]:.2f} s after close(), "
          f"CPU {compiler[1]:.2f} s")
    med = [statistics.median(r[i] for r in warm) for i in range(3)]
    print(f"  warm (median of {len(warm)}): station ready {med[0]:.2f} s, first live data {med[1]:.2f} s after open(), "
          f"{med[2]:.2f} s after start_run on the open station")
    print(f"  warm first live data (from open): {_ratio(med[1], TARGET_GUI_WARM_FIRST_DATA_S)}")
    print(f"  cold first live data (from open): {_ratio(cold[1], TARGET_GUI_COLD_FIRST_DATA_S)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of the labctl acquire run")
    parser.add_argument("--warm-runs", type=int, default=5, help="warm runs (the median is printed)")
    parser.add_argument("--cold-runs", type=int, default=1, help="cold runs, each with its own empty numba cache")
    parser.add_argument("--no-gui", action="store_true", help="leave out the lab window's station")
    parser.add_argument("--no-acquire", action="store_true", help="leave out labctl acquire")
    args = parser.parse_args(argv)
    # as installed: the processes timed here write and reuse their bytecode caches (.pyc)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory(prefix="labctl-bench-start-") as folder:
        if not args.no_acquire:
            bench_acquire(args, folder)
        if not args.no_gui:
            bench_gui_station(args, folder)


if __name__ == "__main__":
    main()

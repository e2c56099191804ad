"""Replay benchmarks: the regenerated tag stream (tags/s) and ``labctl acquire --replay`` at several speeds.

Run: ``python benchmarks/bench_replay.py``  (prints figures; not a test).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from sim_backends.replay_source import ReplaySource  # noqa: E402

PERIOD_PS = 1_000_000


def write_file(path: Path, seconds: float, rate_cps: float = 100e3, seed: int = 0) -> int:
    """A 1 MHz T3-like Photon-HDF5 file (h5py): photons on random pulses, 35 ns decay, detectors 1 and 2."""
    rng = np.random.default_rng(seed)
    n = int(rate_cps * seconds)
    pulse = np.sort(rng.integers(0, int(seconds * 1e12 / PERIOD_PS), n))
    delay = np.minimum(2_000 + rng.exponential(35_000, n), PERIOD_PS - 1).astype(np.int64)
    ts = pulse * PERIOD_PS + delay
    order = np.argsort(ts, kind="stable")
    with h5py.File(path, "w") as f:
        f["photon_data/timestamps"] = ts[order]
        f["photon_data/timestamps_specs/timestamps_unit"] = 1e-12
        f["photon_data/detectors"] = rng.integers(1, 3, n).astype(np.uint8)
        f["photon_data/nanotimes"] = delay[order].astype(np.int32)
        f["photon_data/nanotimes_specs/tcspc_unit"] = 1e-12
        f["photon_data/measurement_specs/laser_repetition_rate"] = 1e12 / PERIOD_PS
    return n


def bench_source(path: Path, seconds: float, window_ms: float = 50.0) -> None:
    """Tags/s of ReplaySource.generate in 50 ms device-time windows (the sim quTAG's step)."""
    source = ReplaySource(str(path), (1, 2), 0, 3, float(PERIOD_PS))
    start, step = source.start_ps, int(window_ms * 1e9)
    n_tags = 0
    t0 = time.perf_counter()
    for stop in range(start + step, start + int(seconds * 1e12) + 3 * step, step):
        n_tags += len(source.generate(stop))
    wall = time.perf_counter() - t0
    source.close()
    print(f"ReplaySource.generate: {n_tags:,} tags ({seconds:g} s at 1 MHz sync) in {wall:.2f} s "
          f"= {n_tags / wall / 1e6:.1f} M tags/s ({seconds / wall:.1f}x real time)")


def bench_acquire(path: Path, seconds: float, speed: float) -> None:
    """Wall time of ``labctl acquire --replay`` (separate process, station build included)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.h5"
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "labctl.cli", "acquire", "--replay", str(path), "--speed",
                               str(speed), "--duration", str(seconds * 2), "--out", str(out), "--no-progress"],
                              capture_output=True, text=True)
        wall = time.perf_counter() - t0
    end = next((line for line in proc.stdout.splitlines() if line.startswith("run ended")), proc.stderr.strip())
    losses = next((line for line in proc.stdout.splitlines() if line.lower().startswith("losses")), "")
    print(f"acquire --replay --speed {speed:g}: {seconds:g} s of data in {wall:.1f} s wall (exit {proc.returncode}; "
          f"{end}; {losses.strip()})")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "src.h5"
        seconds = 10.0
        photons = write_file(path, seconds)
        print(f"source: {photons:,} photons over {seconds:g} s, 1 MHz laser")
        bench_source(path, seconds)
        for speed in (1, 4, 8):
            bench_acquire(path, seconds, speed)

"""HDF5 append speed of PhotonHDF5Writer as a ratio to numpy ``tofile`` of the same bytes.

    python benchmarks/bench_storage.py [--photons N] [--dir FOLDER]

For blocks of 1e5, 3e5 and 1e6 photons, writes N photons (timestamps int64,
detectors uint8, nanotimes int32: 13 bytes each) once with ``ndarray.tofile``
to a plain file and once through the writer (SWMR, flush every 1 s, free-space
guard on), in the same folder, and prints tofile time / append time (every
``write`` plus a final ``flush``; best of 5; >= 0.7 is the target, 1.0 = as
fast as tofile).  Creating the layout and closing (end record) happen once per
run and are printed apart.  Page-cache speed: no fsync on either side.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time

import numpy as np

from labctl.blocks import ChannelMap, PhotonBlock
from labctl.run import RunInfo, RunSummary
from labctl.storage import PhotonHDF5Writer

TARGET_RATIO = 0.7
REPEATS = 5


def _blocks(n_photons: int, block_photons: int, seed: int = 0) -> list[PhotonBlock]:
    rng = np.random.default_rng(seed)
    ts = np.cumsum(rng.integers(1, 20_000, n_photons), dtype=np.int64)
    det = rng.integers(1, 3, n_photons).astype(np.uint8)
    nt = rng.integers(-1, 1_000_000, n_photons).astype(np.int32)
    return [PhotonBlock(ts[i:i + block_photons], det[i:i + block_photons], nt[i:i + block_photons])
            for i in range(0, n_photons, block_photons)]


def _time_tofile(blocks: list[PhotonBlock], path: str) -> float:
    t0 = time.perf_counter()
    with open(path, "wb") as fh:
        for b in blocks:
            b.timestamps.tofile(fh)
            b.detectors.tofile(fh)
            b.nanotimes.tofile(fh)
    elapsed = time.perf_counter() - t0
    os.remove(path)
    return elapsed


def _time_writer(blocks: list[PhotonBlock], path: str) -> tuple[float, float, float]:
    """Seconds for (open, appending every block + a final flush, close)."""
    run = RunInfo(run_id="bench", start_time_iso="", channels=ChannelMap(0, 1, 2),
                  detector_labels={1: "spad_a", 2: "spad_b"}, nominal_sync_period_ps=1_000_000)
    t0 = time.perf_counter()
    w = PhotonHDF5Writer(path, flush_interval_s=1.0)
    w.open(run)
    t1 = time.perf_counter()
    for b in blocks:
        w.write(b)
    w.flush()
    t2 = time.perf_counter()
    w.close(RunSummary(True, "stopped", 0, {}, w.photons_written, []))
    t3 = time.perf_counter()
    os.remove(path)
    return t1 - t0, t2 - t1, t3 - t2


def main(argv: list[str] | None = None) -> float:
    """Print the table; return the worst ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photons", type=int, default=10_000_000, help="photons per measurement")
    parser.add_argument("--dir", default=None, help="folder to write in (default: a temp folder)")
    args = parser.parse_args(argv)
    worst = float("inf")
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        print(f"{args.photons:,} photons ({args.photons * 13 / 2**20:.0f} MiB) per run, best of {REPEATS}, in {folder}")
        for block_photons in (100_000, 300_000, 1_000_000):
            blocks = _blocks(args.photons, block_photons)
            t_np, runs = math.inf, []
            for _ in range(REPEATS):  # interleaved, so that both see the same machine load
                t_np = min(t_np, _time_tofile(blocks, os.path.join(folder, "a.bin")))
                runs.append(_time_writer(blocks, os.path.join(folder, "a.h5")))
            t_h5 = min(r[1] for r in runs)
            ratio = t_np / t_h5
            worst = min(worst, ratio)
            print(f"blocks of {block_photons:>9,} photons: tofile {args.photons * 13 / t_np / 2**20:5.0f} MiB/s, "
                  f"HDF5 append {args.photons * 13 / t_h5 / 2**20:5.0f} MiB/s, ratio {ratio:.2f} "
                  f"(once per run: open {min(r[0] for r in runs) * 1e3:.0f} ms, "
                  f"close {min(r[2] for r in runs) * 1e3:.0f} ms)")
    verdict = "meets" if worst >= TARGET_RATIO else "BELOW"
    print(f"worst ratio {worst:.3f}: {verdict} the target of {TARGET_RATIO}")
    return worst


if __name__ == "__main__":
    main()  # a figure, not a test: no exit status (benchmarks/run_all.py runs it in-process)

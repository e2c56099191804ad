"""Many QDs on Dask: ``run_batch("analyze", 20 files)`` on 2 local workers against 20 single runs.

    python benchmarks/bench_batch.py [--files 20] [--seconds 4] [--workers 2] [--fit bi] [--per-detector-fits]

Each file: 2 detectors, ~60 kcps, 20 ns decay, nanotimes (the test files of
tests/test_analyze.py, ``--seconds`` long).  Single runs: ``analyze_file`` +
``dump_json`` one after the other in this process (after one warm-up run, so
numba's compilation is not counted; its cache is on disk).  Batch:
``labctl.analysis.batch.run_batch`` on a fresh LocalCluster of ``--workers`` processes,
one thread each, cluster start-up and shut-down included; and the same batch
on 1 worker (what the parallelism alone gains).
Printed: wall times, the speed-up, and whether every JSON is byte-identical.
The machine's load average is printed too (2 cores shared here: a speed-up
near 2 needs them idle; a single ``analyze_file`` already runs its g(2) on a
second thread, so on 2 cores two workers mostly overlap the start-up costs).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labctl.analysis.analyze import AnalyzeOptions, analyze_file, dump_json  # noqa: E402
from labctl.analysis.batch import output_names, run_batch  # noqa: E402
from tests.test_analyze import write_foreign_file  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--fit", choices=("mono", "bi"), default="mono")
    parser.add_argument("--per-detector-fits", action="store_true", help="more work per file (the fits hold the GIL)")
    args = parser.parse_args()
    options = AnalyzeOptions(fit=args.fit, per_detector_fits=args.per_detector_fits)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = []
        for i in range(args.files):
            path = folder / "in" / f"qd{i:02d}.h5"
            path.parent.mkdir(exist_ok=True)
            write_foreign_file(path, seed=i, seconds=args.seconds)
            files.append(path)
        dump_json(analyze_file(files[0], options), folder / "warmup.json")
        single = folder / "single"
        single.mkdir()
        t0 = time.perf_counter()
        for path, name in zip(files, output_names(files)):
            dump_json(analyze_file(path, options), single / f"{name}.json")
        single_s = time.perf_counter() - t0
        from dask.distributed import Client, LocalCluster

        t0 = time.perf_counter()
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=":0") as c:
            Client(c).close()
        cluster_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        run_batch("analyze", files, folder / "batch1", options, n_workers=1, progress=False)
        one_worker_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        table = run_batch("analyze", files, folder / "batch", options, n_workers=args.workers, progress=False)
        batch_s = time.perf_counter() - t0
        tasks_s = float(table["seconds"].sum())
        differ = [n for n in output_names(files)
                  if (folder / "batch" / f"{n}.json").read_bytes() != (single / f"{n}.json").read_bytes()]
        same = not differ
        print(f"load average      {os.getloadavg()[0]:.1f} (2 cores)")
        print(f"options           fit {args.fit}, per-detector fits {args.per_detector_fits}")
        print(f"files             {args.files} x {int(table['photons'].iloc[0]):,} photons ({args.seconds:g} s each)")
        print(f"single runs       {single_s:.2f} s (one after the other, warm)")
        print(f"batch, {args.workers} workers  {batch_s:.2f} s (cluster start/stop included; tasks' own time "
              f"summed {tasks_s:.2f} s)")
        secs = table["seconds"].to_numpy()
        print(f"  per task        median {np.median(secs):.2f} s, max {secs.max():.2f} s (a worker's first task "
              "imports labctl, scipy and loads the numba kernels)")
        print(f"batch, 1 worker   {one_worker_s:.2f} s (the same, one process)")
        print(f"cluster alone     {cluster_s:.2f} s (start + stop of {args.workers} workers, no task)")
        print(f"speed-up          {single_s / batch_s:.2f}x against single runs, "
              f"{one_worker_s / batch_s:.2f}x against 1 worker")
        print(f"JSON identical    {same} ({args.files} files{'; differ: ' + ', '.join(differ) if differ else ''})")
        for n in differ[:3]:
            a = (single / f"{n}.json").read_bytes()
            b = (folder / "batch" / f"{n}.json").read_bytes()
            at = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
            print(f"  {n}: first difference at byte {at}: {a[max(0, at - 80):at + 20]!r} vs {b[at:at + 20]!r}")
        print(f"errors            {int(table['error'].notna().sum())}")


if __name__ == "__main__":
    main()

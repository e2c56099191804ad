"""``labctl report`` of a 10-minute simulated run: wall time and what dominates it.

    python benchmarks/bench_report.py [--minutes 10] [--collection 0.25] [--keep FILE]

The run is simulated straight from the scene (default QD: blinking, P_trap fluctuating
0-65 %, collection raised to give ~1e7 photons in 10 minutes) with one 90 ms camera
frame per 100 ms (6000 frames), written as Photon-HDF5 (``tests.report_sim``).  Then
``labctl report FILE --out DIR`` runs in a fresh Python process (start-up, imports, file
reading and the PNGs/HTML included): its wall time is printed against the target (< 30 s),
and the same analysis runs in this process under cProfile, printing the functions that
take the most cumulative time (what dominates).  The machine's load average is printed:
on a shared machine the figures are upper bounds.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--collection", type=float, default=0.25)
    ap.add_argument("--keep", type=Path, default=None, help="simulated file to reuse / keep")
    args = ap.parse_args()
    from tests.report_sim import simulate_to_file

    tmp = Path(tempfile.mkdtemp(prefix="bench_report_"))
    path = args.keep or tmp / "run.h5"
    if not path.exists():
        t = time.perf_counter()
        simulate_to_file(path, {"collection_efficiency": args.collection}, args.minutes * 60.0, seed=1,
                         pixels=1024)
        print(f"simulated {args.minutes:g} min in {time.perf_counter() - t:.1f} s -> {path}")
    import h5py

    with h5py.File(path, "r") as f:
        n = f["photon_data/timestamps"].shape[0]
        frames = f["user/labctl/spectra/frames"].shape[0]
    print(f"file: {n:,} photons, {frames} frames, {path.stat().st_size / 1e6:.0f} MB; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "labctl.cli", "report", str(path), "--out", str(tmp / "out")], check=True,
                   env=env)
    wall = time.perf_counter() - t
    print(f"labctl report (fresh process): {wall:.1f} s wall (target < 30 s: {'met' if wall < 30 else 'NOT met'})")

    from labctl.analysis.fig4 import report_file, write_report

    profile = cProfile.Profile()
    t = time.perf_counter()
    profile.enable()
    result = report_file(path)
    t_report = time.perf_counter() - t
    write_report(result, tmp / "out2")
    profile.disable()
    print(f"in process: report_file {t_report:.1f} s, write_report {time.perf_counter() - t - t_report:.1f} s")
    stats = pstats.Stats(profile)
    print("largest own times (s, tottime; numba kernels and numpy count in their callers):")
    rows = sorted(((v[2], v[3], f"{k[0].split('/')[-1]}:{k[1]}:{k[2]}") for k, v in stats.stats.items()), reverse=True)
    for tot, cum, name in rows[:15]:
        print(f"  {tot:7.2f}  (cumulative {cum:6.2f})  {name}")
    print("cumulative times of the report's steps (s):")
    steps = ("load_photons", "afterpulse_keep", "_rise", "per_bin_lifetimes", "regime_decay", "fit_regimes",
             "regime_spectra", "g2_and_biexciton", "_levels", "_figures", "_html", "dumps", "clean_json")
    for k, v in stats.stats.items():
        if k[2] in steps:
            print(f"  {v[3]:7.2f}  {k[2]}")

if __name__ == "__main__":
    main()

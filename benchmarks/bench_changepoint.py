"""Change points and levels of a long photon stream: ``find_levels`` time and what dominates it.

    python benchmarks/bench_changepoint.py [--seconds 600] [--rates 40000,4000] [--dwell-ms 50]

A telegraph of Poisson photons switching between ``--rates`` (counts/s) with
exponential dwell times of mean ``--dwell-ms``, ``--seconds`` long (default
600 s at 40k/4k: ~1.3e7 photons, ~12 000 switches, like a 10-minute run).
Printed: photons, wall time of ``change_points`` (test + binary segmentation
+ confirmation), of the grouping (clustering, EM, BIC) and of ``find_levels``
as a whole (photons/s), and the levels and states found.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labctl.analysis.changepoint import _level_arrays, change_points, find_levels  # noqa: E402
from labctl.analysis.level_groups import group_levels  # noqa: E402
from tests.test_changepoint import telegraph  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--rates", default="40000,4000")
    parser.add_argument("--dwell-ms", type=float, default=50.0)
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    ph, edges_s, _, _ = telegraph(rates, args.dwell_ms * 1e-3, args.seconds, 0)
    t0 = time.perf_counter()
    cuts = change_points(ph, min_photons=3)
    cp_s = time.perf_counter() - t0
    _, _, photons, duration_ps = _level_arrays(ph, cuts)
    t0 = time.perf_counter()
    groups = group_levels(photons, duration_ps * 1e-12)
    group_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    levels = find_levels(ph)
    total_s = time.perf_counter() - t0
    print(f"photons           {len(ph):,} ({args.seconds:g} s, rates {args.rates} cps, {len(edges_s) - 2:,} switches)")
    print(f"change_points     {cp_s:.2f} s ({len(cuts):,} changes)")
    print(f"grouping          {group_s:.2f} s ({len(photons):,} levels, {len(set(groups.tolist()))} states)")
    print(f"find_levels       {total_s:.2f} s ({len(ph) / total_s / 1e6:.1f} M photons/s; {len(levels):,} levels "
          f"after merging neighbours of one state)")


if __name__ == "__main__":
    main()

"""Soak: a long default run (the built-in simulated station, the file and the live views of
``labctl acquire``), printing the process's resident memory (RSS) every minute.

Verdict at the end: PASS if the RSS at the end, less what grows by design, is within
3 % of the RSS after the first minute, and the run had no loss.  What grows by design
is printed beside it: the live intensity trace and FLID keep every 10 ms bin of the run
(48 bytes per bin: 2 detector columns in the trace, 2 detector + 2 nanotime columns in
the FLID, int64), i.e. 4.8 kB/s = 17 MB per hour.

    python benchmarks/soak.py                 # 1 hour
    python benchmarks/soak.py --minutes 10    # 10 minutes
    python benchmarks/soak.py --heap          # also glibc heap and huge pages per sample
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from labctl.analysis import FlidAccumulator, IntensityTrace, live_set
from labctl.acquisition.engine import AcquisitionEngine
from labctl.station.station import Station, StationConfig

FLAT_FRACTION = 0.03


def rss_mb() -> float:
    """Resident set size of this process (MiB)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def heap_line() -> str:
    """glibc heap (all arenas: in use, free; mmapped blocks) and huge pages of this process, in MiB."""
    fields = ""
    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
        mallinfo2.restype = _MallInfo2
        info = mallinfo2()
        fields = (f"heap_in_use {info.uordblks / 2**20:.1f} heap_free {info.fordblks / 2**20:.1f} "
                  f"mmapped {info.hblkhd / 2**20:.1f} ")
    except (OSError, AttributeError):  # not glibc >= 2.33
        pass
    with open("/proc/self/smaps_rollup") as f:
        huge_kb = next((int(line.split()[1]) for line in f if line.startswith("AnonHugePages:")), 0)
    return f"{fields}huge_pages {huge_kb / 1024:.1f}"


def trace_bytes(live: list) -> int:
    """Bytes the live trace and FLID hold (every complete bin of the run; int64 columns)."""
    total = 0
    for sink in live:
        if isinstance(sink, FlidAccumulator):
            snap = sink.trace_snapshot(last_n_bins=1)
            total += snap.n_complete_bins * (len(snap.detectors) + 2) * 8
        elif isinstance(sink, IntensityTrace):
            snap = sink.snapshot(last_n_bins=1)
            total += snap.n_complete_bins * len(snap.detectors) * 8
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="run length in minutes (default 60)")
    parser.add_argument("--every-s", type=float, default=60.0, help="RSS print period in s (default 60)")
    parser.add_argument("--out", type=Path, default=None, help="the run's file (default: a temporary file, deleted)")
    parser.add_argument("--no-file", action="store_true", help="no HDF5 file (live views only): tells file memory apart")
    parser.add_argument("--heap", action="store_true",
                        help="also print glibc's heap in use / free, its mmapped blocks and the huge pages (MiB) per sample")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="also print the 10 allocation sites that grew most after the first minute (slow)")
    args = parser.parse_args()
    duration_s = args.minutes * 60.0
    tmp = None
    out = args.out
    if out is None:
        tmp = tempfile.TemporaryDirectory(prefix="labctl-soak-")
        out = Path(tmp.name) / "soak.h5"
    print(f"soak: {args.minutes:g} min default run -> {'no file' if args.no_file else out}", flush=True)
    samples: list[tuple[float, float, int]] = []
    first_snapshot = None
    with Station(StationConfig.load()) as station:
        live = live_set()
        engine = AcquisitionEngine(station, None if args.no_file else out, sinks=live, description="benchmarks/soak.py")
        t0 = time.monotonic()
        engine.start(duration_s)
        next_print = t0 + args.every_s
        print(f"{'t_s':>7} {'rss_MiB':>9} {'trace_MiB':>9} {'losses':>6}", flush=True)
        while engine.running:
            time.sleep(min(1.0, max(0.0, next_print - time.monotonic())))
            if time.monotonic() >= next_print and engine.running:
                t = time.monotonic() - t0
                sample = (t, rss_mb(), trace_bytes(live))
                samples.append(sample)
                print(f"{t:7.0f} {sample[1]:9.1f} {sample[2] / 2**20:9.2f} {engine.status().get('losses', 0):>6}"
                      + (f"  {heap_line()}" if args.heap else ""), flush=True)
                if args.tracemalloc and first_snapshot is None:
                    tracemalloc.start(8)
                    first_snapshot = tracemalloc.take_snapshot()
                next_print += args.every_s
        summary = engine.wait()
        end = (time.monotonic() - t0, rss_mb(), trace_bytes(live))
        print(f"{end[0]:7.0f} {end[1]:9.1f} {end[2] / 2**20:9.2f} {len(summary.losses):>6}  (end)", flush=True)
        if first_snapshot is not None:
            growth = tracemalloc.take_snapshot().compare_to(first_snapshot, "lineno")
            print("allocation sites that grew most since the first sample:")
            for stat in growth[:10]:
                print(f"  {stat.size_diff / 2**10:9.1f} KiB  {stat.traceback.format()[-2].strip()}")
    if tmp is not None:
        tmp.cleanup()
    if not samples:
        print("verdict: run shorter than one sample period; nothing to compare")
        return 1
    base = next((s for s in samples if s[0] >= 60.0 - 1e-6), samples[0])
    last = samples[-1]  # the last sample while the run was on (at the end the file is closed)
    growth_mb = last[1] - base[1]
    data_mb = (last[2] - base[2]) / 2**20
    rest_mb = growth_mb - data_mb
    fraction = rest_mb / base[1]
    print(f"RSS after the first minute {base[1]:.1f} MiB, at the last sample {last[1]:.1f} MiB, {last[0] - base[0]:.0f} s later: "
          f"{growth_mb:+.1f} MiB ({100 * growth_mb / base[1]:+.2f} %)")
    print(f"  of which the live trace and FLID (data, grows by design, 48 bytes per 10 ms bin): {data_mb:+.1f} MiB")
    print(f"  the rest: {rest_mb:+.1f} MiB ({100 * fraction:+.2f} %, allowed +{100 * FLAT_FRACTION:g} %)")
    print(f"run: {summary.end_reason}, clean={summary.clean}, losses={len(summary.losses)}")
    ok = fraction <= FLAT_FRACTION and not summary.losses and summary.clean
    print(f"verdict: {'PASS' if ok else 'FAIL'} (flat within {100 * FLAT_FRACTION:g} % after the first minute "
          "apart from the stated live-trace data, zero losses)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

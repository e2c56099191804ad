"""Live-analysis throughput on one core: converter, each accumulator, the whole live set, and g(2) peers.

    python benchmarks/bench_analysis.py [--seconds 7.5] [--block-ms 50] [--repeats 3]

The stream has the experiment's mix: 1 MHz laser sync plus two SPADs at
~200 kcps each (photons on random pulses, 2 ns cable delay + 35 ns exponential
decay), >= 1e7 tags for the default 7.5 s, cut into tag blocks of
``--block-ms`` of tagger time (the engine polls every 50 ms).  Everything runs
in this one thread (numba kernels are single-threaded); each figure is the
CPU time of this process (user + system), best of ``--repeats`` runs, so that
other load on a shared machine counts as little as it can (it still slows
caches and memory: the load average is printed).

Printed: tags/s and photons/s of the PhotonConverter, of each accumulator
(photons/s on the converted blocks), and of the whole live set (converter +
g2 + lifetime + trace + FLID + PhotonHDF5Writer to a temp file; open/close of
the file printed apart), against the targets (whole set >= 50 M tags/s; g2 >=
50 M photons/s at 200 kcps per detector, 1 ns bins over +-2.5 us).  Peers on
the same data, with the ratio and whether the counts agree exactly: a plain
numpy searchsorted pair enumeration (written here, one shot on the whole
stream), and ``pycorrelate.pcorrelate`` if it is installed (its cost grows
with photons x bins, so it runs on a leading subset, said so).

Last, issue 13's measure of ``labctl analyze``: a T3 file of ``--analyze-photons``
photons (default 18 M: 45 s at 2 x 200 kcps, 1 MHz sync, nanotimes in 16 ps TCSPC bins)
written by phconvert (``save_photon_hdf5``, uncompressed; with h5py if phconvert is not
installed), analysed by ``labctl analyze FILE --g2-bin-ps 1000 --g2-range-ps 2500000 --fit
mono`` as a fresh process (start-up, imports, reading and every view included), against a
plain numpy searchsorted g(2) of the same photons already in memory in this process;
wall-clock medians of ``--analyze-repeats`` runs, alternated, their ratio (target <= 1),
and whether the g(2) counts agree.  The numpy g(2) as a fresh process reading the file is
printed too.  ``--only-analyze`` runs this part alone; ``--baseline CHECKOUT`` times another
checkout's ``labctl analyze`` (e.g. the base commit's) in the same alternation, with its CPU
seconds and whether its JSON is the same: before/after figures under the same load.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # this checkout's labctl (and, below, its child processes'), not an installed one

from labctl.analysis import FlidAccumulator, G2Accumulator, IntensityTrace, LifetimeAccumulator  # noqa: E402
from labctl.blocks import PhotonBlock, TagBlock  # noqa: E402
from labctl.acquisition.photons import PhotonConverter  # noqa: E402
from labctl.run import RunInfo, RunSummary  # noqa: E402
from labctl.storage import PhotonHDF5Writer  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from analyze_vs_numpy import CHANNELS, PERIOD_PS, bench_analyze, numpy_g2  # noqa: E402  (the labctl analyze comparison)

G2_BIN_PS, G2_RANGE_PS = 1_000, 2_500_000
TARGET_LIVE_TAGS_PER_S = 50e6
TARGET_G2_PHOTONS_PER_S = 50e6
PYCORRELATE_SUBSET_S = 0.1


def experiment_stream(seconds: float, rate_cps_per_spad: float = 200e3, seed: int = 0) -> TagBlock:
    """1 MHz sync tags + photons of two SPADs on random pulses (2 ns delay + Exp(35 ns)), sorted by time."""
    rng = np.random.default_rng(seed)
    syncs = np.arange(int(seconds * 1e12) // PERIOD_PS, dtype=np.int64) * PERIOD_PS
    times, channels = [syncs], [np.full(syncs.size, CHANNELS.laser_sync, np.uint8)]
    for channel in CHANNELS.detectors:
        n = rng.poisson(rate_cps_per_spad * seconds)
        pulses = syncs[rng.integers(0, syncs.size, n)]
        times.append(pulses + 2_000 + np.rint(rng.exponential(35_000, n)).astype(np.int64))
        channels.append(np.full(n, channel, np.uint8))
    ts, ch = np.concatenate(times), np.concatenate(channels)
    order = np.argsort(ts, kind="stable")
    return TagBlock(ts[order], ch[order])


def cut_by_time(stream: TagBlock, block_ms: float) -> list[TagBlock]:
    block_ps = int(block_ms * 1e9)
    bounds = np.searchsorted(stream.timestamps, np.arange(0, int(stream.timestamps[-1]) + block_ps, block_ps))
    bounds = np.append(bounds[1:], len(stream))
    starts = np.concatenate(([0], bounds[:-1]))
    return [TagBlock(stream.timestamps[a:b].copy(), stream.channels[a:b].copy())
            for a, b in zip(starts, bounds) if b > a]


def best_of(repeats: int, run: Callable[[], object]) -> tuple[float, object]:
    """(shortest CPU time of ``repeats`` calls, result of the last call).

    CPU time of this process (user + system, ``time.process_time``): everything here
    runs in this one thread, and other load on the shared machine is not counted.
    """
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.process_time()
        result = run()
        best = min(best, time.process_time() - t0)
    return best, result


def convert(blocks: list[TagBlock]) -> list[PhotonBlock]:
    converter = PhotonConverter(CHANNELS)
    out = [converter.process(b) for b in blocks]
    out.append(converter.finish())
    return [b for b in out if len(b)]


def accumulators() -> dict[str, object]:
    return {
        "g2": G2Accumulator(CHANNELS.spad_a, CHANNELS.spad_b, bin_width_ps=G2_BIN_PS, range_ps=G2_RANGE_PS,
                            period_ps=PERIOD_PS),
        "lifetime": LifetimeAccumulator(CHANNELS.detectors, period_ps=PERIOD_PS),
        "trace": IntensityTrace(CHANNELS.detectors, bin_ms=10.0),
        "flid": FlidAccumulator(CHANNELS.detectors, bin_ms=10.0, nanotime_offset_ps=2_000),
    }


RUN = RunInfo(run_id="bench", start_time_iso="", channels=CHANNELS,
              detector_labels={CHANNELS.spad_a: "spad_a", CHANNELS.spad_b: "spad_b"}, nominal_sync_period_ps=PERIOD_PS)


def write_only(photon_blocks: list[PhotonBlock], folder: str, run_index: list[int]) -> float:
    """Seconds of PhotonHDF5Writer.write for every block + a final flush (open/close not counted)."""
    run_index[0] += 1
    path = os.path.join(folder, f"write{run_index[0]}.h5")
    writer = PhotonHDF5Writer(path, flush_interval_s=1.0)
    writer.open(RUN)
    t0 = time.process_time()
    for block in photon_blocks:
        writer.write(block)
    writer.flush()
    elapsed = time.process_time() - t0
    writer.close(RunSummary(True, "duration", 0, {}, writer.photons_written, []))
    os.remove(path)
    return elapsed


def live_set(tag_blocks: list[TagBlock], folder: str, run_index: list[int]) -> dict[str, float]:
    """Converter + every accumulator + the HDF5 writer, block by block in this thread."""
    run_index[0] += 1
    path = os.path.join(folder, f"live{run_index[0]}.h5")
    run = RUN
    sinks = [*accumulators().values()]
    writer = PhotonHDF5Writer(path, flush_interval_s=1.0)
    t0 = time.process_time()
    writer.open(run)
    for sink in sinks:
        sink.open(run)
    converter = PhotonConverter(CHANNELS)
    t1 = time.process_time()
    photons = 0
    for tags in [*tag_blocks, None]:
        block = converter.process(tags) if tags is not None else converter.finish()
        photons += len(block)
        for sink in sinks:
            sink.write(block)
        writer.write(block)
    writer.flush()
    t2 = time.process_time()
    summary = RunSummary(True, "duration", 0, {}, writer.photons_written, [])
    for sink in sinks:
        sink.close(summary)
    writer.close(summary)
    t3 = time.process_time()
    os.remove(path)
    return {"open_s": t1 - t0, "stream_s": t2 - t1, "close_s": t3 - t2, "photons": photons}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=7.5, help="tagger time of the stream (s)")
    parser.add_argument("--block-ms", type=float, default=50.0, help="tagger time per tag block (ms)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (best is printed)")
    parser.add_argument("--dir", default=None, help="folder for the HDF5 file (default: a temp folder)")
    parser.add_argument("--analyze-photons", type=float, default=18e6,
                        help="photons in the file for the labctl analyze comparison (0: skip it)")
    parser.add_argument("--analyze-repeats", type=int, default=5, help="runs of each process (median is printed)")
    parser.add_argument("--only-analyze", action="store_true", help="only the labctl analyze comparison")
    parser.add_argument("--baseline", default=None, metavar="CHECKOUT",
                        help="another labctl checkout (e.g. /work/main) timed in the same alternation (before/after)")
    args = parser.parse_args(argv)
    # as installed: the processes timed here write and reuse their bytecode caches (.pyc)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPATH"] = os.pathsep.join([REPO, *filter(None, [os.environ.get("PYTHONPATH")])])
    if args.only_analyze:
        with tempfile.TemporaryDirectory(dir=args.dir) as folder:
            bench_analyze(folder, int(args.analyze_photons), args.analyze_repeats, args.baseline)
        return

    stream = experiment_stream(args.seconds)
    tag_blocks = cut_by_time(stream, args.block_ms)
    n_tags = len(stream)
    # warm up: numba kernels compiled/loaded before timing
    warm = convert(cut_by_time(experiment_stream(0.01, seed=1), 5.0))
    for acc in accumulators().values():
        for b in warm:
            acc.update(b)
    photon_blocks = convert(tag_blocks)
    n_photons = sum(len(b) for b in photon_blocks)
    rate = {ch: int(np.count_nonzero(stream.channels == ch)) / args.seconds for ch in CHANNELS.detectors}
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"stream: {n_tags:,} tags in {args.seconds:g} s (1 MHz sync; SPADs "
          f"{rate[CHANNELS.spad_a] / 1e3:.0f} + {rate[CHANNELS.spad_b] / 1e3:.0f} kcps), {n_photons:,} photons, "
          f"{len(tag_blocks)} blocks of {args.block_ms:g} ms; one thread, best of {args.repeats}")

    print("\nstage                       time (s)   M tags/s   M photons/s")
    t_convert, _ = best_of(args.repeats, lambda: convert(tag_blocks))
    t = t_convert
    print(f"  PhotonConverter           {t:8.3f}   {n_tags / t / 1e6:8.1f}   {n_photons / t / 1e6:11.1f}")
    per_stage: dict[str, float] = {}
    snapshots: dict[str, object] = {}
    for name in accumulators():
        def run_one(name: str = name) -> object:
            acc = accumulators()[name]
            for b in photon_blocks:
                acc.update(b)
            return acc.finalize()

        t, snapshots[name] = best_of(args.repeats, run_one)
        per_stage[name] = t
        print(f"  {name:<24s}  {t:8.3f}   {n_tags / t / 1e6:8.1f}   {n_photons / t / 1e6:11.1f}")
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        counter = [0]
        t = min(write_only(photon_blocks, folder, counter) for _ in range(args.repeats))
        per_stage["writer"] = t
        print(f"  PhotonHDF5Writer          {t:8.3f}   {n_tags / t / 1e6:8.1f}   {n_photons / t / 1e6:11.1f}")
        stages = t_convert + sum(per_stage.values())
        print(f"  sum of the stages above   {stages:8.3f}   {n_tags / stages / 1e6:8.1f}   {n_photons / stages / 1e6:11.1f}")
        t, live = best_of(args.repeats, lambda: live_set(tag_blocks, folder, counter))
        live_t = live["stream_s"]  # type: ignore[index]
        print(f"  whole live set            {live_t:8.3f}   {n_tags / live_t / 1e6:8.1f}   "
              f"{n_photons / live_t / 1e6:11.1f}   (converter + g2 + lifetime + trace + FLID + HDF5 writer; "
              f"file open {live['open_s'] * 1e3:.0f} ms, close {live['close_s'] * 1e3:.0f} ms apart)")  # type: ignore[index]

    g2_rate = n_photons / per_stage["g2"]
    live_rate = n_tags / live_t
    print("\ntargets")
    print(f"  whole live set >= {TARGET_LIVE_TAGS_PER_S / 1e6:.0f} M tags/s: {live_rate / 1e6:.1f} M tags/s "
          f"({live_rate / TARGET_LIVE_TAGS_PER_S:.2f}x target) {'MET' if live_rate >= TARGET_LIVE_TAGS_PER_S else 'MISSED'}")
    print(f"  g2 >= {TARGET_G2_PHOTONS_PER_S / 1e6:.0f} M photons/s (1 ns bins, +-2.5 us): {g2_rate / 1e6:.1f} M photons/s "
          f"({g2_rate / TARGET_G2_PHOTONS_PER_S:.2f}x target) {'MET' if g2_rate >= TARGET_G2_PHOTONS_PER_S else 'MISSED'}")

    print(f"  whole live set / converter alone: {live_t / t_convert:.2f}x the converter's time "
          f"(the accumulators and the writer add {live_t - t_convert:.3f} s)")

    # ---------------------------------------------------------------- g(2) peers
    ts = np.concatenate([b.timestamps for b in photon_blocks])
    det = np.concatenate([b.detectors for b in photon_blocks])
    a, b = ts[det == CHANNELS.spad_a], ts[det == CHANNELS.spad_b]
    ours = snapshots["g2"].counts  # type: ignore[attr-defined]
    print(f"\ng2 peers on the same photons ({a.size:,} on A, {b.size:,} on B, {int(ours.sum()):,} pairs in range)")
    print("  peer                                   time (s)   M photons/s   labctl speed-up   counts agree")
    print(f"  labctl G2Accumulator (streaming)       {per_stage['g2']:8.3f}   {g2_rate / 1e6:11.1f}   "
          f"{'1.00x':>15s}   -")
    t, counts = best_of(args.repeats, lambda: numpy_g2(a, b, G2_RANGE_PS, G2_BIN_PS))
    print(f"  numpy searchsorted pairs (one shot)    {t:8.3f}   {n_photons / t / 1e6:11.1f}   "
          f"{t / per_stage['g2']:14.2f}x   {np.array_equal(counts, ours)}")
    try:
        from pycorrelate import pcorrelate
    except ImportError:
        print("  pycorrelate.pcorrelate: not installed (pip install pycorrelate to compare); skipped")
    else:
        edges = np.arange(-G2_RANGE_PS, G2_RANGE_PS + 1, G2_BIN_PS, dtype=np.int64)
        cut = int(PYCORRELATE_SUBSET_S * 1e12)
        sub_a, sub_b = a[a < cut], b[b < cut]
        sub = np.searchsorted(ts, cut)
        sub_block = PhotonBlock(ts[:sub], det[:sub], np.zeros(sub, np.int32))
        pcorrelate(sub_a[:10], sub_b[:10], edges)  # compile
        t_peer, g = best_of(1, lambda: pcorrelate(sub_a, sub_b, edges))
        peer_counts = np.rint(np.asarray(g) * np.diff(edges)).astype(np.int64)  # it returns counts / bin width

        def ours_on_subset() -> np.ndarray:
            acc = accumulators()["g2"]
            acc.update(sub_block)  # type: ignore[attr-defined]
            return acc.finalize().counts  # type: ignore[attr-defined]

        t_ours, ours_sub = best_of(args.repeats, ours_on_subset)
        print(f"  pycorrelate.pcorrelate (first {PYCORRELATE_SUBSET_S:g} s: {sub:,} photons; O(photons x bins))"
              f"\n                                         {t_peer:8.3f}   {sub / t_peer / 1e6:11.3f}   "
              f"{t_peer / t_ours:14.0f}x   {np.array_equal(peer_counts, ours_sub)}"
              f"   (labctl on the same subset: {t_ours * 1e3:.1f} ms)")
    if args.analyze_photons > 0:
        with tempfile.TemporaryDirectory(dir=args.dir) as folder:
            bench_analyze(folder, int(args.analyze_photons), args.analyze_repeats, args.baseline)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

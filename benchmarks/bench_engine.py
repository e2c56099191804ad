"""Engine benchmarks: T2 -> photons + HDF5 throughput on one core, and peak memory vs run length.

Run: ``python benchmarks/bench_engine.py``  (prints figures and ratios; not a test).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from labctl.blocks import ChannelMap, TagBlock
from labctl.acquisition.photons import PhotonConverter
from labctl.run import RunInfo, RunSummary
from labctl.storage import PhotonHDF5Writer

CHANNELS = ChannelMap(laser_sync=0, spad_a=1, spad_b=2, frame_marker=3)


def experiment_stream(seconds: float, rate_cps_per_spad: float = 200e3, seed: int = 0) -> TagBlock:
    """1 MHz sync + two SPADs (Poisson, with nanotimes spread over a 35 ns decay), sorted."""
    rng = np.random.default_rng(seed)
    syncs = np.arange(int(seconds * 1e6), dtype=np.int64) * 1_000_000
    n = rng.poisson(2 * rate_cps_per_spad * seconds)
    pulse = rng.integers(0, syncs.size, n)
    photons = syncs[pulse] + 2_000 + rng.exponential(35_000, n).astype(np.int64)
    ts = np.concatenate([syncs, photons])
    ch = np.concatenate([np.zeros(syncs.size, np.uint8), rng.integers(1, 3, n).astype(np.uint8)])
    order = np.argsort(ts, kind="stable")
    return TagBlock(ts[order], ch[order])


def bench_engine_core(stream: TagBlock, block_tags: int = 1_000_000) -> dict[str, float]:
    """Tags/s of the reader-thread work (photon conversion) and of conversion + HDF5 writing, one thread."""
    blocks = [TagBlock(stream.timestamps[i:i + block_tags], stream.channels[i:i + block_tags])
              for i in range(0, len(stream), block_tags)]
    PhotonConverter(CHANNELS).process(blocks[0])  # load the compiled kernel outside the timing
    converter = PhotonConverter(CHANNELS)
    t0 = time.perf_counter()
    for block in blocks:
        converter.process(block)
    converter.finish()
    convert_s = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.h5"
        run = RunInfo(run_id="bench", start_time_iso="", channels=CHANNELS,
                      detector_labels={1: "spad_a", 2: "spad_b"}, nominal_sync_period_ps=1_000_000)
        writer = PhotonHDF5Writer(path)
        writer.open(run)
        converter = PhotonConverter(CHANNELS)
        t0 = time.perf_counter()
        written = 0
        for block in blocks:
            photons = converter.process(block)
            writer.write(photons)
            written += len(photons)
        last = converter.finish()
        writer.write(last)
        written += len(last)
        writer.close(RunSummary(True, "duration", 0, {}, written, []))
        total_s = time.perf_counter() - t0
    return {"tags": len(stream), "photons": written, "convert_tags_per_s": len(stream) / convert_s,
            "convert_and_write_tags_per_s": len(stream) / total_s}


def peak_memory_mb(duration_s: float, time_scale: float) -> dict[str, float]:
    """Peak RSS (MiB) of a whole simulated run of ``duration_s`` (tagger time), in a fresh process."""
    code = f"""
import resource, json, time, tempfile, pathlib
from labctl.station.station import Station, StationConfig
from labctl.acquisition.engine import AcquisitionEngine
cfg = StationConfig.load()
data = cfg.data
data['instruments']['tagger']['library_options'] = {{'time_scale': {time_scale}}}
with tempfile.TemporaryDirectory() as tmp, Station(StationConfig.from_dict(data)) as station:
    t0 = time.perf_counter()
    with AcquisitionEngine(station, pathlib.Path(tmp) / 'm.h5') as engine:
        s = engine.run({duration_s})
    print(json.dumps({{'peak_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      'wall_s': time.perf_counter() - t0, 'losses': len(s.losses),
                      'photons': s.photons_written}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    stream = experiment_stream(10.0)
    core = bench_engine_core(stream)
    print(f"engine core, one thread, {core['tags']:,d} tags ({core['photons']:,d} photons) at 1 MHz sync + 2 x 200 kcps:")
    print(f"  T2 -> photons:               {core['convert_tags_per_s'] / 1e6:8.1f} M tags/s")
    print(f"  T2 -> photons + HDF5 write:  {core['convert_and_write_tags_per_s'] / 1e6:8.1f} M tags/s"
          f"   (target >= 50 M tags/s: {core['convert_and_write_tags_per_s'] / 50e6:.2f} x target;"
          f" {core['convert_and_write_tags_per_s'] / 1.4e6:.0f} x the experiment's ~1.4 M tags/s)")
    scale = 8.0
    short = peak_memory_mb(60.0, scale)
    long = peak_memory_mb(300.0, scale)
    print(f"peak memory of a whole simulated run (default station, time scale {scale:g}):")
    print(f"  1-minute run: {short['peak_mib']:7.1f} MiB  ({short['wall_s']:.1f} s wall, {short['photons']:,d} photons, {short['losses']} losses)")
    print(f"  5-minute run: {long['peak_mib']:7.1f} MiB  ({long['wall_s']:.1f} s wall, {long['photons']:,d} photons, {long['losses']} losses)")
    print(f"  ratio 5 min / 1 min: {long['peak_mib'] / short['peak_mib']:.3f}  (target within 10 %)")


if __name__ == "__main__":
    main()

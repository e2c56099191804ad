"""Frames per second the engine records alongside the full photon stream (simulated microscope).

Run: ``python benchmarks/bench_spectral.py`` (prints figures; not a test).  Each case records
a few seconds of the default station in real time (time scale 1) with a faster frame clock and
reports frames recorded vs frame markers, skipped frames and losses.
"""

from __future__ import annotations

import copy
import tempfile
import time
from pathlib import Path

import h5py

from labctl.acquisition.engine import AcquisitionEngine
from labctl.station.station import Station, StationConfig

CASES = [
    # (label, camera settings, frame rate Hz)
    ("FVB 1024 px", {"read_mode": "fvb", "exposure_s": 0.015}, 50.0),
    ("image 1024x1024", {"read_mode": "image", "exposure_s": 0.05}, 10.0),
]


def run_case(settings: dict, rate_hz: float, seconds: float) -> dict:
    data = copy.deepcopy(StationConfig.load().data)
    data["instruments"]["camera"]["settings"].update(settings)
    data["instruments"]["function_generator"]["settings"]["ch2"]["frequency_hz"] = rate_hz
    with tempfile.TemporaryDirectory() as tmp, Station(StationConfig.from_dict(data)) as station:
        out = Path(tmp) / "spectral.h5"
        t0 = time.perf_counter()
        with AcquisitionEngine(station, out) as engine:
            summary = engine.run(seconds)
        wall = time.perf_counter() - t0
        with h5py.File(out, "r") as f:
            frames = f["/user/labctl/spectra/frames"].shape[0]
            markers = f["/user/labctl/markers"].shape[0]
            skipped = f["/user/labctl/spectra/skipped_frames"].shape[0]
            size = out.stat().st_size
    return {"frames": frames, "markers": markers, "skipped": skipped, "losses": len(summary.losses),
            "photons": summary.photons_written, "wall_s": wall, "size_mib": size / 2**20}


def main(seconds: float = 4.0) -> None:
    print(f"engine recording frames + photons, default station, {seconds:g} s of tagger time at time scale 1:")
    for label, settings, rate in CASES:
        r = run_case(settings, rate, seconds)
        print(f"  {label:<16} clock {rate:5.1f} Hz: {r['frames']:4d} frames / {r['markers']:4d} markers "
              f"= {r['frames'] / seconds:5.1f} frames/s, skipped {r['skipped']}, losses {r['losses']}, "
              f"{r['photons']:,d} photons, file {r['size_mib']:.1f} MiB, wall {r['wall_s']:.1f} s")


if __name__ == "__main__":
    main()

"""Speed of the simulated scene, as a multiple of real time (target: >= 40x for the default scene).

Usage: ``python benchmarks/bench_scene.py [--seconds 20] [--chunk-ms 100]``

Generates tagger time in chunks, as the acquisition engine asks for it, on one core, and
prints the speed for the default scene (1 MHz, single QD) and a few variants.  Wall time
and process CPU time are both shown: on a shared machine the CPU-time figure is the one
that says what the code costs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labctl.blocks import ChannelMap  # noqa: E402
from sim_backends.scene import Scene  # noqa: E402

WIRING = ChannelMap(laser_sync=0, spad_a=1, spad_b=2)
PS_PER_S = 10**12

CASES: dict[str, dict] = {
    "default (1 MHz, single QD)": {},
    "Poissonian CW 2e5 photons/s, 1 MHz": {"emitter": {"kind": "poissonian"}},
    "single QD, 10 MHz": {"laser": {"repetition_rate_hz": 1.0e7}},
    "laser off (dark counts only)": {"laser": {"enabled": False}},
}


def measure(config: dict, seconds: float, chunk_ms: float, seed: int = 1) -> dict[str, float]:
    """Generate ``seconds`` of tagger time in ``chunk_ms`` chunks; return speeds and rates."""
    scene = Scene(config, wiring=WIRING, seed=seed)
    scene.generate(int(0.02 * PS_PER_S))  # warm-up: numba cache load / compile
    start = scene.generated_until_ps
    chunk_ps = int(chunk_ms * 1e9)
    n_sync = n_det = 0
    wall0, cpu0 = time.perf_counter(), time.process_time()
    t = start
    while t < start + int(seconds * PS_PER_S):
        t += chunk_ps
        block = scene.generate(t)
        is_sync = block.channels == WIRING.laser_sync
        n_sync += int(np.count_nonzero(is_sync))
        n_det += int(is_sync.size - np.count_nonzero(is_sync))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    simulated_s = (t - start) / PS_PER_S
    return {
        "x_wall": simulated_s / wall,
        "x_cpu": simulated_s / cpu,
        "tags_per_s": (n_sync + n_det) / wall,
        "det_cps": n_det / simulated_s,
    }


def on_state_rate_cps(seconds: float = 10.0, seed: int = 1) -> float:
    """Detections/s summed over both SPADs while the default QD is ON (from ``truth()``)."""
    scene = Scene(wiring=WIRING, seed=seed)
    block = scene.generate(int(seconds * PS_PER_S))
    truth = scene.truth()
    photons = block.timestamps[block.channels != WIRING.laser_sync]
    on = truth["on"][np.searchsorted(truth["start_ps"], photons, side="right") - 1]
    on_s = float(np.sum((truth["stop_ps"] - truth["start_ps"])[truth["on"]])) / PS_PER_S
    return np.count_nonzero(on) / on_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="tagger time per case (s)")
    parser.add_argument("--chunk-ms", type=float, default=100.0, help="tagger time per generate() call (ms)")
    args = parser.parse_args()
    print(f"simulated scene speed, {args.seconds:g} s of tagger time per case, {args.chunk_ms:g} ms per call")
    for name, config in CASES.items():
        r = measure(config, args.seconds, args.chunk_ms)
        print(
            f"  {name:38s} {r['x_wall']:7.1f}x real time (wall)  {r['x_cpu']:7.1f}x (CPU)  "
            f"{r['tags_per_s'] / 1e6:6.2f} M tags/s  detections {r['det_cps'] / 1e3:6.2f} kcps"
        )
    print(f"  default QD, ON state: {on_state_rate_cps() / 1e3:.2f} kcps over both SPADs")


if __name__ == "__main__":
    main()

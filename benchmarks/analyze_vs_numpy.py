"""``labctl analyze`` of an 18 M-photon phconvert T3 file against a plain numpy g(2) of the same
photons already in memory (issue 13's ratio); run by ``bench_analysis.py`` (``--only-analyze``).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # this checkout's labctl (and its child processes'), not an installed one

from labctl.blocks import ChannelMap  # noqa: E402

CHANNELS = ChannelMap(laser_sync=0, spad_a=1, spad_b=2, frame_marker=3)
PERIOD_PS = 1_000_000


def numpy_g2(a: np.ndarray, b: np.ndarray, range_ps: int, bin_ps: int) -> np.ndarray:
    """Peer: every pair by searchsorted, lags materialised, then bincount (lag = b - a in [-range, range))."""
    lo = np.searchsorted(a, b - range_ps, side="right")
    hi = np.searchsorted(a, b + range_ps, side="right")
    n = hi - lo
    a_idx = np.arange(int(n.sum())) + np.repeat(lo - (np.cumsum(n) - n), n)
    lags = np.repeat(b, n) - a[a_idx]
    return np.bincount((lags + range_ps) // bin_ps, minlength=2 * range_ps // bin_ps)


ANALYZE_PEER = """
import sys
import h5py
import numpy as np
range_ps, bin_ps, period_ps, unit_ps = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
with h5py.File(sys.argv[1], "r") as f:
    ts = f["photon_data/timestamps"][:] * period_ps + f["photon_data/nanotimes"][:].astype(np.int64) * unit_ps
    det = f["photon_data/detectors"][:]
a, b = ts[det == {a}], ts[det == {b}]
a.sort(kind="stable")
b.sort(kind="stable")
lo = np.searchsorted(a, b - range_ps, side="right")
hi = np.searchsorted(a, b + range_ps, side="right")
n = hi - lo
a_idx = np.arange(int(n.sum())) + np.repeat(lo - (np.cumsum(n) - n), n)
lags = np.repeat(b, n) - a[a_idx]
counts = np.bincount((lags + range_ps) // bin_ps, minlength=2 * range_ps // bin_ps)
"""


T3_TCSPC_UNIT_PS = 16
"""TCSPC bin of the phconvert file (ps): a whole number, so photon times are exact integer ps."""
ANALYZE_G2_BIN_PS, ANALYZE_G2_RANGE_PS = 1_000, 2_500_000  # issue 13: 1000 ps bins over +-2.5 us


def t3_photons(n_photons: int, rate_cps_per_spad: float = 200e3, seed: int = 2
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """A T3 recording as a PicoQuant card makes it: (sync ticks int64, nanotimes uint16 in
    ``T3_TCSPC_UNIT_PS`` bins, detectors uint8, duration s) of ~``n_photons`` photons of two SPADs
    on random 1 MHz pulses (2 ns + Exp(35 ns) after the pulse), in recording order."""
    rng = np.random.default_rng(seed)
    seconds = max(1, round(n_photons / (2 * rate_cps_per_spad)))
    n = rng.poisson(2 * rate_cps_per_spad * seconds)
    pulses_per_s = 10**12 // PERIOD_PS
    ticks = np.sort(rng.integers(0, seconds * pulses_per_s, n))
    delay_ps = 2_000 + rng.exponential(35_000, n)
    nanotimes = np.minimum(delay_ps // T3_TCSPC_UNIT_PS, PERIOD_PS // T3_TCSPC_UNIT_PS - 1).astype(np.uint16)
    order = np.lexsort((nanotimes, ticks))  # the card's order: by sync, then by arrival in the period
    detectors = rng.integers(CHANNELS.spad_a, CHANNELS.spad_b + 1, n).astype(np.uint8)
    return ticks[order].astype(np.int64), nanotimes[order], detectors, float(seconds)


def write_phconvert_file(path: str, ticks: np.ndarray, nanotimes: np.ndarray, detectors: np.ndarray,
                         duration_s: float) -> str:
    """Write the T3 photons with phconvert's ``save_photon_hdf5``, uncompressed; return who wrote it.

    Without phconvert installed: the same datasets with h5py (as ``tests/photon_hdf5_files.py``
    writes a T3 file), contiguous and uncompressed.
    """
    sync_period_s, unit_s = PERIOD_PS * 1e-12, T3_TCSPC_UNIT_PS * 1e-12
    num_bins = PERIOD_PS // T3_TCSPC_UNIT_PS
    try:
        import phconvert
    except ImportError:
        from tests.photon_hdf5_files import write_t3_h5py

        write_t3_h5py(path, ticks, detectors, nanotimes, sync_period_s=sync_period_s, tcspc_unit_s=unit_s,
                      tcspc_num_bins=num_bins, acquisition_duration_s=duration_s)
        return "h5py (phconvert is not installed), uncompressed"
    ids = [CHANNELS.spad_a, CHANNELS.spad_b]
    data = {
        "description": "T3 recording for bench_analysis.py",
        "acquisition_duration": duration_s,
        "photon_data": {
            "timestamps": ticks, "timestamps_specs": {"timestamps_unit": sync_period_s},
            "detectors": detectors, "nanotimes": nanotimes,
            "nanotimes_specs": {"tcspc_unit": unit_s, "tcspc_num_bins": num_bins, "tcspc_range": num_bins * unit_s},
            "measurement_specs": {"measurement_type": "generic", "laser_repetition_rate": 1.0 / sync_period_s,
                                  "detectors_specs": {"split_ch1": np.array([ids[0]]), "split_ch2": np.array([ids[1]])}},
        },
        "setup": {"num_pixels": 2, "num_spots": 1, "num_spectral_ch": 1, "num_polarization_ch": 1, "num_split_ch": 2,
                  "modulated_excitation": False, "lifetime": True, "excitation_alternated": [False],
                  "excitation_cw": [False], "excitation_wavelengths": [532e-9],
                  "laser_repetition_rates": [1.0 / sync_period_s], "detection_wavelengths": [600e-9]},
        "identity": {"author": "bench_analysis.py", "author_affiliation": "none"},
    }
    phconvert.hdf5.save_photon_hdf5(data, h5_fname=path, overwrite=True, warnings=False,
                                    compression={"complevel": 0})
    return f"phconvert {phconvert.__version__} save_photon_hdf5, uncompressed (complevel 0)"


def in_memory_g2(times_ps: np.ndarray, detectors: np.ndarray) -> np.ndarray:
    """The peer: the two detectors' photons of an in-memory stream, then ``numpy_g2`` (searchsorted pairs)."""
    return numpy_g2(times_ps[detectors == CHANNELS.spad_a], times_ps[detectors == CHANNELS.spad_b],
                    ANALYZE_G2_RANGE_PS, ANALYZE_G2_BIN_PS)


def wall_s(command: list[str], cpu: list[float] | None = None, env: dict[str, str] | None = None) -> float:
    """Wall-clock seconds of a fresh process running ``command`` (output discarded; it must succeed);
    its CPU seconds (user + system, all threads, and its child processes') are appended to ``cpu``."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if cpu is not None:
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return elapsed


def checkout_env(checkout: str) -> dict[str, str]:
    """The environment of a child process that imports labctl from ``checkout`` (a folder holding labctl/)."""
    rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and os.path.abspath(p) != REPO]
    return dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.abspath(checkout), *rest]))


def summary(runs: list[float]) -> str:
    """'median s (min ..., runs: ...)' of wall-clock or CPU seconds."""
    return (f"{statistics.median(runs):6.2f} s   (min {min(runs):.2f}; runs: {', '.join(f'{x:.2f}' for x in runs)})")


def bench_analyze(folder: str, n_photons: int, repeats: int, baseline: str | None = None) -> None:
    """``labctl analyze FILE`` (a fresh process) against the numpy g(2) of the same photons in memory.

    Issue 13's measure: the whole ``labctl analyze`` process (start-up, imports, reading,
    g2 + lifetime + mono fit + trace + FLID) over the wall time of a plain in-process numpy
    searchsorted g(2) of the same photons, already in memory (target: ratio <= 1).  Also
    printed: the numpy g(2) as a fresh process that reads the file itself.  ``baseline``: another
    checkout of labctl (a folder holding labctl/), whose ``labctl analyze`` is timed in the same
    alternation (before/after figures under the same load) and must give the same JSON.
    """
    path = os.path.join(folder, "analyze.h5")
    ticks, nanotimes, detectors, duration_s = t3_photons(n_photons)
    writer = write_phconvert_file(path, ticks, nanotimes, detectors, duration_s)
    times_ps = ticks * PERIOD_PS + nanotimes.astype(np.int64) * T3_TCSPC_UNIT_PS
    order = np.argsort(times_ps, kind="stable")  # photon time order (T3: a nanotime can pass a later sync's)
    times_ps, sorted_detectors = times_ps[order], detectors[order]
    n = times_ps.size
    options = ["--g2-bin-ps", str(ANALYZE_G2_BIN_PS), "--g2-range-ps", str(ANALYZE_G2_RANGE_PS), "--fit", "mono"]
    ours_cmd = [sys.executable, "-m", "labctl.cli", "analyze", path, *options]
    peer_cmd = [sys.executable, "-c", ANALYZE_PEER.format(a=CHANNELS.spad_a, b=CHANNELS.spad_b), path,
                str(ANALYZE_G2_RANGE_PS), str(ANALYZE_G2_BIN_PS), str(PERIOD_PS), str(T3_TCSPC_UNIT_PS)]
    out_json = os.path.join(folder, "analyze.json")
    subprocess.run([*ours_cmd, "--json", out_json], check=True, stdout=subprocess.DEVNULL)  # also: numba cache
    result = json.loads(open(out_json).read())
    counts = in_memory_g2(times_ps, sorted_detectors)
    agree = np.array_equal(np.asarray(result["g2"]["counts"]), counts)
    base_env = checkout_env(baseline) if baseline is not None else None
    if base_env is not None:
        base_json = os.path.join(folder, "baseline.json")
        subprocess.run([*ours_cmd, "--json", base_json], check=True, stdout=subprocess.DEVNULL, env=base_env)
        same_json = json.loads(open(base_json).read()) == result
    ours, peer, peer_process, ours_cpu, peer_cpu, base, base_cpu = [], [], [], [], [], [], []
    load_before = os.getloadavg()[0]
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        in_memory_g2(times_ps, sorted_detectors)
        peer.append(time.perf_counter() - t0)
        peer_cpu.append(time.process_time() - c0)
        if base_env is not None and len(base) % 2:  # every other repeat the baseline first: no order bias
            base.append(wall_s(ours_cmd, base_cpu, env=base_env))
        ours.append(wall_s(ours_cmd, ours_cpu))
        if base_env is not None and len(base) < len(ours):
            base.append(wall_s(ours_cmd, base_cpu, env=base_env))
        peer_process.append(wall_s(peer_cmd))
    t_ours, t_peer, t_process = statistics.median(ours), statistics.median(peer), statistics.median(peer_process)
    fit = (result.get("lifetime") or {}).get("fit") or {}
    print(f"\nlabctl analyze vs a plain numpy g(2) of the same photons ({n:,} photons, T3, "
          f"{os.path.getsize(path) / 1e6:.0f} MB written by {writer}; g2 {ANALYZE_G2_BIN_PS} ps bins over "
          f"+-{ANALYZE_G2_RANGE_PS / 1e6:g} us, mono fit; wall-clock median of {repeats}, alternated; "
          f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} cores)")
    print(f"  labctl analyze FILE {' '.join(options)}   {t_ours:6.2f} s   whole process "
          f"(runs: {', '.join(f'{x:.2f}' for x in ours)})")
    print(f"  numpy searchsorted g(2), photons in memory, this process   {t_peer:6.2f} s   "
          f"(runs: {', '.join(f'{x:.2f}' for x in peer)})")
    print(f"  numpy searchsorted g(2), fresh process reading the file    {t_process:6.2f} s   "
          f"(runs: {', '.join(f'{x:.2f}' for x in peer_process)})")
    print(f"  analyze / numpy g(2) in memory: {t_ours / t_peer:.2f}  (target <= 1: "
          f"{'MET' if t_ours <= t_peer else 'MISSED'}); analyze / numpy g(2) process: {t_ours / t_process:.2f}; "
          f"g(2) counts agree: {agree}; fit tau {fit.get('tau_ns')} ns")
    c_ours, c_peer = statistics.median(ours_cpu), statistics.median(peer_cpu)
    print(f"  CPU seconds (all threads; what other load changes least): analyze {c_ours:.2f}, numpy g(2) in memory "
          f"{c_peer:.2f}, ratio {c_ours / c_peer:.2f} (analyze spreads over {os.cpu_count()} cores: its wall time "
          f"on an idle machine is below its CPU time)")
    if base_env is not None:
        t_base = statistics.median(base)
        print(f"  baseline {baseline}: labctl analyze {summary(base)}\n"
              f"    wall: this / baseline {t_ours / t_base:.2f} (median of the repeats' ratios "
              f"{statistics.median(o / b for o, b in zip(ours, base)):.2f}; this faster in "
              f"{sum(o < b for o, b in zip(ours, base))} of {len(ours)}); baseline / numpy g(2) in memory "
              f"{t_base / t_peer:.2f}\n"
              f"    CPU seconds: this {summary(ours_cpu)}\n"
              f"                 baseline {summary(base_cpu)}\n"
              f"    same JSON as this checkout: {same_json}")

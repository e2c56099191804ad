"""Test helper: a simulated single-QD run written as a Photon-HDF5 file with camera spectra, straight from
``sim_backends.scene`` (no engine, no real-time clock: seconds of simulated time in a fraction of that)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from labctl.blocks import ChannelMap
from labctl.storage import layout as L
from sim_backends.scene import Scene
from sim_backends.spectra import default_wavelength_axis_nm
from tests.photon_hdf5_files import write_ps_h5py

WIRING = ChannelMap(laser_sync=0, spad_a=1, spad_b=2)
HC_EV_NM = 1239.841984


def simulate_to_file(path: Path, scene_config: dict[str, Any], duration_s: float, *, seed: int = 1,
                     frame_rate_hz: float = 10.0, exposure_s: float = 0.09, frame_offset_s: float = 0.013,
                     baseline_counts: float = 300.0, read_noise_counts: float = 5.0, pixels: int = 512) -> Scene:
    """Write ``path``: photons (ps timestamps and nanotimes, detectors 1 and 2) and one spectrum per frame.

    Frames start at ``frame_offset_s + k / frame_rate_hz`` (not on the analysis bins) and
    hold Poisson counts of the scene's emitted spectrum over their exposure, plus the
    camera's electronic offset ``baseline_counts`` with Gaussian read noise.
    """
    scene = Scene(scene_config, wiring=WIRING, seed=seed)
    scene.set_excitation(True)
    stop_ps = int(round(duration_s * 1e12))
    parts = []
    step = int(0.5e12)
    for t in range(step, stop_ps + step, step):
        block = scene.generate(min(t, stop_ps))
        parts.append((block.timestamps, block.channels))
    times = np.concatenate([p[0] for p in parts])
    chans = np.concatenate([p[1] for p in parts])
    syncs = times[chans == WIRING.laser_sync]
    photon = chans != WIRING.laser_sync
    t_ph, det = times[photon], chans[photon]
    last = np.searchsorted(syncs, t_ph, side="right") - 1
    nanotimes = np.where(last >= 0, t_ph - syncs[np.maximum(last, 0)], -1)
    period_ps = 1e12 / scene.repetition_rate_hz()
    write_ps_h5py(path, t_ph, det, nanotimes_ps=nanotimes, period_ps=period_ps, acquisition_duration_s=duration_s)
    rng = np.random.default_rng(seed + 1000)
    wavelength = default_wavelength_axis_nm(pixels, nm_per_pixel=0.25)
    energy = HC_EV_NM / wavelength
    starts = np.arange(frame_offset_s, duration_s - exposure_s, 1.0 / frame_rate_hz)
    start_ps = np.round(starts * 1e12).astype(np.int64)
    stop_exp = start_ps + int(round(exposure_s * 1e12))
    frames = np.empty((start_ps.size, pixels), np.uint16)
    for k, (a, b) in enumerate(zip(start_ps, stop_exp)):
        signal = rng.poisson(scene.emitted_spectrum(int(a), int(b), energy))
        frames[k] = np.clip(np.rint(signal + baseline_counts + rng.normal(0.0, read_noise_counts, pixels)), 0, 65535)
    with h5py.File(path, "a") as f:
        f[L.SPECTRA_FRAMES] = frames
        f[L.SPECTRA_FRAME_INDEX] = np.arange(start_ps.size, dtype=np.int64)
        f[L.SPECTRA_EXPOSURE_START] = start_ps
        f[L.SPECTRA_EXPOSURE_STOP] = stop_exp
        f[L.SPECTRA_WAVELENGTH] = wavelength
        f[L.SPECTRA_ENERGY] = energy
        f[L.SPECTRA_SKIPPED] = np.empty(0, np.int64)
    return scene

"""Test helpers: photon streams of real-looking setups, written as Photon-HDF5 the way other labs' tools do.

Not labctl's writer: files are made with h5py from the Photon-HDF5 spec, or with
phconvert's ``phconvert.hdf5.save_photon_hdf5`` (what PicoQuant/quTAG users convert
with).  T3 files store timestamps in laser-sync ticks (``timestamps_unit`` = the sync
period, e.g. 1/76.2 MHz = 13123.36 ps) and nanotimes in TCSPC bins (4 ps, 16 ps, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

import h5py
import numpy as np


@dataclass
class Photons:
    """Photon arrival times (float64 ps, sorted), detector ids, and the laser period (ps)."""

    times_ps: np.ndarray
    detectors: np.ndarray
    period_ps: float


def pulsed_emitter(rng: np.random.Generator, *, n_pulses: int, period_ps: float, p_photon: float, tau_ps: float,
                   irf_offset_ps: dict[int, float], irf_sigma_ps: float = 40.0, cable_delay_ps: dict[int, float] | None = None,
                   background_cps: float = 0.0, single_photon: bool = True) -> Photons:
    """A pulsed emitter seen by the detectors in ``irf_offset_ps`` (their IRF offsets after the pulse).

    Each pulse gives at most one photon (``single_photon``: an antibunched emitter; else
    Poissonian: each detector independently) with probability ``p_photon``, sent to one
    detector at random (a 50:50 splitter for two), delayed by an exponential of ``tau_ps``,
    the IRF (Gaussian) and the detector's cable delay.  Plus uniform background on each detector.
    """
    dets = np.array(sorted(irf_offset_ps), np.int64)
    cable = cable_delay_ps or {}
    if single_photon:
        n = rng.binomial(n_pulses, p_photon)
        pulse = rng.choice(n_pulses, size=n, replace=False)
        det = dets[rng.integers(0, dets.size, n)]
    else:
        chosen = [rng.choice(n_pulses, size=rng.binomial(n_pulses, p_photon / dets.size), replace=False) for _ in dets]
        pulse = np.concatenate(chosen)
        det = np.repeat(dets, [c.size for c in chosen])
    offset = np.array([irf_offset_ps[int(d)] + cable.get(int(d), 0.0) for d in dets])
    index = np.searchsorted(dets, det)
    t = pulse * period_ps + offset[index] + rng.normal(0.0, irf_sigma_ps, pulse.size) + rng.exponential(tau_ps, pulse.size)
    duration_ps = n_pulses * period_ps
    n_bg = rng.poisson(background_cps * duration_ps * 1e-12, dets.size)
    t = np.concatenate([t] + [rng.uniform(0, duration_ps, k) for k in n_bg])
    det = np.concatenate([det] + [np.full(k, d) for d, k in zip(dets, n_bg)])
    order = np.argsort(t, kind="stable")
    return Photons(t[order], det[order].astype(np.uint8), period_ps)


def to_t3(photons: Photons, tcspc_unit_ps: float) -> tuple[np.ndarray, np.ndarray]:
    """(sync ticks int64, nanotimes uint16 in TCSPC bins) as a TCSPC card in T3 mode records them:
    the last sync before the photon, and the delay since it in whole TCSPC bins."""
    t = photons.times_ps
    ticks = np.floor(t / photons.period_ps).astype(np.int64)
    delay = t - ticks * photons.period_ps
    return ticks, np.floor(delay / tcspc_unit_ps).astype(np.uint16)


def write_t3_h5py(path, ticks: np.ndarray, detectors: np.ndarray, nanotimes: np.ndarray, *, sync_period_s: float,
                  tcspc_unit_s: float, tcspc_num_bins: int, acquisition_duration_s: float | None = None,
                  laser_rate: bool = True, software: str = "a T3 converter") -> None:
    """A T3 Photon-HDF5 v0.5 file written with h5py from the spec (timestamps_unit = the sync period)."""
    with h5py.File(path, "w") as f:
        f.attrs["format_name"] = np.bytes_(b"Photon-HDF5")
        f.attrs["format_version"] = np.bytes_(b"0.5")
        f["description"] = np.bytes_(b"T3 file made with h5py for a labctl test")
        if acquisition_duration_s is not None:
            f["acquisition_duration"] = acquisition_duration_s
        pd = f.create_group("photon_data")
        pd["timestamps"] = ticks.astype(np.int64)
        pd["timestamps_specs/timestamps_unit"] = sync_period_s
        pd["detectors"] = detectors.astype(np.uint8)
        pd["nanotimes"] = nanotimes.astype(np.uint16)
        pd["nanotimes_specs/tcspc_unit"] = tcspc_unit_s
        pd["nanotimes_specs/tcspc_num_bins"] = tcspc_num_bins
        pd["nanotimes_specs/tcspc_range"] = tcspc_num_bins * tcspc_unit_s
        pd["measurement_specs/measurement_type"] = np.bytes_(b"generic")
        if laser_rate:
            pd["measurement_specs/laser_repetition_rate"] = 1.0 / sync_period_s
        ids = np.unique(detectors)
        f["setup/num_pixels"] = ids.size
        f["setup/num_spots"] = 1
        f["setup/lifetime"] = True
        f["setup/detectors/id"] = ids.astype(np.int64)
        f["identity/software"] = np.bytes_(software.encode())


def write_t3_phconvert(path, ticks: np.ndarray, detectors: np.ndarray, nanotimes: np.ndarray, *, sync_period_s: float,
                       tcspc_unit_s: float, tcspc_num_bins: int, acquisition_duration_s: float) -> None:
    """The same T3 file written by phconvert's ``save_photon_hdf5`` (validated by phconvert)."""
    import phconvert

    ids = [int(d) for d in np.unique(detectors)]
    data = {
        "description": "T3 file written by phconvert for a labctl test",
        "acquisition_duration": float(acquisition_duration_s),
        "photon_data": {
            "timestamps": ticks.astype(np.int64),
            "timestamps_specs": {"timestamps_unit": sync_period_s},
            "detectors": detectors.astype(np.uint8),
            "nanotimes": nanotimes.astype(np.uint16),
            "nanotimes_specs": {"tcspc_unit": tcspc_unit_s, "tcspc_num_bins": int(tcspc_num_bins),
                                "tcspc_range": tcspc_num_bins * tcspc_unit_s},
            "measurement_specs": {"measurement_type": "generic", "laser_repetition_rate": 1.0 / sync_period_s,
                                  "detectors_specs": ({"split_ch1": np.array([ids[0]]), "split_ch2": np.array([ids[1]])}
                                                      if len(ids) > 1 else {"spectral_ch1": np.array([ids[0]])})},
        },
        "setup": {"num_pixels": len(ids), "num_spots": 1, "num_spectral_ch": 1, "num_polarization_ch": 1,
                  "num_split_ch": len(ids), "modulated_excitation": False, "lifetime": True,
                  "excitation_alternated": [False], "excitation_cw": [False], "excitation_wavelengths": [532e-9],
                  "laser_repetition_rates": [1.0 / sync_period_s],
                  "detection_wavelengths": [600e-9]},
        "identity": {"author": "labctl tests", "author_affiliation": "none"},
    }
    phconvert.hdf5.save_photon_hdf5(data, h5_fname=str(path), overwrite=True, warnings=False)


def write_ps_h5py(path, times_ps: np.ndarray, detectors: np.ndarray, *, nanotimes_ps: np.ndarray | None = None,
                  period_ps: float | None = None, laser_rate: bool = True,
                  acquisition_duration_s: float | None = None) -> None:
    """A T2-like file (timestamps in 1 ps units), optionally with nanotimes in 1 ps units."""
    with h5py.File(path, "w") as f:
        f.attrs["format_name"] = np.bytes_(b"Photon-HDF5")
        f.attrs["format_version"] = np.bytes_(b"0.5")
        f["description"] = np.bytes_(b"T2 file made with h5py for a labctl test")
        if acquisition_duration_s is not None:
            f["acquisition_duration"] = acquisition_duration_s
        pd = f.create_group("photon_data")
        pd["timestamps"] = np.asarray(times_ps, np.int64)
        pd["timestamps_specs/timestamps_unit"] = 1e-12
        pd["detectors"] = detectors.astype(np.uint8)
        if nanotimes_ps is not None:
            pd["nanotimes"] = np.asarray(nanotimes_ps, np.int32)
            pd["nanotimes_specs/tcspc_unit"] = 1e-12
            pd["nanotimes_specs/tcspc_num_bins"] = int(period_ps)
        pd["measurement_specs/measurement_type"] = np.bytes_(b"generic")
        if laser_rate and period_ps:
            pd["measurement_specs/laser_repetition_rate"] = 1e12 / period_ps
        f["setup/num_pixels"] = int(np.unique(detectors).size)
        f["setup/num_spots"] = 1
        f["setup/lifetime"] = nanotimes_ps is not None
        f["identity/software"] = np.bytes_(b"a T2 converter")

"""Spectra per lifetime regime: camera frames picked by their exposure on the photon clock.

A frame counts for a regime when at least ``min_frame_overlap`` of its exposure
``[exposure_start_ps, exposure_stop_ps)`` lies in the regime's time bins.  The trap
spectrum is what remains of each longer regime's spectrum after the band-edge part is
taken out: the shortest regime's spectrum, area-normalised, times the regime's area and
its band-edge emission fraction (1 - trap fraction); the longer regimes' remainders are
summed (the paper's Fig. 4g,h dashed lines).  Peak energy and FWHM: the Gaussian fit of
``labctl.analysis.spectra.peak_energy_and_width``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from labctl.analysis.spectra import SpectraData, load_spectra, peak_energy_and_width, subtract_baseline
from labctl.storage import layout as L


def read_spectra(path: str | Path) -> SpectraData | None:
    """The file's spectra, or None if it has no camera frames."""
    with h5py.File(path, "r") as f:
        if L.SPECTRA_FRAMES not in f or f[L.SPECTRA_FRAMES].shape[0] == 0:
            return None
    return load_spectra(path)


def frames_in_bins(spectra: SpectraData, in_bins: np.ndarray, origin_ps: int, bin_ps: int,
                   min_overlap: float) -> np.ndarray:
    """Mask of the frames with at least ``min_overlap`` of their exposure in the bins marked ``in_bins``."""
    start = spectra.exposure_start_ps.astype(np.int64) - origin_ps
    stop = spectra.exposure_stop_ps.astype(np.int64) - origin_ps
    n = in_bins.size
    cum = np.concatenate([[0], np.cumsum(in_bins.astype(np.int64) * bin_ps)])  # ps of selected bins up to edge

    def covered(t: np.ndarray) -> np.ndarray:  # selected ps in [0, t)
        t = np.clip(t, 0, n * bin_ps)
        b = np.minimum(t // bin_ps, n - 1)
        part = np.where(in_bins[b], t - b * bin_ps, 0)
        return cum[b] + part

    length = np.maximum(stop - start, 1)
    return (covered(stop) - covered(start)) >= min_overlap * length - 1e-9


def line(spectrum: np.ndarray, energy_ev: np.ndarray) -> tuple[float | None, float | None]:
    """(peak energy, FWHM) in eV of a spectrum (baseline already subtracted), or Nones."""
    if not np.isfinite(spectrum).all() or spectrum.max() <= 0:
        return None, None
    peaks, widths = peak_energy_and_width(spectrum[None, :], energy_ev, edge_pixels=min(50, spectrum.size // 4))
    p, w = float(peaks[0]), float(widths[0])
    return (p if np.isfinite(p) else None), (w if np.isfinite(w) else None)


def regime_spectra(spectra: SpectraData, masks: list[np.ndarray], origin_ps: int, bin_ps: int,
                   min_overlap: float, trap_fractions: list[float | None]) -> dict[str, Any]:
    """Summed spectrum, peak and FWHM per regime; the trap spectrum by subtraction."""
    signal = subtract_baseline(spectra.frames, min(50, spectra.frames.shape[1] // 4))
    energy = spectra.energy_ev
    per: list[dict[str, Any]] = []
    sums: list[np.ndarray | None] = []
    for mask in masks:
        sel = frames_in_bins(spectra, mask, origin_ps, bin_ps, min_overlap)
        n = int(sel.sum())
        if n == 0:
            per.append({"peak_ev": None, "fwhm_ev": None, "frames": 0, "counts": None})
            sums.append(None)
            continue
        s = signal[sel].sum(axis=0)
        peak, fwhm = line(s, energy)
        per.append({"peak_ev": peak, "fwhm_ev": fwhm, "frames": n, "counts": s.tolist()})
        sums.append(s)
    trap: dict[str, Any] = {"peak_ev": None, "fwhm_ev": None, "counts": None, "regimes_used": []}
    if sums and sums[0] is not None and sums[0].sum() > 0:
        band_edge = sums[0] / sums[0].sum()
        rest = np.zeros_like(band_edge)
        for i in range(1, len(sums)):
            if sums[i] is None or trap_fractions[i] is None:
                continue
            rest += sums[i] - (1.0 - trap_fractions[i]) * sums[i].sum() * band_edge
            trap["regimes_used"].append(i)
        if trap["regimes_used"]:
            trap["peak_ev"], trap["fwhm_ev"] = line(rest, energy)
            trap["counts"] = rest.tolist()
    return {"regimes": per, "trap": trap, "energy_ev": energy.tolist()}

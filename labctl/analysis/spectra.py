"""Spectra on the photon clock: spectral time trace, peak energy and width per frame, window sums.

Frames come from ``/user/labctl/spectra`` (see README); every frame has an
exposure window ``[exposure_start_ps, exposure_stop_ps)`` on the tagger clock,
so spectra can be selected by anything computed from the photons (intensity,
mean lifetime: the paper's Fig. 4f-h).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from labctl.storage import layout as L

FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


@dataclass(frozen=True)
class SpectraData:
    """The spectra of a run (FVB frames: frames x pixels, counts)."""

    frames: np.ndarray
    frame_index: np.ndarray
    exposure_start_ps: np.ndarray
    exposure_stop_ps: np.ndarray
    wavelength_nm: np.ndarray
    energy_ev: np.ndarray
    skipped_frames: np.ndarray


def load_spectra(path: str | Path) -> SpectraData:
    """Read the spectra datasets of a labctl file (image frames are summed over rows)."""
    with h5py.File(path, "r", swmr=True) as f:
        frames = f[L.SPECTRA_FRAMES][()]
        if frames.ndim == 3:
            frames = frames.sum(axis=1, dtype=np.int64)
        return SpectraData(
            frames=frames.astype(np.float64),
            frame_index=f[L.SPECTRA_FRAME_INDEX][()],
            exposure_start_ps=f[L.SPECTRA_EXPOSURE_START][()],
            exposure_stop_ps=f[L.SPECTRA_EXPOSURE_STOP][()],
            wavelength_nm=f[L.SPECTRA_WAVELENGTH][()],
            energy_ev=f[L.SPECTRA_ENERGY][()],
            skipped_frames=f[L.SPECTRA_SKIPPED][()],
        )


def subtract_baseline(frames: np.ndarray, edge_pixels: int = 50) -> np.ndarray:
    """Frames minus each frame's baseline: the median of ``edge_pixels`` at both ends (counts)."""
    frames = np.atleast_2d(np.asarray(frames, dtype=np.float64))
    if 2 * edge_pixels >= frames.shape[1]:
        raise ValueError(f"edge_pixels = {edge_pixels}: must be < half the {frames.shape[1]} pixels")
    edges = np.concatenate([frames[:, :edge_pixels], frames[:, -edge_pixels:]], axis=1)
    return frames - np.median(edges, axis=1, keepdims=True)


def peak_energy_and_width(frames: np.ndarray, energy_ev: np.ndarray, *, window_ev: float = 0.15,
                          edge_pixels: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Peak energy (eV) and FWHM (eV) of each frame: a Gaussian + offset least-squares fit.

    The fit (scipy ``curve_fit``) uses the baseline-subtracted pixels within
    ``window_ev`` of the frame's maximum and starts from the window's moments.
    Frames without a usable line give NaN.
    """
    from scipy.optimize import curve_fit

    signal = subtract_baseline(frames, edge_pixels)
    energy = np.asarray(energy_ev, dtype=np.float64)
    peaks = np.full(signal.shape[0], np.nan)
    widths = np.full(signal.shape[0], np.nan)
    smooth = np.apply_along_axis(lambda row: np.convolve(row, np.ones(9) / 9, mode="same"), 1, signal)
    for k in range(signal.shape[0]):  # a loop over frames (10 per second), not over photons
        centre = energy[int(np.argmax(smooth[k]))]
        near = np.abs(energy - centre) <= window_ev
        x, y = energy[near], signal[k, near]
        weights = np.clip(y, 0.0, None)
        if weights.sum() <= 0:
            continue
        mean = float((weights * x).sum() / weights.sum())
        sigma0 = max(float(np.sqrt((weights * (x - mean) ** 2).sum() / weights.sum())), 1e-3)
        try:
            (amplitude, mu, sigma, _), _ = curve_fit(_gaussian, x, y, p0=(float(y.max()), mean, sigma0, 0.0), maxfev=2000)
        except (RuntimeError, ValueError):
            continue
        if amplitude > 0 and abs(mu - centre) <= window_ev:
            peaks[k], widths[k] = mu, FWHM_PER_SIGMA * abs(sigma)
    return peaks, widths


def _gaussian(x: np.ndarray, amplitude: float, mu: float, sigma: float, offset: float) -> np.ndarray:
    return amplitude * np.exp(-0.5 * ((x - mu) / sigma) ** 2) + offset


def window_weights(exposure_start_ps: np.ndarray, exposure_stop_ps: np.ndarray, windows_ps: np.ndarray) -> np.ndarray:
    """Fraction of each frame's exposure that lies inside the union of ``windows_ps`` (k x 2, [start, stop))."""
    windows = np.asarray(windows_ps, dtype=np.int64).reshape(-1, 2)
    if np.any(windows[:, 1] < windows[:, 0]):
        raise ValueError("windows_ps: every window must have stop >= start")
    start = np.asarray(exposure_start_ps, np.int64)[:, None]
    stop = np.asarray(exposure_stop_ps, np.int64)[:, None]
    overlap = np.clip(np.minimum(stop, windows[None, :, 1]) - np.maximum(start, windows[None, :, 0]), 0, None)
    length = np.maximum(stop - start, 1)[:, 0]
    return np.minimum(overlap.sum(axis=1) / length, 1.0)


def sum_spectra(spectra: SpectraData, windows_ps: np.ndarray, *, edge_pixels: int = 50) -> np.ndarray:
    """Baseline-subtracted spectrum summed over the frames in ``windows_ps``, each frame weighted
    by the fraction of its exposure inside the windows (counts per pixel)."""
    weights = window_weights(spectra.exposure_start_ps, spectra.exposure_stop_ps, windows_ps)
    return (subtract_baseline(spectra.frames, edge_pixels) * weights[:, None]).sum(axis=0)

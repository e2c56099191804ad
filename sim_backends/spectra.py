"""Spectral model of the scene: what the emitter's photons look like to a spectrograph.

Conventions (used by ``Scene.emitted_spectrum`` and the simulated camera):

* Energies in eV, wavelengths in nm, related by ``E = HC_EV_NM / wavelength`` (vacuum;
  the 0.03 % of air's refractive index is ignored).
* Each kind of photon has a Gaussian line in *energy*: band-edge photons at
  ``emitter.band_edge.peak_ev`` with FWHM ``band_edge.fwhm_mev``, trap photons at
  ``emitter.trap.peak_ev`` / ``trap.fwhm_mev`` (Vonk et al., Fig. 4f-h).  OFF-state
  (dim) photons and biexciton photons are put on the band-edge line (*assumed*: the
  paper resolves neither; the biexciton binding energy is neglected).
* A **pixel axis** is an array of pixel-centre energies (or wavelengths), monotonic in
  either direction.  Pixel i covers the interval between the midpoints to its two
  neighbours; each end pixel extends by half the spacing to its one neighbour.
  "Photons per pixel" is the integral of the line over that interval, so a line lying
  wholly inside the axis sums to exactly 1 over the pixels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

HC_EV_NM = 1239.841984
"""Planck constant x speed of light in eV nm."""

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))

DEFAULT_CENTRE_NM = 600.0
DEFAULT_NM_PER_PIXEL = 0.4
"""Default spectrograph axis: centred at 600 nm, 0.4 nm per 13 um pixel (150 l/mm grating on
the Kymera 193i, computed in reference/instruments.md)."""

LINE_OF_KIND: dict[str, str] = {"band_edge": "band_edge", "off": "band_edge", "biexciton": "band_edge", "trap": "trap"}
"""Emission-log column -> spectral line its photons are emitted on."""

SPECTRAL_KINDS = tuple(LINE_OF_KIND)
"""Emission-log columns that reach the spectrograph (the Poissonian test source does not)."""

_erf = np.frompyfunc(math.erf, 1, 1)


def energy_ev(wavelength_nm: np.ndarray) -> np.ndarray:
    """Photon energy (eV) of each wavelength (nm); also converts eV back to nm."""
    return HC_EV_NM / np.asarray(wavelength_nm, np.float64)


def default_wavelength_axis_nm(
    num_pixels: int = 1024, centre_nm: float = DEFAULT_CENTRE_NM, nm_per_pixel: float = DEFAULT_NM_PER_PIXEL
) -> np.ndarray:
    """Linear wavelength (nm) of each pixel centre, increasing with pixel index, centred on ``centre_nm``."""
    return centre_nm + (np.arange(num_pixels, dtype=np.float64) - (num_pixels - 1) / 2.0) * nm_per_pixel


def pixel_edges(centres: np.ndarray) -> np.ndarray:
    """Edges (n + 1) of the pixels whose centres are given (monotonic, n >= 2), in the same units."""
    c = np.asarray(centres, np.float64)
    if c.ndim != 1 or c.size < 2:
        raise ValueError(f"pixel axis of shape {c.shape}: must be one-dimensional with at least 2 pixels")
    d = np.diff(c)
    if not (np.all(d > 0) or np.all(d < 0)):
        raise ValueError("pixel axis: must be strictly monotonic")
    mid = 0.5 * (c[1:] + c[:-1])
    return np.concatenate(([c[0] - 0.5 * d[0]], mid, [c[-1] + 0.5 * d[-1]]))


def gaussian_pixel_fractions(centres_ev: np.ndarray, peak_ev: float, fwhm_mev: float) -> np.ndarray:
    """Fraction of a Gaussian line (in energy) that falls in each pixel of an energy axis."""
    sigma_ev = fwhm_mev * 1e-3 / FWHM_PER_SIGMA
    z = (pixel_edges(centres_ev) - peak_ev) / (sigma_ev * math.sqrt(2.0))
    cdf = 0.5 * (1.0 + _erf(z).astype(np.float64))
    return np.abs(np.diff(cdf))


def prorated_counts(start_ps: np.ndarray, stop_ps: np.ndarray, counts: np.ndarray, t0_ps: int, t1_ps: int) -> np.ndarray:
    """Counts in ``[t0, t1)`` from rows of counts over ``[start, stop)``, pro-rated by time overlap.

    Args:
        start_ps, stop_ps: row intervals (int64 ps, non-empty rows).
        counts: ``(rows, k)`` counts per row.

    Returns:
        ``(k,)`` float64: sum over rows of ``counts x overlap / row duration``.
    """
    if start_ps.size == 0:
        return np.zeros(counts.shape[1] if counts.ndim == 2 else 0, np.float64)
    overlap = np.minimum(stop_ps, t1_ps) - np.maximum(start_ps, t0_ps)
    fraction = np.clip(overlap, 0, None) / (stop_ps - start_ps).astype(np.float64)
    return fraction @ counts.astype(np.float64)


class SpectralModel:
    """Photons per pixel reaching the spectrograph, from photon counts per kind.

    Args:
        emitter: validated ``scene.emitter`` section (line positions and widths).
        collection_efficiency: fraction of emitted photons that reach the detector plane
            (``scene.spectrometer_collection_efficiency``).
    """

    def __init__(self, emitter: Mapping[str, Any], collection_efficiency: float) -> None:
        self.lines: dict[str, tuple[float, float]] = {
            name: (float(emitter[name]["peak_ev"]), float(emitter[name]["fwhm_mev"])) for name in ("band_edge", "trap")
        }
        """Line name -> (peak eV, FWHM meV)."""
        self.collection_efficiency = float(collection_efficiency)
        self._axis: np.ndarray | None = None
        self._profiles: dict[str, np.ndarray] = {}

    def profiles(self, energy_ev_axis: np.ndarray) -> dict[str, np.ndarray]:
        """Per-pixel fraction of each line on this energy axis (cached for the last axis used)."""
        axis = np.asarray(energy_ev_axis, np.float64)
        if self._axis is None or self._axis.shape != axis.shape or not np.array_equal(self._axis, axis):
            self._profiles = {name: gaussian_pixel_fractions(axis, *line) for name, line in self.lines.items()}
            self._axis = axis.copy()
        return self._profiles

    def photons_per_pixel(self, counts: Mapping[str, float], energy_ev_axis: np.ndarray) -> np.ndarray:
        """Expected photons per pixel at the spectrograph for emitted ``counts`` by kind (``SPECTRAL_KINDS``)."""
        profiles = self.profiles(energy_ev_axis)
        per_line = {name: 0.0 for name in self.lines}
        for kind, line in LINE_OF_KIND.items():
            per_line[line] += float(counts.get(kind, 0.0))
        out = np.zeros(np.shape(energy_ev_axis), np.float64)
        for line, n in per_line.items():
            if n:
                out += (n * self.collection_efficiency) * profiles[line]
        return out

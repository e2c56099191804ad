"""Frame synthesis of the simulated iXon Ultra 888: the camera head's numbers and EMCCD statistics.

From the expected signal electrons per pixel column (the scene's emitted spectrum
through the spectrograph calibration, times QE) to a frame of 16-bit counts:
dark current (temperature dependent) and clock-induced charge, the read-out geometry
(full vertical binning, a single track of rows, or a cropped and binned image, the
QD's image being a Gaussian spot along y), Poisson photo-electrons, stochastic EM
gain (gamma, shape = electrons, scale = gain), read noise, baseline and 16-bit clip.
Pure functions of their arguments; ``SimIXonCamera`` (``andor_camera``) holds the state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim_backends.spectra import default_wavelength_axis_nm

_CAMERA_STREAM = 50
"""First spawn key of the camera's random streams (the scene uses 0, 1, 2)."""


@dataclass(frozen=True)
class EmccdModel:
    """The simulated camera head.  Numbers *assumed* (typical iXon Ultra 888 class) unless noted."""

    width_px: int = 1024  # instruments.md
    height_px: int = 1024  # instruments.md
    pixel_um: float = 13.0  # instruments.md
    head_model: str = "DU888_BV"
    serial_number: int = 8880
    temperature_range_c: tuple[int, int] = (-100, 30)  # GetTemperatureRange
    ambient_c: float = 20.0
    coldest_in_air_c: float = -80.0  # instruments.md (unverified there too)
    thermal_rate_c_per_s: float = 100.0  # sim only: a real head takes minutes
    stabilize_s: float = 2.0
    em_gain_range: tuple[int, int] = (1, 300)
    em_gain_range_advanced: tuple[int, int] = (1, 1000)
    baseline_counts: float = 200.0  # instruments.md: clamped near 200
    electrons_per_count: float = 4.0
    read_noise_e: float = 5.0
    dark_e_per_px_s_cold: float = 1.1e-4  # at coldest_in_air_c
    dark_doubling_c: float = 6.0  # dark current doubles every 6 degC warmer
    cic_e_per_px: float = 0.005  # clock-induced charge per pixel per frame
    qe_peak: float = 0.93
    qe_peak_nm: float = 620.0
    qe_width_nm: float = 400.0  # QE = peak x exp(-((nm - peak_nm) / width)^2): ~0.93 at 600 nm
    spot_centre_row: float = 512.0  # 0-based row coordinate of the QD image centre
    spot_sigma_rows: float = 2.5
    vertical_shift_us: float = 0.6
    readout_rate_hz: float = 30.0e6
    buffer_bytes: int = 64 * 2**20
    buffer_frames_max: int = 1000

    def qe(self, wavelength_nm: np.ndarray) -> np.ndarray:
        """Quantum efficiency at each wavelength (a simple bell curve)."""
        return self.qe_peak * np.exp(-(((np.asarray(wavelength_nm) - self.qe_peak_nm) / self.qe_width_nm) ** 2))

    def dark_e_per_px_s(self, temperature_c: float | np.ndarray) -> float | np.ndarray:
        """Dark current (electrons per pixel per second) at a sensor temperature."""
        return self.dark_e_per_px_s_cold * 2.0 ** ((temperature_c - self.coldest_in_air_c) / self.dark_doubling_c)


def exposure_dark_e_per_px(
    model: EmccdModel, start_ps: int, stop_ps: int, log_ps: np.ndarray, log_c: np.ndarray, samples: int = 32
) -> float:
    """Dark electrons per pixel collected in the exposure [start, stop) while the sensor temperature changes.

    ``log_ps``/``log_c``: the sensor temperature at scene times (increasing), linearly
    interpolated in between and held beyond the ends; the dark current is averaged over
    the exposure window (midpoint rule), so a frame exposed while the cooler is still
    ramping gets the dark charge of the temperatures it was exposed at, not of a later one.
    """
    duration_s = max(0, int(stop_ps) - int(start_ps)) * 1e-12
    if duration_s == 0.0:
        return 0.0
    t = start_ps + (np.arange(samples) + 0.5) / samples * (stop_ps - start_ps)
    temperature_c = np.interp(t, np.asarray(log_ps, np.float64), np.asarray(log_c, np.float64))
    return float(np.mean(model.dark_e_per_px_s(temperature_c))) * duration_s


def frame_rng(seed: int, acquisition_number: int, frame_index: int) -> np.random.Generator:
    """The random stream of one frame: the same (seed, acquisition, frame) gives the same frame."""
    key = (_CAMERA_STREAM, acquisition_number, frame_index)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(int(seed), spawn_key=key)))


def wavelength_axis_nm(calibration_nm: np.ndarray | None, width_px: int) -> np.ndarray:
    """Wavelength of each pixel column: the spectrograph's calibration, else the default axis."""
    if calibration_nm is None:
        return default_wavelength_axis_nm(width_px)
    axis = np.asarray(calibration_nm, np.float64)
    if axis.shape != (width_px,):
        raise ValueError(
            f"scene.spectrograph_calibration_nm has shape {axis.shape}: the simulated camera needs "
            f"one wavelength per pixel column ({width_px},)"
        )
    return axis


def spot_row_fractions(model: EmccdModel) -> np.ndarray:
    """Share of the QD image falling on each sensor row (Gaussian along y)."""
    z = (np.arange(model.height_px + 1, dtype=np.float64) - model.spot_centre_row) / (
        model.spot_sigma_rows * math.sqrt(2.0)
    )
    cdf = 0.5 * (1.0 + np.array([math.erf(v) for v in z]))
    return np.diff(cdf)


def image_shape(image: tuple[int, int, int, int, int, int]) -> tuple[int, int]:
    """(rows, columns) of an image read out with (hbin, vbin, hstart, hend, vstart, vend), 1-based inclusive."""
    hbin, vbin, hstart, hend, vstart, vend = image
    return ((vend - vstart + 1) // vbin, (hend - hstart + 1) // hbin)


def full_vertical_binning_e(model: EmccdModel, signal_e: np.ndarray, dark_e: float) -> np.ndarray:
    """Mean electrons per column with every row summed."""
    return signal_e + dark_e * model.height_px


def single_track_e(
    signal_e: np.ndarray, dark_e: float, row_fractions: np.ndarray, centre_row: int, height_rows: int
) -> np.ndarray:
    """Mean electrons per column of the rows of one track (centre row 1-based)."""
    top = centre_row - 1 - height_rows // 2
    return signal_e * row_fractions[top : top + height_rows].sum() + dark_e * height_rows


def image_e(
    signal_e: np.ndarray, dark_e: float, row_fractions: np.ndarray, image: tuple[int, int, int, int, int, int]
) -> np.ndarray:
    """Mean electrons per (binned) pixel of a cropped, binned image: spectrum along x, spot along y."""
    hbin, vbin, hstart, hend, vstart, vend = image
    ny, nx = image_shape(image)
    rows = row_fractions[vstart - 1 : vstart - 1 + ny * vbin].reshape(ny, vbin).sum(1)
    cols = signal_e[hstart - 1 : hstart - 1 + nx * hbin].reshape(nx, hbin).sum(1)
    return rows[:, None] * cols[None, :] + dark_e * hbin * vbin


def emccd_counts(model: EmccdModel, mean_e: np.ndarray, em_gain: int, rng: np.random.Generator) -> np.ndarray:
    """Counts (uint16) read out for ``mean_e`` expected electrons per pixel: Poisson, EM gain, read noise."""
    electrons = rng.poisson(mean_e)
    gain = max(1, int(em_gain))
    output_e = rng.gamma(electrons, gain) if gain > 1 else electrons.astype(np.float64)
    counts = model.baseline_counts + (output_e + rng.normal(0.0, model.read_noise_e, mean_e.shape)) / model.electrons_per_count
    return np.clip(np.rint(counts), 0, 65535).astype(np.uint16)

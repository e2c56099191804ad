"""The simulated Kymera 193i's optics: its turret, its Czerny-Turner geometry and the calibration it gives.

Pure data and pure functions; ``sim_backends.shamrock_sim`` holds the device state and
the vendor functions that report these numbers.

Optics (what a test can rely on):

* Czerny-Turner geometry with focal length ``focal_length_mm`` (193 mm) for both
  mirrors and a full deviation angle ``deviation_angle_deg`` between the incident and
  the diffracted central ray (26 deg = 2 x 13 deg, an *assumption*: Andor does not
  publish the Kymera 193i's angle; it sets the dispersion only through cos(beta)).
* Grating equation, first order: ``lambda = d (sin(alpha) + sin(beta))`` with groove
  spacing ``d = 1e6 / lines_per_mm`` nm.  For the centre wavelength the grating turns
  to ``psi = asin(lambda_c / (2 d cos(D/2)))``; ``alpha = psi + D/2``, ``beta_c = psi - D/2``.
* Pixel ``i`` (0-based) of ``N`` lies at ``x_i = (i - (N - 1) / 2) * pixel_width`` from
  the detector centre (no detector tilt); its diffraction angle is
  ``beta_c + atan(x_i / f)``; wavelength grows with pixel index.
* Wavelength limits per grating: 0 nm (zero order) to the wavelength reached at the
  largest grating rotation ``max_rotation_deg`` (40 deg, an *assumption*).
* ``GetCalibration`` returns that axis as float32, as the SDK does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CAMERA_NUMBER_PIXELS = 1024
CAMERA_PIXEL_WIDTH_UM = 13.0
"""The detector the spectrograph images onto at power-on: an iXon Ultra 888, 1024 x 1024 pixels of
13 um (../shared/reference/instruments.md, "Sensor 1024 x 1024, 13 um pixels")."""


@dataclass(frozen=True)
class SimGrating:
    """One grating of the turret."""

    lines_per_mm: float
    blaze: str
    home: int = 0
    offset: int = 0


KYMERA_193I_GRATINGS = (
    SimGrating(150.0, "500nm", home=10000, offset=0),
    SimGrating(600.0, "500nm", home=20000, offset=0),
    SimGrating(1200.0, "500nm", home=30000, offset=0),
)
"""The simulated turret: 150, 600 and 1200 l/mm, blazed at 500 nm."""

SIM_OPTICS = {
    "focal_length_mm": 193.0,
    "deviation_angle_deg": 26.0,  # assumption: 2 x 13 deg (see the module docstring)
    "focal_tilt_deg": 0.0,
    "max_rotation_deg": 40.0,  # assumption: largest grating rotation of the wavelength drive
}


def calibration_nm(
    lines_per_mm: float,
    center_nm: float,
    number_pixels: int,
    pixel_width_um: float,
    focal_length_mm: float = SIM_OPTICS["focal_length_mm"],
    deviation_angle_deg: float = SIM_OPTICS["deviation_angle_deg"],
) -> np.ndarray:
    """Wavelength (nm, float64) of each pixel centre, from the grating equation (first order).

    See the module docstring for the geometry.  Pure function of its arguments.
    """
    d_nm = 1e6 / lines_per_mm
    half_deviation = math.radians(deviation_angle_deg) / 2
    psi = math.asin(center_nm / (2 * d_nm * math.cos(half_deviation)))
    alpha, beta_c = psi + half_deviation, psi - half_deviation
    x_mm = (np.arange(number_pixels, dtype=np.float64) - (number_pixels - 1) / 2) * pixel_width_um * 1e-3
    beta = beta_c + np.arctan(x_mm / focal_length_mm)
    return d_nm * (math.sin(alpha) + np.sin(beta))


def max_wavelength_nm(lines_per_mm: float, optics: dict[str, float] = SIM_OPTICS) -> float:
    """Longest centre wavelength the drive reaches with a grating (nm)."""
    d_nm = 1e6 / lines_per_mm
    half_deviation = math.radians(optics["deviation_angle_deg"]) / 2
    return 2 * d_nm * math.cos(half_deviation) * math.sin(math.radians(optics["max_rotation_deg"]))

"""Spectral analysis helpers on hand-made frames with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from labctl.analysis.spectra import SpectraData, peak_energy_and_width, sum_spectra, window_weights


def gaussian_frames(centres_ev, fwhm_ev, energy, amplitude=500.0, baseline=200.0, seed=0):
    rng = np.random.default_rng(seed)
    sigma = fwhm_ev / 2.3548200450309493
    lines = amplitude * np.exp(-0.5 * ((energy[None, :] - np.asarray(centres_ev)[:, None]) / sigma) ** 2)
    return rng.poisson(lines + baseline).astype(np.float64)


def test_peak_energy_and_width_of_gaussian_lines():
    energy = np.linspace(2.25, 1.85, 1024)  # decreasing, as wavelength grows with pixel
    centres = np.array([2.064, 2.030, 2.050])
    frames = gaussian_frames(centres, 0.051, energy)
    peak, fwhm = peak_energy_and_width(frames, energy)
    np.testing.assert_allclose(peak, centres, atol=1e-3)
    np.testing.assert_allclose(fwhm, 0.051, rtol=0.06)


def test_window_weights_are_the_overlap_fractions():
    start = np.array([0, 100, 200, 300])
    stop = start + 100
    weights = window_weights(start, stop, [[50, 120], [250, 260]])
    np.testing.assert_allclose(weights, [0.5, 0.2, 0.1, 0.0])
    with pytest.raises(ValueError, match="stop >= start"):
        window_weights(start, stop, [[10, 5]])


def test_sum_spectra_adds_the_frames_in_the_windows():
    energy = np.linspace(2.25, 1.85, 400)
    frames = gaussian_frames([2.06, 2.03, 2.06], 0.05, energy, seed=1)
    data = SpectraData(frames, np.arange(3), np.array([0, 100, 200]), np.array([100, 200, 300]),
                       1239.84 / energy, energy, np.empty(0, np.int64))
    both = sum_spectra(data, [[0, 100], [200, 300]])
    peak, _ = peak_energy_and_width(both[None, :], energy)
    assert peak[0] == pytest.approx(2.06, abs=2e-3)
    only_middle = sum_spectra(data, [[100, 200]])
    assert peak_energy_and_width(only_middle[None, :], energy)[0][0] == pytest.approx(2.03, abs=2e-3)

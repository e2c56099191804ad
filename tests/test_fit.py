"""Fluorescence-decay fits: the model, lifetimes and fractions recovered, stated errors, IRF, input checks.

Reference histograms come from outside ``fit.py``: expected counts from scipy's
exponentially modified Gaussian (``scipy.stats.exponnorm``) summed over pulses, or
photons drawn one by one (numpy, or the simulated microscope), then Poisson counts.
Tolerances on amplitude fractions are RELATIVE (5 % of the true fraction).
"""

from __future__ import annotations

import copy
import dataclasses
import json

import numpy as np
import pytest
from scipy.stats import exponnorm, norm, poisson

from labctl.analysis.fit import (
    DecayFit,
    estimate_irf_offset_ps,
    fit_decay,
    gaussian_irf_shape,
    measured_irf_kernel,
)
from labctl.blocks import ChannelMap
from labctl.acquisition.photons import PhotonConverter
from sim_backends.scene import Scene

PERIOD_PS = 1_000_000  # 1 MHz laser
EDGES_PS = np.arange(0, PERIOD_PS + 1, 100)  # 100 ps bins over one period: 10,000 bins
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))
IRF_FWHM_PS = 40.0  # SPAD jitter of the scene
ONSET_PS = 2000.0  # SPAD cable delay of the scene
TAU_BAND_EDGE_NS, TAU_TRAP_NS = 35.0, 57.5


def expected_counts(
    edges_ps: np.ndarray,
    tau_ps: list[float],
    photons: list[float],
    background_per_bin: float,
    onset_ps: float = ONSET_PS,
    fwhm_ps: float = IRF_FWHM_PS,
    period_ps: float = PERIOD_PS,
) -> np.ndarray:
    """Oracle: bg + sum_i N_i * (exponentially modified Gaussian of pulses k = 0, 1, 2, ... before)."""
    sigma = fwhm_ps / FWHM_PER_SIGMA
    mu = np.full(edges_ps.size - 1, float(background_per_bin))
    for tau, n in zip(tau_ps, photons):
        pulse = exponnorm(K=tau / sigma, loc=onset_ps, scale=sigma)
        for k in range(-1, int(40 * tau / period_ps) + 3):
            x = edges_ps + k * period_ps
            mu += n * (pulse.sf(x[:-1]) - pulse.sf(x[1:]))
    return mu


def photons_per_component(total: float, tau_ns: list[float], amplitude_fractions: list[float]) -> list[float]:
    """Photons N_i of each component for amplitude fractions a_i / sum(a) (N_i is a_i tau_i)."""
    weights = np.array(amplitude_fractions) * np.array(tau_ns)
    return list(total * weights / weights.sum())


def poisson_histogram(mu: np.ndarray, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).poisson(mu)


# ------------------------------------------------------------------ the model


@pytest.mark.parametrize("tau_ns", [0.3, 3.0, 35.0, 57.5, 800.0])
def test_gaussian_irf_model_equals_exponnorm_integrated_over_bins(tau_ns):
    tau_ps = tau_ns * 1e3
    shape = gaussian_irf_shape(EDGES_PS.astype(float), tau_ps, 2037.0, 17.0, PERIOD_PS)
    oracle = expected_counts(EDGES_PS, [tau_ps], [1.0], 0.0, onset_ps=2037.0, fwhm_ps=17.0 * FWHM_PER_SIGMA)
    assert shape.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(shape, oracle, atol=1e-6 * oracle.max())


def test_measured_irf_model_with_a_gaussian_irf_histogram_equals_gaussian_model():
    period, width, sigma, onset = 50_000, 16.0, 80.0, 1000.0
    edges = np.arange(0, period + width / 2, width)
    irf = np.diff(norm(loc=onset, scale=sigma).cdf(edges))  # a Gaussian IRF, on the bins
    kernel = measured_irf_kernel(edges.size - 1, width, 2000.0, 0.0)
    reconvolved = np.fft.irfft(np.fft.rfft(irf / irf.sum()) * np.fft.rfft(kernel), edges.size - 1)
    gaussian = gaussian_irf_shape(edges, 2000.0, onset, sigma, period)
    assert kernel.sum() == pytest.approx(1.0, abs=1e-12)
    # The measured-IRF model spreads each IRF bin uniformly: a variance w^2/12 more than the Gaussian.
    np.testing.assert_allclose(reconvolved, gaussian, atol=2e-3 * gaussian.max())


# ------------------------------------------------------------------ exact-model histograms


def test_mono_lifetime_within_1pct_and_stated_error_matches_scatter_over_20_seeds():
    mu = expected_counts(EDGES_PS, [35_000.0], [3e5], 2.0)
    fits = [fit_decay(poisson_histogram(mu, seed), EDGES_PS) for seed in range(20)]
    tau = np.array([f.tau_ns[0] for f in fits])
    err = np.array([f.tau_err_ns[0] for f in fits])
    assert all(f.converged and f.model == "mono" for f in fits)
    assert np.abs(tau / 35.0 - 1).max() < 0.01  # measured: 0.44 %
    pull_std = np.std((tau - 35.0) / err, ddof=1)
    assert 0.7 < pull_std < 1.4  # measured: 0.87
    # a pure exponential's bound is tau / sqrt(N); background and IRF cost a little (measured: 1.09x)
    assert 1.0 < np.mean(err) / (35.0 / np.sqrt(3e5)) < 1.25


def test_bi_recovers_band_edge_and_trap_lifetimes_and_amplitude_fraction():
    # 2e7 photons: at 1e6 the fraction's statistical error (0.034) is too close to the tolerance.
    photons = photons_per_component(2e7, [TAU_BAND_EDGE_NS, TAU_TRAP_NS], [0.5, 0.5])
    mu = expected_counts(EDGES_PS, [35_000.0, 57_500.0], photons, 2.0)
    fit = fit_decay(poisson_histogram(mu, 7), EDGES_PS, model="bi")
    assert fit.converged  # measured: 35.11 +- 0.17, 57.64 +- 0.13 ns, fractions 0.505 +- 0.006
    np.testing.assert_allclose(fit.tau_ns, [TAU_BAND_EDGE_NS, TAU_TRAP_NS], rtol=0.05)
    np.testing.assert_allclose(fit.fractions, [0.5, 0.5], rtol=0.05)
    assert sum(fit.fractions) == pytest.approx(1.0)
    np.testing.assert_allclose(fit.intensity_fractions, [35 / 92.5, 57.5 / 92.5], rtol=0.05)
    assert fit.amplitude_total == pytest.approx(2e7, rel=0.002)


def test_bi_well_separated_3_and_35_ns_with_errors_matching_scatter_over_20_seeds():
    photons = photons_per_component(1e6, [3.0, 35.0], [0.5, 0.5])
    mu = expected_counts(EDGES_PS, [3_000.0, 35_000.0], photons, 2.0)
    fits = [fit_decay(poisson_histogram(mu, 100 + seed), EDGES_PS, model="bi") for seed in range(20)]
    tau = np.array([f.tau_ns for f in fits])
    tau_err = np.array([f.tau_err_ns for f in fits])
    frac = np.array([f.fractions[0] for f in fits])
    frac_err = np.array([f.fractions_err[0] for f in fits])
    assert all(f.converged for f in fits)
    assert np.abs(tau / [3.0, 35.0] - 1).max() < 0.05  # measured: 3.4 % (3 ns), 0.4 % (35 ns)
    assert np.abs(frac / 0.5 - 1).max() < 0.05  # measured: 1.5 %
    for pulls in ((tau - [3.0, 35.0]) / tau_err).T, [(frac - 0.5) / frac_err]:
        for p in pulls:
            assert 0.7 < np.std(p, ddof=1) < 1.4  # measured: 1.22, 1.01 (tau), 1.21 (fraction)


def test_background_and_irf_position_recovered():
    mu = expected_counts(EDGES_PS, [35_000.0], [1e6], 5.0, onset_ps=123_456.0)
    fit = fit_decay(poisson_histogram(mu, 3), EDGES_PS)
    assert fit.background_per_bin == pytest.approx(5.0, abs=4 * fit.background_err)
    assert fit.irf_shift_ps == pytest.approx(123_456.0, abs=10.0)
    assert fit.reduced_chi2 == pytest.approx(1.0, abs=0.05)


def test_fit_range_restricted_and_tail_fit():
    mu = expected_counts(EDGES_PS, [35_000.0], [1e6], 2.0)
    y = poisson_histogram(mu, 4)
    head = fit_decay(y, EDGES_PS, fit_range_ps=(0, 300_000))
    tail = fit_decay(y, EDGES_PS, fit_range_ps=(10_000, 600_000))
    assert head.tau_ns[0] == pytest.approx(35.0, rel=0.01)
    assert tail.tau_ns[0] == pytest.approx(35.0, rel=0.01)
    assert "IRF position/width held" in tail.message


def test_tau_guess_is_used_as_the_start():
    photons = photons_per_component(1e6, [3.0, 35.0], [0.5, 0.5])
    y = poisson_histogram(expected_counts(EDGES_PS, [3_000.0, 35_000.0], photons, 2.0), 5)
    fit = fit_decay(y, EDGES_PS, model="bi", tau_guess_ns=[2.0, 40.0])
    np.testing.assert_allclose(fit.tau_ns, [3.0, 35.0], rtol=0.05)


@pytest.mark.parametrize("onset_ps", [2000.0, 2037.0, 555_555.0, 999_950.0])
def test_irf_offset_estimate_within_15_ps_at_100_ps_bins(onset_ps):
    y = poisson_histogram(expected_counts(EDGES_PS, [35_000.0], [1e6], 1.0, onset_ps=onset_ps), 6)
    offset = estimate_irf_offset_ps(y, EDGES_PS)
    assert isinstance(offset, int)
    # 1 sigma is 4 ps here (40 onsets); 999 950 ps: the rise wraps around the period
    assert abs((offset - onset_ps + PERIOD_PS / 2) % PERIOD_PS - PERIOD_PS / 2) <= 15


# ------------------------------------------------------------------ measured IRF


def spad_irf_times_ps(rng: np.random.Generator, n: int, onset_ps: float) -> np.ndarray:
    """A non-Gaussian SPAD response: 60 ps FWHM core, 30 % in a 400 ps diffusion tail."""
    t = rng.normal(onset_ps, 60.0 / FWHM_PER_SIGMA, n)
    tail = rng.random(n) < 0.3
    t[tail] += rng.exponential(400.0, tail.sum())
    return t


def test_measured_irf_histogram_is_used_and_recovers_lifetime_within_1pct():
    period, width, tau_ps = 50_000, 16.0, 2000.0  # 20 MHz laser, fine bins: the IRF shape matters
    edges = np.arange(0, period + width / 2, width)
    rng = np.random.default_rng(11)
    arrivals = np.mod(spad_irf_times_ps(rng, 1_000_000, 1500.0) + rng.exponential(tau_ps, 1_000_000), period)
    y = np.histogram(arrivals, edges)[0] + rng.poisson(3.0, edges.size - 1)
    irf = np.histogram(np.mod(spad_irf_times_ps(rng, 2_000_000, 1000.0), period), edges)[0]  # measured 500 ps earlier
    with_irf = fit_decay(y, edges, irf=irf)
    gaussian = fit_decay(y, edges)
    assert with_irf.converged and with_irf.irf_fwhm_ps is None
    assert with_irf.tau_ns[0] == pytest.approx(2.0, rel=0.01)  # measured: 1.9992 +- 0.0021
    assert with_irf.irf_shift_ps == pytest.approx(500.0, abs=5.0)
    assert with_irf.reduced_chi2 == pytest.approx(1.0, abs=0.1)
    # the Gaussian IRF cannot describe the tail: far worse likelihood and a biased lifetime
    assert gaussian.neg_log_likelihood - with_irf.neg_log_likelihood > 1000
    assert gaussian.tau_ns[0] > 1.03 * 2.0


# ------------------------------------------------------------------ simulated microscope


def simulated_histogram(scene_config: dict, seed: int, duration_s: float) -> np.ndarray:
    """Nanotime histogram (100 ps bins over [0, 1 us)) of the simulated microscope's photons."""
    channels = ChannelMap(0, 1, 2, 3)
    scene = Scene(scene_config, wiring=channels, seed=seed)
    converter = PhotonConverter(channels)
    counts = np.zeros(EDGES_PS.size - 1, np.int64)
    stop_ps = int(duration_s * 1e12)
    step_ps = 200_000_000_000  # 0.2 s blocks
    blocks = [converter.process(scene.generate(min(t, stop_ps))) for t in range(step_ps, stop_ps + step_ps, step_ps)]
    for block in [*blocks, converter.finish()]:
        nanotimes = block.nanotimes[block.nanotimes >= 0]
        counts += np.histogram(nanotimes, EDGES_PS)[0]
    return counts


STEADY_QD = {
    "emitter": {"blinking": {"enabled": False}, "p_trap": {"mode": "fixed", "value": 0.0}},
    "collection_efficiency": 1.0,
    "spads": {"a": {"afterpulse_probability": 0.0}, "b": {"afterpulse_probability": 0.0}},
}


def test_simulated_microscope_mono_lifetime_within_2pct_of_band_edge():
    counts = simulated_histogram(STEADY_QD, seed=1, duration_s=2.0)
    fit = fit_decay(counts, EDGES_PS, period_ps=PERIOD_PS)
    assert counts.sum() > 150_000
    # measured: 34.73 +- 0.08 ns: ~1 % of the photons are biexciton photons (0.147 ns) of the cascade
    assert fit.tau_ns[0] == pytest.approx(TAU_BAND_EDGE_NS, rel=0.02)
    assert fit.irf_shift_ps == pytest.approx(ONSET_PS, abs=50)  # SPAD delay, sync_delay 0; measured 1991


def test_simulated_microscope_onset_with_the_fast_biexciton_cascade():
    counts = simulated_histogram(STEADY_QD, seed=1, duration_s=2.0)
    assert estimate_irf_offset_ps(counts, EDGES_PS) == pytest.approx(ONSET_PS, abs=30)  # 1 sigma ~8 ps


def test_simulated_microscope_onset_without_biexciton():
    config = copy.deepcopy(STEADY_QD)
    config["emitter"]["biexciton_quantum_yield"] = 0.0
    counts = simulated_histogram(config, seed=1, duration_s=2.0)
    assert estimate_irf_offset_ps(counts, EDGES_PS) == pytest.approx(ONSET_PS, abs=30)  # 1 sigma ~8 ps


def test_simulated_microscope_trapping_gives_band_edge_and_trap_components():
    p_trap = 0.5
    config = copy.deepcopy(STEADY_QD)
    config["emitter"]["p_trap"]["value"] = p_trap
    config["emitter"]["biexciton_quantum_yield"] = 0.0  # no third (0.147 ns) component
    config["laser"] = {"mean_excitations_per_pulse": 3.0}  # ~0.9 photons per pulse, single emitter
    for spad in ("a", "b"):
        config["spads"][spad]["detection_efficiency"] = 1.0
    counts = simulated_histogram(config, seed=3, duration_s=10.0)  # ~9e6 photons
    fit = fit_decay(counts, EDGES_PS, model="bi", period_ps=PERIOD_PS)
    # equal quantum yields: photon fraction = P_trap; amplitude fraction a_i ~ photons_i / tau_i
    trap_amplitude = (p_trap / TAU_TRAP_NS) / ((1 - p_trap) / TAU_BAND_EDGE_NS + p_trap / TAU_TRAP_NS)
    assert fit.converged
    np.testing.assert_allclose(fit.tau_ns, [TAU_BAND_EDGE_NS, TAU_TRAP_NS], rtol=0.05)
    assert fit.fractions[1] == pytest.approx(trap_amplitude, rel=0.05)  # 0.378; measured 0.371 +- 0.007
    assert fit.intensity_fractions[1] == pytest.approx(p_trap, rel=0.05)  # measured 0.491


# ------------------------------------------------------------------ result and input checks


def test_reported_likelihood_and_photons_describe_the_fitted_model():
    y = poisson_histogram(expected_counts(EDGES_PS, [35_000.0], [1e5], 2.0), 12)
    fit = fit_decay(y, EDGES_PS)
    sigma = fit.irf_fwhm_ps / FWHM_PER_SIGMA
    shape = gaussian_irf_shape(EDGES_PS.astype(float), fit.tau_ns[0] * 1e3, fit.irf_shift_ps, sigma, PERIOD_PS)
    mu = fit.background_per_bin + fit.amplitude_total * shape
    assert fit.neg_log_likelihood == pytest.approx(-poisson.logpmf(y, mu).sum(), rel=1e-12)
    assert mu.sum() == pytest.approx(y.sum(), rel=1e-6)  # Poisson ML: the model keeps the total


def test_result_as_dict_is_strict_json():
    y = poisson_histogram(expected_counts(EDGES_PS, [35_000.0], [1e5], 1.0), 9)
    fit = fit_decay(y, EDGES_PS)
    d = fit.as_dict()
    assert isinstance(fit, DecayFit)
    assert d["tau_ns"] == list(fit.tau_ns) and d["model"] == "mono"
    json.dumps(d, allow_nan=False)


def test_as_dict_of_long_tuples_equals_the_number_by_number_cleaning():
    """The fast path for long tuples (the model curve) gives what cleaning each number gives: non-finite
    numbers None, ints and bools kept, nested tuples lists."""
    y = poisson_histogram(expected_counts(EDGES_PS, [35_000.0], [1e5], 1.0), 9)
    fit = fit_decay(y, EDGES_PS)
    curve = [0.5 * i for i in range(40)]
    cases = {"finite": tuple(curve), "nan": tuple(curve[:20] + [float("nan")] + curve[21:]),
             "inf": tuple([float("-inf")] + curve[1:]), "ints": tuple(range(40)), "mixed": tuple([True, 2, *curve[2:]]),
             "nested": tuple((x, x) for x in curve), "numpy": tuple(np.arange(40.0))}
    for name, values in cases.items():
        got = dataclasses.replace(fit, model_counts=values).as_dict()["model_counts"]
        want = [[*x] if isinstance(x, tuple) else (None if isinstance(x, float) and not np.isfinite(x) else x)
                for x in values]
        assert got == want and [type(x) for x in got] == [type(x) for x in want], name
    assert fit.as_dict()["model_counts"] == list(fit.model_counts)
    assert all(type(v) is float for v in fit.model_counts + fit.model_edges_ps)


GOOD_Y = poisson_histogram(expected_counts(EDGES_PS, [35_000.0], [1e5], 1.0), 10)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"model": "tri"}, ["model", "'tri'", "'mono'", "'bi'"]),
        ({"bin_edges_ps": EDGES_PS[:-1]}, ["bin_edges_ps", "10000 edges", "10000 bins", "len(counts) + 1"]),
        ({"bin_edges_ps": np.r_[EDGES_PS[:-1], EDGES_PS[-1] + 7]}, ["bin_edges_ps", "equal-width"]),
        ({"counts": -GOOD_Y}, ["counts", ">= 0"]),
        ({"counts": GOOD_Y * 0 + (np.arange(GOOD_Y.size) == 5)}, ["counts", "1 photons", "at least 100"]),
        ({"period_ps": 500_000}, ["period_ps = 500000", ">= the histogram span", "1e+06"]),
        ({"irf": np.ones(7)}, ["irf", "7 bins", "same bins"]),
        ({"irf": np.ones(GOOD_Y.size), "period_ps": 2_000_000}, ["irf", "exactly one laser period"]),
        ({"fit_range_ps": (-5, 100)}, ["fit_range_ps = (-5, 100)", "0 <= start < stop <= 1e+06"]),
        ({"fit_range_ps": (5000, 5100)}, ["fit_range_ps", "at least 10 whole bins"]),
        ({"tau_guess_ns": [1.0, 2.0]}, ["tau_guess_ns = [1.0, 2.0]", "1 positive lifetime", "'mono'"]),
        ({"model": "bi", "tau_guess_ns": [1.0, -2.0]}, ["tau_guess_ns", "2 positive lifetime", "'bi'"]),
    ],
)
def test_bad_input_raises_value_error_naming_argument_value_and_allowed(kwargs, words):
    args = {"counts": GOOD_Y, "bin_edges_ps": EDGES_PS, **kwargs}
    with pytest.raises(ValueError) as excinfo:
        fit_decay(args.pop("counts"), args.pop("bin_edges_ps"), **args)
    for word in words:
        assert word in str(excinfo.value)


def test_irf_offset_estimate_rejects_inconsistent_edges():
    with pytest.raises(ValueError, match="bin_edges_ps: 10000 edges for 10000 bins"):
        estimate_irf_offset_ps(GOOD_Y, EDGES_PS[:-1])

"""Live accumulators: g(2), lifetime histograms, intensity trace and FLID.

Exact against brute force, independent of block boundaries, right on simulated
data whose truth follows from the scene's physics, and safe to read from
another thread.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labctl.analysis import FlidAccumulator, G2Accumulator, IntensityTrace, LifetimeAccumulator
from labctl.analysis import _kernels as K
from labctl.analysis.g2 import pulsed_g2_zero
from labctl.blocks import ChannelMap, PhotonBlock
from labctl.interfaces import Sink
from labctl.acquisition.photons import PhotonConverter
from labctl.run import RunInfo, RunSummary
from sim_backends.scene import Scene

WIRING = ChannelMap(0, 1, 2, 3)
A, B = WIRING.spad_a, WIRING.spad_b
PERIOD_PS = 1_000_000
CLEAN_SPAD = {"dark_cps": 0.0, "afterpulse_probability": 0.0, "dead_time_ns": 0.0}


# ----------------------------------------------------------------------------- helpers


# ----------------------------------------------------------------------------- numpy oracles: the kernels' numpy versions on a whole stream


def _numpy_pair_counts(a: np.ndarray, b: np.ndarray, range_ps: int, bin_width_ps: int) -> np.ndarray:
    counts = np.zeros(2 * range_ps // bin_width_ps, np.int64)
    K.add_pair_counts.numpy(a.astype(np.int64), b.astype(np.int64), 0, 0, np.int64(range_ps), np.int64(bin_width_ps),
                            counts)
    return counts


def _numpy_histogram(detectors, nanotimes, channels, bin_width_ps, n_bins):
    counts, no_nt, out = np.zeros((len(channels), n_bins), np.int64), np.zeros(len(channels), np.int64), np.zeros(
        len(channels), np.int64)
    K.add_nanotime_histograms.numpy(detectors, nanotimes, K.code_table(channels), np.int64(bin_width_ps), counts, no_nt,
                                    out)
    return counts, no_nt, out


def _numpy_time_bins(timestamps, detectors, nanotimes, channels, origin_ps, bin_ps, n_bins, nanotime_offset_ps=0):
    inside = (timestamps >= origin_ps) & (timestamps < origin_ps + n_bins * bin_ps)
    counts, nt_n, nt_sum = np.zeros((n_bins, len(channels)), np.int64), np.zeros(n_bins, np.int64), np.zeros(n_bins, np.int64)
    ts = timestamps[inside].astype(np.int64)
    assert K.add_time_bins.numpy(ts, detectors[inside], nanotimes[inside], K.code_table(channels), np.int64(origin_ps),
                                 np.int64(bin_ps), np.int64(0), np.int64(ts[0]) if ts.size else np.int64(0), counts, nt_n,
                                 nt_sum, np.int64(nanotime_offset_ps), True)
    return counts, nt_n, nt_sum


def photon_block(ts, det, nt=None) -> PhotonBlock:
    ts = np.asarray(ts, np.int64)
    nt = np.zeros(ts.size, np.int32) if nt is None else np.asarray(nt, np.int32)
    return PhotonBlock(ts, np.asarray(det, np.uint8), nt)


def feed(acc, block: PhotonBlock, cuts=()):
    """Give ``acc`` the block cut at ``cuts`` (photon indices), then finalize it."""
    edges = [0, *sorted(int(c) for c in cuts), len(block)]
    for lo, hi in zip(edges[:-1], edges[1:]):
        acc.update(PhotonBlock(block.timestamps[lo:hi], block.detectors[lo:hi], block.nanotimes[lo:hi]))
    return acc.finalize()


def assert_snapshots_equal(s1, s2) -> None:
    for f in dataclasses.fields(s1):
        x, y = getattr(s1, f.name), getattr(s2, f.name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and x.shape == y.shape, f.name
            np.testing.assert_array_equal(x, y, err_msg=f.name)
        else:
            assert x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y)), f.name


def brute_force_g2(ts, det, range_ps, bin_ps) -> np.ndarray:
    """Every (A, B) pair, lag = t_B - t_A, bins [e_k, e_k+1): O(N^2)."""
    a, b = ts[det == A], ts[det == B]
    lags = (b[None, :] - a[:, None]).ravel()
    lags = lags[(lags >= -range_ps) & (lags < range_ps)]
    return np.bincount((lags + range_ps) // bin_ps, minlength=2 * range_ps // bin_ps)


@functools.lru_cache(maxsize=None)
def simulate(config_key: str, duration_s: float, seed: int) -> tuple[PhotonBlock, Scene]:
    """Photons of the simulated microscope (tags converted with PhotonConverter) and the scene."""
    scene = Scene(CONFIGS[config_key], wiring=WIRING, seed=seed)
    tags = scene.generate(int(round(duration_s * 1e12)))
    converter = PhotonConverter(WIRING)
    parts = [converter.process(tags), converter.finish()]
    block = PhotonBlock(np.concatenate([p.timestamps for p in parts]), np.concatenate([p.detectors for p in parts]),
                        np.concatenate([p.nanotimes for p in parts]))
    return block, scene


CONFIGS = {
    # one QD, no blinking, no background, ideal SPADs: the truth of g2(0) follows from the emitter alone
    "clean_qd": {
        "laser": {"background_cps": 0.0},
        "emitter": {"kind": "single_qd", "blinking": {"enabled": False}, "p_trap": {"mode": "fixed", "value": 0.0}},
        "collection_efficiency": 1.0,
        "spads": {"a": {**CLEAN_SPAD, "detection_efficiency": 1.0}, "b": {**CLEAN_SPAD, "detection_efficiency": 1.0}},
    },
    # Poissonian CW light at 1e6 photons/s into the HBT (0.5 Mcps per SPAD); real SPADs (dead time, dark counts)
    "cw": {
        "laser": {"background_cps": 0.0},
        "emitter": {"kind": "poissonian", "poissonian": {"rate_cps": 1.0e6, "pulsed": False}},
        "spads": {"a": {"detection_efficiency": 1.0}, "b": {"detection_efficiency": 1.0}},
    },
    # trapping switches P_trap between 0 and 0.65 every 0.5 s; bright enough for ~400 photons per 10 ms
    "trapping": {
        "laser": {"background_cps": 0.0},
        "emitter": {"blinking": {"enabled": False},
                    "p_trap": {"mode": "two_level", "levels": [0.0, 0.65], "dwell_s": 0.5}},
        "collection_efficiency": 0.5,
        "spads": {"a": {"dark_cps": 0.0, "afterpulse_probability": 0.0},
                  "b": {"dark_cps": 0.0, "afterpulse_probability": 0.0}},
    },
    # blinking with a truly dark OFF state: no photon at all while OFF
    "dark_off": {
        "laser": {"background_cps": 0.0},
        "emitter": {"blinking": {"enabled": True, "off_quantum_yield": 0.0}},
        "spads": {"a": {"dark_cps": 0.0, "afterpulse_probability": 0.0},
                  "b": {"dark_cps": 0.0, "afterpulse_probability": 0.0}},
    },
    # the default microscope (blinking, trapping, background, dark counts, afterpulses), brighter
    "default_bright": {"collection_efficiency": 0.5},
}


def run_info(**overrides) -> RunInfo:
    return RunInfo(**{"run_id": "test", "start_time_iso": "", "channels": WIRING,
                      "detector_labels": {A: "spad_a", B: "spad_b"}, "nominal_sync_period_ps": PERIOD_PS,
                      **overrides})


# ----------------------------------------------------------------------------- g(2): exactness


def test_g2_bins_are_left_closed_and_lag_is_t_b_minus_t_a():
    acc = G2Accumulator(A, B, bin_width_ps=1000, range_ps=3000)
    # pairs: (A 10_000, B 11_000) lag +1000; (A 10_000, B 10_000) lag 0; (A 10_000, B 7_000) lag -3000 (inside);
    # (A 10_000, B 13_000) lag +3000 (outside); (A 20_000, B 19_999) lag -1
    snap = feed(acc, photon_block([7_000, 10_000, 10_000, 11_000, 13_000, 19_999, 20_000], [B, A, B, B, B, B, A]))
    np.testing.assert_array_equal(snap.lag_edges_ps, [-3000, -2000, -1000, 0, 1000, 2000, 3000])
    np.testing.assert_array_equal(snap.counts, [1, 0, 1, 1, 1, 0])
    assert (snap.n_a, snap.n_b, snap.duration_ps) == (2, 5, 13_000)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 3000), n_cuts=st.integers(0, 30),
       grid_ps=st.sampled_from([250, 500, 1000]))
def test_g2_equals_brute_force_pair_count_for_any_block_boundaries(seed, n, n_cuts, grid_ps):
    rng = np.random.default_rng(seed)
    # a coarse time grid: many equal timestamps, across detectors and across block boundaries,
    # and lags exactly on bin edges (bin 1000 ps, range 8000 ps)
    ts = np.sort(rng.integers(0, max(n // 2, 1), n)) * grid_ps
    det = rng.choice(np.array([A, B, 3], np.uint8), n, p=[0.45, 0.45, 0.1])
    block = photon_block(ts, det)
    snap = feed(G2Accumulator(A, B, bin_width_ps=1000, range_ps=8000), block, rng.integers(0, n + 1, n_cuts))
    np.testing.assert_array_equal(snap.counts, brute_force_g2(ts, det, 8000, 1000))
    assert snap.counts.dtype == np.int64


def test_g2_kernel_equals_numpy_pair_enumeration_on_a_pulsed_stream():
    rng = np.random.default_rng(7)
    pulses = np.sort(rng.choice(200_000, 40_000, replace=False)).astype(np.int64) * PERIOD_PS
    ts = np.sort(pulses + rng.exponential(35_000, pulses.size).astype(np.int64))
    det = rng.choice(np.array([A, B], np.uint8), ts.size)
    snap = feed(G2Accumulator(A, B, range_ps=2_500_000), photon_block(ts, det), [10_000, 10_001, 25_000])
    np.testing.assert_array_equal(snap.counts, _numpy_pair_counts(ts[det == A], ts[det == B], 2_500_000, 1000))


@pytest.mark.parametrize("kwargs, needle", [
    ({"range_ps": 3_500_500}, "range_ps = 3500500: must be a whole multiple of bin_width_ps = 1000"),
    ({"bin_width_ps": 0}, "bin_width_ps = 0: must be an integer > 0"),
    ({"period_ps": -5}, "period_ps = -5"),
])
def test_g2_rejects_bad_settings_naming_them(kwargs, needle):
    with pytest.raises(ValueError, match=needle.replace("(", r"\(")):
        G2Accumulator(A, B, **kwargs)


def test_g2_pulsed_normalisation_integrates_whole_periods():
    edges = np.arange(-3_500_000, 3_500_001, 100_000)  # 100 ns bins; peak k integrates [k P - P/2, k P + P/2)
    counts = np.full(edges.size - 1, 100, np.int64)  # flat: 10 bins = 1000 per peak window
    counts[35] = 1100  # bin [0, 100 ns): centre peak -> 2000
    counts[29] = 7  # bin [-600, -500 ns): peak -1 -> 907; the bin [-500, -400 ns) is in the centre peak
    center, lags, areas, g2, err = pulsed_g2_zero(counts, edges, PERIOD_PS)
    np.testing.assert_array_equal(lags, [-3e6, -2e6, -1e6, 1e6, 2e6, 3e6])  # every window inside +-3.5 us
    np.testing.assert_array_equal(areas, [1000, 1000, 907, 1000, 1000, 1000])
    assert center == 2000
    assert g2 == pytest.approx(2000 / (5907 / 6))
    assert err == pytest.approx(g2 * math.sqrt(1 / 2000 + 1 / 5907))
    _, lags, _, g2, _ = pulsed_g2_zero(counts[5:-5], edges[5:-5], PERIOD_PS)  # +-3 us: peaks +-3 do not fit
    assert lags.tolist() == [-2e6, -1e6, 1e6, 2e6]


# ----------------------------------------------------------------------------- g(2): physics


def test_qd_g2_zero_matches_the_scene_truth():
    """Truth of the clean single QD (no blinking, background, dark counts, afterpulses or dead time).

    Per pulse N ~ Poisson(n) excitations, p1 = P(N >= 1), p2 = P(N >= 2).  A biexciton photon is
    registered with r_xx = p2 q_xx eta, the exciton photon with probability p1 q eta in all (q eta
    given a registered biexciton photon); eta = registered fraction of emitted photons, each photon
    goes to A or B with 1/2.  Centre peak per pulse: r_xx q eta * 2 (1/2)(1/2); side peak per pulse
    pair: (1/2)(1/2) m^2 with m = r_xx + p1 q eta photons per pulse.  So
        g2(0) = 2 r_xx q eta / m^2 = 2 p2 q_xx q / (p2 q_xx + p1 q)^2     (eta cancels).
    """
    block, scene = simulate("clean_qd", 4.0, 11)
    emitter, nbar = scene.config["emitter"], scene.config["laser"]["mean_excitations_per_pulse"]
    q, q_xx = emitter["quantum_yield_on"], emitter["biexciton_quantum_yield"]
    p1 = -math.expm1(-nbar)
    p2 = p1 - nbar * math.exp(-nbar)
    truth = 2 * p2 * q_xx * q / (p2 * q_xx + p1 * q) ** 2
    acc = G2Accumulator(A, B, period_ps=PERIOD_PS)
    snap = feed(acc, block, np.arange(1, 40) * (len(block) // 40))
    assert snap.g2_zero is not None and snap.g2_zero_err is not None
    assert snap.side_peak_areas.size == 6
    assert abs(snap.g2_zero - truth) <= 2.5 * snap.g2_zero_err, (snap.g2_zero, snap.g2_zero_err, truth)
    assert snap.g2_zero_err < 0.1 * truth  # the test has power


def test_poissonian_cw_light_gives_g2_of_one_at_every_lag():
    block, _ = simulate("cw", 1.0, 5)
    acc = G2Accumulator(A, B, bin_width_ps=10_000, range_ps=3_500_000, period_ps=0)
    snap = feed(acc, block, np.arange(1, 20) * (len(block) // 20))
    assert snap.g2_zero is None and snap.g2_cw is not None and snap.g2_cw_err is not None
    assert snap.counts.min() > 1000  # Gaussian regime
    z = (snap.g2_cw - 1.0) / snap.g2_cw_err
    chi2_per_dof = float(np.mean(z**2))
    assert 0.8 < chi2_per_dof < 1.25, chi2_per_dof
    assert np.max(np.abs(z)) < 4.5
    assert abs(np.mean(snap.g2_cw) - 1.0) < 0.005  # the level itself (~0.1 % statistical error)


# ----------------------------------------------------------------------------- lifetime


def test_lifetime_histograms_match_the_numpy_oracle_and_sum_over_detectors():
    rng = np.random.default_rng(3)
    n = 50_000
    ts = np.sort(rng.integers(0, 10**10, n))
    det = rng.choice(np.array([A, B, 3], np.uint8), n)
    nt = rng.integers(0, 1_050_000, n).astype(np.int32)  # some beyond the period
    nt[:2000] = -1  # photons before the first sync
    snap = feed(LifetimeAccumulator([A, B], bin_width_ps=100, period_ps=PERIOD_PS), photon_block(ts, det, nt),
                [100, 30_000])
    counts, no_nt, out = _numpy_histogram(det, nt, [A, B], 100, 10_000)
    np.testing.assert_array_equal(snap.counts, counts)
    np.testing.assert_array_equal(snap.summed, counts.sum(axis=0))
    np.testing.assert_array_equal(snap.n_no_nanotime, no_nt)
    np.testing.assert_array_equal(snap.n_out_of_range, out)
    np.testing.assert_array_equal(snap.bin_edges_ps, np.arange(0, PERIOD_PS + 1, 100))
    assert no_nt.sum() > 0 and out.sum() > 0


def test_lifetime_histogram_mean_is_the_mean_nanotime_of_an_exponential():
    rng = np.random.default_rng(4)
    tau_ps, n = 35_000.0, 200_000
    nt = np.minimum(rng.exponential(tau_ps, n), PERIOD_PS - 1).astype(np.int32)
    det = rng.choice(np.array([A, B], np.uint8), n)
    snap = feed(LifetimeAccumulator([A, B], bin_width_ps=100, period_ps=PERIOD_PS),
                photon_block(np.arange(n) * 1000, det, nt))
    centres = (snap.bin_edges_ps[:-1] + snap.bin_edges_ps[1:]) / 2
    mean_ps = float((snap.summed * centres).sum() / snap.summed.sum())
    assert abs(mean_ps - nt.mean()) < 1.0  # bin centres stand for the integer nanotimes in them
    assert abs(mean_ps - tau_ps) < 4 * tau_ps / math.sqrt(n) + 1


def test_lifetime_of_the_simulated_band_edge_is_35_ns():
    block, scene = simulate("clean_qd", 4.0, 11)
    offset = scene.config["spads"]["a"]["delay_ps"] - scene.config["laser"]["sync_delay_ps"]
    snap = feed(LifetimeAccumulator([A, B], period_ps=PERIOD_PS), block)
    centres = (snap.bin_edges_ps[:-1] + snap.bin_edges_ps[1:]) / 2 - offset
    mean_ns = float((snap.summed * centres).sum() / snap.summed.sum()) * 1e-3
    # band edge 35 ns; ~1 % biexciton photons at 5 ns pull the mean down by ~0.3 ns
    assert 34.0 < mean_ns < 35.5, mean_ns


# ----------------------------------------------------------------------------- intensity trace


def test_intensity_trace_equals_a_histogram_of_the_timestamps_with_empty_bins():
    rng = np.random.default_rng(5)
    ts = np.sort(np.concatenate([rng.integers(0, 10**9, 3000), rng.integers(3 * 10**9, 4 * 10**9, 3000)]))
    det = rng.choice(np.array([A, B, 3], np.uint8), ts.size)
    block = photon_block(ts + 123, det)
    snap = feed(IntensityTrace([A, B], bin_ms=0.1, origin_ps=0), block, [1000, 4000])
    counts, _, _ = _numpy_time_bins(block.timestamps, det, block.nanotimes, [A, B], 0, 10**8, snap.n_complete_bins)
    np.testing.assert_array_equal(snap.counts, counts)
    np.testing.assert_array_equal(snap.total, counts.sum(axis=1))
    assert snap.n_complete_bins == (int(block.timestamps[-1]) // 10**8) + 1
    assert np.all(snap.total[11:30] == 0)  # 1.1 .. 3 ms: no photons, zeros present


def test_trace_bin_completes_when_a_photon_at_or_after_its_end_arrives():
    trace = IntensityTrace([A], bin_ms=1e-6)  # 1000 ps bins; origin = first photon (100)
    trace.update(photon_block([100, 600], [A, A]))
    assert trace.snapshot().n_complete_bins == 0
    trace.update(photon_block([1100], [A]))  # at the end of bin 0: bin 0 complete
    snap = trace.snapshot()
    assert snap.origin_ps == 100 and snap.n_complete_bins == 1 and snap.total.tolist() == [2]
    trace.update(photon_block([4099], [B]))  # another detector moves time on too: bins 1, 2 complete
    assert trace.snapshot().total.tolist() == [2, 1, 0]
    assert trace.finalize().total.tolist() == [2, 1, 0, 0]


def test_trace_photons_before_origin_are_counted_apart():
    snap = feed(IntensityTrace([A, B], bin_ms=1e-6, origin_ps=5000), photon_block([10, 4999, 5000, 7500], [A, B, A, B]))
    assert snap.n_before_origin == 2
    np.testing.assert_array_equal(snap.counts, [[1, 0], [0, 0], [0, 1]])


def test_intensity_trace_is_zero_while_the_qd_is_off():
    block, scene = simulate("dark_off", 3.0, 2)
    bin_ps = 10**10
    snap = feed(IntensityTrace([A, B], bin_ms=10.0, origin_ps=0), block, [len(block) // 3])
    truth = scene.truth()
    starts = np.arange(snap.n_complete_bins, dtype=np.int64) * bin_ps
    k = np.searchsorted(truth["start_ps"], starts, side="right") - 1  # the state interval where each bin starts
    whole = starts + bin_ps <= truth["stop_ps"][k]  # the bin lies in that one interval
    settled = starts >= truth["start_ps"][k] + 10**6  # 1 us after a change: photons emitted before it are out
    off_bins = whole & settled & ~truth["on"][k]
    on_bins = whole & settled & truth["on"][k]
    assert off_bins.sum() >= 10 and on_bins.sum() >= 10  # the seed gives both states
    assert np.all(snap.total[off_bins] == 0)
    assert np.all(snap.total[on_bins] > 20)


# ----------------------------------------------------------------------------- FLID


def test_flid_shows_band_edge_and_trap_clusters_at_their_mean_lifetimes():
    block, scene = simulate("trapping", 4.0, 3)
    cfg = scene.config
    offset = cfg["spads"]["a"]["delay_ps"] - cfg["laser"]["sync_delay_ps"]  # IRF position
    tau_be, tau_trap = cfg["emitter"]["band_edge"]["lifetime_ns"], cfg["emitter"]["trap"]["lifetime_ns"]
    high = cfg["emitter"]["p_trap"]["levels"][1]
    expected = (tau_be, (1 - high) * tau_be + high * tau_trap)  # 35 ns and 49.6 ns
    snap = feed(FlidAccumulator([A, B], bin_ms=10.0, nanotime_offset_ps=offset), block, [len(block) // 2])
    assert snap.n_bins_in_histogram == snap.counts.sum() == snap.n_complete_bins  # every bin has photons
    lifetime = snap.counts.sum(axis=0)
    centres = (snap.lifetime_edges_ns[:-1] + snap.lifetime_edges_ns[1:]) / 2
    split = (expected[0] + expected[1]) / 2
    found = [float(np.average(centres[side], weights=lifetime[side])) for side in (centres < split, centres >= split)]
    assert abs(found[0] - expected[0]) < 2.0 and abs(found[1] - expected[1]) < 2.0, (found, expected)
    # two clusters: few bins in between, both well populated
    between = lifetime[np.abs(centres - split) < 2].sum()
    assert between < 0.05 * lifetime.sum() and min(lifetime[centres < split].sum(), lifetime[centres >= split].sum()) > 100
    # the average-lifetime trace is that of the photons in each bin
    _, nt_n, nt_sum = _numpy_time_bins(block.timestamps, block.detectors, block.nanotimes, [A, B],
                                       snap.origin_ps, snap.bin_ps, snap.n_complete_bins, offset)
    np.testing.assert_array_equal(snap.nanotime_counts, nt_n)
    np.testing.assert_allclose(snap.mean_lifetime_ns, nt_sum / nt_n * 1e-3, rtol=1e-12)


def test_flid_automatic_intensity_axis_widens_exactly():
    rng = np.random.default_rng(9)
    # 1 us bins holding 0..999 photons: the automatic axis ends at width 4 (256 x 4 > 999)
    per_bin = rng.integers(0, 1000, 200)
    per_bin[150], per_bin[-1] = 999, 1
    ts = np.concatenate([b * 10**6 + np.sort(rng.integers(0, 10**6, k)) for b, k in enumerate(per_bin)])
    nt = rng.integers(0, 100_000, ts.size)
    block = photon_block(ts, np.full(ts.size, A), nt)
    auto = feed(FlidAccumulator([A], bin_ms=1e-3, origin_ps=0), block, [ts.size // 3, 2 * ts.size // 3])
    fixed = feed(FlidAccumulator([A], bin_ms=1e-3, origin_ps=0, intensity_edges=np.arange(257) * 4.0), block)
    np.testing.assert_array_equal(auto.intensity_edges, np.arange(257) * 4.0)
    np.testing.assert_array_equal(auto.counts, fixed.counts)
    assert auto.n_bins_skipped == int(np.count_nonzero(per_bin == 0))


def test_flid_leaves_out_bins_without_nanotimes_and_outside_the_edges():
    # bin 0: 2 photons without nanotime; bin 1: mean 150 ns (outside 0..100 ns); bin 2: mean 10 ns
    block = photon_block([0, 10, 1000, 1500, 2000], [A] * 5, [-1, -1, 150_000, 150_000, 10_000])
    snap = feed(FlidAccumulator([A], bin_ms=1e-6, origin_ps=0), block)
    assert (snap.n_bins_skipped, snap.n_bins_outside, snap.n_bins_in_histogram) == (1, 1, 1)
    assert snap.counts[1, 10] == 1 and snap.counts.sum() == 1
    np.testing.assert_array_equal(snap.intensity, [2, 2, 1])
    np.testing.assert_array_equal(snap.mean_lifetime_ns, [np.nan, 150.0, 10.0])


# ----------------------------------------------------------------------------- chunk invariance


def all_accumulators():
    return [G2Accumulator(A, B, period_ps=PERIOD_PS), LifetimeAccumulator([A, B], period_ps=PERIOD_PS),
            IntensityTrace([A, B], bin_ms=1.0), FlidAccumulator([A, B], bin_ms=1.0, nanotime_offset_ps=2000)]


@functools.lru_cache(maxsize=None)
def reference_snapshots():
    block, _ = simulate("default_bright", 0.3, 4)
    return block, [feed(acc, block) for acc in all_accumulators()]


@settings(max_examples=25, deadline=None)
@given(cut_fractions=st.lists(st.floats(0.0, 1.0), max_size=40))
def test_all_accumulators_give_the_same_result_for_any_block_boundaries(cut_fractions):
    block, reference = reference_snapshots()
    cuts = [int(f * len(block)) for f in cut_fractions]
    for acc, ref in zip(all_accumulators(), reference):
        assert_snapshots_equal(feed(acc, block, cuts), ref)


def test_chunk_invariance_holds_with_ties_at_block_boundaries():
    rng = np.random.default_rng(12)
    ts = np.sort(rng.integers(0, 2000, 20_000)) * 1_000  # ~10 photons per timestamp
    block = photon_block(ts, rng.choice(np.array([A, B], np.uint8), ts.size), rng.integers(-1, 10**6, ts.size))
    cuts = np.flatnonzero(np.diff(ts) == 0)[::97] + 1  # every cut between two equal timestamps
    for make in (lambda: G2Accumulator(A, B, range_ps=50_000, period_ps=10_000),
                 lambda: IntensityTrace([A, B], bin_ms=1e-5), lambda: FlidAccumulator([A, B], bin_ms=1e-5)):
        assert_snapshots_equal(feed(make(), block, cuts), feed(make(), block))


# ----------------------------------------------------------------------------- threads and sink


def test_snapshots_taken_while_another_thread_updates_are_consistent():
    block, _ = simulate("default_bright", 0.3, 4)
    accs = all_accumulators()
    pieces = np.linspace(0, len(block), 200).astype(int)
    done = threading.Event()
    errors: list[BaseException] = []

    def acquire():
        try:
            for lo, hi in zip(pieces[:-1], pieces[1:]):
                part = PhotonBlock(block.timestamps[lo:hi], block.detectors[lo:hi], block.nanotimes[lo:hi])
                for acc in accs:
                    acc.update(part)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=acquire)
    thread.start()
    g2, lifetime, trace, flid = accs
    taken = 0
    while not done.is_set() or taken < 5:
        s = g2.snapshot()
        assert s.counts.dtype == np.int64 and s.counts.shape == (s.lag_edges_ps.size - 1,)
        assert s.counts.sum() <= s.n_a * s.n_b
        s = lifetime.snapshot()
        assert s.counts.shape == (2, s.bin_edges_ps.size - 1) and np.array_equal(s.summed, s.counts.sum(axis=0))
        s = trace.rolling_snapshot()
        assert s.counts.shape == (s.total.size, 2) and np.array_equal(s.total, s.counts.sum(axis=1))
        assert s.first_bin + s.total.size == s.n_complete_bins
        s = flid.snapshot()
        assert s.counts.sum() == s.n_bins_in_histogram
        assert s.n_bins_in_histogram + s.n_bins_skipped + s.n_bins_outside == s.n_complete_bins == s.intensity.size
        taken += 1
    thread.join()
    assert not errors, errors
    assert taken >= 5


def test_accumulators_are_sinks_that_take_detectors_and_period_from_the_run():
    block, _ = simulate("default_bright", 0.3, 4)
    run = run_info()
    sinks = [G2Accumulator(), LifetimeAccumulator(), IntensityTrace(bin_ms=1.0), FlidAccumulator(bin_ms=1.0)]
    for sink in sinks:
        assert isinstance(sink, Sink)
        sink.open(run)
        sink.write(block)
    end_ps = int(block.timestamps[-1]) + 50 * 10**9  # the run went on 50 ms after the last photon
    first = int(block.timestamps[0])
    summary = RunSummary(True, "duration", end_ps - first, {}, len(block), [], start_ps=first)
    for sink in sinks:
        sink.close(summary)
    g2, lifetime, trace, flid = (s.snapshot() for s in sinks)
    assert (g2.detector_a, g2.detector_b, g2.period_ps) == (A, B, PERIOD_PS)
    assert lifetime.detectors == (A, B) and lifetime.period_ps == PERIOD_PS
    assert trace.n_complete_bins == (end_ps - 1 - first) // 10**9 + 1  # trailing empty bins up to the run's end
    assert np.all(trace.total[-45:] == 0) and flid.n_complete_bins == trace.n_complete_bins
    for ref, snap in zip(reference_snapshots()[1], (g2, lifetime)):
        assert_snapshots_equal(snap, ref)
    sinks[0].open(run)  # open resets
    assert sinks[0].snapshot().counts.sum() == 0


def test_open_rejects_a_detector_that_is_not_a_spad_of_the_run():
    with pytest.raises(ValueError, match=r"detector channel 5 is not a photon detector of this run: allowed \(1, 2\)"):
        LifetimeAccumulator([A, 5]).open(run_info())


def test_blocks_going_back_in_time_are_refused_and_change_nothing():
    for acc in all_accumulators()[::2]:  # the order-dependent ones: g2 and the trace
        acc.update(photon_block([1000, 2000], [A, B]))
        before = acc.snapshot()
        with pytest.raises(ValueError, match="go back in time"):
            acc.update(photon_block([1500, 3000], [A, B]))
        with pytest.raises(ValueError, match="go back in time"):
            acc.update(photon_block([3000, 2500], [A, B]))
        assert_snapshots_equal(acc.snapshot(), before)


def test_update_after_finalize_is_refused():
    trace = IntensityTrace([A])
    trace.finalize()
    with pytest.raises(RuntimeError, match="after finalize"):
        trace.update(photon_block([1], [A]))

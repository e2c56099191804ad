"""The shared simulated scene: photon statistics, lifetimes, SPAD physics, determinism, config."""

from __future__ import annotations


import numpy as np
import pytest

from labctl.blocks import ChannelMap
from labctl.errors import ConfigError
from sim_backends._kernels import NEVER_PS, _dead_time_filter, dead_time_filter, merge_tags, qd_photons, spad_segment
from sim_backends.scene import Scene, pulse_times_ps
from labctl.analysis.kernel_backend import chosen

WIRING = ChannelMap(laser_sync=0, spad_a=1, spad_b=2)
PS_PER_S = 10**12
NS = 1_000  # ps
US = 1_000_000  # ps


def generate_in_steps(scene: Scene, duration_s: float, step_s: float = 0.5):
    """(timestamps, channels) of [0, duration) generated in steps (keeps peak memory low)."""
    times, chans = [], []
    stop = int(duration_s * PS_PER_S)
    step = int(step_s * PS_PER_S)
    for t in range(step, stop + step, step):
        block = scene.generate(min(t, stop))
        times.append(block.timestamps)
        chans.append(block.channels)
    return np.concatenate(times), np.concatenate(chans)


def cross_lags(a_ps: np.ndarray, b_ps: np.ndarray, max_lag_ps: int) -> np.ndarray:
    """All lags t_b - t_a with |lag| <= max_lag_ps (plain numpy reference)."""
    lo = np.searchsorted(b_ps, a_ps - max_lag_ps, side="left")
    hi = np.searchsorted(b_ps, a_ps + max_lag_ps, side="right")
    n = hi - lo
    which_a = np.repeat(np.arange(a_ps.size), n)
    offset = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    return b_ps[lo[which_a] + offset] - a_ps[which_a]


# ----------------------------------------------------------------- Poissonian source


@pytest.fixture(scope="module")
def poissonian_tags():
    """16 s of a CW Poissonian source (2e5 photons/s at the HBT); slow laser: fewer syncs."""
    config = {"emitter": {"kind": "poissonian"}, "laser": {"repetition_rate_hz": 1.0e4}}
    scene = Scene(config, wiring=WIRING, seed=11)
    duration_s = 16.0
    times, chans = generate_in_steps(scene, duration_s, step_s=2.0)
    return times[chans == 1], times[chans == 2], duration_s


def test_poissonian_source_counts_have_fano_factor_one(poissonian_tags):
    a, _, duration_s = poissonian_tags
    counts = np.bincount(a // (PS_PER_S // 1000), minlength=int(duration_s * 1000))
    assert counts.mean() == pytest.approx(2e5 * 0.5 * 0.35 * 1e-3, rel=0.02)
    fano = counts.var() / counts.mean()
    assert fano == pytest.approx(1.0, abs=0.05)


def test_poissonian_source_cross_correlation_is_flat(poissonian_tags):
    a, b, duration_s = poissonian_tags
    bin_ps, max_lag_ps = 20 * NS, 2 * US
    lags = cross_lags(a, b, max_lag_ps)
    hist, _ = np.histogram(lags, bins=np.arange(-max_lag_ps, max_lag_ps + 1, bin_ps))
    expected = a.size * b.size * bin_ps / (duration_s * PS_PER_S)
    assert expected > 300
    assert np.all(np.abs(hist - expected) < 4 * np.sqrt(expected))
    chi2_per_bin = np.sum((hist - expected) ** 2 / expected) / hist.size
    assert 0.7 < chi2_per_bin < 1.4


# ----------------------------------------------------------------- single QD


def test_single_qd_coincidences_at_zero_delay_are_below_a_tenth_of_the_side_peaks():
    # default QD physics (n̄ 0.3, biexciton yield 0.07, blinking on); collection raised
    # from 0.08 to 1 only to get enough coincidences in 3 s (expected g2(0) ~ 0.08)
    scene = Scene({"collection_efficiency": 1.0}, wiring=WIRING, seed=5)
    times, chans = generate_in_steps(scene, 3.0)
    lags = cross_lags(times[chans == 1], times[chans == 2], 5 * US + 100 * NS)
    window = 100 * NS
    zero = np.count_nonzero(np.abs(lags) <= window)
    side = [np.count_nonzero(np.abs(lags - k * US) <= window) for k in (-5, -4, -3, -2, -1, 1, 2, 3, 4, 5)]
    assert min(side) > 1000
    assert zero < 0.1 * np.mean(side)
    assert zero > 0  # the biexciton cascade does give some


def test_band_edge_lifetime_is_the_mean_on_state_nanotime_minus_the_irf_offset():
    spad = {"afterpulse_probability": 0.0, "dark_cps": 0.0}
    config = {
        "laser": {"mean_excitations_per_pulse": 0.1, "background_cps": 0.0, "sync_delay_ps": 500},
        "emitter": {"p_trap": {"mode": "fixed", "value": 0.0}},
        "collection_efficiency": 1.0,  # statistics: 25-60 k ON-state photons in 5 s
        "spads": {"a": spad, "b": spad},
    }
    scene = Scene(config, wiring=WIRING, seed=2)
    times, chans = generate_in_steps(scene, 5.0)
    syncs = times[chans == 0]
    photons = times[chans != 0]
    truth = scene.truth()
    on = truth["on"][np.searchsorted(truth["start_ps"], photons, side="right") - 1]
    photons = photons[on & (photons >= syncs[0])]
    nanotimes = photons - syncs[np.searchsorted(syncs, photons, side="right") - 1]
    irf_offset_ps = 2000 - 500  # SPAD delay - sync delay
    assert photons.size > 25_000
    assert (nanotimes.mean() - irf_offset_ps) / NS == pytest.approx(35.0, rel=0.02)


def test_trap_emission_lengthens_the_mean_nanotime():
    spad = {"afterpulse_probability": 0.0, "dark_cps": 0.0}
    base = {
        "laser": {"background_cps": 0.0},
        "emitter": {"blinking": {"enabled": False}},
        "spads": {"a": spad, "b": spad},
    }
    means = []
    for p_trap in (0.0, 1.0):
        config = {**base, "emitter": {**base["emitter"], "p_trap": {"mode": "fixed", "value": p_trap}}}
        times, chans = generate_in_steps(Scene(config, wiring=WIRING, seed=4), 1.0)
        syncs, photons = times[chans == 0], times[chans != 0]
        photons = photons[photons >= syncs[0]]
        means.append((photons - syncs[np.searchsorted(syncs, photons, side="right") - 1]).mean() / NS - 2.0)
    assert means[0] == pytest.approx(35.0, rel=0.05)
    assert means[1] == pytest.approx(57.5, rel=0.05)


def test_default_qd_on_state_gives_5_to_10_kcps_over_both_spads():
    scene = Scene(wiring=WIRING, seed=8)
    times, chans = generate_in_steps(scene, 2.0)
    truth = scene.truth()
    photons = times[chans != 0]
    on = truth["on"][np.searchsorted(truth["start_ps"], photons, side="right") - 1]
    on_s = np.sum((truth["stop_ps"] - truth["start_ps"])[truth["on"]]) / PS_PER_S
    assert on_s > 0.3
    assert 5e3 < np.count_nonzero(on) / on_s < 10e3


# ----------------------------------------------------------------- SPAD dead time


@pytest.mark.parametrize("case", range(60))
def test_dead_time_kernel_equals_the_python_oracle(case):
    """numba kernel and numpy/Python version agree exactly (pending afterpulses in the same order too)."""
    rng = np.random.default_rng(case)
    n = int(rng.integers(0, 80))
    dead = int(rng.choice([0, 50, 77_000, 300]))
    # clustered times so that dead time and afterpulse chains matter
    times = np.sort(rng.integers(0, 5 * max(dead, 100) + 1, n).astype(np.int64) + 1000)
    horizon = int(times[-1] + rng.integers(0, 3 * max(dead, 10))) + 1 if n else 10_000
    p_after = float(rng.choice([0.0, 0.3, 0.9]))
    pool = int(rng.integers(0, n + 20))
    uniform = rng.random(pool)
    extra = rng.integers(0, 2 * max(dead, 10), pool).astype(np.int64)
    last = int(rng.choice([int(NEVER_PS), 900]))
    args = (times, np.int64(horizon), np.int64(dead), np.int64(last), p_after, uniform, extra)
    got, want = _dead_time_filter.numba(*args), _dead_time_filter.numpy(*args)
    assert got[4] == want[4]
    if got[4]:
        assert got[0].tolist() == want[0].tolist() and got[0].dtype == want[0].dtype == np.int64
        assert int(got[1]) == int(want[1]) and got[3] == want[3]
        assert got[2].tolist() == want[2].tolist()
    # the public wrapper: pending sorted
    kept, new_last, pending, used, complete = dead_time_filter(*args)
    assert complete == want[4]
    if complete:
        assert pending.tolist() == sorted(want[2].tolist())


def test_dead_time_numpy_version_keeps_detections_dead_time_apart_with_afterpulse_chains():
    """The oracle itself, on a case worked by hand: dead 10, candidates 0 5 12 30, every detection afterpulses
    at +10 + extra (extra 1, 100, 3, ...): 0 kept -> afterpulse 11; 5 dead; 11 kept -> afterpulse 121 (>= horizon 50:
    pending); 12 dead; 30 kept -> afterpulse 43; 43 kept -> afterpulse 53 + extra >= horizon: pending."""
    times = np.array([0, 5, 12, 30], np.int64)
    kept, last, pending, used, complete = _dead_time_filter.numpy(
        times, np.int64(50), np.int64(10), NEVER_PS, 1.0, np.zeros(8), np.array([1, 100, 3, 7, 0, 0, 0, 0], np.int64))
    assert complete and kept.tolist() == [0, 11, 30, 43] and last == 43 and used == 4
    assert pending.tolist() == [121, 60]


def test_no_two_detections_on_one_spad_are_closer_than_its_dead_time():
    # a bright Poissonian source, high afterpulsing and unequal dead times: the rule must bite
    config = {
        "emitter": {"kind": "poissonian", "poissonian": {"rate_cps": 2.0e7}},
        "spads": {
            "a": {"dead_time_ns": 77.0, "afterpulse_probability": 0.2},
            "b": {"dead_time_ns": 500.0, "afterpulse_probability": 0.2},
        },
        "segment_ms": 1.0,
    }
    scene = Scene(config, wiring=WIRING, seed=3)
    times, chans = generate_in_steps(scene, 0.05, step_s=0.0037)
    for channel, dead_ps in ((1, 77 * NS), (2, 500 * NS)):
        gaps = np.diff(times[chans == channel])
        assert gaps.min() >= dead_ps
        assert np.count_nonzero(gaps < dead_ps + 20 * NS) > 100  # many detections right after dead time


# ----------------------------------------------------------------- other kernels


@pytest.mark.parametrize("path", ["numba", "numpy"])
@pytest.mark.parametrize("seed", range(20))
def test_merge_kernel_equals_a_full_sort_by_time_then_channel(seed, path):
    rng = np.random.default_rng(seed)
    channels = [int(c) for c in rng.permutation(6)[:3]]
    syncs = np.arange(0, 200, int(rng.integers(1, 5)), dtype=np.int64)
    det_a = np.sort(rng.integers(-5, 205, int(rng.integers(0, 30)))).astype(np.int64)
    det_b = np.sort(rng.integers(-5, 205, int(rng.integers(0, 30)))).astype(np.int64)
    times, chans = getattr(merge_tags, path)(syncs, channels[0], det_a, channels[1], det_b, channels[2])
    all_t = np.concatenate((syncs, det_a, det_b))
    all_c = np.repeat(np.array(channels, np.uint8), [syncs.size, det_a.size, det_b.size])
    order = np.lexsort((all_c, all_t))
    np.testing.assert_array_equal(times, all_t[order])
    np.testing.assert_array_equal(chans, all_c[order])


@pytest.mark.parametrize("seed", range(20))
def test_qd_photon_kernel_equals_the_numpy_oracle(seed):
    rng = np.random.default_rng(seed)
    pulses = np.arange(0, 5000 * US, US, dtype=np.int64)
    p_any = float(rng.choice([0.001, 0.05, 0.5]))
    u = rng.random((8, int(rng.integers(1, 400))))
    args = (bool(rng.integers(2)), 0.3, 0.4, 0.6, 0.45, np.array([35e3, 57.5e3, 2e3, 5e3]))
    a, b, n_x, n_trap, n_xx, complete = qd_photons.numba(pulses, p_any, u, *args)
    # the same photons in the same (unsorted) order, which sets each photon's jitter
    same = qd_photons.numpy(pulses, p_any, u, *args)
    assert same[5] == complete
    if complete:
        np.testing.assert_array_equal(same[0], a)
        np.testing.assert_array_equal(same[1], b)
        assert same[2:5] == (n_x, n_trap, n_xx)
        assert a.dtype == same[0].dtype == np.int64


# ----------------------------------------------------------------- laser


def test_excitation_off_gives_no_syncs_and_dark_counts_at_the_configured_rate():
    config = {"laser": {"enabled": False}}
    scene = Scene(config, wiring=WIRING, seed=9)
    duration_s = 40.0
    times, chans = generate_in_steps(scene, duration_s, step_s=10.0)
    assert np.count_nonzero(chans == 0) == 0
    expected = 25.0 * duration_s
    for channel in (1, 2):
        assert abs(np.count_nonzero(chans == channel) - expected) < 3 * np.sqrt(expected)


def test_switching_excitation_takes_effect_at_the_next_segment_boundary():
    scene = Scene({"segment_ms": 1.0}, wiring=WIRING, seed=1)
    first = scene.generate(int(2.5e9))  # segments 0..2 generated
    scene.set_excitation(False)
    assert scene.excitation_enabled() is False
    rest = scene.generate(int(6e9))
    syncs = np.concatenate((first.timestamps[first.channels == 0], rest.timestamps[rest.channels == 0]))
    assert syncs[-1] == 3_000_000_000 - US  # last pulse of segment 2
    scene.set_excitation(True)
    later = scene.generate(int(8e9))
    assert later.timestamps[later.channels == 0][0] == 6_000_000_000  # grid restarts at the boundary


def test_sync_tags_follow_the_pulse_grid_at_a_non_integer_period():
    scene = Scene({"laser": {"repetition_rate_hz": 3.0e6}, "segment_ms": 1.0}, wiring=WIRING, seed=1)
    block = scene.generate(int(4.3e9))
    syncs = block.timestamps[block.channels == 0]
    k = np.arange(syncs.size)
    np.testing.assert_array_equal(syncs, np.floor(k * (1e12 / 3.0e6)).astype(np.int64))
    np.testing.assert_array_equal(pulse_times_ps(0, int(4.3e9), 0, 3.0e6), syncs)


def test_repetition_rate_changes_at_the_next_segment_boundary_and_is_validated():
    scene = Scene({"segment_ms": 1.0}, wiring=WIRING, seed=1)
    scene.generate(int(1e9))
    scene.set_repetition_rate_hz(2.0e6)
    assert scene.repetition_rate_hz() == 2.0e6
    block = scene.generate(int(3e9))
    syncs = block.timestamps[block.channels == 0]
    assert set(np.diff(syncs[syncs >= int(1e9)]).tolist()) == {500_000}
    for bad in (999.0, 8.1e7, True, "1e6", float("nan")):
        with pytest.raises(ConfigError, match="repetition_rate_hz") as info:
            scene.set_repetition_rate_hz(bad)
        assert "must be a number between 1000 and 80000000 (Hz)" in str(info.value)
    assert scene.repetition_rate_hz() == 2.0e6


# ----------------------------------------------------------------- determinism


def test_output_does_not_depend_on_how_t_stop_is_chunked():
    config = {"segment_ms": 2.0, "collection_efficiency": 0.5}
    stop = int(0.3 * PS_PER_S)
    runs = []
    for chunk_seed in (1, 2):
        rng = np.random.default_rng(chunk_seed)
        cuts = np.sort(rng.integers(0, stop, 40))
        cuts = np.concatenate((cuts, cuts[5:8], [stop]))  # repeated t_stop values too
        scene = Scene(config, wiring=WIRING, seed=123)
        blocks = [scene.generate(int(t)) for t in np.sort(cuts)]
        runs.append((np.concatenate([b.timestamps for b in blocks]), np.concatenate([b.channels for b in blocks])))
    whole = Scene(config, wiring=WIRING, seed=123).generate(stop)
    for times, chans in runs:
        np.testing.assert_array_equal(times, whole.timestamps)
        np.testing.assert_array_equal(chans, whole.channels)
    other = Scene(config, wiring=WIRING, seed=124).generate(stop)
    assert not np.array_equal(other.timestamps[other.channels != 0], whole.timestamps[whole.channels != 0])


def test_tags_are_sorted_with_ties_by_channel_and_within_the_requested_span():
    scene = Scene({"laser": {"sync_delay_ps": 2000}}, wiring=ChannelMap(laser_sync=5, spad_a=3, spad_b=7), seed=1)
    scene.generate(int(1e9))
    block = scene.generate(int(2e9))
    t, c = block.timestamps, block.channels
    assert t[0] >= int(1e9) and t[-1] < int(2e9)
    order = np.lexsort((c, t))
    np.testing.assert_array_equal(order, np.arange(t.size))
    assert set(np.unique(c).tolist()) == {3, 5, 7}


def test_t_stop_before_the_previous_one_is_refused_naming_both():
    scene = Scene(wiring=WIRING)
    scene.generate(5_000_000)
    with pytest.raises(ValueError, match=r"4000000.*5000000"):
        scene.generate(4_000_000)
    assert len(scene.generate(5_000_000)) == 0


# ----------------------------------------------------------------- truth and log


@pytest.mark.parametrize("mode", ["fluctuating", "two_level", "fixed"])
def test_truth_intervals_tile_the_generated_span(mode):
    config = {"emitter": {"p_trap": {"mode": mode, "dwell_s": 0.05}, "blinking": {"min_dwell_ms": 0.5}}}
    scene = Scene(config, wiring=WIRING, seed=6)
    assert scene.truth()["start_ps"].size == 0
    scene.generate(int(0.77 * PS_PER_S))
    truth = scene.truth()
    assert truth["start_ps"][0] == 0 and truth["stop_ps"][-1] == scene.generated_until_ps
    np.testing.assert_array_equal(truth["start_ps"][1:], truth["stop_ps"][:-1])
    assert np.all(truth["stop_ps"] > truth["start_ps"])
    assert truth["on"].dtype == bool and truth["p_trap"].dtype == np.float64
    assert truth["on"][0] and truth["on"].sum() < truth["on"].size  # starts ON, blinks
    assert np.all((truth["p_trap"] >= 0) & (truth["p_trap"] <= 0.65))
    if mode == "two_level":
        assert set(np.unique(truth["p_trap"]).tolist()) == {0.0, 0.65}


def test_emission_log_rows_tile_time_and_count_what_was_emitted():
    scene = Scene({"emitter": {"p_trap": {"mode": "fixed", "value": 0.3}}}, wiring=WIRING, seed=7)
    block = scene.generate(int(1.0 * PS_PER_S))
    log = scene.emission_log
    np.testing.assert_array_equal(log["start_ps"][1:], log["stop_ps"][:-1])
    assert log["start_ps"][0] == 0 and log["stop_ps"][-1] >= scene.generated_until_ps
    truth = scene.truth()
    on_rows = truth["on"][np.searchsorted(truth["start_ps"], log["start_ps"], side="right") - 1]
    assert np.all(log["off"][on_rows] == 0) and np.all(log["band_edge"][~on_rows] == 0)
    x = log["band_edge"] + log["trap"]
    expected_x = log["pulses"][on_rows].sum() * -np.expm1(-0.3) * 0.95
    assert x.sum() == pytest.approx(expected_x, rel=0.02)
    assert log["trap"].sum() / x.sum() == pytest.approx(0.3, abs=0.01)
    assert log["pulses"].sum() == np.count_nonzero(block.channels == 0)


# ----------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("config", "path", "value", "allowed"),
    [
        ({"spads": {"a": {"dead_time_ns": -5}}}, "scene.spads.a.dead_time_ns", "-5", "must be a number between 0 and 1000000 (ns)"),
        ({"spads": {"c": {}}}, "scene.spads.c", "{}", "unknown key; allowed: a, b"),
        ({"laser": {"repetition_rate_hz": 1e9}}, "scene.laser.repetition_rate_hz", "1000000000.0", "1000 and 80000000 (Hz)"),
        ({"laser": {"enabled": 1}}, "scene.laser.enabled", "1", "must be true or false"),
        ({"emitter": {"kind": "two_qds"}}, "scene.emitter.kind", "'two_qds'", "must be one of 'single_qd', 'poissonian', 'none'"),
        ({"emitter": {"p_trap": {"levels": [0.1, 1.5]}}}, "scene.emitter.p_trap.levels", "[0.1, 1.5]", "must be a list of two numbers, each a number between 0 and 1"),
        ({"spads": {"b": {"dark_cps": True}}}, "scene.spads.b.dark_cps", "True", "must be a number between 0 and 100000 (counts/s)"),
        ({"laser": {"mean_excitations_per_pulse": 11}}, "scene.laser.mean_excitations_per_pulse", "11", "0 and 10"),
        ({"spads": {"a": {"delay_ps": 2.5}}}, "scene.spads.a.delay_ps", "2.5", "must be an integer between 0 and 10000000 (ps)"),
        ({"emitter": {"band_edge": {"lifetime_ns": 0}}}, "scene.emitter.band_edge.lifetime_ns", "0", "must be a number > 0 and <= 1000000 (ns)"),
        ({"laser": {"repetition_rate_hz": "1e6"}}, "scene.laser.repetition_rate_hz", "'1e6'", "write 1.0e+6"),
        (
            {"emitter": {"blinking": {"min_dwell_ms": 50, "max_dwell_s": 0.01}}},
            "scene.emitter.blinking.max_dwell_s",
            "0.01",
            "must be a number > min_dwell_ms / 1000 = 0.05 (s)",
        ),
        ({"laser": "on"}, "scene.laser", "'on'", "must be a mapping of keys to values"),
        ({"colection_efficiency": 0.1}, "scene.colection_efficiency", "0.1", "unknown key; allowed: collection_efficiency, emitter"),
    ],
)
def test_bad_config_raises_config_error_naming_key_value_and_allowed(config, path, value, allowed):
    with pytest.raises(ConfigError) as info:
        Scene(config, wiring=WIRING)
    message = str(info.value)
    assert info.value.key_path == path
    assert f"{path} = {value}:" in message
    assert allowed in message


def test_default_config_is_complete_and_accepted_as_is():
    config = Scene.default_config()
    assert config["collection_efficiency"] == 0.08
    assert config["spads"]["a"]["dead_time_ns"] == 77.0
    assert config["emitter"]["trap"]["peak_ev"] == 2.030
    config["spads"]["a"]["dead_time_ns"] = 1.0  # a copy: the defaults are unchanged
    assert Scene.default_config()["spads"]["a"]["dead_time_ns"] == 77.0
    scene = Scene(config, wiring=WIRING)
    assert scene.config == config


def test_wiring_must_use_three_distinct_channels():
    with pytest.raises(ConfigError, match="distinct"):
        Scene(wiring=ChannelMap(laser_sync=1, spad_a=1, spad_b=2))


# ----------------------------------------------------------------- SPAD segment kernel


@pytest.mark.parametrize("seed", range(20))
def test_spad_segment_kernel_equals_its_reference(seed):
    rng = np.random.default_rng(seed)
    start, stop = 10 * US, 20 * US
    carry = np.sort(rng.integers(start, stop + 3 * US, int(rng.integers(0, 5)))).astype(np.int64)
    photons = rng.integers(start, stop, int(rng.integers(0, 60))).astype(np.int64)
    n_dark = int(rng.integers(0, 5))
    pool = int(rng.integers(1, carry.size + photons.size + n_dark + 20))
    pool = max(pool, photons.size + n_dark)
    u = rng.random((4, pool))
    args = (n_dark, start, stop, u, float(rng.choice([0.0, 17.0, 2000.0])), 8500, 2000, stop + 500 * NS)
    args += (int(rng.choice([0, 77 * NS, 500 * NS])), int(NEVER_PS), float(rng.choice([0.0, 0.5])), 200e3)
    typed = [np.int64(a) if isinstance(a, int) else a for a in args]
    with chosen(True):
        kept, last, later, complete = spad_segment(carry, photons, *typed)
    with chosen(False):
        expected = spad_segment(carry, photons, *typed)
    assert complete == expected[3]
    if complete:
        assert kept.tolist() == expected[0].tolist()
        assert int(last) == int(expected[1])
        assert later.tolist() == expected[2].tolist()
        assert np.all(np.diff(kept) >= args[8]) and np.all(np.diff(later) >= 0)


@pytest.mark.parametrize("kind", ["single_qd", "poissonian"])
def test_the_scene_gives_the_same_tags_on_numba_and_on_numpy_kernels(kind):
    """The first run after an install (numpy kernels) records what any later run (numba) would, bit for bit."""
    config = {"emitter": {"kind": kind}, "spads": {"a": {"afterpulse_probability": 0.2}}}
    runs = []
    for numba in (True, False):
        with chosen(numba):
            scene = Scene(config, wiring=WIRING, seed=7)
            runs.append(generate_in_steps(scene, 0.3, step_s=0.07))
    (t_numba, c_numba), (t_numpy, c_numpy) = runs
    assert t_numba.size > 1000
    np.testing.assert_array_equal(t_numba, t_numpy)
    np.testing.assert_array_equal(c_numba, c_numpy)

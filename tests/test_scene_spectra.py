"""The scene's frame clock and spectral model, and the spectra the simulated camera records from them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from drivers.andor import IXonUltra888
from labctl.blocks import ChannelMap
from labctl.errors import ConfigError
from sim_backends.andor_sim import SimAndorSDK
from sim_backends.scene import Scene
from sim_backends.spectra import HC_EV_NM, default_wavelength_axis_nm, gaussian_pixel_fractions, pixel_edges

WIRING = ChannelMap(laser_sync=0, spad_a=1, spad_b=2, frame_marker=3)
PS_PER_S = 10**12
MS = 10**9  # ps
STEADY_QD = {"emitter": {"blinking": {"enabled": False}, "p_trap": {"mode": "fixed", "value": 0.0}}}
SPECTRAL_KINDS = ("band_edge", "trap", "off", "biexciton")


def markers_of(block, channel: int = 3) -> np.ndarray:
    return block.timestamps[block.channels == channel]


# ----------------------------------------------------------------- frame clock
def test_frame_clock_is_off_at_10_hz_by_default():
    scene = Scene(STEADY_QD, wiring=WIRING, seed=1)
    assert scene.frame_clock() == (10.0, False)
    block = scene.generate(PS_PER_S)
    assert markers_of(block).size == 0 and scene.frame_edges_ps(0, PS_PER_S).size == 0


def test_markers_follow_the_edge_grid_from_the_boundary_where_the_clock_was_enabled():
    scene = Scene({"segment_ms": 1.0}, wiring=WIRING, seed=1)
    first = scene.generate(int(2.5 * MS))  # segments 0..2 generated
    scene.set_frame_clock(3000.0, True)  # period 333333333.3 ps: not an integer
    assert scene.frame_clock() == (3000.0, True)
    rest = scene.generate(10 * MS)
    markers = np.concatenate((markers_of(first), markers_of(rest)))
    k = np.arange(markers.size)
    np.testing.assert_array_equal(markers, 3 * MS + np.floor(k * (1e12 / 3000.0)).astype(np.int64))
    assert markers.size == 21  # edges at 3 ms + k/3 ms, up to 9.667 ms
    np.testing.assert_array_equal(scene.frame_edges_ps(0, 10 * MS), markers)
    np.testing.assert_array_equal(scene.frame_edges_ps(4 * MS, 5 * MS), markers[(markers >= 4 * MS) & (markers < 5 * MS)])


def test_frame_clock_changes_take_effect_at_the_next_segment_boundary():
    scene = Scene({"segment_ms": 1.0, "frame_clock": {"enabled": True, "rate_hz": 1000.0}}, wiring=WIRING, seed=1)
    first = scene.generate(int(3.5 * MS))  # segments 0..3 generated: edges 0, 1, 2, 3 ms
    scene.set_frame_clock(4000.0, True)
    second = scene.generate(int(5.5 * MS))  # new grid from 4 ms
    scene.set_frame_clock(4000.0, False)
    third = scene.generate(9 * MS)  # off from 6 ms
    markers = np.concatenate([markers_of(b) for b in (first, second, third)])
    expected = [0, 1, 2, 3, 4, 4.25, 4.5, 4.75, 5, 5.25, 5.5, 5.75]
    np.testing.assert_array_equal(markers, (np.array(expected) * MS).astype(np.int64))


def test_markers_are_merged_in_time_order_with_ties_by_channel_and_chunk_invariant():
    wiring = ChannelMap(laser_sync=5, spad_a=1, spad_b=2, frame_marker=3)
    config = {"segment_ms": 2.0, "frame_clock": {"enabled": True, "rate_hz": 1000.0}}
    whole = Scene(config, wiring=wiring, seed=3).generate(int(0.05 * PS_PER_S))
    assert np.all(np.diff(whole.timestamps) >= 0)
    at_zero = whole.channels[whole.timestamps == 0]
    np.testing.assert_array_equal(at_zero, [3, 5])  # edge and laser pulse at 0: marker (3) before sync (5)
    scene = Scene(config, wiring=wiring, seed=3)
    cuts = np.sort(np.random.default_rng(1).integers(0, int(0.05 * PS_PER_S), 30))
    blocks = [scene.generate(int(t)) for t in (*cuts, int(0.05 * PS_PER_S))]
    np.testing.assert_array_equal(np.concatenate([b.timestamps for b in blocks]), whole.timestamps)
    np.testing.assert_array_equal(np.concatenate([b.channels for b in blocks]), whole.channels)


def test_without_a_marker_channel_there_are_no_marker_tags_but_the_edges_still_trigger():
    scene = Scene({"frame_clock": {"enabled": True}}, wiring=ChannelMap(laser_sync=0, spad_a=1, spad_b=2), seed=1)
    block = scene.generate(PS_PER_S)
    assert set(np.unique(block.channels).tolist()) <= {0, 1, 2}
    np.testing.assert_array_equal(scene.frame_edges_ps(0, PS_PER_S), np.arange(10, dtype=np.int64) * PS_PER_S // 10)


@pytest.mark.parametrize("rate_hz", [0.0, -1.0, 2e5, float("nan"), "10", True])
def test_frame_clock_rate_is_validated_and_nothing_changes(rate_hz):
    scene = Scene(wiring=WIRING, seed=1)
    with pytest.raises(ConfigError) as info:
        scene.set_frame_clock(rate_hz, True)
    assert info.value.key_path == "scene.frame_clock.rate_hz" and "must be a number between 0.001 and 100000 (Hz)" in str(info.value)
    with pytest.raises(ConfigError, match="scene.frame_clock.enabled"):
        scene.set_frame_clock(10.0, 1)
    assert scene.frame_clock() == (10.0, False)


def test_frame_marker_needs_its_own_channel():
    with pytest.raises(ConfigError, match="distinct channels for laser_sync, spad_a, spad_b, frame_marker"):
        Scene(wiring=ChannelMap(laser_sync=0, spad_a=1, spad_b=2, frame_marker=2))


# ----------------------------------------------------------------- spectral model
def test_pixel_fractions_of_a_line_inside_the_axis_sum_to_one_in_either_direction():
    axis = np.linspace(1.8, 2.3, 700)
    for a in (axis, axis[::-1]):
        fractions = gaussian_pixel_fractions(a, 2.064, 51.0)
        assert fractions.sum() == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(pixel_edges(np.array([1.0, 2.0, 4.0])), [0.5, 1.5, 3.0, 5.0])


def test_emitted_spectrum_integrates_to_the_logged_photons_over_the_window():
    scene = Scene({"emitter": {"p_trap": {"mode": "fixed", "value": 0.4}}}, wiring=WIRING, seed=2)
    scene.generate(PS_PER_S)
    t0, t1 = 123_456_789_012, 456_789_012_345  # cuts log rows in the middle
    log = scene.emission_log
    overlap = np.clip(np.minimum(log["stop_ps"], t1) - np.maximum(log["start_ps"], t0), 0, None)
    fraction = overlap / (log["stop_ps"] - log["start_ps"])
    logged = sum(float((log[kind] * fraction).sum()) for kind in SPECTRAL_KINDS)
    spectrum = scene.emitted_spectrum(t0, t1, np.linspace(1.6, 2.5, 2000))  # wide: holds both lines
    efficiency = scene.config["spectrometer_collection_efficiency"]
    assert spectrum.sum() == pytest.approx(efficiency * logged, rel=1e-9)
    assert logged > 1000


def test_emitted_counts_are_the_log_sums_on_whole_rows_and_prorated_on_partial_ones():
    scene = Scene({"segment_ms": 0.1}, wiring=WIRING, seed=5)  # > 4096 log rows: packed blocks too
    scene.generate(int(0.6 * PS_PER_S))
    log = scene.emission_log
    assert log["start_ps"].size > 5000
    i, j = 1000, 4500  # whole rows i..j-1, across a packed-block boundary
    counts = scene.emitted_counts(int(log["start_ps"][i]), int(log["stop_ps"][j - 1]))
    for kind in ("band_edge", "trap", "off", "biexciton"):
        assert counts[kind] == pytest.approx(float(log[kind][i:j].sum()), abs=1e-6)
    row = 2000
    start, stop = int(log["start_ps"][row]), int(log["stop_ps"][row])
    quarter = scene.emitted_counts(start, start + (stop - start) // 4)
    assert quarter["band_edge"] == pytest.approx(log["band_edge"][row] / 4, rel=1e-6)


def test_a_window_not_generated_yet_is_refused():
    scene = Scene({"segment_ms": 10.0}, wiring=WIRING, seed=1)
    scene.generate(15 * MS)  # segments 0 and 1 generated: the log reaches 20 ms
    scene.emitted_counts(0, 20 * MS)
    with pytest.raises(ValueError, match="must satisfy 0 <= t0 <= t1 <= 20000000000 ps"):
        scene.emitted_spectrum(10 * MS, 21 * MS, np.linspace(1.9, 2.2, 100))


@pytest.mark.parametrize(("p_trap", "line"), [(0.0, "band_edge"), (1.0, "trap")])
def test_each_line_has_the_configured_peak_and_fwhm(p_trap, line):
    config = {"emitter": {"blinking": {"enabled": False}, "p_trap": {"mode": "fixed", "value": p_trap},
                          "biexciton_quantum_yield": 0.0}}
    scene = Scene(config, wiring=WIRING, seed=1)
    scene.generate(PS_PER_S // 10)
    energy = np.linspace(1.9, 2.2, 3001)  # 0.1 meV pixels
    spectrum = scene.emitted_spectrum(0, PS_PER_S // 10, energy)
    expected = scene.config["emitter"][line]
    above = energy[spectrum >= spectrum.max() / 2]
    assert energy[np.argmax(spectrum)] == pytest.approx(expected["peak_ev"], abs=2e-4)
    assert (above[-1] - above[0]) * 1e3 == pytest.approx(expected["fwhm_mev"], abs=0.3)


def test_off_state_photons_are_dim_and_on_the_band_edge_line():
    config = {"emitter": {"p_trap": {"mode": "fixed", "value": 0.5}}}
    scene = Scene(config, wiring=WIRING, seed=6)
    scene.generate(4 * PS_PER_S)
    truth = scene.truth()
    duration = np.where(truth["on"], 0, truth["stop_ps"] - truth["start_ps"])
    long_off = int(np.argmax(duration))  # the longest OFF stretch
    assert duration[long_off] > MS
    t0, t1 = int(truth["start_ps"][long_off]), int(truth["stop_ps"][long_off])
    counts = scene.emitted_counts(t0, t1)
    assert counts["band_edge"] == counts["trap"] == 0 and counts["off"] > 0
    energy = np.linspace(1.9, 2.2, 3001)
    off = scene.emitted_spectrum(t0, t1, energy)
    assert energy[np.argmax(off)] == pytest.approx(2.064, abs=2e-4)
    on = np.flatnonzero(truth["on"])[0]
    on_rate = sum(scene.emitted_counts(int(truth["start_ps"][on]), int(truth["stop_ps"][on])).values()) / (
        truth["stop_ps"][on] - truth["start_ps"][on])
    assert counts["off"] / (t1 - t0) < 0.1 * on_rate


def test_a_100_ms_on_frame_brings_2000_to_5000_photons_to_the_spectrograph():
    scene = Scene(STEADY_QD, wiring=WIRING, seed=1)
    scene.generate(PS_PER_S // 10)
    photons = scene.emitted_spectrum(0, PS_PER_S // 10, HC_EV_NM / default_wavelength_axis_nm()).sum()
    assert 2000 < photons < 5000


# ----------------------------------------------------------------- spectra through the camera
def peak_energy_ev(energy_ev: np.ndarray, density: np.ndarray) -> float:
    """Peak of a spectral density: parabola through log(density) over the part above 60 % of the maximum."""
    smooth = np.convolve(density, np.ones(7) / 7, mode="same")
    top = int(np.argmax(smooth))
    below = smooth < 0.6 * smooth[top]
    lo = top - int(np.argmax(below[top::-1]))
    hi = top + int(np.argmax(below[top:]))
    e, d = energy_ev[lo + 1 : hi], density[lo + 1 : hi]
    a, b, _ = np.polyfit(e - energy_ev[top], np.log(np.clip(d, 1e-12, None)), 2)
    return float(energy_ev[top] - b / (2 * a))


def mixture_density(energy_ev: np.ndarray, weights: dict[str, float], emitter: dict) -> np.ndarray:
    """Photons per eV of the band-edge and trap Gaussians with the given photon numbers."""
    out = np.zeros_like(energy_ev)
    for line, n in weights.items():
        sigma = emitter[line]["fwhm_mev"] * 1e-3 / (2 * math.sqrt(2 * math.log(2)))
        out += n * np.exp(-0.5 * ((energy_ev - emitter[line]["peak_ev"]) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    return out


class _Clock:
    """The cooler's wall clock: advanced by hand, or by ``tick_s`` at every read."""

    def __init__(self) -> None:
        self.now_s = 0.0
        self.tick_s = 0.0

    def __call__(self) -> float:
        self.now_s += self.tick_s
        return self.now_s


def test_frames_in_trap_high_windows_are_redshifted_by_the_mixture_peak_shift():
    config = {"emitter": {"blinking": {"enabled": False},
                          "p_trap": {"mode": "two_level", "levels": [0.0, 0.65], "dwell_s": 0.5}}}
    scene = Scene(config, wiring=WIRING, seed=21)
    clock = _Clock()
    sim = SimAndorSDK(scene, clock=clock)
    cam = IXonUltra888("ixon_spectra", library=sim, warmup_poll_s=0.0, warmup_timeout_s=5.0)
    try:
        cam.cooler(True)
        clock.now_s += 10.0
        cam.em_gain(100)
        cam.exposure_s(0.09)
        exposure_ps = int(round(cam.actual_exposure_s() * 1e6)) * 10**6
        cam.start_frames()  # arm first, then start the clock: frame i belongs to marker i
        scene.set_frame_clock(10.0, True)
        markers, indices, frames = [], [], []
        for k in range(1, 41):
            block = scene.generate(k * PS_PER_S // 10)
            markers.append(markers_of(block))
            idx, fr = cam.read_frames()
            indices.append(idx)
            frames.append(fr)
        cam.stop_frames()
    finally:
        clock.tick_s = 0.05  # time passes while close() waits for the sensor to warm up
        cam.close()
    markers, indices, frames = np.concatenate(markers), np.concatenate(indices), np.concatenate(frames)
    assert indices.size == markers.size == 40
    starts = markers[indices]
    truth = scene.truth()
    p_trap = truth["p_trap"][np.searchsorted(truth["start_ps"], starts + exposure_ps // 2, side="right") - 1]
    axis_nm = default_wavelength_axis_nm()
    energy = HC_EV_NM / axis_nm
    width_ev = np.abs(np.gradient(energy))
    emitter = scene.config["emitter"]
    peaks, expected = {}, {}
    for group, selected in (("low", p_trap == 0.0), ("high", p_trap == 0.65)):
        assert selected.sum() == 20
        mean = frames[selected].astype(np.float64).mean(axis=0)
        background = np.median(np.concatenate((mean[:150], mean[-150:])))
        peaks[group] = peak_energy_ev(energy, (mean - background) / (sim.model.qe(axis_nm) * width_ev))
        counts = [scene.emitted_counts(int(s), int(s) + exposure_ps) for s in starts[selected]]
        weights = {
            "band_edge": sum(c["band_edge"] + c["off"] + c["biexciton"] for c in counts),
            "trap": sum(c["trap"] for c in counts),
        }
        expected[group] = peak_energy_ev(energy, mixture_density(energy, weights, emitter))
    expected_shift = expected["high"] - expected["low"]
    measured_shift = peaks["high"] - peaks["low"]
    assert expected_shift < -0.015  # the test has teeth: the trap-rich spectrum is clearly redshifted
    assert measured_shift == pytest.approx(expected_shift, abs=0.003)
    assert peaks["low"] == pytest.approx(emitter["band_edge"]["peak_ev"], abs=0.003)

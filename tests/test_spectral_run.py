"""Spectra on the photon clock: a run of the default station records camera frames, one per frame marker."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from labctl.acquisition.engine import AcquisitionEngine
from labctl.errors import ConfigError
from labctl.storage import layout as L

DURATION_S = 2.5


def run_to_file(station, path, duration_s: float = DURATION_S):
    with AcquisitionEngine(station, path) as engine:
        summary = engine.run(duration_s)
    with h5py.File(path, "r") as f:
        data = {key: f[p][()] for key, p in (
            ("markers", L.MARKERS), ("frames", L.SPECTRA_FRAMES), ("index", L.SPECTRA_FRAME_INDEX),
            ("start", L.SPECTRA_EXPOSURE_START), ("stop", L.SPECTRA_EXPOSURE_STOP),
            ("skipped", L.SPECTRA_SKIPPED), ("wavelength", L.SPECTRA_WAVELENGTH), ("energy", L.SPECTRA_ENERGY),
            ("losses", L.LOSSES), ("timestamps", L.TIMESTAMPS), ("nanotimes", L.NANOTIMES))}
        data["attrs"] = dict(f[L.SPECTRA].attrs)
    return summary, engine, data


def test_default_station_records_one_frame_per_frame_marker(make_station, tmp_path):
    station = make_station(time_scale=4.0)
    summary, engine, d = run_to_file(station, tmp_path / "run.h5")
    assert summary.clean, summary.errors
    n_markers = d["markers"].size
    assert n_markers == pytest.approx(DURATION_S * 10, abs=1)
    # The engine reads the tagger on after the end until the frame of the last marker of the
    # run is read out, so every marker has its frame (the brief allows one fewer: the frame
    # still exposing at the end; this engine waits for it).
    assert d["index"].size == n_markers
    np.testing.assert_array_equal(d["index"], np.arange(n_markers))
    np.testing.assert_array_equal(d["start"], d["markers"])
    exposure_ps = int(round(station.instruments["camera"].actual_exposure_s() * 1e12))
    np.testing.assert_array_equal(d["stop"] - d["start"], exposure_ps)
    assert d["frames"].shape == (n_markers, 1024) and d["frames"].dtype == np.uint16
    assert d["skipped"].size == 0
    assert not any(L.text(r["source"]) == "camera_skip" for r in d["losses"])
    assert d["wavelength"].shape == (1024,) and np.all(np.isfinite(d["wavelength"]))
    assert d["wavelength"][0] < 600.0 < d["wavelength"][-1]  # 150 l/mm grating centred at 600 nm
    np.testing.assert_allclose(d["energy"], 1239.841984 / d["wavelength"])
    assert d["attrs"]["camera"] == 1 and d["attrs"]["frame_rate_hz"] == 10.0
    # the QD shines: its line stands well above the baseline in the summed spectrum
    spectrum = d["frames"].astype(np.float64).sum(axis=0)
    baseline, noise = np.median(spectrum), np.std(spectrum[:100])  # the blue end: no QD light
    assert spectrum.max() - baseline > 20 * noise
    assert engine.frame_stats == {"markers": n_markers, "frames": n_markers, "skipped": 0, "unmatched_markers": 0}
    assert station.laser.excitation_enabled() is False
    assert station.instruments["function_generator"].ch2.output() is False


def test_a_dropped_frame_is_recorded_and_the_next_frames_stay_on_their_markers(make_station, tmp_path):
    station = make_station(time_scale=4.0, camera_options={"drop_frame_indices": [5]})
    summary, engine, d = run_to_file(station, tmp_path / "run.h5")
    assert summary.clean, summary.errors
    np.testing.assert_array_equal(d["skipped"], [5])
    skips = [r for r in d["losses"] if L.text(r["source"]) == "camera_skip"]
    exposure_ps = int(round(station.instruments["camera"].actual_exposure_s() * 1e12))
    assert len(skips) == 1
    assert (int(skips[0]["start_ps"]), int(skips[0]["stop_ps"])) == (int(d["markers"][5]), int(d["markers"][5]) + exposure_ps)
    assert any(loss.source == "camera_skip" for loss in summary.losses)
    assert 5 not in d["index"].tolist()
    six = int(np.flatnonzero(d["index"] == 6)[0])
    assert d["start"][six] == d["markers"][6]
    np.testing.assert_array_equal(d["start"], d["markers"][d["index"]])
    assert d["index"].size + d["skipped"].size == d["markers"].size
    assert station.laser.excitation_enabled() is False


def test_a_frame_clock_faster_than_the_camera_is_refused_before_anything_starts(make_station, tmp_path):
    station = make_station(time_scale=4.0)
    station.instruments["function_generator"].ch2.frequency_hz(20.0)  # 50 ms < 90 ms exposure
    with pytest.raises(ConfigError, match="kinetic cycle"):
        AcquisitionEngine(station, tmp_path / "run.h5").start(1.0)
    assert not (tmp_path / "run.h5").exists()
    assert station.laser.excitation_enabled() is False


def test_trap_emission_lengthens_the_decay_and_shifts_the_spectrum_to_lower_energy(make_station, tmp_path):
    scene = {"emitter": {"kind": "single_qd",
                         "p_trap": {"mode": "two_level", "levels": [0.0, 0.65], "dwell_s": 0.5},
                         "blinking": {"enabled": False}}}
    station = make_station(time_scale=4.0, scene=scene)
    summary, engine, d = run_to_file(station, tmp_path / "run.h5", duration_s=2.0)
    assert summary.clean, summary.errors
    from labctl.analysis.spectra import load_spectra, peak_energy_and_width, sum_spectra

    spectra = load_spectra(tmp_path / "run.h5")
    ts, nt = d["timestamps"], d["nanotimes"]
    mean_nt = []
    for k in range(spectra.frames.shape[0]):
        sel = (ts >= d["start"][k]) & (ts < d["stop"][k]) & (nt >= 0)
        mean_nt.append(nt[sel].mean())
    centroid, fwhm = peak_energy_and_width(spectra.frames, spectra.energy_ev)
    assert np.nanmedian(fwhm) == pytest.approx(0.055, abs=0.015)  # band edge 51 meV, trap 60 meV, mixtures
    mean_nt = np.array(mean_nt)
    # frames fully inside one dwell: level 0 in [0, 0.5) s, 0.65 in [0.5, 1.0) s, ... of the scene
    t_s = (d["start"] - d["start"][0]) * 1e-12
    # the dwell phase is the scene's: classify each frame by its mean nanotime instead, then check both agree
    high = mean_nt > np.median(mean_nt)
    assert 0.3 < high.mean() < 0.7
    found = np.isfinite(centroid)  # a frame whose line the peak finder could not place (none in most runs)
    assert found.mean() >= 0.9, centroid
    shift_mev = (centroid[~high & found].mean() - centroid[high & found].mean()) * 1e3
    nt_rise_ns = (mean_nt[high].mean() - mean_nt[~high].mean()) * 1e-3
    assert nt_rise_ns > 5.0
    # expected: 0.65 x (2.064 - 2.030) eV = 22 meV (equal fwhm-ish bands, centroid of the mixture)
    print(f"shift {shift_mev:.2f} meV, mean nanotime rise {nt_rise_ns:.2f} ns")
    assert shift_mev == pytest.approx(0.65 * (2.064 - 2.030) * 1e3, abs=3.0), (shift_mev, t_s)
    # spectra summed over the frames' windows of each group (the base of Fig. 4f-h) show the same shift
    windows = np.stack([spectra.exposure_start_ps, spectra.exposure_stop_ps], axis=1)
    summed = np.stack([sum_spectra(spectra, windows[~high]), sum_spectra(spectra, windows[high])])
    peaks, _ = peak_energy_and_width(summed, spectra.energy_ev)
    assert (peaks[0] - peaks[1]) * 1e3 == pytest.approx(0.65 * (2.064 - 2.030) * 1e3, abs=3.0)


def test_the_run_log_records_the_sensor_temperature_and_warns_while_it_cools(make_station, tmp_path):
    import time

    from labctl.storage import PhotonHDF5Reader

    station = make_station(time_scale=4.0)
    camera = station.instruments["camera"]

    def camera_lines(path):
        with PhotonHDF5Reader(path) as reader:
            return [(level, text) for _, level, text in reader.run_log() if text.startswith("camera sensor at")]

    assert camera.temperature_state() != "stabilized"  # built a moment ago: the cooler is still cooling
    run_to_file(station, tmp_path / "early.h5", duration_s=0.3)
    (level, text), = camera_lines(tmp_path / "early.h5")
    assert level == "WARNING" and "extra dark charge" in text
    deadline = time.monotonic() + 30
    while camera.temperature_state() != "stabilized" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert camera.temperature_state() == "stabilized"
    run_to_file(station, tmp_path / "cold.h5", duration_s=0.3)
    assert camera_lines(tmp_path / "cold.h5") == [("INFO", f"camera sensor at {camera.temperature_c()} degC (stabilized)")]

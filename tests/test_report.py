"""``labctl report`` (issue 11): the paper's Fig. 4 analysis recovers a simulated QD's known truth.

The runs are simulated straight from the scene (``tests.report_sim``: seconds of simulated
time, no real-time clock), with truths that are not the default scene's; one short run goes
through the acquisition engine.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from labctl.analysis.fig4 import ReportOptions, parse_regimes, report_file, write_report
from labctl.cli import main
from labctl.errors import ConfigError
from tests.report_sim import simulate_to_file

TAU_BE_NS, TAU_TRAP_NS = 30.0, 70.0
BE_EV, BE_FWHM_MEV, TRAP_EV, TRAP_FWHM_MEV = 2.100, 45.0, 2.050, 70.0
P_LEVELS = [0.0, 0.3, 0.6]
BRIGHT = {  # weak excitation (n = 0.1, as in the paper), bright collection: ~60 kcps, ~4000 photons per frame
    "laser": {"mean_excitations_per_pulse": 0.1},
    "collection_efficiency": 1.0,
    "spectrometer_collection_efficiency": 0.5,
    "spads": {"a": {"detection_efficiency": 0.7}, "b": {"detection_efficiency": 0.7}},
}


def qd_scene(**emitter) -> dict:
    base = {"kind": "single_qd", "band_edge": {"lifetime_ns": TAU_BE_NS, "peak_ev": BE_EV, "fwhm_mev": BE_FWHM_MEV},
            "trap": {"lifetime_ns": TAU_TRAP_NS, "peak_ev": TRAP_EV, "fwhm_mev": TRAP_FWHM_MEV},
            "blinking": {"enabled": False}}
    return {**BRIGHT, "emitter": {**base, **emitter}}


@pytest.fixture(scope="module")
def three_levels(tmp_path_factory):
    """20 s, P_trap cycling 0 / 0.3 / 0.6 every second; regimes around each level's mean lifetime."""
    path = tmp_path_factory.mktemp("report") / "three_levels.h5"
    simulate_to_file(path, qd_scene(p_trap={"mode": "cycle", "cycle_levels": P_LEVELS, "dwell_s": 1.0}), 20.0, seed=3)
    options = ReportOptions(regimes_ns=((24, 36), (36, 48), (48, 60)))
    return path, report_file(path, options)


def test_band_edge_and_trap_lifetimes_within_3_percent(three_levels):
    _, r = three_levels
    assert r["band_edge"]["tau_ns"] == pytest.approx(TAU_BE_NS, rel=0.03)
    assert r["trap"]["tau_ns"] == pytest.approx(TAU_TRAP_NS, rel=0.03)
    assert 0 < r["trap"]["tau_err_ns"] < 0.02 * TAU_TRAP_NS


def test_trap_fraction_per_regime_within_5_points(three_levels):
    _, r = three_levels
    fractions = [reg["trap_fraction"] for reg in r["regimes"]]
    np.testing.assert_allclose(fractions, P_LEVELS, atol=0.05)
    assert all(reg["bins"] >= 50 for reg in r["regimes"])  # ~ 65 bins of 100 ms per level


def test_spectra_band_edge_and_reconstructed_trap_line(three_levels):
    _, r = three_levels
    assert r["band_edge"]["peak_ev"] == pytest.approx(BE_EV, abs=0.003)
    assert r["band_edge"]["fwhm_ev"] * 1e3 == pytest.approx(BE_FWHM_MEV, abs=5)
    assert r["trap"]["peak_ev"] == pytest.approx(TRAP_EV, abs=0.003)
    assert r["trap"]["fwhm_ev"] * 1e3 == pytest.approx(TRAP_FWHM_MEV, abs=5)
    # the longest regime's total spectrum is red-shifted and broader (paper Fig. 4h)
    longest = r["regimes"][-1]["spectrum"]
    assert longest["peak_ev"] < BE_EV - 0.01 and longest["fwhm_ev"] > r["band_edge"]["fwhm_ev"] + 0.01
    assert all(reg["spectrum"]["frames"] > 40 for reg in r["regimes"])


def test_g2_zero_gives_the_biexciton_to_exciton_yield_ratio_and_gating_removes_it(three_levels):
    _, r = three_levels
    g2 = r["g2"]
    ratio = 0.07 / 0.95  # the scene's QY_BX / QY_X (defaults)
    assert g2["biexciton_qy_ratio"] == pytest.approx(ratio, rel=0.15)  # n = 0.1: + ~n/3 from two excitations
    assert g2["gated_g2_zero"] < 0.2 * g2["g2_zero"]  # the 147 ps biexciton photon is gated out


def test_report_json_keys_and_html(three_levels, tmp_path):
    _, r = three_levels
    write_report(r, tmp_path / "out")
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert set(data["on"]) >= {"threshold_counts", "bin_ms", "fraction", "source"}
    for key in ("band_edge", "trap"):
        assert set(data[key]) >= {"tau_ns", "tau_err_ns", "peak_ev", "fwhm_ev"}
    assert set(data["regimes"][0]) >= {"lifetime_range_ns", "bins", "photons", "decay_fit", "trap_fraction", "spectrum"}
    assert set(data["regimes"][0]["spectrum"]) >= {"peak_ev", "fwhm_ev", "frames"}
    assert {"g2", "levels", "settings"} <= set(data)
    assert set(data["settings"]) >= {"bins", "windows", "threshold", "background"}
    html = (tmp_path / "out" / "report.html").read_text()
    for png in ("trace.png", "flid.png", "decays.png", "spectra.png", "g2.png"):
        assert (tmp_path / "out" / png).stat().st_size > 1000 and png in html


def _chi2_p(observed: np.ndarray, expected: np.ndarray) -> tuple[float, int]:
    """Pearson chi2 and degrees of freedom, merging neighbouring bins until each expects >= 5."""
    obs, exp, o, e = [], [], 0.0, 0.0
    for a, b in zip(observed, expected):
        o, e = o + a, e + b
        if e >= 5:
            obs.append(o), exp.append(e)
            o, e = 0.0, 0.0
    if exp:
        obs[-1] += o
        exp[-1] += e
    obs_a, exp_a = np.array(obs), np.array(exp)
    return float(((obs_a - exp_a) ** 2 / exp_a).sum()), len(obs) - 1


def test_shot_noise_curve_fits_a_mono_emitter_and_is_narrower_than_a_fluctuating_one(tmp_path):
    from scipy.stats import chi2 as chi2_dist

    mono = tmp_path / "mono.h5"
    simulate_to_file(mono, qd_scene(p_trap={"mode": "fixed", "value": 0.0}), 8.0, seed=7, frame_rate_hz=1.0)
    h = report_file(mono, ReportOptions(bin_ms=10.0))["lifetime_histogram"]
    chi2, dof = _chi2_p(np.array(h["counts"], float), np.array(h["shot_noise"]))
    assert sum(h["counts"]) >= 795 and dof >= 8  # 10 ms bins over 8 s, the last one partial
    assert chi2_dist.sf(chi2, dof) > 0.01, (chi2, dof)
    fluct = tmp_path / "fluct.h5"
    simulate_to_file(fluct, qd_scene(p_trap={"mode": "fluctuating", "max": 0.65, "timescale_s": 0.5}), 8.0, seed=8,
                     frame_rate_hz=1.0)
    f = report_file(fluct, ReportOptions(bin_ms=10.0))["lifetime_histogram"]
    assert f["std_ns"] > 3 * f["shot_noise_std_ns"]
    assert h["std_ns"] == pytest.approx(h["shot_noise_std_ns"], rel=0.1)
    chi2_f, dof_f = _chi2_p(np.array(f["counts"], float), np.array(f["shot_noise"]))
    assert chi2_dist.sf(chi2_f, dof_f) < 1e-6


def test_background_corrected_per_bin_lifetime_within_1_percent(tmp_path):
    spad = {"detection_efficiency": 0.7, "dark_cps": 500.0, "afterpulse_probability": 0.02}
    scene = qd_scene(p_trap={"mode": "fixed", "value": 0.0})
    scene["spads"] = {"a": spad, "b": spad}
    path = tmp_path / "noisy.h5"
    simulate_to_file(path, scene, 8.0, seed=11, frame_rate_hz=1.0)
    r = report_file(path)
    tau = np.array([np.nan if v is None else v for v in r["trace"]["lifetime_ns"]])
    on = np.array(r["trace"]["on"])
    assert on.mean() == 1.0
    assert np.nanmean(tau[on]) == pytest.approx(TAU_BE_NS, rel=0.01)
    assert r["trace"]["on_lifetime_ns"] == pytest.approx(TAU_BE_NS, rel=0.01)
    assert r["settings"]["background"]["photons_vetoed"] > 1000
    # without the afterpulse veto the same bins read long by more than 2 %
    naive = report_file(path, ReportOptions(afterpulse_veto_ns=0.0))
    assert naive["trace"]["on_lifetime_ns"] > 1.02 * TAU_BE_NS


def test_regimes_option_and_cli_errors(tmp_path, capsys):
    assert parse_regimes("40-50,50-60,60-70") == ((40.0, 50.0), (50.0, 60.0), (60.0, 70.0))
    for bad in ("50-40", "40-50,45-60", "abc", "40"):
        with pytest.raises(ConfigError, match="--regimes"):
            parse_regimes(bad)
    path = tmp_path / "x.h5"
    simulate_to_file(path, qd_scene(), 1.0, seed=2, frame_rate_hz=1.0)
    assert main(["report", str(path), "--out", str(tmp_path / "o"), "--regimes", "60-50"]) == 2
    assert "--regimes = '60-50'" in capsys.readouterr().err
    assert main(["report", str(path), str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "given twice" in err and err.count("\n") == 1
    assert main(["report", str(tmp_path / "none.h5"), "--out", str(tmp_path / "o")]) == 2
    assert main(["report", str(path), "--out", str(tmp_path / "o"), "--bin-ms", "5000"]) == 2
    assert "--bin-ms" in capsys.readouterr().err
    assert main(["report", str(path), "--out", str(tmp_path / "o"), "--bin-ms", "50", "--on-threshold", "10"]) == 0
    data = json.loads((tmp_path / "o" / "report.json").read_text())
    assert data["on"] == {**data["on"], "threshold_counts": 10.0, "bin_ms": 50.0, "source": "given (--on-threshold)"}


def test_fixed_tau_needs_the_bi_model():
    from labctl.analysis.fit import fit_decay

    edges = np.arange(0, 1_000_001, 100)  # one 1 MHz period: the tails do not wrap
    t = np.arange(10_000) * 100.0 + 50.0
    counts = np.random.default_rng(0).poisson(2000 * np.exp(-t / 30e3) + 1000 * np.exp(-t / 70e3))
    with pytest.raises(ValueError, match="fixed_tau_ns"):
        fit_decay(counts, edges, model="mono", fixed_tau_ns=30.0)
    fit = fit_decay(counts, edges, model="bi", fixed_tau_ns=30.0)
    assert fit.tau_ns[0] == pytest.approx(30.0, abs=1e-9) and fit.tau_err_ns[0] == 0.0
    assert fit.tau_ns[1] == pytest.approx(70.0, rel=0.03)
    assert fit.intensity_fractions[1] == pytest.approx(70 / (2 * 30 + 70), abs=0.02)


def test_scene_cycle_levels_are_validated():
    from sim_backends.scene_config import validate_scene_config

    cfg = validate_scene_config({"emitter": {"p_trap": {"mode": "cycle", "cycle_levels": [0.1, 0.2, 0.5, 0.0]}}})
    assert cfg["emitter"]["p_trap"]["cycle_levels"] == [0.1, 0.2, 0.5, 0.0]
    assert cfg["emitter"]["biexciton_lifetime_ns"] == 0.147
    with pytest.raises(ConfigError, match=r"scene\.emitter\.p_trap\.cycle_levels"):
        validate_scene_config({"emitter": {"p_trap": {"cycle_levels": [0.1, 1.5]}}})
    with pytest.raises(ConfigError, match="1 to 16 numbers"):
        validate_scene_config({"emitter": {"p_trap": {"cycle_levels": []}}})


def test_report_of_a_run_recorded_through_the_engine(make_station, tmp_path):
    from labctl.acquisition.engine import AcquisitionEngine

    scene = {"seed": 4, **qd_scene(p_trap={"mode": "two_level", "levels": [0.0, 0.6], "dwell_s": 0.5})}
    station = make_station(time_scale=2.0, scene=scene)
    path = tmp_path / "engine.h5"
    with AcquisitionEngine(station, path) as engine:
        summary = engine.run(3.0)
    assert summary.clean, summary.errors
    r = report_file(path, ReportOptions(regimes_ns=((20, 40), (40, 60))))
    assert r["regimes"][0]["spectrum"]["frames"] >= 5
    assert r["band_edge"]["tau_ns"] == pytest.approx(TAU_BE_NS, rel=0.05)
    assert r["regimes"][1]["trap_fraction"] == pytest.approx(0.6, abs=0.1)
    assert r["band_edge"]["peak_ev"] == pytest.approx(BE_EV, abs=0.005)
    assert r["g2"]["g2_zero"] is not None and r["g2"]["g2_zero"] < 0.3
    assert math.isfinite(r["on"]["fraction"])

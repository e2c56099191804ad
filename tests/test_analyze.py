"""labctl analyze: any Photon-HDF5 file, exact g(2) counts, fits, the JSON contract."""

from __future__ import annotations

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest

from labctl.analysis.analyze import AnalyzeOptions, analyze_file

TAU_NS = 20.0
PERIOD_PS = 1_000_000


def write_foreign_file(path, seed: int = 0, seconds: float = 2.0) -> dict:
    """A Photon-HDF5 v0.5 file made with h5py from the spec (not labctl's writer).

    4 ps timestamp unit, uint16 nanotimes in 16 ps units, detectors 0 and 1,
    photons on random laser pulses with an exponential delay.
    """
    rng = np.random.default_rng(seed)
    n = int(60_000 * seconds)
    pulse = np.sort(rng.integers(0, int(seconds * 1e6), n))
    delay_ps = 2_000 + rng.exponential(TAU_NS * 1e3, n)
    delay_ps = np.minimum(delay_ps, PERIOD_PS - 16).astype(np.int64) // 16 * 16  # on the 16 ps TCSPC grid
    ts_ps = pulse * PERIOD_PS + delay_ps
    order = np.argsort(ts_ps, kind="stable")
    ts_ps, delay_ps = ts_ps[order], delay_ps[order]
    det = rng.integers(0, 2, n).astype(np.uint8)
    with h5py.File(path, "w") as f:
        f.attrs["format_name"] = np.bytes_(b"Photon-HDF5")
        f.attrs["format_version"] = np.bytes_(b"0.5")
        f["description"] = np.bytes_(b"made by hand with h5py for a reader test")
        f["acquisition_duration"] = seconds
        pd = f.create_group("photon_data")
        pd["timestamps"] = (ts_ps // 4).astype(np.int64)
        pd["timestamps_specs/timestamps_unit"] = 4e-12
        pd["detectors"] = det
        pd["nanotimes"] = (delay_ps // 16).astype(np.uint16)
        pd["nanotimes_specs/tcspc_unit"] = 16e-12
        pd["nanotimes_specs/tcspc_num_bins"] = PERIOD_PS // 16
        pd["nanotimes_specs/tcspc_range"] = PERIOD_PS * 1e-12
        pd["measurement_specs/measurement_type"] = np.bytes_(b"generic")
        pd["measurement_specs/laser_repetition_rate"] = 1e12 / PERIOD_PS
        f["setup/num_pixels"] = 2
        f["setup/num_spots"] = 1
        f["setup/lifetime"] = True
        f["identity/software"] = np.bytes_(b"a test")
    return {"ts_ps": ts_ps, "det": det, "delay_ps": delay_ps}


def brute_force_g2(ts_ps, det, a, b, bin_ps, range_ps) -> np.ndarray:
    ta, tb = ts_ps[det == a], ts_ps[det == b]
    edges = np.arange(-range_ps, range_ps + 1, bin_ps)
    lo = np.searchsorted(tb, ta - range_ps, "left")
    hi = np.searchsorted(tb, ta + range_ps, "left")
    lags = np.concatenate([tb[l:h] - t for t, l, h in zip(ta, lo, hi)])
    counts, _ = np.histogram(lags, edges)  # [e_k, e_k+1), last edge open: lags < range by construction
    return counts


def test_foreign_file_gives_exact_g2_counts_rates_and_lifetime(tmp_path):
    path = tmp_path / "foreign.h5"
    truth = write_foreign_file(path)
    result = analyze_file(path, AnalyzeOptions(g2_bin_ps=2000, g2_range_ps=3_000_000, lifetime_bin_ps=160))
    assert result["g2"]["detectors"] == [0, 1]
    expected = brute_force_g2(truth["ts_ps"], truth["det"], 0, 1, 2000, 3_000_000)
    np.testing.assert_array_equal(result["g2"]["counts"], expected)
    assert result["g2"]["lag_edges_ps"][0] == -3_000_000 and result["g2"]["lag_edges_ps"][-1] == 3_000_000
    # uncorrelated photons on random pulses: g2(0) = 1 within its error
    assert abs(result["g2"]["g2_zero"] - 1) < 4 * result["g2"]["g2_zero_err"]
    for det in (0, 1):
        assert result["rates_cps"][str(det)] == pytest.approx(np.count_nonzero(truth["det"] == det) / 2.0)
    fit = result["lifetime"]["fit"]
    assert fit["model"] == "mono" and fit["tau_ns"][0] == pytest.approx(TAU_NS, rel=0.02)
    assert sum(result["lifetime"]["counts"]) == truth["ts_ps"].size


def test_detectors_swapped_mirror_the_lag_axis(tmp_path):
    path = tmp_path / "foreign.h5"
    write_foreign_file(path, seed=3, seconds=0.5)
    ab = analyze_file(path, AnalyzeOptions(detectors=(0, 1), g2_range_ps=2_000_000))
    ba = analyze_file(path, AnalyzeOptions(detectors=(1, 0), g2_range_ps=2_000_000))
    counts_ab, counts_ba = np.asarray(ab["g2"]["counts"]), np.asarray(ba["g2"]["counts"])
    # left-closed bins: lag in [e_k, e_k+1) for A,B is -lag in (-e_k+1, -e_k] for B,A; equal away from exact edges
    assert counts_ab.sum() == counts_ba.sum()
    assert abs(int(counts_ab[: counts_ab.size // 2].sum()) - int(counts_ba[counts_ba.size // 2:].sum())) < 0.01 * counts_ab.sum()


def test_cli_writes_the_json_contract_and_plots(tmp_path):
    path = tmp_path / "foreign.h5"
    write_foreign_file(path, seconds=1.0)
    out = tmp_path / "result.json"
    plots = tmp_path / "plots"
    proc = subprocess.run([sys.executable, "-m", "labctl.cli", "analyze", str(path), "--detectors", "1", "0",
                           "--g2-bin-ps", "1000", "--g2-range-ps", "2500000", "--trace-bin-ms", "100",
                           "--fit", "mono", "--json", str(out), "--plots", str(plots)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "g2(0)" in proc.stdout and "lifetime    mono:" in proc.stdout
    data = json.loads(out.read_text())
    assert set(data["rates_cps"]) == {"0", "1"}
    assert data["g2"]["detectors"] == [1, 0]
    assert len(data["g2"]["lag_edges_ps"]) == len(data["g2"]["counts"]) + 1 == 5001
    for key in ("g2_zero", "g2_zero_err"):
        assert isinstance(data["g2"][key], float)
    assert len(data["lifetime"]["bin_edges_ps"]) == len(data["lifetime"]["counts"]) + 1
    assert set(data["lifetime"]["fit"]) >= {"model", "tau_ns", "tau_err_ns", "fractions"}
    assert data["trace"]["bin_ms"] == 100 and len(data["trace"]["counts"]) == 10
    flid = np.asarray(data["flid"]["counts"])
    assert flid.shape == (len(data["flid"]["intensity_edges"]) - 1, len(data["flid"]["lifetime_edges_ns"]) - 1)
    assert {p.name for p in plots.iterdir()} == {"g2.png", "trace.png", "lifetime.png", "flid.png"}


def test_bad_options_fail_clearly(tmp_path):
    path = tmp_path / "foreign.h5"
    write_foreign_file(path, seconds=0.2)
    proc = subprocess.run([sys.executable, "-m", "labctl.cli", "analyze", str(path), "--detectors", "0", "7"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--detectors = [0, 7]: must be detectors of" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "labctl.cli", "analyze", str(path), "--g2-range-ps", "1500", "--g2-bin-ps", "1000"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "range_ps" in proc.stderr and "1500" in proc.stderr


def test_live_views_during_a_run_equal_the_offline_analysis_of_its_file(make_station, tmp_path):
    from labctl.analysis import live_set
    from labctl.acquisition.engine import AcquisitionEngine

    station = make_station(scene={"emitter": {"kind": "single_qd"}, "collection_efficiency": 0.5})
    live = live_set()
    out = tmp_path / "live.h5"
    with AcquisitionEngine(station, out, sinks=live) as engine:
        summary = engine.run(1.0)
    assert summary.losses == []
    offline = analyze_file(out, AnalyzeOptions(detectors=station.channels.detectors))
    g2, lifetime = live[0].snapshot(), live[1].snapshot()
    assert g2.counts.sum() > 1000
    np.testing.assert_array_equal(offline["g2"]["counts"], g2.counts)
    np.testing.assert_array_equal(offline["lifetime"]["counts"], lifetime.summed)
    assert offline["g2"]["g2_zero"] == pytest.approx(g2.g2_zero)

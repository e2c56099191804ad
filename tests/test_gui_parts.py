"""Parts of the lab window that need no window: count rates, file names, message texts."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from labctl.analysis.count_rates import CountRateMeter


def test_count_rates_start_again_with_a_new_run() -> None:
    meter = CountRateMeter(window_s=1.0)
    assert meter.update({"elapsed_s": 0.0, "counts": {0: 0, 1: 0}}) == {}
    assert meter.update({"elapsed_s": 0.5, "counts": {0: 125_000, 1: 1_000}}) == {}  # under one window
    assert meter.update({"elapsed_s": 2.0, "counts": {0: 500_000, 1: 4_000}}) == {0: 250_000.0, 1: 2_000.0}
    # a restarted run: elapsed and counts start from zero again (no negative or frozen rates)
    assert meter.update({"elapsed_s": 0.1, "counts": {0: 12_500, 1: 100}}) == {}
    assert meter.update({"elapsed_s": 1.1, "counts": {0: 137_500, 1: 1_100}}) == {0: 125_000.0, 1: 1_000.0}
    assert meter.update({"state": "idle"}) == {0: 125_000.0, 1: 1_000.0}  # no status: the last rates
    with pytest.raises(ValueError, match="window_s = 0"):
        CountRateMeter(window_s=0)


def test_numbered_file_names(tmp_path: Path) -> None:
    pytest.importorskip("PyQt6.QtWidgets")
    from gui.record_panel import following_name, next_free_name

    assert next_free_name(tmp_path) == tmp_path / "qd_0001.h5"
    for name in ("qd_0001.h5", "qd_0007.h5", "qd_x.h5", "other_0009.h5"):
        (tmp_path / name).touch()
    assert next_free_name(tmp_path) == tmp_path / "qd_0008.h5"
    assert following_name(tmp_path / "qd_0001.h5") == tmp_path / "qd_0008.h5"
    assert following_name(tmp_path / "other_0009.h5") == tmp_path / "other_0010.h5"
    assert following_name(tmp_path / "run.h5") == tmp_path / "run_0001.h5"


def test_messages_name_the_instrument_once() -> None:
    pytest.importorskip("PyQt6.QtWidgets")
    from gui.messages import ZERO_WIDTH_SPACE, breakable, field_error, run_problems, setting_error
    from labctl.errors import ConfigError

    error = ConfigError("instruments.laser.settings.external_rate_hz", 1e9, "must be between 1 and 8e7 Hz")
    assert field_error(error, "laser") == "1000000000.0 refused: must be between 1 and 8e7 Hz"
    assert setting_error(error, "laser", "external rate") == \
        "Excitation: external rate = 1000000000.0 refused: must be between 1 and 8e7 Hz"
    assert breakable("a short_text") == "a short_text"
    assert breakable("x instruments.laser.settings") == f"x instruments.{ZERO_WIDTH_SPACE}laser.{ZERO_WIDTH_SPACE}settings"
    fault = "QuTAGError: TDC_getLastTimestamps: NotConnected (2)"
    summary = SimpleNamespace(clean=False, end_reason=f"error: {fault}", errors=[fault], losses=[])
    assert run_problems(summary) == f"Time tagger failed: {fault}"
    clean = SimpleNamespace(clean=True, end_reason="stopped", errors=[], losses=[])
    assert run_problems(clean) == ""


def test_on_fraction_and_default_threshold() -> None:
    import numpy as np

    from labctl.analysis.views import default_on_threshold, on_fraction

    assert on_fraction(np.array([0, 5, 10, 41, 80]), 40.0) == 0.4
    assert on_fraction(np.array([], np.int64), 40.0) is None
    rng = np.random.default_rng(3)
    two_levels = np.concatenate([rng.poisson(2, 600), rng.poisson(70, 400)])
    threshold, source = default_on_threshold(two_levels, 10.0)
    assert 30 <= threshold <= 42 and source.startswith("data: midway")
    one_level = rng.poisson(5, 1000)
    assert default_on_threshold(one_level, 10.0) == (40.0, "the paper's 400 per 100 ms")
    assert default_on_threshold(two_levels[:100], 10.0)[0] == 40.0  # too few bins


def test_normalised_peak_areas() -> None:
    import numpy as np

    from labctl.analysis.views import normalised_peak_areas

    snap = SimpleNamespace(period_ps=1_000_000, center_peak_area=10, side_peak_lags_ps=np.array([-1_000_000, 1_000_000]),
                           side_peak_areas=np.array([90, 110]))
    lags, ratios = normalised_peak_areas(snap)
    assert lags.tolist() == [-1000.0, 0.0, 1000.0] and ratios.tolist() == [0.9, 0.1, 1.1]
    cw = SimpleNamespace(period_ps=None, center_peak_area=None, side_peak_lags_ps=np.empty(0), side_peak_areas=np.empty(0))
    assert normalised_peak_areas(cw)[0].size == 0


def test_decay_residuals_and_live_fit_chi2() -> None:
    import numpy as np

    from labctl.analysis.live_fit import fit_snapshot
    from labctl.analysis.views import decay_residuals

    edges = np.arange(0, 1001, 100, dtype=np.int64)
    counts = np.arange(10, dtype=np.int64) + 1
    # fitted bins merged in pairs over 200..1000 ps
    res = decay_residuals(counts, edges, np.array([200.0, 400.0, 600.0, 800.0, 1000.0]), np.array([4.0, 9.0, 16.0, 16.0]))
    observed = np.array([3 + 4, 5 + 6, 7 + 8, 9 + 10], np.float64)
    assert np.allclose(res, (observed - [4, 9, 16, 16]) / np.sqrt([4, 9, 16, 16]))
    rng = np.random.default_rng(5)
    period_ps, width_ps = 1_000_000, 100
    decay_edges = np.arange(0, period_ps + 1, width_ps, dtype=np.int64)
    centres = 0.5 * (decay_edges[1:] + decay_edges[:-1])
    expected = 2.0 + 400.0 * np.exp(-np.maximum(centres - 20_000, 0) / 40_000.0) * (centres >= 20_000)
    fit = fit_snapshot("mono", rng.poisson(expected), decay_edges, period_ps)
    assert fit.tau_ns and fit.reduced_chi2 == pytest.approx(1.0, abs=0.2)
    assert fit.residuals.size == fit.curve_x_ns.size > 100
    assert float(np.mean(fit.residuals ** 2)) == pytest.approx(fit.reduced_chi2, rel=0.1)
    assert fit.fit_range_ns[0] <= fit.curve_x_ns[0] and fit.curve_x_ns[-1] <= fit.fit_range_ns[1]


def test_field_labels_for_people() -> None:
    pytest.importorskip("PyQt6.QtWidgets")
    from gui.panels import field_label

    def info(path: str, label: str, unit: str) -> SimpleNamespace:
        return SimpleNamespace(path=path, label=label, unit=unit)

    assert field_label(info("ch1.frequency_hz", "frequency_hz", "Hz")) == "frequency (Hz)"
    assert field_label(info("em_gain", "EM gain", "")) == "EM gain"
    assert field_label(info("temperature_setpoint_c", "temperature_setpoint_c", "°C")) == "temperature setpoint (°C)"
    assert field_label(info("read_mode", "read_mode", "")) == "read mode"


def test_poll_sends_an_unchanged_fit_or_spectrum_once() -> None:
    import time

    from labctl.processes.station_process import StationProcess
    from tests.conftest import sim_config

    sinks = [("labctl.analysis.LifetimeAccumulator", {}),
             ("labctl.analysis.spectrum_live.LiveSpectrum", {"history": 10})]
    with StationProcess(sim_config(time_scale=4.0)) as process:
        process.start_run(None, sinks=sinks)
        fit_number, polls = None, []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (any(p["fit"] is not None for p in polls)
                                                   and sum(p["fit_unchanged"] for p in polls) >= 3
                                                   and sum("spectrum" in p["unchanged"] for p in polls) >= 3):
            poll = process.poll(["lifetime", "spectrum"], fit_after=fit_number)
            fit_number = poll["fit_number"]
            polls.append(poll)
            time.sleep(0.02)
        process.stop_run()
        plain = process.poll(["lifetime", "spectrum"])  # without fit_after: everything, as before
    sent = [p["fit"] for p in polls if p["fit"] is not None]
    assert sent and len(sent) < len(polls) // 2  # a fit every 2 s, polls every 20 ms
    for poll in polls:
        assert not (poll["fit_unchanged"] and poll["fit"] is not None)
        assert ("spectrum" in poll["unchanged"]) == (poll["snapshots"]["spectrum"] is None)
    assert sum(p["fit_unchanged"] for p in polls) >= 3 and sum("spectrum" in p["unchanged"] for p in polls) >= 3
    new_frames = [p["snapshots"]["spectrum"].latest_index for p in polls if p["snapshots"]["spectrum"] is not None]
    assert new_frames == sorted(set(new_frames))  # a spectrum is sent once per new frame
    assert plain["unchanged"] == [] and plain["fit_unchanged"] is False

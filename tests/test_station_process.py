"""The station in its own process: panels' describe/configure, runs, live restarts, faults."""

from __future__ import annotations

import time

import numpy as np
import pytest

from labctl.errors import AcquisitionError, ConfigError
from labctl.processes.station_process import StationProcess
from tests.conftest import sim_config

LIVE = [("labctl.analysis.IntensityTrace", {}), ("labctl.analysis.spectrum_live.LiveSpectrum", {"history": 50})]


def value_of(infos, path):
    return next(info.value for info in infos if info.path == path)


def poll_until(proc: StationProcess, condition, timeout_s: float = 20.0, names=("trace", "spectrum")) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = proc.poll(names)
        if condition(result):
            return result
        time.sleep(0.05)
    raise AssertionError(f"condition not reached in {timeout_s} s; last poll: {result['status']}")


@pytest.fixture
def proc():
    station = StationProcess(sim_config(seed=5))
    station.open()
    yield station
    station.close()


def test_describe_lists_parameters_with_units_limits_and_values(proc):
    described = proc.describe()
    assert set(described) == {"tagger", "laser", "spad_a", "spad_b", "camera", "spectrograph", "function_generator"}
    gain = next(i for i in described["camera"] if i.path == "em_gain")
    assert (gain.kind, gain.settable, gain.value) == ("number", True, 1)
    assert gain.allowed == "an integer between 1 and 300 (up to 1000 with em_advanced = True)"
    divider = next(i for i in described["tagger"] if i.path == "enabled_channels")
    assert (divider.kind, divider.minimum, divider.maximum) == ("integer", 0.0, 31.0)
    threshold = next(i for i in described["tagger"] if i.path == "ch1.threshold_v")
    assert (threshold.kind, threshold.unit, threshold.minimum, threshold.maximum) == ("number", "V", -2.0, 3.0)
    source = next(i for i in described["laser"] if i.path == "trigger_source")
    assert source.kind == "choice" and source.choices == ("external", "internal")
    temperature = next(i for i in described["camera"] if i.path == "temperature_c")
    assert not temperature.settable and temperature.unit == "degC"


def test_configure_applies_a_valid_value_and_refuses_an_invalid_one_unchanged(proc):
    after = proc.configure("camera", {"em_gain": 150})
    assert value_of(after, "em_gain") == 150
    with pytest.raises(ConfigError) as info:
        proc.configure("camera", {"em_gain": 5000})
    message = str(info.value)
    assert "instruments.camera.settings.em_gain" in message and "5000" in message and "between 1 and 300" in message
    assert value_of(proc.describe()["camera"], "em_gain") == 150
    # one bad key among good ones: nothing is applied
    with pytest.raises(ConfigError, match=r"instruments\.tagger\.settings\.ch2\.threshold_v"):
        proc.configure("tagger", {"ch1.threshold_v": 0.25, "ch2.threshold_v": 9.0})
    assert value_of(proc.describe()["tagger"], "ch1.threshold_v") == 1.0


def test_live_run_restarts_after_a_setting_change_and_a_recording_refuses_it(proc, tmp_path):
    proc.start_run(None, sinks=LIVE)
    poll_until(proc, lambda r: r["status"].get("state") == "recording")
    proc.configure("spectrograph", {"center_wavelength_nm": 620.0})
    result = poll_until(proc, lambda r: r["restarts"] == 1 and r["status"].get("state") == "recording")
    assert result["summary"] is None or result["summary"].end_reason == "settings changed"
    spectrum = poll_until(proc, lambda r: r["snapshots"]["spectrum"].latest is not None)["snapshots"]["spectrum"]
    # the restarted run uses the new calibration: the axis is centred near 620 nm
    assert abs(float(np.median(spectrum.wavelength_nm)) - 620.0) < 5.0
    proc.stop_run()
    poll_until(proc, lambda r: r["status"].get("state") == "idle")

    proc.start_run(tmp_path / "rec.h5", sinks=LIVE)
    with pytest.raises(AcquisitionError, match=r"instruments\.camera\.settings\.em_gain: cannot be changed while recording"):
        proc.configure("camera", {"em_gain": 20})
    proc.stop_run()
    ended = poll_until(proc, lambda r: r["summary"] is not None)["summary"]
    assert ended.clean and ended.photons_written > 0
    assert value_of(proc.describe()["camera"], "em_gain") == 1


def test_the_child_exits_by_itself_after_a_recording_with_the_live_fit(tmp_path):
    sinks = [("labctl.analysis.LifetimeAccumulator", {}), *LIVE]
    with StationProcess(sim_config(seed=4)) as proc:
        proc.start_run(tmp_path / "fit.h5", sinks=sinks)
        # the poll that sees 2000 photons submits the first fit: stop while it is still running
        poll_until(proc, lambda r: r["snapshots"]["lifetime"] is not None
                   and r["snapshots"]["lifetime"].summed.sum() >= 2000, names=("lifetime", "trace"))
        proc.stop_run()
        poll_until(proc, lambda r: r["summary"] is not None, names=("lifetime",))
        assert proc.close(timeout_s=20.0) is True  # a process-pool worker once kept it alive for a minute


def test_excitation_switch_and_monitors(proc):
    assert proc.poll()["monitors"]["excitation"] == "off"
    assert proc.set_excitation(True)["excitation"] == "on"
    monitors = proc.set_excitation(False)
    assert monitors["excitation"] == "off"
    assert isinstance(monitors["camera_temperature_c"], (int, float)) and monitors["camera_temperature_state"]


def test_a_tagger_fault_ends_the_run_with_its_error_and_the_excitation_off():
    config = sim_config(seed=2, library_options={"faults": [{"after_s": 0.5, "function": "TDC_getLastTimestamps", "code": 2}]})
    with StationProcess(config) as proc:
        proc.start_run(None, sinks=LIVE)
        poll_until(proc, lambda r: r["monitors"]["excitation"] == "on")
        result = poll_until(proc, lambda r: r["summary"] is not None)
        summary = result["summary"]
        assert not summary.clean and summary.end_reason.startswith("error")
        assert "TDC_getLastTimestamps" in summary.end_reason and "(2)" in summary.end_reason
        assert result["monitors"]["excitation"] == "off"


@pytest.mark.parametrize("make_error", [
    lambda: __import__("drivers.qutag.tdcbase", fromlist=["x"]).QuTAGError("TDC_getLastTimestamps", 2, "No connection"),
    lambda: __import__("drivers.andor.atmcd", fromlist=["x"]).AndorError("SetEMCCDGain", 20066),
    lambda: __import__("drivers.andor_shamrock.shamrock", fromlist=["x"]).ShamrockError("SetGrating", 20267, "P2INVALID", "bad"),
    lambda: ConfigError("instruments.camera.settings.em_gain", 5000, "must be an integer between 1 and 300", "runtime"),
])
def test_vendor_and_config_errors_cross_the_process_boundary_with_type_attributes_and_message(make_error):
    import pickle

    error = make_error()
    error.args = (*error.args, "setting cam_em_gain to 5000")  # QCoDeS appends context like this
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error) and str(copy) == str(error) and copy.args == error.args
    assert {k: v for k, v in vars(copy).items()} == {k: v for k, v in vars(error).items()}

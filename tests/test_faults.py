"""Scheduled faults in every simulated library, and the engine's watchdog for hung instrument calls.

Issue 9: "a fault on TDC_setTimestampBufferSize never fires"; a call fails once, always,
or hangs (``sim_backends.faults``); the engine notices a hung call within ``watchdog_s``,
stops cleanly, records why and makes the excitation and the camera safe
(``labctl.station.watchdog``); a tagger fault shows one line, its traceback goes to the run log
at DEBUG (finding 7).
"""

from __future__ import annotations

import copy
import logging
import os
import subprocess
import sys
import threading
import time
from ctypes import byref, c_int32
from pathlib import Path

import pytest
import yaml
from pyvisa import ResourceManager
from pyvisa.errors import VisaIOError

from drivers.qutag import QuTAG, QuTAGError
from labctl.blocks import ChannelMap
from labctl.acquisition.engine import AcquisitionEngine
from labctl.errors import ConfigError
from labctl.station.station import Station, StationConfig
from labctl.storage import PhotonHDF5Reader
from sim_backends.andor_sim import SimAndorSDK
from sim_backends.fgen_sim import SIM_ADDRESS, SimFunctionGeneratorLibrary
from sim_backends.qutag_sim import SimTDCBase
from sim_backends.scene import Scene
from sim_backends.shamrock_sim import SimShamrock
from tests.conftest import sim_config
from tests.test_memory import Clock, SyncScene

WATCHDOG_S = 2.0
PS_PER_S = 10**12
WIRING = ChannelMap(laser_sync=0, spad_a=1, spad_b=2, frame_marker=3)


@pytest.fixture
def qutag():
    built: list[QuTAG] = []

    def factory(*faults: dict) -> tuple[QuTAG, SimTDCBase, Clock]:
        clock = Clock()
        sim = SimTDCBase(SyncScene(), clock=clock, faults=list(faults))
        tagger = QuTAG(f"qutag_fault_{len(built)}", library=sim)
        built.append(tagger)
        return tagger, sim, clock

    yield factory
    for tagger in built:
        tagger.close()


# --- the fault switch of each simulated library -------------------------------------------
def test_a_fault_on_TDC_setTimestampBufferSize_fires_at_the_stream_start(qutag):
    tagger, sim, _ = qutag({"after_s": 0, "function": "TDC_setTimestampBufferSize", "code": 2})
    for _ in range(2):
        with pytest.raises(QuTAGError) as info:  # was never raised: faults waited for a started stream
            tagger.start_stream()
        assert (info.value.function, info.value.code) == ("TDC_setTimestampBufferSize", 2)
    assert sim.faults_fired == [("TDC_setTimestampBufferSize", "always")] * 2


def test_a_once_fault_on_the_stream_start_fails_only_the_first_start(qutag):
    tagger, sim, _ = qutag({"after_s": 0, "function": "TDC_setTimestampBufferSize", "code": 2, "mode": "once"})
    with pytest.raises(QuTAGError):
        tagger.start_stream()
    tagger.start_stream()
    assert sim.faults_fired == [("TDC_setTimestampBufferSize", "once")]


def test_a_fault_on_a_set_up_call_with_after_s_0_fires_at_construction():
    with pytest.raises(QuTAGError, match="TDC_init"):
        QuTAG("qutag_fault_init", library=SimTDCBase(SyncScene(), faults=[{"after_s": 0, "function": "TDC_init", "code": 2}]))


def test_once_fails_one_call_always_every_call_from_after_s_on(qutag):
    tagger, sim, clock = qutag({"after_s": 0.001, "function": "TDC_getLastTimestamps", "code": 2, "mode": "once"},
                               {"after_s": 0.003, "function": "TDC_getDataLost", "code": 3, "mode": "always"})
    tagger.start_stream()
    clock.now_s += 0.0005
    assert len(tagger.read_tags()) == 500 and tagger.data_lost() is False  # before after_s
    clock.now_s += 0.001
    with pytest.raises(QuTAGError):
        tagger.read_tags()
    assert len(tagger.read_tags()) == 1000  # once: the tags are still there
    clock.now_s += 0.002
    for _ in range(3):
        with pytest.raises(QuTAGError, match="TDC_getDataLost"):
            tagger.data_lost()
    assert sim.faults_fired == [("TDC_getLastTimestamps", "once")] + [("TDC_getDataLost", "always")] * 3


def test_hang_blocks_the_call_and_every_other_call_of_the_library_for_hang_s(qutag):
    tagger, sim, clock = qutag({"after_s": 0.001, "function": "TDC_getLastTimestamps", "mode": "hang", "hang_s": 0.4})
    tagger.start_stream()
    clock.now_s += 0.002
    result: dict = {}

    def read() -> None:
        t0 = time.monotonic()
        result["n"] = len(tagger.read_tags())
        result["read_s"] = time.monotonic() - t0

    t0 = time.monotonic()
    reader = threading.Thread(target=read)
    reader.start()
    while not sim.faults_fired and time.monotonic() - t0 < 5:
        time.sleep(0.005)
    assert sim.TDC_getDataLost(byref(c_int32())) == 0  # another function: blocked until the hang ends
    assert time.monotonic() - t0 >= 0.38
    reader.join(5)
    assert 0.38 <= result["read_s"] < 2.0
    assert result["n"] == 2000  # then it runs normally
    assert sim.faults_fired == [("TDC_getLastTimestamps", "hang")]


def test_the_camera_counts_after_s_in_scene_time_from_StartAcquisition():
    scene = Scene({"emitter": {"blinking": {"enabled": False}}}, wiring=WIRING, seed=1)
    sim = SimAndorSDK(scene, faults=[{"after_s": 0.2, "function": "GetStatus", "code": 20013, "mode": "once"}])
    status = c_int32()
    sim.Initialize(b"")
    scene.generate(PS_PER_S // 2)  # 0.5 s of scene time before the acquisition: not counted
    assert sim.GetStatus(byref(status)) == 20002
    assert sim.StartAcquisition() == 20002
    scene.generate(PS_PER_S // 2 + PS_PER_S // 10)
    assert sim.GetStatus(byref(status)) == 20002
    scene.generate(PS_PER_S // 2 + PS_PER_S // 4)
    assert sim.GetStatus(byref(status)) == 20013
    assert sim.GetStatus(byref(status)) == 20002


def test_the_spectrograph_takes_a_fault_by_its_exported_or_logical_name():
    sim = SimShamrock(faults=[{"after_s": 0, "function": "ShamrockSetWavelength", "code": 20201, "mode": "once"}])
    assert sim.ShamrockInitialize(b"") == 20202
    assert sim.ShamrockSetWavelength(0, 550.0) == 20201
    assert sim.ShamrockSetWavelength(0, 550.0) == 20202
    assert sim.faults_fired == [("SetWavelength", "once")]


def test_the_generator_raises_visa_errors_from_after_s_after_the_laser_output_went_on():
    lib = SimFunctionGeneratorLibrary(faults=[{"after_s": 0.2, "function": "write", "code": "error_timeout", "mode": "once"}])
    rm = ResourceManager(lib)
    try:
        inst = rm.open_resource(SIM_ADDRESS, write_termination="\n", read_termination="\n")
        time.sleep(0.25)
        inst.write("*CLS")  # ch1 still off: the fault clock has not started
        inst.write("OUTPut1 ON")
        time.sleep(0.25)
        with pytest.raises(VisaIOError) as info:
            inst.write("*CLS")
        assert info.value.error_code == -1073807339  # VI_ERROR_TMO
        inst.write("*CLS")
        assert lib.faults_fired == [("write", "once")]
    finally:
        rm.close()


@pytest.mark.parametrize(
    ("fault", "key", "message"),
    [({"after_s": 0, "function": "TDC_getLastTimestamps", "code": 2, "mode": "sometimes"}, "faults[0].mode",
      "must be one of once, always, hang"),
     ({"after_s": 0, "function": "TDC_getLastTimestamps", "mode": "hang", "code": 2}, "faults[0].code",
      "is not used with mode hang"),
     ({"after_s": 0, "function": "TDC_getLastTimestamps", "code": 2, "hang_s": 1}, "faults[0].hang_s",
      "is used only with mode hang"),
     ({"after_s": 0, "function": "TDC_getLastTimestamps", "mode": "hang", "hang_s": 0}, "faults[0].hang_s",
      "must be a number of seconds > 0"),
     ({"after_s": 0, "function": "TDC_getVersion", "code": 2}, "faults[0].mode", "it can only hang"),
     ({"after_s": 0, "function": "TDC_getLastTimestamps", "mode": "once"}, "faults[0].code", "is required with mode once"),
     ({"after_s": 0, "function": "TDC_getLastTimestamps", "code": 2, "every": 3}, "faults[0].every", "unknown key")],
)
def test_bad_faults_are_refused_naming_the_key(fault, key, message):
    with pytest.raises(ConfigError) as info:
        SimTDCBase(SyncScene(), faults=[fault])
    assert info.value.key_path == key and message in str(info.value)


@pytest.mark.parametrize(
    ("role", "fault", "message"),
    [("camera", {"after_s": 0, "function": "GetImages16", "code": 20002}, "other than 20002 (success)"),
     ("spectrograph", {"after_s": 0, "function": "SetGrating", "code": 20202}, "other than 20202 (success)"),
     ("function_generator", {"after_s": 0, "function": "query", "code": "error_timeout"}, "no such function"),
     ("function_generator", {"after_s": 0, "function": "write", "code": 5}, "a VISA error status")],
)
def test_a_station_file_with_a_bad_fault_is_refused_with_the_key_path(role, fault, message):
    data = copy.deepcopy(StationConfig.load().data)
    data["instruments"][role]["library_options"] = {"faults": [fault]}
    with pytest.raises(ConfigError) as info:
        Station(StationConfig.from_dict(data, source="s.yaml"))
    assert info.value.key_path == f"instruments.{role}.library_options.faults[0].code" or "function" in info.value.key_path
    assert str(info.value).startswith(f"s.yaml: instruments.{role}.library_options.faults[0].") and message in str(info.value)


# --- the engine's watchdog ----------------------------------------------------------------
def station_with_fault(role: str, fault: dict, time_scale: float = 4.0) -> Station:
    data = copy.deepcopy(sim_config(time_scale=time_scale, engine={"watchdog_s": WATCHDOG_S}).data)
    options = data["instruments"][role].setdefault("library_options", {}) or {}
    data["instruments"][role]["library_options"] = {**options, "faults": [fault]}
    return Station(StationConfig.from_dict(data, source="<fault station>"))


def run_until_it_ends(station: Station, path: Path, duration_s: float = 3.0):
    t0 = time.monotonic()
    with AcquisitionEngine(station, path) as engine:
        summary = engine.run(duration_s)
    elapsed = time.monotonic() - t0
    with PhotonHDF5Reader(path) as reader:
        return summary, elapsed, reader.run_end(), reader.run_log()


def test_a_hung_tagger_read_ends_the_run_within_the_watchdog_time(tmp_path):
    station = station_with_fault("tagger", {"after_s": 1.0, "function": "TDC_getLastTimestamps", "mode": "hang"})
    try:
        summary, elapsed, end, log = run_until_it_ends(station, tmp_path / "run.h5")
        reason = f"error: tagger call read_tags hung for > {WATCHDOG_S:g} s"
        assert summary.end_reason == reason and not summary.clean
        assert end["end_reason"] == reason and not end["clean"]  # the file is closed with its end record
        assert elapsed < 0.25 + WATCHDOG_S + 3.0  # hang at 0.25 s wall (time scale 4), noticed after watchdog_s
        assert end["photons_written"] == summary.photons_written > 0
        assert station.scene.excitation_enabled() is False
        messages = [(level, message) for _, level, message in log]
        assert ("ERROR", f"acquisition failed: tagger call read_tags hung for > {WATCHDOG_S:g} s") in messages
        assert ("INFO", "excitation in safe state") in messages
        assert ("DEBUG", "the hung call is blocked at:") in messages
        assert set(station.hung) == {"tagger"}
    finally:
        t0 = time.monotonic()
        station.close()  # does not wait for the hung tagger
        assert time.monotonic() - t0 < WATCHDOG_S


def test_a_hung_camera_read_ends_the_run_and_the_camera_stop_is_attempted(tmp_path):
    station = station_with_fault("camera", {"after_s": 0.5, "function": "GetNumberNewImages", "mode": "hang"})
    try:
        summary, elapsed, end, log = run_until_it_ends(station, tmp_path / "run.h5")
        assert end["end_reason"] == f"error: camera call read_frames hung for > {WATCHDOG_S:g} s"
        assert f"camera stop_frames: camera call stop_frames hung for > {WATCHDOG_S:g} s" in summary.errors
        assert elapsed < 0.5 + 3 * WATCHDOG_S + 3.0
        assert station.scene.excitation_enabled() is False
        assert station.instruments["function_generator"].ch2.output() is False  # the frame clock is off
    finally:
        station.close()


def test_a_hung_generator_is_reported_and_the_excitation_left_on_is_said_critically(tmp_path):
    station = station_with_fault("function_generator", {"after_s": 0.5, "function": "write", "mode": "hang"},
                                 time_scale=1.0)
    try:
        summary, elapsed, end, log = run_until_it_ends(station, tmp_path / "run.h5", duration_s=1.5)
        assert end["end_reason"] == f"error: function_generator call frame_clock.set_enabled hung for > {WATCHDOG_S:g} s"
        assert ("CRITICAL", "the excitation could NOT be put in its safe state: switch the laser off by hand") in [
            (level, message) for _, level, message in log]
        assert station.scene.excitation_enabled() is True  # the truth: the hung generator still triggers the laser
        assert {"function_generator", "laser"} <= set(station.hung)
        assert end["photons_written"] == summary.photons_written > 0
    finally:
        t0 = time.monotonic()
        station.close()
        assert time.monotonic() - t0 < WATCHDOG_S + 2.0  # one more safe-state attempt, then nothing waits


def test_a_tagger_fault_logs_one_line_and_keeps_the_traceback_in_the_run_log(tmp_path, caplog):
    station = station_with_fault("tagger", {"after_s": 0.5, "function": "TDC_getLastTimestamps", "code": 2})
    try:
        with caplog.at_level(logging.WARNING):
            summary, _, end, log = run_until_it_ends(station, tmp_path / "run.h5")
    finally:
        station.close()
    assert end["end_reason"].startswith("error: QuTAGError: TDC_getLastTimestamps")
    shown = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not any(r.exc_info for r in shown)  # was: log.exception, a traceback on stderr
    assert [r.getMessage() for r in shown if r.levelno >= logging.ERROR] == [f"acquisition failed: {summary.errors[0]}"]
    debug = [message for _, level, message in log if level == "DEBUG"]
    assert debug[0] == "Traceback (most recent call last):" and any("QuTAGError" in line for line in debug)


def test_the_cli_exits_1_with_one_line_when_the_tagger_hangs_for_ever(tmp_path):
    data = copy.deepcopy(sim_config(time_scale=4.0, engine={"watchdog_s": WATCHDOG_S}).data)
    data["instruments"]["tagger"]["library_options"]["faults"] = [
        {"after_s": 1.0, "function": "TDC_getLastTimestamps", "mode": "hang"}]
    config = tmp_path / "hang.yaml"
    config.write_text(yaml.safe_dump(data))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    result = subprocess.run([sys.executable, "-m", "labctl.cli", "acquire", "--duration", "3", "--config", str(config),
                             "--out", str(tmp_path / "run.h5"), "--no-progress"],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith(("ERROR", "CRITICAL"))]
    assert errors == [f"ERROR labctl.acquisition.engine: acquisition failed: tagger call read_tags hung for > {WATCHDOG_S:g} s"]
    with PhotonHDF5Reader(tmp_path / "run.h5") as reader:
        assert reader.run_end()["end_reason"] == f"error: tagger call read_tags hung for > {WATCHDOG_S:g} s"

"""The safe state with the laser on its own clock: the SPAD gate and the shutter cut something real.

The PDL 800-D on its internal clock cannot be switched by software.  A trip of the SPAD rate
protection (and every other end of a run) must then gate the SPADs off and/or close the shutter,
record which in the run log and ``run_end``, and the simulated microscope must go dark; with
neither, the run says plainly that the laser still emits.
"""

from __future__ import annotations

import copy
import subprocess
import sys
import time
from importlib import resources

import numpy as np
import yaml

from labctl.blocks import ChannelMap
from labctl.acquisition.engine import AcquisitionEngine
from labctl.station.safe_state import NOTHING_CUTS_THE_LIGHT
from labctl.station.station import Station, StationConfig
from labctl.storage import PhotonHDF5Reader
from sim_backends.scene import Scene

DARK_CPS = 500.0  # scene.spads.{a,b}.dark_cps here (a high-dark-count pair: 1 s of them tells dark from light)
GATE_ACTION = "spad_gate: function_generator ch1 off (SPADs gated off)"
SHUTTER_ACTION = "shutter: closed"
INTERNAL_ACTION = "laser: on its internal clock, cannot be switched by software"


def internal_clock_data(gate: bool, shutter: bool) -> dict:
    """labctl/stations/internal_clock.yaml without camera (faster), with or without gate and shutter."""
    text = resources.files("labctl.stations").joinpath("internal_clock.yaml").read_text()
    data = yaml.safe_load(text)
    instruments = data["instruments"]
    for role in ("camera", "spectrograph"):
        del instruments[role]
    if not gate:
        del data["safety"]
        instruments["function_generator"]["library_options"] = {"cables": {1: "none", 2: "frame_clock"}}
    if not shutter:
        del instruments["shutter"]
    instruments["tagger"]["library_options"] = {"time_scale": 4.0}
    data["scene"]["spads"] = {"a": {"dark_cps": DARK_CPS}, "b": {"dark_cps": DARK_CPS}}
    # A steady source excited by the laser (a QD blinks): 2e4 photons/s x 0.5 x 0.35 = 3.5 kcps per SPAD + dark.
    data["scene"]["emitter"] = {"kind": "poissonian", "poissonian": {"rate_cps": 2e4}}
    data["engine"].update(poll_interval_ms=20, rate_protection_hold_s=0.1)
    return data


def tripping_station(gate: bool, shutter: bool) -> Station:
    """A station whose SPADs (~4 kcps each) trip a 1 kcps protection limit."""
    data = internal_clock_data(gate, shutter)
    for role in ("spad_a", "spad_b"):
        data["instruments"][role]["settings"]["max_count_rate_cps"] = 1e3
    return Station(StationConfig.from_dict(data, source="<internal clock test>"))


SYNC_PERIOD_S = 8 / 5e6  # internal_clock.yaml: 5 MHz, quTAG sync divider 8


def counts_after(station: Station, tagger_s: float) -> tuple[np.ndarray, float]:
    """Tags per channel over ``tagger_s`` s of tagger time, streaming again after the run (first 50 ms left out:
    the scene applies a change from the next 10 ms segment it generates), and the seconds they cover
    as the sync tags count them (a tagger buffer overflow on a loaded machine drops a stretch of every channel)."""
    tagger = station.tagger
    tagger.start_stream()
    blocks, first = [], None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        block = tagger.read_tags()
        if len(block):
            first = int(block.timestamps[0]) if first is None else first
            blocks.append(block)
            if block.timestamps[-1] - first > (tagger_s + 0.05) * 1e12:
                break
        time.sleep(0.02)
    tagger.stop_stream()
    ts = np.concatenate([b.timestamps for b in blocks])
    ch = np.concatenate([b.channels for b in blocks])
    keep = (ts >= first + 50_000_000_000) & (ts < first + int((tagger_s + 0.05) * 1e12))
    counts = np.bincount(ch[keep], minlength=4)
    assert counts[0] * SYNC_PERIOD_S > 0.5 * tagger_s  # the laser still pulses: its syncs go on
    return counts, float(counts[0] * SYNC_PERIOD_S)


def run_until_tripped(station: Station, out) -> dict:
    with AcquisitionEngine(station, out) as engine:
        summary = engine.run(5.0)
    assert summary.end_reason.startswith("protection: channel") and not summary.clean
    assert summary.duration_s < 2.0
    with PhotonHDF5Reader(out) as reader:
        return {"summary": summary, "run_end": reader.run_end(), "log": [(lv, m) for _, lv, m in reader.run_log()]}


def test_rate_protection_trip_on_the_internal_clock_gates_the_spads_off(tmp_path):
    with tripping_station(gate=True, shutter=False) as station:
        result = run_until_tripped(station, tmp_path / "gate.h5")
        assert station.instruments["function_generator"].ch1.output() is False  # the gate output
        counts, seconds = counts_after(station, 1.0)
    end = result["run_end"]
    assert end["safe_state_actions"] == [INTERNAL_ACTION, GATE_ACTION] and end["safe_state_warnings"] == []
    assert ("INFO", f"safe state: {GATE_ACTION}") in result["log"]
    assert any(lv == "ERROR" and m.startswith("protection: channel") and m.endswith("; light cut") for lv, m in result["log"])
    assert result["summary"].counts[1] / result["summary"].duration_s > 3e3  # before: light + dark, ~4 kcps per SPAD
    # Gated off, an MPD PDM is held below breakdown: no photon and no dark count either, so the
    # SPAD counts drop to at most the dark rate (here exactly none); the laser's syncs go on.
    assert counts[1] == counts[2] == 0


def test_rate_protection_trip_on_the_internal_clock_closes_the_shutter(tmp_path):
    with tripping_station(gate=False, shutter=True) as station:
        result = run_until_tripped(station, tmp_path / "shutter.h5")
        assert station.instruments["shutter"].is_open() is False
        counts, seconds = counts_after(station, 1.0)
    end = result["run_end"]
    assert end["safe_state_actions"] == [INTERNAL_ACTION, SHUTTER_ACTION] and end["safe_state_warnings"] == []
    assert ("INFO", f"safe state: {SHUTTER_ACTION}") in result["log"]
    # No light on the sample (the laser still pulses behind the shutter): each SPAD counts its dark
    # counts only, 500 /s: ~500 in the ~1 s read, within 5 sigma (+-112) of Poisson noise (afterpulsing adds 0.5 %).
    for channel in (1, 2):
        assert abs(counts[channel] - DARK_CPS * seconds) <= 5 * np.sqrt(DARK_CPS * seconds), (counts, seconds)


def test_with_neither_gate_nor_shutter_the_run_says_the_laser_still_emits(tmp_path):
    with tripping_station(gate=False, shutter=False) as station:
        result = run_until_tripped(station, tmp_path / "neither.h5")
        counts, seconds = counts_after(station, 1.0)
    summary, end = result["summary"], result["run_end"]
    assert summary.safe_state_warnings == end["safe_state_warnings"] == [NOTHING_CUTS_THE_LIGHT]
    assert end["safe_state_actions"] == [INTERNAL_ACTION]
    assert ("WARNING", f"safe state: {NOTHING_CUTS_THE_LIGHT}") in result["log"]
    assert any(lv == "ERROR" and m.endswith("; NOTHING could cut the light") for lv, m in result["log"])
    assert counts[1] / seconds > 3e3  # and so it is: the SPADs still count light (dark alone is 500 /s)


def test_acquire_warns_on_stderr_when_nothing_cuts_the_light(tmp_path):
    station_file = tmp_path / "neither.yaml"
    data = internal_clock_data(gate=False, shutter=False)
    station_file.write_text(yaml.safe_dump(data))
    proc = subprocess.run([sys.executable, "-m", "labctl.cli", "acquire", "--config", str(station_file), "--duration", "0.3",
                           "--out", str(tmp_path / "run.h5"), "--no-progress"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"labctl acquire: WARNING: {NOTHING_CUTS_THE_LIGHT}" in proc.stderr.splitlines()
    assert f"WARNING          {NOTHING_CUTS_THE_LIGHT}" in proc.stdout.splitlines()


def test_external_trigger_run_end_records_the_trigger_output_off(make_station, tmp_path):
    station = make_station()
    with AcquisitionEngine(station, tmp_path / "ext.h5") as engine:
        summary = engine.run(0.3)
    assert summary.safe_state_actions == ["laser: trigger output off (no pulses)"] and summary.safe_state_warnings == []
    with PhotonHDF5Reader(tmp_path / "ext.h5") as reader:
        assert reader.run_end()["safe_state_actions"] == ["laser: trigger output off (no pulses)"]


def test_scene_gate_and_shutter_act_from_the_next_segment():
    wiring = ChannelMap(laser_sync=0, spad_a=1, spad_b=2, frame_marker=3)
    config = {"emitter": {"kind": "poissonian", "poissonian": {"rate_cps": 2e5}}, "spads": {"a": {"dark_cps": 1000.0}}}
    scene = Scene(copy.deepcopy(config), wiring=wiring, seed=5)
    seg = 10_000_000_000  # segment_ms 10
    open_ = np.bincount(scene.generate(10 * seg).channels, minlength=3)
    scene.set_shutter_open(False)
    closed = np.bincount(scene.generate(110 * seg).channels, minlength=3)  # segment 10 was generated ahead
    scene.set_spad_gate(False)
    gated = np.bincount(scene.generate(210 * seg).channels, minlength=3)
    # open: ~25 kcps per SPAD over 0.1 s; closed: dark only (SPAD A 1000 /s, B 25 /s) over 1 s, within
    # 5 sigma (+ at most 5 detections of light carried over the boundary by the 2 ns cable delay); gated: none.
    assert open_[1] > 1500 and open_[2] > 1500
    assert abs(int(closed[1]) - 1000) <= 5 * np.sqrt(1000) + 5 and abs(int(closed[2]) - 25) <= 5 * 5 + 5
    assert gated[1] == gated[2] == 0
    assert closed[0] == gated[0] == 1_000_000  # the laser's syncs (1 MHz) go on behind shutter and gate

"""Generator outputs named by the station file: the camera's frame clock (a setting, default ch2) and the SPAD gate."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from labctl.acquisition.engine import AcquisitionEngine
from labctl.errors import ConfigError
from labctl.station.station import Station, StationConfig
from labctl.station.outputs import OutputRef


def default_data() -> dict:
    return copy.deepcopy(StationConfig.load().data)


def refused(data: dict) -> str:
    with pytest.raises(ConfigError) as info:
        StationConfig.from_dict(data, source="station.yaml")
    return str(info.value)


def without_generator(data: dict) -> None:
    """No function generator (the laser on its own clock) and a camera naming no frame clock."""
    instruments = data["instruments"]
    del instruments["function_generator"], instruments["camera"]["frame_clock"]
    instruments["laser"] = {"driver": "drivers.picoquant_pdl800d.PDL800D"}


def test_frame_clock_defaults_to_generator_ch2_when_the_file_names_none():
    data = default_data()
    del data["instruments"]["camera"]["frame_clock"]
    config = StationConfig.from_dict(data)
    assert config.outputs["frame_clock"] == OutputRef("instruments.camera.frame_clock", "function_generator", 2)


@pytest.mark.parametrize("channel", [3, 0, "2", 1.5, True, None])
def test_frame_clock_channel_outside_the_generator_outputs_is_refused(channel):
    data = default_data()
    data["instruments"]["camera"]["frame_clock"] = {"instrument": "function_generator", "channel": channel}
    assert refused(data) == (f"station.yaml: instruments.camera.frame_clock.channel = {channel!r}: "
                             "must be one of 1, 2 (the outputs of Keysight33500B)")


def test_frame_clock_on_the_laser_trigger_output_is_refused():
    data = default_data()
    data["instruments"]["camera"]["frame_clock"] = {"instrument": "function_generator", "channel": 1}
    assert refused(data) == ("station.yaml: instruments.camera.frame_clock.channel = 1: function_generator ch1 is already "
                             "instruments.laser.trigger_output; each signal needs its own output")


def test_spad_gate_on_the_frame_clock_output_is_refused():
    data = default_data()
    data["safety"] = {"spad_gate": {"instrument": "function_generator", "channel": 2}}
    assert refused(data) == ("station.yaml: safety.spad_gate.channel = 2: function_generator ch2 is already "
                             "instruments.camera.frame_clock; each signal needs its own output")


@pytest.mark.parametrize("edit, key_path, allowed", [
    (lambda d: d["instruments"]["camera"].update(frame_clock={"instrument": "tagger", "channel": 1}),
     "instruments.camera.frame_clock.instrument = 'tagger'", "its driver QuTAG has no such outputs (no frame_clock method)"),
    (lambda d: d["instruments"]["camera"].update(frame_clock={"instrument": "camera", "channel": 1}),
     "instruments.camera.frame_clock.instrument = 'camera'", "must name another instrument of this station"),
    (lambda d: d["instruments"]["tagger"].update(frame_clock={"instrument": "function_generator", "channel": 1}),
     "instruments.tagger.frame_clock", "only the camera has a frame clock"),
    (lambda d: d.update(safety={"spad_gate": {"instrument": "function_generator", "chanel": 1}}),
     "safety.spad_gate.chanel", "unknown key"),
    (lambda d: d.update(safety={"shutter": "yes"}), "safety.shutter", "unknown key"),
    (lambda d: without_generator(d),
     "instruments.camera.frame_clock = None", "is required with a camera: the generator output that triggers its frames"),
])
def test_bad_output_references_name_the_key_path(edit, key_path, allowed):
    data = default_data()
    edit(data)
    message = refused(data)
    assert message.startswith(f"station.yaml: {key_path}") and allowed in message, message


def test_frame_clock_on_ch1_records_one_frame_per_marker(tmp_path):
    # The laser on its own clock frees ch1: the camera is clocked from there (and the simulated
    # generator's cable from ch1 goes to the camera).  Today's code always took ch2.
    data = default_data()
    data["scene"] = {"seed": 3, "emitter": {"kind": "single_qd"}, "laser": {"repetition_rate_hz": 5e6}}
    data["engine"]["poll_interval_ms"] = 20
    generator = data["instruments"]["function_generator"]
    generator["library_options"] = {"cables": {1: "frame_clock", 2: "none"}}
    generator["settings"] = {"ch1": {"function": "SQU", "frequency_hz": 10.0, "output": True},
                             "ch2": {"function": "SQU", "frequency_hz": 1000.0, "output": False}}
    data["instruments"]["laser"] = {"driver": "drivers.picoquant_pdl800d.PDL800D",
                                    "settings": {"trigger_source": "internal", "internal_rate_hz": 5e6}}
    data["instruments"]["camera"]["frame_clock"] = {"instrument": "function_generator", "channel": 1}
    data["instruments"]["tagger"]["library_options"] = {"time_scale": 2.0}
    data["instruments"]["tagger"].setdefault("settings", {})["sync_divider"] = 8
    with Station(StationConfig.from_dict(data)) as station:
        assert station.frame_clock.channel.channel == 1
        with AcquisitionEngine(station) as engine:
            summary = engine.run(1.0)
        fg = station.instruments["function_generator"]
        assert fg.ch1.output() is False and fg.ch2.output() is False  # the frame clock stopped at the end
    markers = summary.counts[3]
    assert 9 <= markers <= 11  # 10 Hz for 1 s of tagger time
    stats = engine.frame_stats
    assert stats["markers"] == markers and stats["frames"] + stats["skipped"] + stats["unmatched_markers"] == markers
    assert stats["frames"] >= markers - 1
    assert np.isclose(summary.counts[0] / summary.duration_s, 5e6 / 8, rtol=0.01)  # the laser ran on its own


def test_replay_runs_the_stations_frame_clock_output_at_the_files_frame_rate(tmp_path):
    from types import SimpleNamespace

    from labctl.station.replay import _replay_camera

    instruments = default_data()["instruments"]
    instruments["camera"]["frame_clock"] = {"instrument": "function_generator", "channel": 1}
    replay = SimpleNamespace(path=str(tmp_path / "run.h5"), exposure_s=0.05, frame_rate_hz=12.5, wavelength_known=False)
    settings = _replay_camera(replay, instruments)["function_generator"]["settings"]
    assert settings["ch1"]["frequency_hz"] == 12.5 and settings["ch2"]["frequency_hz"] == 10.0

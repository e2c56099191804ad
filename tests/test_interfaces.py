"""The Protocols of labctl.interfaces name every member the core calls, and every class a shipped
station file registers implements its role's Protocol member by member (no getattr fallbacks)."""

from __future__ import annotations

import ast
from importlib import resources
from pathlib import Path

import pytest

import labctl
from labctl.errors import ConfigError
from labctl.interfaces import (Camera, FrameClock, FunctionGenerator, PhotonDetector, PulsedLaser, Shutter, Spectrograph,
                               TimeTagger, TriggerOutput)
from labctl.station.station import ROLES, Station, StationConfig
from labctl.station.classes import missing_members, protocol_members

USED_BY_THE_CORE = {
    # role protocol: members labctl (engine, camera path, station, safe state, station child) calls
    TimeTagger: {"sync_divider", "start_stream", "read_tags", "data_lost", "stop_stream", "snapshot", "close"},
    PulsedLaser: {"trigger_source", "repetition_rate_hz", "enable_excitation", "disable_excitation",
                  "excitation_enabled", "snapshot", "close"},
    PhotonDetector: {"tagger_channel", "max_count_rate_cps", "snapshot", "close"},
    Camera: {"start_frames", "read_frames", "read_skipped_frames", "stop_frames", "kinetic_cycle_s",
             "actual_exposure_s", "frame_shape", "temperature_c", "temperature_state", "snapshot", "close"},
    Spectrograph: {"wavelength_axis_nm", "snapshot", "close"},
    FunctionGenerator: {"output_channels", "trigger_output", "frame_clock", "snapshot", "close"},
    Shutter: {"set_open", "is_open", "snapshot", "close"},
    FrameClock: {"set_enabled", "rate_hz"},
    TriggerOutput: {"set_enabled", "enabled", "set_frequency_hz", "frequency_hz", "frequency_range_hz"},
}

STATION_FILES = sorted(p.name for p in resources.files("labctl.stations").iterdir() if p.name.endswith(".yaml"))


@pytest.mark.parametrize("interface", list(USED_BY_THE_CORE), ids=lambda p: p.__name__)
def test_protocol_names_every_member_the_core_uses(interface):
    missing = USED_BY_THE_CORE[interface] - set(protocol_members(interface))
    assert not missing, f"{interface.__name__} lacks {sorted(missing)}"


def test_the_core_asks_no_instrument_for_an_optional_member():
    # read_skipped_frames was read with getattr(camera, ..., None): every member is now required.
    for path in Path(labctl.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "getattr" and len(node.args) == 3:
                target = ast.unparse(node.args[0])
                assert not any(word in target for word in ("camera", "generator", "clock", "laser", "tagger")), \
                    f"{path.name}:{node.lineno}: getattr({target}, ...) on an instrument"


@pytest.mark.parametrize("station_file", STATION_FILES)
def test_every_instrument_of_a_station_file_implements_its_role_member_by_member(station_file):
    config = StationConfig.load(resources.files("labctl.stations").joinpath(station_file))
    with Station(config) as station:
        assert set(station.instruments) == set(config.data["instruments"])
        for role, instrument in station.instruments.items():
            interface = ROLES[role]
            for member in protocol_members(interface):
                assert hasattr(instrument, member), f"{station_file}: {role} ({type(instrument).__name__}) lacks {member}"
            assert missing_members(instrument, interface) == []
            assert isinstance(instrument, interface)
        if "camera" in station.instruments:
            assert missing_members(station.frame_clock, FrameClock) == []
        if station.spad_gate is not None:
            assert missing_members(station.spad_gate, TriggerOutput) == []


def test_a_driver_lacking_a_protocol_member_is_refused_at_build(monkeypatch):
    from drivers.andor.ixon import IXonUltra888

    monkeypatch.delattr(IXonUltra888, "read_skipped_frames")
    with pytest.raises(ConfigError) as info:
        Station(StationConfig.load())
    assert str(info.value).endswith("instruments.camera.driver = 'drivers.andor.IXonUltra888': does not implement "
                                    "Camera (missing read_skipped_frames)")

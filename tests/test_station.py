"""Station files: bad input fails at load with key path, value and what is allowed; nothing changes."""

from __future__ import annotations

import copy

import pytest
import yaml

from labctl.errors import ConfigError, VendorLibraryNotFound
from labctl.station.station import Station, StationConfig


def default_data() -> dict:
    return copy.deepcopy(StationConfig.load().data)


def with_change(path: str, value, delete: bool = False) -> dict:
    data = default_data()
    keys = path.split(".")
    node = data
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    if delete:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return data


# (what is changed, value, text the message must contain: key path and what is allowed)
BAD_STRUCTURE = [
    ("colour", "blue", ["colour", "'blue'", "unknown key; allowed:", "instruments"]),
    ("channels.spad_b", 1, ["channels.spad_b", "1", "already used by channels.spad_a"]),
    ("channels.laser_sync", "zero", ["channels.laser_sync", "'zero'", "an integer between 0 and 255"]),
    ("channels.spad_a", 300, ["channels.spad_a", "300", "an integer between 0 and 255"]),
    ("engine.poll_interval_ms", 0, ["engine.poll_interval_ms", "0", "between 1 and 10000"]),
    ("engine.queue_blocks", 2.5, ["engine.queue_blocks", "2.5", "an integer"]),
    ("engine.flush_every", 1, ["engine.flush_every", "unknown key", "flush_interval_s"]),
    ("instruments.oven", {"driver": "x.Y"}, ["instruments.oven", "unknown key", "tagger"]),
    ("instruments.tagger.driver", "drivers.qutag.NoSuchClass", ["instruments.tagger.driver", "has no 'NoSuchClass'"]),
    ("instruments.laser.driver", "drivers.nomodule.Laser", ["instruments.laser.driver", "cannot be imported"]),
    ("instruments.spad_a.driver", "nomodule.Laser", ["instruments.spad_a.driver", "package 'nomodule' is not allowed", "drivers"]),
    ("instruments.tagger.library_options.time_scael", 2, ["instruments.tagger.library_options.time_scael", "unknown option", "time_scale"]),
    ("scene.emitter.kind", "nanorod", ["scene.emitter.kind", "'nanorod'"]),
    ("scene.seed", -4, ["scene.seed", "-4"]),
    ("instruments.tagger.setings", {}, ["instruments.tagger.setings", "unknown key", "settings"]),
    ("engine.software_sync_divider", True, ["engine.software_sync_divider", "True", "an integer"]),
]


@pytest.mark.parametrize("path,value,expected", BAD_STRUCTURE, ids=[c[0] for c in BAD_STRUCTURE])
def test_bad_structure_fails_at_load_naming_key_value_and_allowed(path, value, expected):
    with pytest.raises(ConfigError) as info:
        StationConfig.from_dict(with_change(path, value), source="station.yaml")
    message = str(info.value)
    assert message.startswith("station.yaml: ")
    for text in expected:
        assert text in message, (text, message)


BAD_SETTINGS = [
    ("instruments.tagger.settings.sync_divider", 3, ["instruments.tagger.settings.sync_divider", "3", "one of 1, 2, 4, 8"]),
    ("instruments.tagger.settings.buffer_size", 0, ["instruments.tagger.settings.buffer_size", "0", "between 1 and 1000000"]),
    ("instruments.tagger.settings.ch1", {"threshold_v": 5.0}, ["instruments.tagger.settings.ch1.threshold_v", "5.0", "between -2 and 3"]),
    ("instruments.tagger.settings.bufer_size", 10, ["instruments.tagger.settings.bufer_size", "unknown setting", "buffer_size"]),
    ("instruments.laser.settings.external_rate_hz", 3e8, ["instruments.laser.settings.external_rate_hz", "300000000.0", "between 1 and 30000000 (Hz)"]),
    ("instruments.laser.settings.trigger_source", "usb", ["instruments.laser.settings.trigger_source", "'usb'", "one of 'external', 'internal'"]),
    ("instruments.spad_a.settings.max_count_rate_cps", -1, ["instruments.spad_a.settings.max_count_rate_cps", "-1", "between"]),
]


@pytest.mark.parametrize("path,value,expected", BAD_SETTINGS, ids=[c[0] for c in BAD_SETTINGS])
def test_bad_settings_fail_when_the_station_is_built(path, value, expected):
    config = StationConfig.from_dict(with_change(path, value), source="station.yaml")
    with pytest.raises(ConfigError) as info:
        Station(config)
    message = str(info.value)
    for text in expected:
        assert text in message, (text, message)


def test_station_file_errors_name_the_file(tmp_path):
    path = tmp_path / "station.yaml"
    path.write_text(yaml.safe_dump(with_change("engine.poll_interval_ms", -3)))
    with pytest.raises(ConfigError, match=r"station.yaml: engine.poll_interval_ms = -3: must be a number between 1 and 10000"):
        StationConfig.load(path)
    path.write_text("instruments: [unclosed")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        StationConfig.load(path)


def test_runtime_change_with_one_bad_value_changes_nothing(make_station):
    station = make_station()
    tagger = station.tagger
    device = tagger._sdk.lib  # the simulated tdcbase: what the "device" holds
    assert (tagger.sync_divider(), device.sync_divider, tagger.ch1.threshold_v()) == (4, 4, 1.0)
    with pytest.raises(ConfigError, match=r"buffer_size = 0: must be an integer between 1 and 1000000"):
        station.configure("tagger", {"sync_divider": 2, "ch1": {"threshold_v": 0.5}, "buffer_size": 0})
    assert (tagger.sync_divider(), device.sync_divider, tagger.ch1.threshold_v()) == (4, 4, 1.0)
    assert device.conditioning[1][2] == 1.0
    station.configure("tagger", {"sync_divider": 2, "ch1": {"threshold_v": 0.5}})
    assert (tagger.sync_divider(), device.sync_divider, device.conditioning[1][2]) == (2, 2, 0.5)


def test_excitation_is_off_after_building_a_station(make_station):
    station = make_station()
    assert station.laser.excitation_enabled() is False
    assert station.scene.excitation_enabled() is False


def test_real_qutag_without_vendor_library_names_the_library():
    data = default_data()
    data["instruments"]["tagger"].pop("library")
    data["instruments"]["tagger"].pop("library_options")
    data["instruments"]["tagger"]["options"] = {"library_path": "/nonexistent/libtdcbase.so"}
    with pytest.raises(VendorLibraryNotFound, match="libtdcbase.so"):
        Station(StationConfig.from_dict(data))

"""Function generator driver on pyvisa-sim: settings, refusals, SCPI errors, scene link, laser trigger."""

from __future__ import annotations

import copy
import logging
import re
from dataclasses import dataclass

import pytest

from drivers.function_generator import (
    FrameClock,
    FunctionGeneratorError,
    GeneratorTriggerOutput,
    Keysight33500B,
)
from drivers.picoquant_pdl800d import PDL800D
from labctl.blocks import ChannelMap
from labctl.errors import ConfigError, InstrumentError
from labctl.interfaces import FunctionGenerator, TriggerOutput
from labctl.station.station import Station, StationConfig
from sim_backends.fgen_sim import SIM_ADDRESS, SimFunctionGeneratorLibrary
from sim_backends.scene import Scene

CHANNELS = (1, 2)


class FakeScene:
    """The scene's laser and frame-clock controls, recording every call.

    Records what the generator tells the scene; ``test_real_scene_follows_the_generator``
    uses the real ``sim_backends.scene.Scene``.
    """

    def __init__(self) -> None:
        self.rate_hz = 1e6
        self.excitation = False
        self.frame_clock = (0.0, False)
        self.calls: list[tuple] = []

    def set_repetition_rate_hz(self, rate_hz: float) -> None:
        self.calls.append(("rate", rate_hz))
        self.rate_hz = rate_hz

    def repetition_rate_hz(self) -> float:
        return self.rate_hz

    def set_excitation(self, enabled: bool) -> None:
        self.calls.append(("excitation", enabled))
        self.excitation = enabled

    def excitation_enabled(self) -> bool:
        return self.excitation

    def set_frame_clock(self, rate_hz: float, enabled: bool) -> None:
        self.calls.append(("frame_clock", rate_hz, enabled))
        self.frame_clock = (rate_hz, enabled)

    def set_spad_gate(self, enabled: bool) -> None:
        self.calls.append(("spad_gate", enabled))


@dataclass
class Rig:
    fg: Keysight33500B
    lib: SimFunctionGeneratorLibrary
    scene: FakeScene

    def sent_since(self, n: int) -> list[str]:
        return self.lib.commands[n:]


@pytest.fixture
def make_rig():
    built: list = []

    def factory(scene: object | None = None, **options) -> Rig:
        scene = FakeScene() if scene is None else scene
        lib = SimFunctionGeneratorLibrary(scene, **options)
        fg = Keysight33500B(f"fg_test_{len(built)}", SIM_ADDRESS, library=lib)
        built.append(fg)
        return Rig(fg, lib, scene)

    yield factory
    for instrument in built:
        instrument.close()


@pytest.fixture
def rig(make_rig) -> Rig:
    return make_rig()


# --- settings -----------------------------------------------------------------------------------
SETTINGS = [
    # (parameter, value, property of the sim model, value the model holds)
    ("function", "PULS", "function", "PULS"),
    ("function", "SQU", "function", "SQU"),
    ("frequency_hz", 1e6, "frequency", 1e6),
    ("frequency_hz", 2.5e-3, "frequency", 2.5e-3),
    ("amplitude_vpp", 2.5, "amplitude", 2.5),
    ("offset_v", -0.75, "offset", -0.75),
    ("high_v", 3.3, "high", 3.3),
    ("low_v", -1.0, "low", -1.0),
    ("duty_cycle_percent", 20.0, "duty cycle", 20.0),
    ("pulse_width_s", 5e-8, "pulse width", 5e-8),
    ("output", True, "output", "ON"),
    ("load", "INF", "load", "INF"),
    ("load", 50, "load", "50"),
    ("burst_state", True, "burst state", "ON"),
    ("burst_mode", "GAT", "burst mode", "GAT"),
    ("burst_ncycles", 250, "burst ncycles", 250),
    ("trigger_source", "EXT", "trigger source", "EXT"),
    ("trigger_source", "BUS", "trigger source", "BUS"),
]


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize(("name", "value", "prop", "held"), SETTINGS, ids=[f"{s[0]}={s[1]}" for s in SETTINGS])
def test_setting_reaches_the_instrument_and_reads_back(rig, channel, name, value, prop, held):
    other = 3 - channel
    other_before = rig.lib.device_value(prop, other)
    param = rig.fg.channel(channel).parameters[name]
    param(value)
    assert rig.lib.device_value(prop, channel) == held
    param.cache.invalidate()
    assert param() == value  # read back from the instrument
    assert rig.lib.device_value(prop, other) == other_before  # the other channel is untouched


def test_identity_comes_from_idn(rig):
    idn = rig.fg.get_idn()
    assert (idn["vendor"], idn["model"], idn["serial"]) == ("Keysight Technologies", "33522B", "SIM0000001")


def test_construction_reads_every_setting_so_the_snapshot_is_the_device_state(rig):
    ch1 = rig.fg.snapshot(update=False)["submodules"]["ch1"]["parameters"]
    assert {n: ch1[n]["value"] for n in ("function", "frequency_hz", "output", "load", "trigger_source")} == {
        "function": "SIN", "frequency_hz": 1000.0, "output": False, "load": 50, "trigger_source": "IMM"}


def test_driver_satisfies_the_function_generator_interface(rig):
    assert isinstance(rig.fg, FunctionGenerator)
    rig.fg.set_output(2, True)
    assert rig.lib.device_value("output", 2) == "ON" and rig.lib.device_value("output", 1) == "OFF"
    rig.fg.set_output(2, False)
    assert rig.lib.device_value("output", 2) == "OFF"


def test_unknown_channel_is_refused_naming_the_allowed_ones(rig):
    with pytest.raises(InstrumentError, match=r"channel = 3: allowed 1, 2"):
        rig.fg.set_output(3, True)


# --- refusals: nothing is sent ---------------------------------------------------------------------
REFUSED = [
    # (parameter, value, regex for what is allowed)
    ("function", "TRIANGLEX", r"'TRIANGLEX' is not in \{.*'SQU'.*\}"),
    ("frequency_hz", 1e9, r"1000000000(\.0)? is invalid: must be between 1e-06 and 30000000(\.0)?"),
    ("frequency_hz", 0, r"must be between 1e-06 and"),
    ("amplitude_vpp", 20, r"must be between 0\.001 and 10(\.0)?"),
    ("offset_v", 6, r"must be between -5(\.0)? and 5(\.0)?"),
    ("duty_cycle_percent", 100, r"must be between 0\.01 and 99\.99"),
    ("pulse_width_s", 1e-9, r"must be between 1\.6e-08 and"),
    ("load", 75, r"75 is not in \{"),
    ("burst_mode", "GATED", r"'GATED' is not in \{"),
    ("burst_ncycles", 0, r"0 is invalid: must be between 1 and 100000000"),
    ("trigger_source", "TIMER", r"'TIMER' is not in \{"),
    ("output", "yes", r"'yes' is not Boolean"),
]


@pytest.mark.parametrize(("name", "value", "allowed"), REFUSED, ids=[f"{n}={v}" for n, v, _ in REFUSED])
def test_invalid_value_names_parameter_value_and_allowed_and_sends_nothing(rig, name, value, allowed):
    param = rig.fg.ch1.parameters[name]
    before, n_sent = param.cache.get(), len(rig.lib.commands)
    with pytest.raises((ValueError, TypeError)) as info:
        param(value)
    message = str(info.value)
    assert param.full_name in message and re.search(allowed, message), message
    assert rig.sent_since(n_sent) == []
    assert param.cache.get() == before


def test_high_level_below_low_level_is_refused_before_sending(rig):
    rig.fg.ch1.low_v(0.0)
    n_sent = len(rig.lib.commands)
    with pytest.raises(ValueError, match=r"fg_test_0_ch1_high_v = -1(\.0)? V: must be above low_v = 0(\.0)? V"):
        rig.fg.ch1.high_v(-1.0)
    assert rig.sent_since(n_sent) == []


# --- SCPI errors -----------------------------------------------------------------------------------
def test_error_reported_by_the_generator_raises_and_keeps_the_old_value(rig):
    rig.lib.inject_error('-222,"Data out of range"')
    with pytest.raises(FunctionGeneratorError) as info:
        rig.fg.ch1.frequency_hz(2e6)
    error = info.value
    assert error.command == "SOURce1:FREQuency 2000000"
    assert error.errors == ['-222,"Data out of range"']
    assert "reported -222,\"Data out of range\" after 'SOURce1:FREQuency 2000000'" in str(error)
    assert rig.fg.ch1.frequency_hz.cache.get() == 1000.0


def test_every_set_is_followed_by_an_error_query(rig):
    n_sent = len(rig.lib.commands)
    rig.fg.ch2.burst_ncycles(3)
    assert rig.sent_since(n_sent) == ["SOURce2:BURSt:NCYCles 3", "SYSTem:ERRor?"]


def test_command_the_generator_refuses_raises_with_its_error(rig):
    with pytest.raises(FunctionGeneratorError, match=r'-100,"Command error" after \'SOURce1:FREQuency 1e\+09\''):
        rig.fg.write_checked("SOURce1:FREQuency 1e+09")  # bypasses the validator
    assert rig.lib.device_value("frequency", 1) == 1000.0
    assert rig.fg.read_errors() == []  # the queue was drained


def test_errors_left_in_the_queue_at_connection_are_logged_not_blamed_on_the_next_set(caplog):
    lib = SimFunctionGeneratorLibrary(FakeScene())
    lib.inject_error('-113,"Undefined header"')
    with caplog.at_level(logging.WARNING):
        fg = Keysight33500B("fg_stale_errors", SIM_ADDRESS, library=lib)
    try:
        assert '-113,"Undefined header"' in caplog.text
        fg.ch1.frequency_hz(5000)
        assert fg.ch1.frequency_hz() == 5000
    finally:
        fg.close()


# --- the scene link ---------------------------------------------------------------------------------
def test_ch2_at_10_hz_and_on_makes_the_scene_frame_clock_10_hz_enabled(rig):
    rig.fg.ch2.frequency_hz(10)
    rig.fg.ch2.output(True)
    assert rig.scene.frame_clock == (10.0, True)
    rig.fg.ch2.output(False)
    assert rig.scene.frame_clock == (10.0, False)


def test_ch1_frequency_and_output_drive_the_scene_laser(rig):
    rig.fg.ch1.frequency_hz(2e6)
    assert rig.scene.rate_hz == 2e6 and rig.scene.excitation is False
    rig.fg.ch1.output(True)
    assert rig.scene.excitation is True
    rig.fg.ch1.output(False)
    assert rig.scene.excitation is False


def test_connecting_applies_the_generator_state_to_the_scene(rig):
    assert rig.scene.calls[:3] == [("rate", 1000.0), ("excitation", False), ("frame_clock", 1000.0, False)]


def test_only_changes_reach_the_scene_and_refused_values_never(rig):
    n_calls = len(rig.scene.calls)
    rig.fg.ch1.function("SQU")
    rig.fg.ch2.burst_state(True)
    with pytest.raises(FunctionGeneratorError):
        rig.fg.write_checked("SOURce1:FREQuency 5e+07")  # beyond the model: refused, nothing changes
    assert rig.scene.calls[n_calls:] == []


def test_each_simulated_library_is_its_own_generator(make_rig):
    first, second = make_rig(), make_rig()
    first.fg.ch1.frequency_hz(123.0)
    assert second.fg.ch1.frequency_hz() == 1000.0
    assert second.scene.rate_hz == 1000.0 and first.scene.rate_hz == 123.0


def test_scene_without_frame_clock_is_refused_naming_what_is_missing():
    class LaserOnlyScene:
        def set_repetition_rate_hz(self, rate_hz: float) -> None: ...

        def set_excitation(self, enabled: bool) -> None: ...

    with pytest.raises(TypeError, match=r"lacks set_frame_clock"):
        SimFunctionGeneratorLibrary(LaserOnlyScene())


def test_real_scene_follows_the_generator(make_rig):
    scene = Scene({}, wiring=ChannelMap(laser_sync=0, spad_a=1, spad_b=2, frame_marker=3), seed=0)
    rig = make_rig(scene)
    rig.fg.ch1.frequency_hz(2e6)
    rig.fg.ch1.output(True)
    rig.fg.ch2.frequency_hz(10)
    rig.fg.ch2.output(True)
    assert scene.repetition_rate_hz() == 2e6 and scene.excitation_enabled() is True


# --- laser trigger and frame clock -----------------------------------------------------------------
def test_pdl800d_triggered_from_ch1_switches_ch1_output(rig):
    trigger = rig.fg.trigger_output(1)
    assert isinstance(trigger, GeneratorTriggerOutput) and isinstance(trigger, TriggerOutput)
    laser = PDL800D("laser_on_fg", trigger_output=trigger)
    try:
        laser.external_rate_hz(1e6)
        laser.enable_excitation()
        assert rig.fg.ch1.output() is True and rig.fg.ch1.frequency_hz() == 1e6
        assert laser.excitation_enabled() is True and rig.scene.excitation is True and rig.scene.rate_hz == 1e6
        laser.disable_excitation()
        assert rig.fg.ch1.output() is False and laser.excitation_enabled() is False
        assert rig.scene.excitation is False
        assert rig.fg.ch2.output() is False  # the frame clock is not touched
    finally:
        laser.close()


def test_laser_rate_beyond_the_generator_range_is_refused_by_the_laser_validator(rig):
    laser = PDL800D("laser_too_fast", trigger_output=rig.fg.trigger_output(1))  # sets its initial 1 MHz
    try:
        n_sent = len(rig.lib.commands)
        # the laser's own range (1 Hz..80 MHz) narrowed to its trigger output's (..30 MHz)
        with pytest.raises(ValueError, match=r"must be between 1.0 and 30000000.0 inclusive; Parameter: laser_too_fast.external_rate_hz"):
            laser.external_rate_hz(50e6)  # the PDL takes 80 MHz, this generator 30 MHz
        assert rig.sent_since(n_sent) == []
        assert rig.fg.ch1.frequency_hz() == 1e6 and laser.external_rate_hz() == 1e6
    finally:
        laser.close()


def test_frame_clock_helper_sets_rate_and_switches_ch2(rig):
    clock = rig.fg.frame_clock()
    assert isinstance(clock, FrameClock) and clock.channel is rig.fg.ch2
    clock.set_rate_hz(20)
    clock.set_enabled(True)
    assert clock.rate_hz() == 20.0 and clock.enabled() is True
    assert rig.scene.frame_clock == (20.0, True)
    clock.set_enabled(False)
    assert rig.scene.frame_clock == (20.0, False)


# --- the YAML on its own, the QCoDeS way -------------------------------------------------------------
def test_yaml_model_works_as_a_plain_qcodes_pyvisa_sim_file():
    fg = Keysight33500B("fg_plain_yaml", SIM_ADDRESS, pyvisa_sim_file="sim_backends:function_generator.yaml")
    try:
        for channel in CHANNELS:
            ch = fg.channel(channel)
            ch.function("PULS")
            ch.frequency_hz(1e6 * channel)
            ch.output(True)
            ch.burst_state(True)
            for param in (ch.function, ch.frequency_hz, ch.output, ch.burst_state):
                param.cache.invalidate()
            assert (ch.function(), ch.frequency_hz(), ch.output(), ch.burst_state()) == ("PULS", 1e6 * channel, True, True)
        assert fg.ask("SYSTem:ERRor?") == '+0,"No error"'
    finally:
        fg.close()


def test_station_can_pass_the_library_as_library_or_visalib_not_both():
    with pytest.raises(TypeError, match="either library or visalib"):
        Keysight33500B("fg_both", SIM_ADDRESS, library=SimFunctionGeneratorLibrary(), visalib="@sim")
    assert not Keysight33500B.exist("fg_both")


def test_station_builds_the_generator_on_the_shared_scene():
    data = copy.deepcopy(StationConfig.load().data)
    data["instruments"] = {
        "function_generator": {
            "driver": "drivers.function_generator.Keysight33500B",
            "library": "sim_backends.fgen_sim.SimFunctionGeneratorLibrary",
            "options": {"address": SIM_ADDRESS},
            "settings": {"ch2": {"function": "SQU", "frequency_hz": 10.0, "output": True}},
        },
        **data["instruments"],
    }
    config = StationConfig.from_dict(data, source="<test station>")
    with Station(config) as station:
        fg = station.instruments["function_generator"]
        assert fg.ch2.output() is True and fg.ch2.frequency_hz() == 10.0


# --- cables: what each output drives in the scene ---------------------------------------------------
def test_cables_put_the_spad_gate_on_ch1_and_nothing_on_the_laser(make_rig):
    rig = make_rig(cables={1: "spad_gate", "2": "frame_clock"})
    rig.scene.calls.clear()
    rig.fg.ch1.frequency_hz(1e6)
    rig.fg.ch1.output(True)
    rig.fg.ch2.output(True)
    rig.fg.ch1.output(False)
    assert rig.scene.calls == [("spad_gate", True), ("frame_clock", 1000.0, True), ("spad_gate", False)]  # no laser call


@pytest.mark.parametrize("cables, key_path, allowed", [
    ({3: "spad_gate"}, "cables.3", "the generator's outputs are 1 and 2"),
    ({1: "gate"}, "cables.1", "must be one of laser_trigger, frame_clock, spad_gate, none"),
    ({1: "frame_clock", 2: "frame_clock"}, "cables.2", "each but none once"),
    (["spad_gate"], "cables", "must be a mapping"),
])
def test_bad_cables_are_refused_naming_the_output(cables, key_path, allowed):
    with pytest.raises(ConfigError) as info:
        SimFunctionGeneratorLibrary(FakeScene(), cables=cables)
    assert info.value.key_path == key_path and allowed in str(info.value)

"""quTAG driver on the simulated tdcbase library: settings, streaming, losses, errors, loading."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import drivers.qutag.driver as driver_module
from drivers.qutag import QuTAG, QuTAGError
from drivers.qutag.tdcbase import GENERATION_PROTOTYPES, PROTOTYPES, STATUS_NAMES, all_function_names
from labctl.blocks import TagBlock
from labctl.errors import InstrumentError, VendorLibraryNotFound
from labctl.interfaces import TimeTagger
from sim_backends.qutag_sim import PERROR_TEXTS, SimTDCBase, SimTDCBaseMC

MS = 1e-3  # s
PS_PER_S = 10**12


class FakeScene:
    """1 MHz syncs on channel 0 and Poisson photons on 1 and 2, precomputed (chunk-invariant)."""

    def __init__(self, horizon_s: float = 0.02, sync_period_ps: int = 1_000_000, seed: int = 7) -> None:
        horizon_ps = int(horizon_s * PS_PER_S)
        rng = np.random.default_rng(seed)
        parts = [(np.arange(1234, horizon_ps, sync_period_ps, dtype=np.int64), 0)]
        for channel, rate_cps in ((1, 200_000), (2, 150_000)):
            n = rng.poisson(rate_cps * horizon_s)
            parts.append((np.sort(rng.integers(0, horizon_ps, n, dtype=np.int64)), channel))
        ts = np.concatenate([t for t, _ in parts])
        ch = np.concatenate([np.full(t.size, c, np.uint8) for t, c in parts])
        order = np.argsort(ts, kind="stable")
        self.timestamps, self.channels = ts[order], ch[order]
        self.horizon_ps = horizon_ps
        self._until_ps = 0

    def between(self, start_ps: int, stop_ps: int) -> TagBlock:
        """Ground truth: the tags in [start_ps, stop_ps), without advancing."""
        i0, i1 = np.searchsorted(self.timestamps, [start_ps, stop_ps], side="left")
        return TagBlock(self.timestamps[i0:i1].copy(), self.channels[i0:i1].copy())

    def generate(self, t_stop_ps: int) -> TagBlock:
        assert t_stop_ps <= self.horizon_ps, "test ran past the fake scene's horizon"
        block = self.between(self._until_ps, t_stop_ps)
        self._until_ps = t_stop_ps
        return block


class FakeClock:
    """A wall clock the test advances by hand (s)."""

    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


@dataclass
class Rig:
    qutag: QuTAG
    sim: SimTDCBase
    scene: FakeScene
    clock: FakeClock

    def read_for(self, *steps_s: float) -> TagBlock:
        """Advance the clock by each step and read after each; return everything read."""
        blocks = []
        for step in steps_s:
            self.clock.advance(step)
            blocks.append(self.qutag.read_tags())
        return TagBlock.concatenate(blocks)


def ps(seconds: float) -> int:
    return int(round(seconds * PS_PER_S))


def assert_blocks_equal(actual: TagBlock, expected: TagBlock) -> None:
    np.testing.assert_array_equal(actual.timestamps, expected.timestamps)
    np.testing.assert_array_equal(actual.channels, expected.channels)


@pytest.fixture
def make_rig():
    built: list[QuTAG] = []

    def factory(library_cls: type = SimTDCBase, **sim_options) -> Rig:
        scene, clock = FakeScene(), FakeClock()
        sim = library_cls(scene, clock=clock, **sim_options)
        qutag = QuTAG(f"qutag_test_{len(built)}", library=sim)
        built.append(qutag)
        return Rig(qutag, sim, scene, clock)

    yield factory
    for qutag in built:
        qutag.close()


@pytest.fixture
def rig(make_rig) -> Rig:
    return make_rig()


# --- identity and settings -------------------------------------------------------------
def test_timebase_is_1_ps(rig):
    assert rig.qutag.timebase_ps() == 1.0


def test_driver_satisfies_the_time_tagger_interface(rig):
    assert isinstance(rig.qutag, TimeTagger)


def test_construction_brings_the_device_to_the_initial_values(rig):
    sim, q = rig.sim, rig.qutag
    assert sim.channel_mask == 0b11111 == q.enabled_channels()
    assert sim.five_channel_mode is True
    assert (sim.sync_divider, sim.sync_reconstruct) == (1, False)
    assert sim.exposure_time_ms == 100
    assert all(sim.conditioning[n] == (3, 1, 1.0) for n in range(5))


def test_settings_reach_the_library(rig):
    q, sim = rig.qutag, rig.sim
    q.ch1.threshold_v(-0.35)
    q.ch1.edge("falling")
    q.ch2.signal_conditioning("NIM")
    q.ch3.dead_time_ps(80_000)
    q.exposure_time_ms(250)
    q.sync_reconstruct(True)
    q.sync_divider(8)
    q.ch4.delay_ps(-1500)
    assert sim.conditioning[1] == (3, 0, -0.35)
    assert sim.conditioning[2] == (2, 1, 1.0)
    assert sim.dead_times_ps == {3: 80_000}
    assert sim.exposure_time_ms == 250
    assert (sim.sync_divider, sim.sync_reconstruct) == (8, True)
    assert list(sim.delays_ps[:5]) == [0, 0, 0, 0, -1500]


def test_snapshot_needs_no_device(rig):
    rig.sim.TDC_deInit()  # from now on every vendor call would fail
    with pytest.raises(QuTAGError, match="NotInitialized"):
        rig.qutag.exposure_time_ms(5)
    snap = rig.qutag.snapshot(update=True)
    assert snap["parameters"]["sync_divider"]["value"] == 1
    assert snap["submodules"]["ch1"]["parameters"]["threshold_v"]["value"] == 1.0


# --- streaming -------------------------------------------------------------------------
def test_stream_equals_the_scene_exactly_with_a_generous_buffer(rig):
    rig.qutag.start_stream()
    got = rig.read_for(1 * MS, 0.3 * MS, 2.5 * MS, 0.01 * MS, 1.19 * MS)
    assert len(got) > 5000
    assert_blocks_equal(got, rig.scene.between(0, ps(5 * MS)))
    assert rig.qutag.data_lost() is False


def test_read_tags_returns_int64_ps_and_uint8_channels_that_are_copies(rig):
    rig.qutag.start_stream()
    first = rig.read_for(1 * MS)
    kept = first.timestamps.copy()
    rig.read_for(1 * MS)
    assert first.timestamps.dtype == np.int64 and first.channels.dtype == np.uint8
    np.testing.assert_array_equal(first.timestamps, kept)


def test_sync_divider_keeps_exactly_every_4th_sync(rig):
    rig.qutag.sync_divider(4)
    rig.qutag.start_stream()
    got = rig.read_for(0.7 * MS, 1.6 * MS, 0.7 * MS)
    truth = rig.scene.between(0, ps(3 * MS))
    np.testing.assert_array_equal(got.timestamps[got.channels == 0], truth.timestamps[truth.channels == 0][::4])
    np.testing.assert_array_equal(got.timestamps[got.channels != 0], truth.timestamps[truth.channels != 0])


def test_disabled_input_sends_no_tags(rig):
    rig.qutag.enabled_channels(0b00011)
    rig.qutag.start_stream()
    got = rig.read_for(2 * MS)
    assert set(np.unique(got.channels)) == {0, 1}


def test_start_input_reaches_the_stream_only_in_five_channel_mode(rig):
    rig.qutag.five_channel_mode(False)
    rig.qutag.start_stream()
    got = rig.read_for(2 * MS)
    assert len(got) > 0 and not np.any(got.channels == 0)


def test_channel_delays_shift_tags_and_keep_the_stream_sorted(rig):
    rig.qutag.ch1.delay_ps(5_000)
    rig.qutag.ch2.delay_ps(-3_000)
    rig.qutag.start_stream()
    got = rig.read_for(*([0.25 * MS] * 12))
    truth = rig.scene.between(0, ps(3 * MS))
    shifted = truth.timestamps + np.array([0, 5_000, -3_000], np.int64)[truth.channels]
    order = np.argsort(shifted, kind="stable")
    final = shifted[order] < ps(3 * MS) - 3_000  # later tags may still come before the rest
    assert np.all(np.diff(got.timestamps) >= 0)
    np.testing.assert_array_equal(got.timestamps, shifted[order][final])
    np.testing.assert_array_equal(got.channels, truth.channels[order][final])


class ListScene:
    """A scene of a few given tags (ps, channel)."""

    def __init__(self, tags: list[tuple[int, int]]) -> None:
        self.timestamps = np.array([t for t, _ in tags], np.int64)
        self.channels = np.array([c for _, c in tags], np.uint8)
        self._until_ps = 0

    def generate(self, t_stop_ps: int) -> TagBlock:
        i0, i1 = np.searchsorted(self.timestamps, [self._until_ps, t_stop_ps])
        self._until_ps = t_stop_ps
        return TagBlock(self.timestamps[i0:i1], self.channels[i0:i1])


def test_negative_delay_holds_back_tags_a_later_tag_could_precede():
    clock = FakeClock()
    qutag = QuTAG("qutag_delay", library=SimTDCBase(ListScene([(15_000, 1), (20_000, 2)]), clock=clock))
    try:
        qutag.ch2.delay_ps(-10_000)
        qutag.start_stream()
        clock.advance(18e-9)  # device time 18 ns: the channel-1 tag exists, the channel-2 tag not yet
        first = qutag.read_tags()
        clock.advance(12e-9)
        second = qutag.read_tags()
    finally:
        qutag.close()
    assert len(first) == 0
    assert list(second.timestamps) == [10_000, 15_000] and list(second.channels) == [2, 1]


def test_start_stream_discards_earlier_tags_and_time_keeps_running(rig):
    rig.qutag.start_stream()
    rig.clock.advance(1 * MS)
    rig.qutag.start_stream()
    got = rig.read_for(1 * MS)
    assert_blocks_equal(got, rig.scene.between(ps(1 * MS), ps(2 * MS)))


def test_time_scale_runs_device_time_faster_than_the_clock(make_rig):
    rig = make_rig(time_scale=1000.0)
    rig.qutag.start_stream()
    got = rig.read_for(2e-6)  # 2 us of wall time = 2 ms of device time
    assert_blocks_equal(got, rig.scene.between(0, ps(2 * MS)))


def test_stopped_stream_adds_no_tags_but_can_be_drained(rig):
    rig.qutag.start_stream()
    rig.clock.advance(1 * MS)
    rig.qutag.stop_stream()
    rig.clock.advance(1 * MS)
    assert_blocks_equal(rig.qutag.read_tags(), rig.scene.between(0, ps(1 * MS)))
    assert len(rig.read_for(1 * MS)) == 0


# --- losses ----------------------------------------------------------------------------
def test_small_buffer_and_slow_read_lose_the_oldest_tags_and_raise_data_lost(rig):
    rig.qutag.buffer_size(100)
    rig.qutag.start_stream()
    got = rig.read_for(1 * MS)
    truth = rig.scene.between(0, ps(1 * MS))
    assert len(truth) > 1000
    assert_blocks_equal(got, TagBlock(truth.timestamps[-100:], truth.channels[-100:]))
    assert rig.qutag.data_lost() is True
    assert rig.qutag.data_lost() is False  # latched, then cleared by the read


def test_data_lost_sees_an_overflow_before_the_read(rig):
    rig.qutag.buffer_size(100)
    rig.qutag.start_stream()
    rig.clock.advance(1 * MS)
    assert rig.qutag.data_lost() is True  # the library's latched flag; no full read has happened yet
    assert rig.qutag.data_lost() is False


def test_full_read_counts_as_loss_even_if_the_library_does_not_flag_it(rig, monkeypatch):
    def never_lost(lost) -> int:
        lost._obj.value = 0
        return 0

    monkeypatch.setattr(rig.sim, "TDC_getDataLost", never_lost)
    rig.qutag.buffer_size(100)
    rig.qutag.start_stream()
    rig.read_for(1 * MS)
    assert rig.qutag.data_lost() is True
    assert rig.qutag.data_lost() is False


def test_silent_drop_window_removes_its_tags_without_data_lost(make_rig):
    rig = make_rig(silent_drop_windows_s=[(0.002, 0.003)])
    rig.qutag.start_stream()
    got = rig.read_for(1.5 * MS, 1.5 * MS, 1 * MS)
    truth = rig.scene.between(0, ps(4 * MS))
    outside = (truth.timestamps < ps(2 * MS)) | (truth.timestamps >= ps(3 * MS))
    assert_blocks_equal(got, TagBlock(truth.timestamps[outside], truth.channels[outside]))
    assert rig.qutag.data_lost() is False


def test_start_stream_clears_a_loss_latched_before_it(rig):
    rig.qutag.buffer_size(10)
    rig.qutag.start_stream()
    rig.clock.advance(1 * MS)
    rig.qutag.stop_stream()
    rig.qutag.buffer_size(1_000_000)
    rig.qutag.start_stream()
    rig.read_for(0.5 * MS)
    assert rig.qutag.data_lost() is False


# --- bad settings and vendor errors -----------------------------------------------------
OUT_OF_RANGE = [
    # (parameter path, bad value, regex for what is allowed, what the sim must still hold)
    ("sync_divider", 3, r"3 is not in \{[1248, ]+\}", lambda sim: sim.sync_divider == 1),
    ("ch1.threshold_v", 5, r"5 is invalid: must be between -2(\.0)? and 3(\.0)?", lambda sim: sim.conditioning[1] == (3, 1, 1.0)),
    ("buffer_size", 0, r"0 is invalid: must be between 1 and 1000000", lambda sim: sim.buffer_size == 0),
    ("exposure_time_ms", 70000, r"must be between 0 and 65535", lambda sim: sim.exposure_time_ms == 100),
    ("ch2.delay_ps", 200_000, r"must be between -100000 and 100000", lambda sim: not sim.delays_ps.any()),
    ("ch1.edge", "up", r"'up' is not in \{", lambda sim: sim.conditioning[1] == (3, 1, 1.0)),
    ("enabled_channels", 64, r"must be between 0 and 31", lambda sim: sim.channel_mask == 0b11111),
]


@pytest.mark.parametrize(("path", "value", "allowed", "sim_unchanged"), OUT_OF_RANGE, ids=[p for p, *_ in OUT_OF_RANGE])
def test_out_of_range_setting_names_parameter_value_and_allowed_and_changes_nothing(rig, path, value, allowed, sim_unchanged):
    param = rig.qutag
    for part in path.split("."):
        param = getattr(param, part)
    before = param()
    with pytest.raises(ValueError) as info:
        param(value)
    message = str(info.value)
    assert param.full_name in message and re.search(allowed, message), message
    assert param() == before
    assert sim_unchanged(rig.sim)


def test_vendor_status_raises_qutag_error_with_function_code_name_and_perror_text(rig):
    with pytest.raises(QuTAGError) as info:
        rig.qutag._call("TDC_setTimestampBufferSize", 0)  # bypasses the validator
    assert str(info.value) == "TDC_setTimestampBufferSize: OutOfRange (10): " + PERROR_TEXTS[10]
    assert (info.value.function, info.value.code, info.value.code_name) == ("TDC_setTimestampBufferSize", 10, "OutOfRange")


@pytest.mark.parametrize(
    ("function", "path", "value"),
    [("TDC_configureSyncDivider", "sync_divider", 4), ("TDC_configureSignalConditioning", "ch1.threshold_v", 0.5),
     ("TDC_setChannelDelays", "ch3.delay_ps", 700), ("TDC_enableChannels", "enabled_channels", 3)],
)
def test_failed_vendor_call_leaves_the_cached_value_and_the_device_unchanged(rig, function, path, value):
    param = rig.qutag
    for part in path.split("."):
        param = getattr(param, part)
    before_cache, before_sim = param(), (rig.sim.sync_divider, dict(rig.sim.conditioning), rig.sim.delays_ps.copy())
    rig.sim.inject_error(function, 3)
    with pytest.raises(QuTAGError, match=f"{function}: DriverError \\(3\\)"):
        param(value)
    assert param() == before_cache
    after_sim = (rig.sim.sync_divider, dict(rig.sim.conditioning), rig.sim.delays_ps)
    assert after_sim[:2] == before_sim[:2] and np.array_equal(after_sim[2], before_sim[2])


def test_buffer_size_cannot_change_while_streaming(rig):
    rig.qutag.start_stream()
    with pytest.raises(InstrumentError, match="buffer_size = 10: cannot change while streaming"):
        rig.qutag.buffer_size(10)
    assert rig.qutag.buffer_size() == 1_000_000
    rig.qutag.stop_stream()
    rig.qutag.buffer_size(10)
    assert rig.qutag.buffer_size() == 10


def test_read_tags_before_start_stream_is_an_error(rig):
    with pytest.raises(InstrumentError, match="start_stream"):
        rig.qutag.read_tags()


def test_unknown_device_id_raises_no_device_and_registers_nothing():
    sim = SimTDCBase(FakeScene(), clock=FakeClock())
    with pytest.raises(QuTAGError, match="TDC_init: NoDevice"):
        QuTAG("qutag_bad_id", library=sim, device_id=7)
    assert not QuTAG.exist("qutag_bad_id")


def test_sim_refuses_calls_before_init():
    sim = SimTDCBase(FakeScene(), clock=FakeClock())
    assert sim.TDC_setExposureTime(10) == 12
    assert sim.TDC_perror(12) == PERROR_TEXTS[12].encode()
    assert set(PERROR_TEXTS) == set(STATUS_NAMES)


# --- library generations and loading ------------------------------------------------------
def test_mc_library_gets_the_two_argument_enable_channels(make_rig):
    rig = make_rig(SimTDCBaseMC)
    assert rig.qutag.library_generation() == "mc"
    assert not hasattr(rig.qutag, "five_channel_mode")
    rig.qutag.enabled_channels(0b00101)
    assert rig.sim.channel_mask == 0b00101
    rig.qutag.start_stream()
    got = rig.read_for(1 * MS)
    assert set(np.unique(got.channels)) == {0, 2}


def test_prototypes_sim_and_driver_use_the_same_function_names():
    source = Path(driver_module.__file__).read_text()
    called = set(re.findall(r"\bTDC_[A-Za-z]+\b", source))
    declared = all_function_names()
    assert called <= declared, called - declared
    for cls, generation in ((SimTDCBase, "standard"), (SimTDCBaseMC, "mc")):
        sim_names = {n for n in dir(cls) if n.startswith("TDC_")}
        assert sim_names == set(PROTOTYPES) | set(GENERATION_PROTOTYPES[generation]), cls.__name__


def test_missing_vendor_library_raises_vendor_library_not_found_naming_it():
    with pytest.raises(VendorLibraryNotFound) as info:
        QuTAG("qutag_missing", library=None, library_path="/nonexistent/libtdcbase.so")
    message = str(info.value)
    for text in ("libtdcbase.so", "/nonexistent/libtdcbase.so", "LABCTL_QUTAG_LIBRARY", "library_path"):
        assert text in message
    assert not QuTAG.exist("qutag_missing")


def test_package_imports_without_the_vendor_library():
    env = {**os.environ, "LABCTL_QUTAG_LIBRARY": "/nonexistent/libtdcbase.so", "LD_LIBRARY_PATH": ""}
    code = "import drivers.qutag as q; print(q.QuTAG.__name__, q.load_tdcbase.__name__)"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["QuTAG", "load_tdcbase"]


def test_scheduled_fault_fails_every_call_of_that_function_from_its_device_time_on(make_rig):
    rig = make_rig(faults=[{"after_s": 0.005, "function": "TDC_getLastTimestamps", "code": 2}])
    rig.qutag.start_stream()
    first = rig.read_for(0.004)  # before the fault: tags come
    assert len(first) > 0
    rig.clock.advance(0.002)
    with pytest.raises(QuTAGError) as info:
        rig.qutag.read_tags()
    assert (info.value.function, info.value.code) == ("TDC_getLastTimestamps", 2)
    with pytest.raises(QuTAGError):  # it stays failed, as a device gone from the bus
        rig.qutag.read_tags()
    assert rig.qutag.data_lost() is False  # other functions (TDC_getDataLost) still answer: nothing overflowed


@pytest.mark.parametrize(
    ("fault", "message"),
    [({"after_s": -1, "function": "TDC_getLastTimestamps", "code": 2}, r"faults\[0\]\.after_s = -1: must be a number of seconds >= 0"),
     ({"after_s": 1, "function": "TDC_nope", "code": 2}, r"faults\[0\]\.function = 'TDC_nope': this library has no such function"),
     ({"after_s": 1, "function": "TDC_getLastTimestamps", "code": 0}, r"faults\[0\]\.code = 0: must be a non-zero vendor status code"),
     ({"after_s": 1}, r"faults\[0\]\.function = None: is required")],
)
def test_scheduled_fault_options_are_checked(fault, message):
    with pytest.raises(ValueError, match=message):
        SimTDCBase(FakeScene(), faults=[fault])

"""Live views as changes: an unchanged view is not resent, and the views rebuilt from deltas
equal the full snapshots, element for element and in dtype."""

from __future__ import annotations

import dataclasses
import math
import pickle

import numpy as np
import pytest

from labctl.analysis import FlidAccumulator, G2Accumulator, IntensityTrace, LifetimeAccumulator
from labctl.analysis.spectrum_live import LiveSpectrum
from labctl.blocks import ChannelMap, FrameBlock, PhotonBlock
from labctl.processes.live_wire import LEFT_OUT, ViewReceiver, ViewSender, compact, restore
from labctl.run import RunInfo

WIRING = ChannelMap(0, 1, 2, 3)
PERIOD_PS = 1_000_000  # 1 MHz laser


def live_sinks() -> dict:
    run = RunInfo("r", "2026-12-07T00:00:00Z", WIRING, {1: "spad_a", 2: "spad_b"}, PERIOD_PS)
    sinks = {"g2": G2Accumulator(), "lifetime": LifetimeAccumulator(), "trace": IntensityTrace(rolling_bins=50),
             "flid": FlidAccumulator(rolling_bins=50), "spectrum": LiveSpectrum(history=8)}
    for sink in sinks.values():
        if hasattr(sink, "open") and not isinstance(sink, LiveSpectrum):
            sink.open(run)
    return sinks


def photons(rng: np.random.Generator, start_ps: int, n: int, span_ps: int) -> PhotonBlock:
    """``n`` photons on SPADs 1 and 2 in ``[start_ps, start_ps + span_ps)``, nanotimes in the period."""
    ts = np.sort(rng.integers(start_ps, start_ps + span_ps, n)).astype(np.int64)
    det = rng.integers(1, 3, n).astype(np.uint8)
    nt = np.minimum(rng.exponential(20_000.0, n), PERIOD_PS - 1).astype(np.int32)  # a 20 ns decay
    return PhotonBlock(ts, det, nt)


def with_frame(block: PhotonBlock, index: int, rng: np.random.Generator) -> PhotonBlock:
    spectrum = rng.integers(100, 5000, (1, 64)).astype(np.float64)  # camera counts: whole numbers
    block.frames = FrameBlock(np.array([index], np.int64), spectrum, np.zeros(1, np.int64), np.zeros(1, np.int64))
    block.skipped_frames = np.empty(0, np.int64)
    return block


def snapshots(sinks: dict) -> dict:
    return {name: (s.rolling_snapshot() if hasattr(s, "rolling_snapshot") else s.snapshot())
            for name, s in sinks.items()}


def assert_view_equals_snapshot(view, snap) -> None:
    left_out = LEFT_OUT.get(type(snap).__name__, ())
    assert type(view) is type(snap)
    for f in dataclasses.fields(snap):
        mine, full = getattr(view, f.name), getattr(snap, f.name)
        if f.name in left_out:
            assert mine is None, f.name
        elif isinstance(full, np.ndarray):
            assert mine.dtype == full.dtype and mine.shape == full.shape, f.name
            np.testing.assert_array_equal(mine, full, err_msg=f.name)
        else:
            assert mine == full or (isinstance(full, float) and math.isnan(full) and math.isnan(mine)), f.name


def poll(sender: ViewSender, receiver: ViewReceiver, sinks: dict) -> tuple[dict, int, set]:
    """One poll as the window's link does it: (snapshots, bytes crossing, views changed)."""
    snaps = snapshots(sinks)
    message = pickle.dumps(sender.encode(snaps, receiver.have()))
    changed = receiver.apply(pickle.loads(message))
    return snaps, len(message), changed


def test_views_rebuilt_from_deltas_equal_the_full_snapshots_and_cost_a_fraction() -> None:
    rng = np.random.default_rng(3)
    sinks, sender, receiver = live_sinks(), ViewSender(), ViewReceiver()
    t_ps, sizes, full_sizes = 0, [], []
    for step in range(40):  # 40 polls of 25 ms: the trace (50 bins of 10 ms) rolls, frames arrive every 4th
        block = photons(rng, t_ps, 2_500, 25_000_000_000)
        if step % 4 == 0:
            block = with_frame(block, step // 4, rng)
        for sink in sinks.values():
            sink.update(block)
        t_ps += 25_000_000_000
        snaps, size, changed = poll(sender, receiver, sinks)
        for name, snap in snaps.items():
            assert_view_equals_snapshot(receiver.views[name], snap)
        if step > 0:
            sizes.append(size)
            full_sizes.append(len(pickle.dumps(ViewSender().encode(snaps, {}))))
        assert changed == set(snaps) if step % 4 == 0 else changed == set(snaps) - {"spectrum"}
    assert snaps["trace"].first_bin > 0  # the rolling window did roll
    assert np.median(sizes) < 0.25 * np.median(full_sizes), (np.median(sizes), np.median(full_sizes))


def test_an_unchanged_view_is_not_resent() -> None:
    rng = np.random.default_rng(4)
    sinks, sender, receiver = live_sinks(), ViewSender(), ViewReceiver()
    block = with_frame(photons(rng, 0, 5_000, 200_000_000_000), 0, rng)
    for sink in sinks.values():
        sink.update(block)
    _, first_size, first_changed = poll(sender, receiver, sinks)
    versions = receiver.have()
    views = dict(receiver.views)
    _, second_size, second_changed = poll(sender, receiver, sinks)  # no new photons nor frames
    assert first_changed == set(sinks) and first_size > 20_000
    assert second_changed == set() and second_size < 200, second_size
    assert receiver.have() == versions
    assert all(receiver.views[name] is views[name] for name in sinks)  # the very objects: nothing to redraw


def test_a_client_that_missed_a_version_gets_the_full_view() -> None:
    rng = np.random.default_rng(5)
    sinks, sender = live_sinks(), ViewSender()
    window, other = ViewReceiver(), ViewReceiver()
    t_ps = 0
    for step in range(6):  # two clients in turn: each poll is against a version the sender no longer keeps
        block = photons(rng, t_ps, 3_000, 30_000_000_000)
        t_ps += 30_000_000_000
        for sink in sinks.values():
            sink.update(block)
        receiver = window if step % 2 == 0 else other
        snaps = snapshots(sinks)
        messages = sender.encode(snaps, receiver.have())
        assert all(m["base"] is None for m in messages.values() if m is not None)
        receiver.apply(messages)
        for name, snap in snaps.items():
            assert_view_equals_snapshot(receiver.views[name], snap)


def test_a_delta_against_a_version_not_held_is_refused() -> None:
    rng = np.random.default_rng(6)
    sinks, sender, receiver = live_sinks(), ViewSender(), ViewReceiver()
    for sink in sinks.values():
        sink.update(photons(rng, 0, 1_000, 10_000_000_000))
    receiver.apply(sender.encode(snapshots(sinks), receiver.have()))
    held = receiver.have()
    for sink in sinks.values():
        sink.update(photons(rng, 10_000_000_000, 1_000, 10_000_000_000))
    messages = sender.encode(snapshots(sinks), held)
    with pytest.raises(ValueError, match=r"live view g2: a delta against version \d+, but version None is held"):
        ViewReceiver().apply({"g2": messages["g2"]})


@pytest.mark.parametrize(("values", "dtype", "sent"), [
    ([0, 3, 255], np.int64, np.uint8),
    ([-1, 3, 200], np.int64, np.int16),
    ([0, 70_000], np.int64, np.uint32),
    ([-(2 ** 40), 1], np.int64, np.int64),
    ([120.0, 4095.0], np.float64, np.uint16),  # camera counts: whole numbers
    ([0.5, 2.0], np.float64, np.float64),  # not whole: as they are
    ([np.nan, 2.0], np.float32, np.float32),  # a lost frame's NaN row
])
def test_compact_dtype_is_the_smallest_exact_one(values, dtype, sent) -> None:
    array = np.array(values, dtype)
    packed = compact(array)
    assert packed.dtype == np.dtype(sent)
    back = restore(packed, array.dtype)
    assert back.dtype == array.dtype
    np.testing.assert_array_equal(back, array)


def test_station_polls_send_changes_that_rebuild_the_full_snapshots_exactly() -> None:
    """A real station process: during a run the views cross as changes (a fraction of the full
    snapshots); once the run has ended a poll sends nothing, and the views held equal the full
    snapshots of the same sinks."""
    import time

    from gui.main_window import LIVE_SINKS, SINK_NAMES
    from labctl.processes.station_process import StationProcess
    from tests.conftest import sim_config

    receiver, sizes = ViewReceiver(), []
    with StationProcess(sim_config(time_scale=4.0)) as process:
        process.start_run(None, sinks=LIVE_SINKS)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(sizes) < 40:
            poll = process.poll(SINK_NAMES, views_have=receiver.have(), wait_s=0.08)
            assert poll["snapshots"] == {}
            changed = receiver.apply(poll["views"])
            if poll["status"].get("elapsed_s", 0.0) > 1.0 and changed:
                sizes.append(len(pickle.dumps(poll["views"])))
        process.stop_run()
        while process.poll(())["summary"] is None and time.monotonic() < deadline:
            time.sleep(0.05)
        receiver.apply(process.poll(SINK_NAMES, views_have=receiver.have())["views"])
        quiet = process.poll(SINK_NAMES, views_have=receiver.have())
        full = process.poll(SINK_NAMES)["snapshots"]  # as before: every snapshot in full
    assert len(sizes) == 40
    assert all(message is None for message in quiet["views"].values())
    assert len(pickle.dumps(quiet["views"])) < 200
    full_size = len(pickle.dumps(full))
    assert np.median(sizes) < 0.1 * full_size, (np.median(sizes), full_size)
    for name in SINK_NAMES:
        assert_view_equals_snapshot(receiver.views[name], full[name])

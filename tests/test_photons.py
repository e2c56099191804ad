"""T2 tags -> photons: exact nanotimes, sync dividers, gaps, chunk invariance."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labctl.blocks import NO_NANOTIME, ChannelMap, TagBlock
from labctl.acquisition.photons import PhotonConverter

CHANNELS = ChannelMap(laser_sync=0, spad_a=1, spad_b=2, frame_marker=3)


def make_stream(rng: np.random.Generator, n_pulses: int, period_ps: float, divider: int = 1,
                drop_syncs: slice | None = None, n_photons: int = 3000, first_photon_ps: int = 0):
    """Pulses at floor(k*period); a sync tag on every divider-th pulse; photons anywhere.

    Returns the tag block and the true nanotime of every photon (from the true pulse grid).
    """
    pulses = np.floor(np.arange(n_pulses) * period_ps).astype(np.int64) + 5_000
    syncs = pulses[::divider]
    if drop_syncs is not None:
        syncs = np.delete(syncs, np.arange(syncs.size)[drop_syncs])
    photons = np.sort(rng.integers(first_photon_ps, int(pulses[-1]), n_photons)).astype(np.int64)
    pulse_idx = np.searchsorted(pulses, photons, side="right") - 1
    truth = np.where(pulse_idx >= 0, photons - pulses[np.maximum(pulse_idx, 0)], -1)
    truth[photons < syncs[0]] = -1
    ts = np.concatenate([syncs, photons])
    ch = np.concatenate([np.zeros(syncs.size, np.uint8), rng.integers(1, 3, photons.size).astype(np.uint8)])
    order = np.argsort(ts, kind="stable")
    return TagBlock(ts[order], ch[order]), photons, truth


def convert(block: TagBlock, cuts: list[int], divider: int = 1, software: int = 1):
    converter = PhotonConverter(CHANNELS, divider, software)
    edges = [0, *sorted(cuts), len(block)]
    outs = [converter.process(TagBlock(block.timestamps[a:b].copy(), block.channels[a:b].copy()))
            for a, b in zip(edges[:-1], edges[1:])]
    outs.append(converter.finish())
    return (np.concatenate([o.timestamps for o in outs]), np.concatenate([o.nanotimes for o in outs]),
            [loss for o in outs for loss in o.losses], converter)


def test_nanotime_is_delay_after_preceding_sync_exactly():
    block, photons, truth = make_stream(np.random.default_rng(1), 2000, 1_000_000.0)
    ts, nano, losses, _ = convert(block, [])
    np.testing.assert_array_equal(ts, photons)
    np.testing.assert_array_equal(nano, truth)
    assert losses == []


def test_photons_before_first_sync_have_no_nanotime():
    block, photons, truth = make_stream(np.random.default_rng(2), 200, 1_000_000.0)
    _, nano, _, _ = convert(block, [])
    before = photons < 5_000
    assert np.all(nano[before] == NO_NANOTIME)
    assert np.all(nano[~before] >= 0)


@pytest.mark.parametrize("divider", [2, 4, 8])
def test_hardware_sync_divider_reconstructs_skipped_pulses(divider):
    # a laser clock that is not a whole number of ps: the period is measured interval by interval
    block, photons, truth = make_stream(np.random.default_rng(divider), 4000, 999_999.75, divider=divider)
    _, nano, losses, conv = convert(block, [100, 2000], divider=divider)
    valid = truth >= 0
    assert np.max(np.abs(nano[valid] - truth[valid])) <= 1  # floor of a fractional period: at most 1 ps apart
    assert losses == []
    assert conv.measured_pulse_period_ps == pytest.approx(999_999.75, abs=0.01)


def test_software_divider_keeps_nanotimes_exact():
    block, photons, truth = make_stream(np.random.default_rng(5), 3000, 1_000_000.0)
    _, nano_soft, _, _ = convert(block, [333], software=4)
    _, nano_full, _, _ = convert(block, [333])
    # photons before the first kept sync are the same (the first sync is always kept)
    np.testing.assert_array_equal(nano_soft, nano_full)


def test_sync_gap_is_a_loss_with_its_range_and_missing_syncs():
    block, photons, truth = make_stream(np.random.default_rng(3), 3000, 1_000_000.0, drop_syncs=slice(1000, 1040))
    ts, nano, losses, _ = convert(block, [500, 2500])
    assert len(losses) == 1
    loss = losses[0]
    assert (loss.source, loss.missing_syncs) == ("sync_gap", 40)
    assert loss.start_ps == 5_000 + 999 * 1_000_000 and loss.stop_ps == 5_000 + 1040 * 1_000_000
    # inside the gap the nominal period still gives the true nanotime
    np.testing.assert_array_equal(nano, truth)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 6_000), max_size=30), st.sampled_from([1, 2, 4]), st.integers(1, 3))
def test_chunk_invariance_for_any_block_boundaries(cuts, divider, software):
    block, _, _ = make_stream(np.random.default_rng(7), 2500, 1_000_000.0, divider=divider,
                              drop_syncs=slice(300, 320), n_photons=4000)
    cuts = [c % (len(block) + 1) for c in cuts]
    ref = convert(block, [], divider, software)
    got = convert(block, cuts, divider, software)
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_array_equal(got[1], ref[1])
    assert got[2] == ref[2]


def test_held_back_photons_stay_bounded_when_syncs_stop():
    # syncs stop after 100 pulses; photons keep coming: they must be released, not held forever
    rng = np.random.default_rng(9)
    syncs = np.arange(100, dtype=np.int64) * 1_000_000
    photons = np.sort(rng.integers(0, 1_000_000_000, 5000)).astype(np.int64)
    ts = np.concatenate([syncs, photons])
    ch = np.concatenate([np.zeros(100, np.uint8), np.ones(5000, np.uint8)])
    order = np.argsort(ts, kind="stable")
    converter = PhotonConverter(CHANNELS)
    out = converter.process(TagBlock(ts[order], ch[order]))
    assert len(out) == 5000  # everything 1.5 sync intervals past the last sync is released

"""The converter's numba kernels equal their numpy versions exactly (speed is in benchmarks/, not here).

The numpy versions are what the first run after an install runs (labctl.analysis.kernel_backend)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from labctl.acquisition.photon_kernels import photon_nanotimes, split_tags_after, sync_gaps

EMPTY_T = np.empty(0, np.int64)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32), st.sampled_from([1, 2, 3, 5]), st.integers(0, 255), st.integers(0, 40), st.integers(-3, 3),
       st.sampled_from([-1, 3, 4, 5]))
def test_split_after_a_prefix_equals_prefix_then_reference(seed, software, sync_index, n_before, offset, marker):
    rng = np.random.default_rng(seed)
    ts = np.sort(rng.integers(0, 10_000, 2000)).astype(np.int64)
    ch = rng.integers(0, 6, 2000).astype(np.uint8)
    syncs_before = np.sort(rng.integers(-100, 0, n_before % 3)).astype(np.int64)
    t_before = np.sort(rng.integers(-100, 0, n_before)).astype(np.int64)
    d_before = rng.integers(1, 3, n_before).astype(np.uint8)
    iv_before = rng.integers(-1, 3, n_before).astype(np.int64)
    ts[:200] = ts[0]  # many ties
    got = split_tags_after.numba(ts, ch, 0, 1, 2, marker, sync_index, software, syncs_before, t_before, d_before,
                                 iv_before, offset)
    same = split_tags_after.numpy(ts, ch, 0, 1, 2, marker, sync_index, software, syncs_before, t_before, d_before,
                                  iv_before, offset)
    for g, w in zip(got[:5], same[:5]):
        np.testing.assert_array_equal(g, w)
        assert g.dtype == w.dtype
    assert got[5] == same[5]
    # the numpy version on the block alone, the prefix added by hand
    ref = split_tags_after.numpy(ts, ch, 0, 1, 2, marker, sync_index, software, EMPTY_T, EMPTY_T,
                                 np.empty(0, np.uint8), EMPTY_T, 0)
    want = (np.concatenate([syncs_before, ref[0]]), np.concatenate([t_before, ref[1]]),
            np.concatenate([d_before, ref[2]]), np.concatenate([iv_before, ref[3] + syncs_before.size + offset]),
            ref[4])
    for g, w in zip(got[:5], want):
        np.testing.assert_array_equal(g, w)
        assert g.dtype == w.dtype
    assert got[5] == ref[5]


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32), st.sampled_from([1, 2, 4, 8]), st.booleans(), st.sampled_from([1_000_000, 12_503]))
def test_nanotime_kernel_equals_numpy_reference(seed, pulses, open_is_gap, nominal):
    rng = np.random.default_rng(seed)
    period = nominal * (1 + rng.uniform(-0.01, 0.01))
    steps = np.where(rng.random(300) < 0.05, rng.integers(2, 6, 300), 1)  # some gaps of missing syncs
    syncs = np.floor(np.cumsum(steps) * period).astype(np.int64)
    photons = np.sort(rng.integers(int(syncs[0]) - nominal, int(syncs[-1]) + 3 * nominal, 2000)).astype(np.int64)
    interval = np.searchsorted(syncs, photons, side="right") - 1
    ready = photons.size if open_is_gap else int(np.searchsorted(interval, syncs.size - 1))
    got = photon_nanotimes.numba(photons, interval, syncs, ready, nominal, pulses, open_is_gap)
    want = photon_nanotimes.numpy(photons, interval, syncs, ready, nominal, pulses, open_is_gap)
    np.testing.assert_array_equal(got, want)
    assert got.dtype == want.dtype == np.int32


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32), st.integers(0, 50))
def test_sync_gap_kernel_equals_numpy_reference(seed, n):
    rng = np.random.default_rng(seed)
    syncs = np.cumsum(rng.choice([1000, 1000, 1000, 1500, 1501, 4000], n)).astype(np.int64)
    np.testing.assert_array_equal(sync_gaps.numba(syncs, 1500), sync_gaps.numpy(syncs, 1500))


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32), st.integers(0, 3000))
def test_channel_count_kernel_equals_bincount(seed, n):
    from labctl.analysis._kernels import channel_counts

    rng = np.random.default_rng(seed)
    channels = np.where(rng.random(n) < 0.7, 0, rng.integers(0, 256, n)).astype(np.uint8)
    got = channel_counts.numba(channels)
    np.testing.assert_array_equal(got, channel_counts.numpy(channels))
    np.testing.assert_array_equal(got, np.bincount(channels, minlength=256))
    assert got.dtype == channel_counts.numpy(channels).dtype == np.int64 and got.shape == (256,)

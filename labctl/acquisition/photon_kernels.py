"""The per-tag and per-photon loops of the converter, as small numba functions.

``split_tags_after`` is the one pass over every tag: it splits a sorted T2 block into
syncs, photons and markers.  ``photon_nanotimes`` is one pass over the photons
that are ready, ``sync_gaps`` one pass over the sync tags.  Each has a plain
numpy version (``*_numpy``, same signature and results): the kernel's test oracle, and
what the first run after an install runs while numba compiles for the next one
(:mod:`labctl.analysis.kernel_backend`).

Why the loops look as they do: at 1 MHz sync and a few hundred kcps of photons
the channel sequence is random (~70 % syncs), so an ``if`` on the channel
mispredicts on almost every photon.  ``split_tags_after`` is therefore branch-free:
every tag is written to the end of every output, and each output's length
advances by 0 or 1 (unsigned cursors, so no negative-index wraparound checks).
It measured 2.5-3x faster than the branching loop (bench_engine.py).
"""

from __future__ import annotations

import numpy as np

from labctl.analysis.kernel_backend import kernel
from labctl.blocks import CHANNEL_DTYPE, NANOTIME_DTYPE, NO_NANOTIME, TIMESTAMP_DTYPE

WARM_UP = "labctl.acquisition.warmup:compile_kernels"
"""What calls these kernels with a run's types (:func:`labctl.analysis.kernel_backend.kernel`)."""


def split_tags_after_numpy(timestamps: np.ndarray, channels: np.ndarray, sync_channel: int, detector_a: int,
                           detector_b: int, marker_channel: int, sync_index: int, software_divider: int,
                           syncs_before: np.ndarray, photons_t_before: np.ndarray, photons_d_before: np.ndarray,
                           photons_iv_before: np.ndarray, interval_offset: int) -> tuple:
    """numpy version of :func:`split_tags_after` (same arguments and results)."""
    is_sync = channels == sync_channel
    sync_all = timestamps[is_sync]
    keep = (sync_index + np.arange(sync_all.size, dtype=np.int64)) % software_divider == 0
    kept_flag = np.zeros(timestamps.size, np.int64)
    kept_flag[np.flatnonzero(is_sync)[keep]] = 1
    is_photon = (channels == detector_a) | (channels == detector_b)
    interval = (np.cumsum(kept_flag) - kept_flag)[is_photon] + (syncs_before.shape[0] + interval_offset)
    markers = timestamps[channels == marker_channel] if marker_channel >= 0 else np.empty(0, TIMESTAMP_DTYPE)
    return (np.concatenate((syncs_before, sync_all[keep])).astype(TIMESTAMP_DTYPE, copy=False),
            np.concatenate((photons_t_before, timestamps[is_photon])).astype(TIMESTAMP_DTYPE, copy=False),
            np.concatenate((photons_d_before, channels[is_photon])).astype(CHANNEL_DTYPE, copy=False),
            np.concatenate((photons_iv_before, interval)).astype(np.int64, copy=False),
            markers, int(sync_index) + int(sync_all.size))


@kernel(split_tags_after_numpy, warm_up=WARM_UP, nogil=True)
def split_tags_after(timestamps, channels, sync_channel, detector_a, detector_b, marker_channel,
                     sync_index, software_divider, syncs_before, photons_t_before, photons_d_before,
                     photons_iv_before, interval_offset):  # pragma: no cover - compiled
    """Split tags by channel in one pass, appending to what came before.

    Args:
        timestamps, channels: the block (int64 ps, uint8), sorted by time.
        sync_channel, detector_a, detector_b, marker_channel: channel numbers
            (``marker_channel`` -1 = none).
        sync_index: global index of the first sync tag of this block (for the divider).
        software_divider: keep sync tags whose global index is a multiple of this.
        syncs_before: kept sync times (int64 ps) written first into the sync output.
        photons_t_before, photons_d_before, photons_iv_before: photons (int64 ps,
            uint8, int64 interval) written first into the photon outputs, unchanged.
        interval_offset: added to the interval index of this block's photons.

    Returns:
        (syncs_before + kept sync times, photons before + photon times, + photon
        channels, + photon interval index = number of kept syncs before the photon
        in the sync output (``syncs_before`` included) + ``interval_offset``,
        marker times, next global sync index).  A tag on a channel that is both
        sync and detector (or marker) goes to both outputs, as in the reference.
    """
    n = timestamps.shape[0]
    # Counting pass (vectorised by LLVM: ~0.25 ns per tag), so that every output is
    # allocated once at its final size (+1: the branch-free writes go one past the end).
    n_sync_all = 0
    n_photon = 0
    n_marker = 0
    for i in range(n):
        c = channels[i]
        n_sync_all += c == sync_channel
        n_photon += (c == detector_a) | (c == detector_b)
        n_marker += c == marker_channel
    start_phase = sync_index % software_divider
    # kept = global indices in [sync_index, sync_index + n_sync_all) that are multiples of the divider
    n_sync = (n_sync_all + (software_divider - start_phase) % software_divider + software_divider - 1) \
        // software_divider
    n_s0 = syncs_before.shape[0]
    n_p0 = photons_t_before.shape[0]
    syncs = np.empty(n_s0 + n_sync + 1, np.int64)
    photon_t = np.empty(n_p0 + n_photon + 1, np.int64)
    photon_d = np.empty(n_p0 + n_photon + 1, np.uint8)
    photon_iv = np.empty(n_p0 + n_photon + 1, np.int64)
    markers = np.empty(n_marker + 1, np.int64)
    for i in range(n_s0):  # element by element: a slice assignment compiles numba's shape-error message (~3 s)
        syncs[i] = syncs_before[i]
    for i in range(n_p0):
        photon_t[i] = photons_t_before[i]
        photon_d[i] = photons_d_before[i]
        photon_iv[i] = photons_iv_before[i]
    ns = np.uint64(n_s0)
    nph = np.uint64(n_p0)
    nm = np.uint64(0)
    s = np.int64(sync_channel)
    a = np.int64(detector_a)
    b = np.int64(detector_b)
    m = np.int64(marker_channel)
    iv_offset = np.int64(interval_offset)
    if software_divider == 1:
        for i in range(n):
            c = np.int64(channels[i])
            t = timestamps[i]
            syncs[ns] = t
            photon_t[nph] = t
            photon_d[nph] = c
            photon_iv[nph] = np.int64(ns) + iv_offset
            markers[nm] = t
            ns += np.uint64(c == s)
            nph += np.uint64((c == a) | (c == b))
            nm += np.uint64(c == m)
    else:
        # The divider is a phase counter: an integer modulo per tag costs more than the rest.
        phase = np.int64(start_phase)
        divider = np.int64(software_divider)
        for i in range(n):
            c = np.int64(channels[i])
            t = timestamps[i]
            is_sync = c == s
            syncs[ns] = t
            photon_t[nph] = t
            photon_d[nph] = c
            photon_iv[nph] = np.int64(ns) + iv_offset
            markers[nm] = t
            ns += np.uint64(is_sync & (phase == 0))
            phase += np.int64(is_sync)
            phase = 0 if phase == divider else phase
            nph += np.uint64((c == a) | (c == b))
            nm += np.uint64(c == m)
    return syncs[:ns], photon_t[:nph], photon_d[:nph], photon_iv[:nph], markers[:nm], sync_index + n_sync_all


def sync_gaps_numpy(syncs: np.ndarray, gap_threshold_ps: int) -> np.ndarray:
    """numpy version of :func:`sync_gaps`."""
    return np.flatnonzero(np.diff(syncs) > gap_threshold_ps).astype(np.int64)


@kernel(sync_gaps_numpy, warm_up=WARM_UP, nogil=True)
def sync_gaps(syncs, gap_threshold_ps):  # pragma: no cover - compiled
    """Indices i with ``syncs[i + 1] - syncs[i] > gap_threshold_ps`` (int64), in one pass over the syncs."""
    n_gaps = 0
    for i in range(syncs.shape[0] - 1):
        n_gaps += syncs[i + 1] - syncs[i] > gap_threshold_ps
    out = np.empty(n_gaps, np.int64)
    k = 0
    if n_gaps:
        for i in range(syncs.shape[0] - 1):
            if syncs[i + 1] - syncs[i] > gap_threshold_ps:
                out[k] = i
                k += 1
    return out


def photon_nanotimes_numpy(photons_t: np.ndarray, interval: np.ndarray, syncs: np.ndarray, n_ready: int,
                               nominal_ps: int, pulses_per_sync: int, open_is_gap: bool) -> np.ndarray:
    """numpy version of :func:`photon_nanotimes` (same arguments and results)."""
    t, iv = photons_t[:n_ready], interval[:n_ready]
    out = np.full(n_ready, NO_NANOTIME, NANOTIME_DTYPE)
    has = iv >= 0
    idx = iv[has]
    offset = t[has] - syncs[idx]
    lengths = np.append(np.diff(syncs), nominal_ps)[idx]
    in_gap = np.append(np.diff(syncs) > (3 * nominal_ps) // 2, bool(open_is_gap))[idx]
    lengths = np.where(in_gap, nominal_ps, lengths)
    k = (offset * pulses_per_sync) // lengths
    nano = offset - (k * lengths) // pulses_per_sync
    out[has] = np.where((pulses_per_sync == 1) & ~in_gap, offset, nano).astype(NANOTIME_DTYPE)
    return out


@kernel(photon_nanotimes_numpy, warm_up=WARM_UP, nogil=True)
def photon_nanotimes(photons_t, interval, syncs, n_ready, nominal_ps, pulses_per_sync,
                     open_is_gap):  # pragma: no cover - compiled
    """Nanotimes (int32 ps) of the first ``n_ready`` photons, in one pass.

    Args:
        photons_t: photon times (int64 ps), in time order.
        interval: per photon the index in ``syncs`` of the preceding sync (-1: none:
            ``NO_NANOTIME``); for the first ``n_ready`` photons at most ``len(syncs) - 1``,
            and equal to it only when ``open_is_gap``.
        syncs: sync times (int64 ps).
        nominal_ps: nominal sync interval; an interval longer than 1.5 of it is a gap.
        pulses_per_sync: pulses per sync interval (hardware x software divider).
        open_is_gap: whether the interval after the last sync is a gap.

    In a normal interval ``[s_i, s_i+1)`` of ``P = pulses_per_sync`` pulses the pulses are
    at ``s_i + floor(k (s_i+1 - s_i) / P)``; in a gap at ``s_i + floor(k nominal / P)``
    (k unbounded).  The nanotime is the photon's delay after the preceding pulse,
    exact in integer ps, cast to int32 as numpy's ``astype`` does.
    """
    out = np.empty(n_ready, np.int32)
    last = syncs.shape[0] - 1
    gap_threshold = (3 * nominal_ps) // 2
    pulses = np.int64(pulses_per_sync)
    for i in range(n_ready):
        iv = interval[i]
        if iv < 0:
            out[i] = -1
            continue
        offset = photons_t[i] - syncs[iv]
        if iv < last:
            length = syncs[iv + 1] - syncs[iv]
            in_gap = length > gap_threshold
        else:
            length = nominal_ps
            in_gap = open_is_gap
        if in_gap:
            length = nominal_ps
        if pulses == 1 and not in_gap:
            out[i] = np.int32(offset)
        else:
            k = (offset * pulses) // length
            out[i] = np.int32(offset - (k * length) // pulses)
    return out

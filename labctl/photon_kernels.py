"""The one pass over every tag: split a sorted T2 block into syncs, photons and markers.

This is the only per-tag loop of the engine, so it is a small numba function;
``split_tags_reference`` is the plain numpy version kept as its test oracle.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from labctl.blocks import CHANNEL_DTYPE, TIMESTAMP_DTYPE


@njit(cache=True, nogil=True)
def split_tags(timestamps, channels, sync_channel, detector_a, detector_b, marker_channel,
               sync_index, software_divider):  # pragma: no cover - compiled
    """Split tags by channel in one pass.

    Args:
        timestamps, channels: the block (int64 ps, uint8), sorted by time.
        sync_channel, detector_a, detector_b, marker_channel: channel numbers
            (``marker_channel`` -1 = none).
        sync_index: global index of the first sync tag of this block (for the divider).
        software_divider: keep sync tags whose global index is a multiple of this.

    Returns:
        (kept sync times, photon times, photon channels, photon interval index =
        number of kept syncs of this block before the photon, marker times,
        next global sync index).
    """
    n = timestamps.shape[0]
    # First pass: sizes, so that every output is allocated once at its final size.
    # The divider is a phase counter: an integer modulo per tag costs more than the rest.
    start_phase = sync_index % software_divider
    phase = start_phase
    n_sync_all = 0
    n_sync = 0
    n_photon = 0
    n_marker = 0
    for i in range(n):
        c = channels[i]
        if c == sync_channel:
            if phase == 0:
                n_sync += 1
            phase += 1
            if phase == software_divider:
                phase = 0
            n_sync_all += 1
        elif c == detector_a or c == detector_b:
            n_photon += 1
        elif c == marker_channel:
            n_marker += 1
    syncs = np.empty(n_sync, np.int64)
    photon_t = np.empty(n_photon, np.int64)
    photon_d = np.empty(n_photon, np.uint8)
    photon_iv = np.empty(n_photon, np.int64)
    markers = np.empty(n_marker, np.int64)
    ns = 0
    nph = 0
    nm = 0
    phase = start_phase
    for i in range(n):
        c = channels[i]
        if c == sync_channel:
            if phase == 0:
                syncs[ns] = timestamps[i]
                ns += 1
            phase += 1
            if phase == software_divider:
                phase = 0
        elif c == detector_a or c == detector_b:
            photon_t[nph] = timestamps[i]
            photon_d[nph] = c
            photon_iv[nph] = ns
            nph += 1
        elif c == marker_channel:
            markers[nm] = timestamps[i]
            nm += 1
    return syncs, photon_t, photon_d, photon_iv, markers, sync_index + n_sync_all


def split_tags_reference(timestamps: np.ndarray, channels: np.ndarray, sync_channel: int, detector_a: int,
                         detector_b: int, marker_channel: int, sync_index: int, software_divider: int):
    """numpy version of :func:`split_tags` (same results; the oracle of the tests)."""
    is_sync = channels == sync_channel
    sync_all = timestamps[is_sync]
    keep = (sync_index + np.arange(sync_all.size, dtype=np.int64)) % software_divider == 0
    kept_flag = np.zeros(timestamps.size, np.int64)
    kept_flag[np.flatnonzero(is_sync)[keep]] = 1
    is_photon = (channels == detector_a) | (channels == detector_b)
    interval = (np.cumsum(kept_flag) - kept_flag)[is_photon]
    markers = timestamps[channels == marker_channel] if marker_channel >= 0 else np.empty(0, TIMESTAMP_DTYPE)
    return (sync_all[keep], timestamps[is_photon], channels[is_photon].astype(CHANNEL_DTYPE), interval.astype(np.int64),
            markers, sync_index + int(sync_all.size))

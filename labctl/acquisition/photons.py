"""T2 time tags -> photons with macrotime and nanotime, exactly across block boundaries.

Conventions (a public contract, see README "Nanotimes"):

* A photon's nanotime is its delay in ps after the laser pulse that preceded it:
  ``nanotime = t_photon - t_pulse`` with ``t_pulse <= t_photon`` (a photon with the
  same timestamp as a sync tag belongs to that pulse and has nanotime 0).
* Photons before the first sync tag of the run have no nanotime: ``NO_NANOTIME`` (-1).
* With a sync divider D (the tagger's 1/2/4/8 times labctl's own software divider)
  only every D-th pulse has a sync tag.  Between two consecutive sync tags
  ``s_i < s_{i+1}`` the pulses are reconstructed as
  ``s_i + floor(k * (s_{i+1} - s_i) / n_i)`` for k = 0..n_i-1, where n_i is the
  number of pulses in the interval: D, or more where sync tags are missing.
  The pulse period is therefore measured from the stream, interval by interval
  (it follows a drifting laser clock), and the nanotime is exact in integer ps.
* The nominal sync interval (used only to count pulses in an interval and to
  spot gaps) is the median of the first ``ESTABLISH_INTERVALS`` intervals of the
  run.  Photons are held back until it is known and, afterwards, until the next
  sync tag arrives, so the result does not depend on where blocks are cut.
* A sync interval longer than 1.5 nominal intervals is a gap: sync tags, and
  with them photons, were lost.  It is reported as a ``LossRecord`` with source
  ``"sync_gap"`` and the number of missing sync tags.  Photons inside a gap get
  their nanotime from the nominal pulse period counted from the sync before the
  gap; they are released as soon as the stream has passed 1.5 nominal intervals
  after that sync, so held-back data stay bounded when the syncs stop.
"""

from __future__ import annotations

import numpy as np

from labctl.acquisition.photon_kernels import photon_nanotimes, split_tags_after, sync_gaps
from labctl.blocks import (
    CHANNEL_DTYPE,
    NANOTIME_DTYPE,
    NO_NANOTIME,
    TIMESTAMP_DTYPE,
    ChannelMap,
    LossRecord,
    PhotonBlock,
    TagBlock,
)

ESTABLISH_INTERVALS = 16
"""Sync intervals whose median fixes the nominal sync interval at the start of a run."""


class PhotonConverter:
    """Stateful, chunk-invariant converter from ``TagBlock`` to ``PhotonBlock``.

    Args:
        channels: which tagger channel is the sync, the SPADs and the frame marker.
        hardware_sync_divider: divider applied by the tagger to the sync input (1, 2, 4, 8).
        software_sync_divider: extra divider applied here (keep every n-th sync tag),
            to cut the work on the sync stream; 1 = off.
    """

    def __init__(
        self, channels: ChannelMap, hardware_sync_divider: int = 1, software_sync_divider: int = 1
    ) -> None:
        if hardware_sync_divider < 1 or software_sync_divider < 1:
            raise ValueError(
                f"sync divider: hardware {hardware_sync_divider}, software {software_sync_divider}: "
                "both must be integers >= 1"
            )
        self.channels = channels
        self.software_sync_divider = int(software_sync_divider)
        self.pulses_per_sync = int(hardware_sync_divider) * int(software_sync_divider)
        self._sync_index = 0  # global index of raw sync tags seen (for the software divider)
        self._syncs: np.ndarray = np.empty(0, TIMESTAMP_DTYPE)  # syncs not yet consumed (the last one is kept)
        self._held_t: np.ndarray = np.empty(0, TIMESTAMP_DTYPE)
        self._held_d: np.ndarray = np.empty(0, CHANNEL_DTYPE)
        self._held_iv: np.ndarray = np.empty(0, np.int64)  # interval index of held photons in self._syncs
        self._first_intervals: list[np.ndarray] = []
        self.nominal_sync_interval_ps: int | None = None
        self._emitted_until_ps: int | None = None
        self._data_until_ps: int | None = None  # last timestamp seen on any channel
        self.sync_count = 0  # sync tags used (after the software divider)
        self._interval_sum_ps = 0  # for the measured mean period
        self._interval_pulses = 0

    # -- public -------------------------------------------------------------------------
    @property
    def measured_pulse_period_ps(self) -> float | None:
        """Mean laser pulse period measured from the sync stream so far (ps)."""
        if self._interval_pulses == 0:
            return None
        return self._interval_sum_ps / self._interval_pulses

    def process(self, block: TagBlock) -> PhotonBlock:
        """Convert one block of tags; photons after the last sync are held for the next call."""
        ts = block.timestamps
        if ts.size:
            self._data_until_ps = int(ts[-1])
        marker = self.channels.frame_marker
        carried = self._syncs.size
        # One pass: the carried syncs and held photons are written first into the outputs
        # (no concatenation), the block's photons get their interval in the joined syncs.
        syncs, photons_t, photons_d, interval, markers, self._sync_index = split_tags_after(
            ts, block.channels, self.channels.laser_sync, self.channels.spad_a, self.channels.spad_b,
            -1 if marker is None else marker, self._sync_index, self.software_sync_divider,
            self._syncs, self._held_t, self._held_d, self._held_iv, -1,
        )
        self.sync_count += int(syncs.size) - carried
        self._syncs = syncs
        out = self._convert(photons_t, photons_d, interval, final=False)
        out.markers = markers
        return out

    def finish(self, end_ps: int | None = None) -> PhotonBlock:
        """Flush held photons at the end of the run (their last interval uses the nominal period).

        Args:
            end_ps: where the recorded stream ends (the run's requested end), if known.
                Sync tags missing between the last sync and ``end_ps`` are a
                ``sync_gap`` loss like any other.
        """
        tail_gap = self._tail_gap(end_ps)
        out = self._convert(self._held_t, self._held_d, self._held_iv, final=True)
        if tail_gap is not None:
            out.losses.append(tail_gap)
        self._held_t = np.empty(0, TIMESTAMP_DTYPE)
        self._held_d = np.empty(0, CHANNEL_DTYPE)
        self._held_iv = np.empty(0, np.int64)
        return out

    # -- internals ----------------------------------------------------------------------
    def _tail_gap(self, end_ps: int | None) -> LossRecord | None:
        nominal = self.nominal_sync_interval_ps
        if end_ps is None or nominal is None or self._syncs.size == 0:
            return None
        last_sync = int(self._syncs[-1])
        if end_ps - last_sync <= (3 * nominal) // 2:
            return None
        return LossRecord(last_sync, int(end_ps), "sync_gap", (end_ps - last_sync - 1) // nominal)

    def _establish_nominal(self, final: bool) -> bool:
        if self.nominal_sync_interval_ps is not None:
            return True
        diffs = np.diff(self._syncs)
        if diffs.size >= ESTABLISH_INTERVALS or (final and diffs.size > 0):
            self.nominal_sync_interval_ps = int(np.median(diffs[:ESTABLISH_INTERVALS]))
            return True
        return False

    def _convert(self, photons_t: np.ndarray, photons_d: np.ndarray, interval: np.ndarray, final: bool) -> PhotonBlock:
        """Nanotimes for photons whose interval (index of the preceding sync in ``self._syncs``,
        -1 = before the first) is known; emit what is final, hold the rest."""
        syncs = self._syncs
        losses: list[LossRecord] = []
        if syncs.size == 0 or not self._establish_nominal(final):
            nanotimes = np.full(photons_t.size, NO_NANOTIME, dtype=NANOTIME_DTYPE)
            # Photons before the first sync have no nanotime and can go at once; the
            # others wait until the nominal sync interval is known.
            emit = int(np.count_nonzero(interval < 0))
            if final and syncs.size:  # a single sync in the whole run: period unknown
                after = interval >= 0
                nanotimes[after] = np.minimum(photons_t[after] - syncs[0], np.iinfo(NANOTIME_DTYPE).max)
                emit = photons_t.size
            return self._emit(photons_t, photons_d, interval, nanotimes, emit, losses, final, 0)

        nominal = self.nominal_sync_interval_ps
        assert nominal is not None
        gap_threshold = (3 * nominal) // 2
        gap_idx = sync_gaps(syncs, gap_threshold)
        for i in gap_idx:  # rare: a loop over gaps, never over tags
            diff = int(syncs[i + 1] - syncs[i])
            missing = int(np.rint(diff / nominal)) - 1
            losses.append(LossRecord(int(syncs[i]), int(syncs[i + 1]), "sync_gap", missing))
        if syncs.size > 1:  # the measured period: normal intervals only
            gap_sum = int((syncs[gap_idx + 1] - syncs[gap_idx]).sum())
            self._interval_sum_ps += int(syncs[-1] - syncs[0]) - gap_sum
            self._interval_pulses += (syncs.size - 1 - gap_idx.size) * self.pulses_per_sync

        last = syncs.size - 1
        # The interval after the last sync is a gap once the stream is 1.5 nominal intervals past it.
        open_is_gap = final or (
            self._data_until_ps is not None and self._data_until_ps > int(syncs[last]) + gap_threshold
        )
        # Photons are in time order, so their intervals never decrease: the ready ones
        # (interval < last, or all once the open interval is a gap) are a prefix.
        emit = photons_t.size if open_is_gap else int(np.searchsorted(interval, last, side="left"))
        nanotimes = photon_nanotimes(photons_t, interval, syncs, emit, nominal, self.pulses_per_sync, open_is_gap)
        self._syncs = syncs[last:] if not final else syncs[:0]
        return self._emit(photons_t, photons_d, interval, nanotimes, emit, losses, final, last)

    def _emit(
        self,
        photons_t: np.ndarray,
        photons_d: np.ndarray,
        interval: np.ndarray,
        nanotimes: np.ndarray,
        emit: int,
        losses: list[LossRecord],
        final: bool,
        dropped_syncs: int,
    ) -> PhotonBlock:
        """Emit the first ``emit`` photons (they are in time order), hold the rest.

        ``dropped_syncs`` syncs were removed from the front of ``self._syncs``; the
        held photons' interval indices shift by as much.
        """
        self._held_t, self._held_d = photons_t[emit:], photons_d[emit:]
        self._held_iv = interval[emit:] - dropped_syncs
        start = self._emitted_until_ps if self._emitted_until_ps is not None else 0
        if final:
            stop = int(photons_t[-1]) + 1 if photons_t.size else start
        else:
            stop = int(self._syncs[-1]) if self._syncs.size else start
        stop = max(start, stop)
        self._emitted_until_ps = stop
        return PhotonBlock(
            timestamps=photons_t[:emit],
            detectors=photons_d[:emit],
            nanotimes=nanotimes[:emit],
            losses=losses,
            span_ps=(start, stop),
        )


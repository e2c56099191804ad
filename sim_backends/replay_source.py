"""A Photon-HDF5 file as a tag source: its photons and markers, with the laser sync regenerated.

:class:`ReplaySource` has the one method the simulated quTAG library asks of its
scene, ``generate(t_stop_ps)``, so :class:`sim_backends.replay_tagger.ReplayTDCBase`
serves a recording through the quTAG API (see that module).

The sync stream is rebuilt from the photons (``labctl.acquisition.photons`` conventions):

* **Anchors.** A photon with nanotime ``n >= 0`` at ``t`` says a laser pulse (a sync
  tag) was at ``t - n``.  Every such pulse time is a sync tag of the replay, so the
  nanotime labctl computes again (``t`` minus the latest sync ``<= t``) is the
  file's nanotime exactly, also on a drifting laser clock and for periods that are
  not a whole number of ps (the pulses implied by the photons are used as they are).
* **Fillers.** Between two consecutive anchors ``A < B`` the pulses without photons
  are filled in evenly: ``m = rint((B - A) / period)`` intervals, fillers at
  ``A + rint(k (B - A) / m)``, ``k = 1 .. m-1``, so the comb follows the recorded
  clock anchor to anchor.  No filler may fall at or before the latest photon of the
  pulse ``A`` (it would change that photon's nanotime): the last such filler moves
  to 1 ps after that photon (an evenly placed filler can land a ps before the real
  pulse, just before a photon recorded at the end of the period), the others are
  left out (a photon whose nanotime exceeds the period, e.g. from a file recorded
  with a sync divider: the replay then has a sync gap there).
* After the file's last anchor the comb continues at the file's period up to two
  periods after the file's last tag, then the stream ends; there are no syncs before the first
  anchor, so the file's photons with nanotime -1 (before the first sync) stay so.

Photons of detectors that are not replayed are dropped (they still anchor the
comb: their pulses were real).  Memory stays bounded: the file is read in
chunks of ``chunk_photons`` photons and the comb is made only for the window
asked for.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from labctl.blocks import CHANNEL_DTYPE, TIMESTAMP_DTYPE, TagBlock
from labctl.storage import PhotonHDF5Reader

_FAR_PAST_PS = -(2**62)
_TAIL_PERIODS = 2
"""The comb goes on this many periods after the file's last tag: a sync after the last photon
releases it from labctl's converter (it waits for the sync that closes a photon's interval)."""


def pulse_anchors(timestamps_ps: np.ndarray, nanotimes_ps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pulse times implied by photons, and the latest photon of each pulse.

    Args:
        timestamps_ps: int64 photon macrotimes (ps), sorted.
        nanotimes_ps: their nanotimes (ps); -1 (no sync before the photon) implies no pulse.

    Returns:
        ``(anchors_ps, last_photon_ps)``: sorted unique ``t - n`` (int64 ps) and, for each,
        the largest ``t`` of the photons that name it.
    """
    valid = nanotimes_ps >= 0
    t = timestamps_ps[valid].astype(np.int64, copy=False)
    anchors = t - nanotimes_ps[valid].astype(np.int64)
    if anchors.size > 1 and bool(np.any(anchors[1:] < anchors[:-1])):
        order = np.argsort(anchors, kind="stable")
        anchors, t = anchors[order], t[order]
    if anchors.size == 0:
        return anchors, t
    starts = np.flatnonzero(np.concatenate(([True], anchors[1:] != anchors[:-1])))
    return anchors[starts], np.maximum.reduceat(t, starts)


def gap_fillers(anchors_ps: np.ndarray, last_photon_ps: np.ndarray, period_ps: float,
                lo_ps: int, hi_ps: int) -> np.ndarray:
    """Filler pulses in ``[lo_ps, hi_ps)`` between consecutive anchors (see the module docstring).

    Args:
        anchors_ps: sorted unique pulse times (int64 ps); gap j runs from anchor j to j+1.
        last_photon_ps: latest photon time of each anchor's pulse (int64 ps); fillers of
            gap j lie after it.
        period_ps: nominal laser period (ps, may be fractional); sets how many pulses a gap holds.
        lo_ps, hi_ps: the window (ps).

    Returns:
        Sorted int64 ps filler times.
    """
    if anchors_ps.size < 2:
        return np.empty(0, TIMESTAMP_DTYPE)
    a, b, last = anchors_ps[:-1], anchors_ps[1:], last_photon_ps[:-1]
    use = (a < hi_ps) & (b > lo_ps)
    a, b, last = a[use], b[use], last[use]
    d = (b - a).astype(np.float64)
    m = np.maximum(np.rint(d / period_ps), 1.0)
    start = np.maximum(np.maximum(lo_ps, last + 1), a + 1)  # first allowed filler time of each gap
    step = d / m
    k_lo = np.maximum(np.floor((start - a) / step), 1.0).astype(np.int64)
    k_hi = np.minimum(np.ceil((hi_ps - a) / step), m - 1).astype(np.int64)
    n = np.maximum(k_hi - k_lo + 1, 0)
    total = int(n.sum())
    if total == 0:
        return np.empty(0, TIMESTAMP_DTYPE)
    gap = np.repeat(np.arange(a.size), n)
    k = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(n) - n, n) + k_lo[gap]
    fillers = a[gap] + np.rint(k * step[gap]).astype(np.int64)
    keep = (fillers >= start[gap]) & (fillers < hi_ps) & (fillers < b[gap])
    moved = _moved_fillers(a, b, last, step, m)
    moved = moved[(moved >= lo_ps) & (moved < hi_ps)]
    fillers = fillers[keep]
    return np.sort(np.concatenate([fillers, moved])) if moved.size else fillers


def _moved_fillers(a: np.ndarray, b: np.ndarray, last: np.ndarray, step: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Per gap whose first filler falls at or before ``last``: ``last + 1``, if that is before the
    first filler after ``last`` (or before ``b``); int64 ps."""
    hit = (m >= 2) & (a + np.rint(step) <= last)
    if not hit.any():
        return np.empty(0, TIMESTAMP_DTYPE)
    a, b, last, step, m = a[hit], b[hit], last[hit], step[hit], m[hit].astype(np.int64)
    k = np.floor((last - a) / step).astype(np.int64) + 1  # first k with a filler after last, +-1
    for _ in range(2):  # correct the float estimate
        k -= (k > 1) & (a + np.rint((k - 1) * step).astype(np.int64) > last)
        k += a + np.rint(k * step).astype(np.int64) <= last
    after = np.where(k <= m - 1, a + np.rint(k * step).astype(np.int64), b)
    moved = last + 1
    return moved[moved < after]


def tail_fillers(anchor_ps: int, last_photon_ps: int, period_ps: float, lo_ps: int, hi_ps: int) -> np.ndarray:
    """The comb after the last anchor, ``anchor + rint(k period)`` for k >= 1, within ``[lo_ps, hi_ps)``
    and after the latest photon of that pulse; a pulse at or before that photon moves to 1 ps
    after it, as in :func:`gap_fillers` (int64 ps)."""
    k_first = max(1, math.floor((last_photon_ps - anchor_ps) / period_ps))
    while anchor_ps + round(k_first * period_ps) <= last_photon_ps:  # at most twice (float estimate)
        k_first += 1
    moved = [last_photon_ps + 1] if k_first > 1 and last_photon_ps + 1 < anchor_ps + round(k_first * period_ps) else []
    start = max(lo_ps, anchor_ps + round(k_first * period_ps))
    k_lo = max(k_first, math.floor((start - anchor_ps) / period_ps))
    k_hi = math.ceil((hi_ps - anchor_ps) / period_ps)
    k = np.arange(k_lo, k_hi + 1, dtype=np.int64)
    pulses = anchor_ps + np.rint(k * period_ps).astype(np.int64)
    pulses = np.concatenate([np.asarray(moved, np.int64), pulses[(pulses >= start) & (pulses < hi_ps)]])
    return pulses[(pulses >= lo_ps) & (pulses < hi_ps)]


class ReplaySource:
    """Tags of a Photon-HDF5 file in time order: photons, frame markers and a regenerated sync.

    Args:
        path: the file (anything :class:`labctl.storage.PhotonHDF5Reader` opens, with nanotimes).
        detectors: the file's detector ids to replay; each keeps its id as tagger channel.
        sync_channel: channel of the regenerated laser sync (not one of ``detectors``).
        marker_channel: channel of the file's frame markers (None = leave them out).
        period_ps: laser period (ps, may be fractional) for filling pulses without photons.
        chunk_photons: photons read from the file at a time.
    """

    def __init__(self, path: str, detectors: Sequence[int], sync_channel: int, marker_channel: int | None,
                 period_ps: float, chunk_photons: int = 1 << 16) -> None:
        if not period_ps > 0:
            raise ValueError(f"ReplaySource: period_ps = {period_ps!r}: must be > 0 ps")
        used = [sync_channel] + ([] if marker_channel is None else [marker_channel])
        for det in detectors:
            if not 0 <= int(det) <= 255 or det in used:
                raise ValueError(f"ReplaySource: detectors = {list(detectors)!r}: ids must be 0..255 and differ "
                                 f"from the sync channel {sync_channel} and the marker channel {marker_channel}")
        self.path = str(path)
        self.period_ps = float(period_ps)
        self.sync_channel = int(sync_channel)
        self.marker_channel = marker_channel
        self._replayed = np.zeros(256, bool)
        self._replayed[list(detectors)] = True
        self._reader = PhotonHDF5Reader(path)
        if self._reader.nanotimes_unit_s is None:
            self._reader.close()
            raise ValueError(f"{path}: no nanotimes: the laser sync cannot be regenerated")
        self._blocks: Iterator = self._reader.iter_blocks(chunk_photons)
        self.exhausted = False
        self._ph_t = np.empty(0, TIMESTAMP_DTYPE)
        self._ph_ch = np.empty(0, CHANNEL_DTYPE)
        self._markers = np.empty(0, TIMESTAMP_DTYPE)
        self._anchors = np.empty(0, TIMESTAMP_DTYPE)
        self._last_photon = np.empty(0, TIMESTAMP_DTYPE)
        self._emitted_until_ps = _FAR_PAST_PS
        self.last_tag_ps: int | None = None
        """Latest replayed photon or marker read from the file so far (ps); the stream ends with it."""
        while not self.exhausted and self._anchors.size == 0:
            self._load()
        firsts = [int(x[0]) for x in (self._anchors, self._ph_t, self._markers) if x.size]
        self.start_ps: int = min(firsts) if firsts else 0
        """Time of the first tag (ps): the replay's device clock starts here."""

    @property
    def generated_until_ps(self) -> int:
        """Device time up to which tags have been served (ps): the replay's "now" (the file's first tag before any)."""
        return max(self._emitted_until_ps, self.start_ps)

    def close(self) -> None:
        self._reader.close()

    def _load(self) -> None:
        """Read the next chunk of the file into the pending photons, markers and anchors."""
        try:
            block = next(self._blocks)
        except StopIteration:
            self.exhausted = True
            self._reader.close()
            return
        if block.markers.size and self.marker_channel is not None:
            self._markers = np.concatenate([self._markers, block.markers.astype(TIMESTAMP_DTYPE)])
            self.last_tag_ps = max(self.last_tag_ps or _FAR_PAST_PS, int(block.markers[-1]))
        if not len(block):
            return
        keep = self._replayed[block.detectors]
        if keep.any():
            self.last_tag_ps = max(self.last_tag_ps or _FAR_PAST_PS, int(block.timestamps[keep][-1]))
        self._ph_t = np.concatenate([self._ph_t, block.timestamps[keep]])
        self._ph_ch = np.concatenate([self._ph_ch, block.detectors[keep].astype(CHANNEL_DTYPE)])
        anchors, last = pulse_anchors(block.timestamps, block.nanotimes)
        late = anchors < self._emitted_until_ps  # named after later tags were served: inconsistent
        if late.any():                           # nanotimes (labctl.station.replay counts those photons)
            anchors, last = anchors[~late], last[~late]
        if self._anchors.size and anchors.size and anchors[0] <= self._anchors[-1]:
            # Pulses named across the chunk boundary: merge (rare beyond the shared last one).
            both_t = np.concatenate([self._anchors, anchors])
            both_l = np.concatenate([self._last_photon, last])
            order = np.argsort(both_t, kind="stable")
            both_t, both_l = both_t[order], both_l[order]
            starts = np.flatnonzero(np.concatenate(([True], both_t[1:] != both_t[:-1])))
            self._anchors, self._last_photon = both_t[starts], np.maximum.reduceat(both_l, starts)
        else:
            self._anchors = np.concatenate([self._anchors, anchors])
            self._last_photon = np.concatenate([self._last_photon, last])

    def generate(self, t_stop_ps: int) -> TagBlock:
        """Tags in [previous t_stop, t_stop), sorted (a sync before a photon at the same ps)."""
        lo, hi = self._emitted_until_ps, int(t_stop_ps)
        if hi <= lo:
            return TagBlock.empty()
        # The comb up to hi is known once an anchor at or after hi has been read.
        while not self.exhausted and (self._anchors.size == 0 or self._anchors[-1] < hi):
            self._load()
        anchors, last = self._anchors, self._last_photon
        parts = [anchors[(anchors >= lo) & (anchors < hi)], gap_fillers(anchors, last, self.period_ps, lo, hi)]
        if self.exhausted and anchors.size and self.last_tag_ps is not None:
            end = min(hi, self.last_tag_ps + 1 + math.ceil(_TAIL_PERIODS * self.period_ps))
            parts.append(tail_fillers(int(anchors[-1]), int(last[-1]), self.period_ps, lo, end))
        syncs = np.concatenate(parts)
        cut = int(np.searchsorted(self._ph_t, hi, side="left"))
        ph_t, ph_ch = self._ph_t[:cut], self._ph_ch[:cut]
        self._ph_t, self._ph_ch = self._ph_t[cut:], self._ph_ch[cut:]
        cut = int(np.searchsorted(self._markers, hi, side="left"))
        markers, self._markers = self._markers[:cut], self._markers[cut:]
        keep_from = max(int(np.searchsorted(anchors, hi, side="left")) - 1, 0)
        self._anchors, self._last_photon = anchors[keep_from:], last[keep_from:]
        self._emitted_until_ps = hi
        ts = np.concatenate([syncs, ph_t, markers])
        ch = np.concatenate([
            np.full(syncs.size, self.sync_channel, CHANNEL_DTYPE), ph_ch,
            np.full(markers.size, self.marker_channel if self.marker_channel is not None else 0, CHANNEL_DTYPE),
        ])
        order = np.argsort(ts, kind="stable")
        return TagBlock(ts[order], ch[order])


_SHARED: "weakref.WeakKeyDictionary[Any, ReplaySource]" = weakref.WeakKeyDictionary()


def share_source(scene: Any, source: ReplaySource) -> None:
    """Make ``source`` the replay clock of the station whose shared scene is ``scene``.

    The replay tagger does this; the replay camera of the same station
    (:mod:`sim_backends.replay_camera`) then runs on the tagger's device time, as the
    simulated camera runs on the scene's ``generated_until_ps``.
    """
    _SHARED[scene] = source


def shared_source(scene: Any) -> ReplaySource | None:
    """The replay source registered with ``scene`` by :func:`share_source` (None if none)."""
    try:
        return None if scene is None else _SHARED.get(scene)
    except TypeError:  # not weak-referenceable: no replay tagger registered it
        return None

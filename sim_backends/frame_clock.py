"""The time grids of the scene's clocks, and the frame clock's marker tags.

``pulse_times_ps`` is the grid of the laser pulses and of the frame-clock edges.
:class:`FrameClock` is the frame clock (function generator ch2) on the tagger's time
line: while enabled, a rising edge at ``origin + floor(k * 1e12 / rate_hz)`` (k >= 0,
origin = the segment boundary where it was enabled or its rate changed).  Each edge
triggers a camera frame (``edges_ps``) and, if the station wires one, appears in the tag
stream as a marker tag, merged like the syncs (ties by channel).
"""

from __future__ import annotations

import math

import numpy as np

_EMPTY = np.empty(0, np.int64)


def pulse_times_ps(start_ps: int, stop_ps: int, origin_ps: int, rate_hz: float) -> np.ndarray:
    """Laser pulse times in ``[start, stop)`` of the grid ``origin + floor(k * 1e12 / rate)``, k >= 0."""
    period = 1e12 / rate_hz
    if period.is_integer():
        p = int(period)
        k_lo = max(0, -((origin_ps - start_ps) // p))
        k_hi = max(0, -((origin_ps - stop_ps) // p))
        return np.arange(origin_ps + k_lo * p, origin_ps + k_hi * p, p, dtype=np.int64)

    def first_at_or_after(t: int) -> int:
        k = max(0, math.ceil((t - origin_ps) / period))
        while k > 0 and origin_ps + math.floor((k - 1) * period) >= t:
            k -= 1
        while origin_ps + math.floor(k * period) < t:
            k += 1
        return k

    ks = np.arange(first_at_or_after(start_ps), first_at_or_after(stop_ps), dtype=np.float64)
    return origin_ps + np.floor(ks * period).astype(np.int64)


def insert_tags(times: np.ndarray, channels: np.ndarray, new_ps: np.ndarray, channel: int) -> tuple[np.ndarray, np.ndarray]:
    """Insert sorted tags ``new_ps`` on ``channel`` into a sorted stream, ties ordered by channel ascending.

    Made for few new tags (frame markers): a Python step only for the rare equal times.
    """
    pos = np.searchsorted(times, new_ps, side="left")
    tie_end = np.searchsorted(times, new_ps, side="right")
    for i in np.flatnonzero(tie_end > pos):  # equal times: only the lower channels go first
        pos[i] += int(np.count_nonzero(channels[pos[i] : tie_end[i]] < channel))
    return np.insert(times, pos, new_ps), np.insert(channels, pos, np.uint8(channel))


class FrameClock:
    """The frame clock's settings, edge grid, the edges generated so far and the markers not yet released.

    Args:
        enabled, rate_hz: the setting at the start (validated by the caller).
        marker_channel: tagger channel of the marker tags; None = no markers in the stream.
    """

    def __init__(self, enabled: bool, rate_hz: float, marker_channel: int | None) -> None:
        self.setting = (bool(enabled), float(rate_hz))
        """``(enabled, rate_hz)`` in force from the next segment generated (the caller validates it)."""
        self._marker_channel = marker_channel
        self._segment_setting: tuple[bool, float] | None = None
        self._origin_ps = 0
        self._marker_carry = _EMPTY
        self._edge_chunks: list[np.ndarray] = []

    def segment_edges(self, start_ps: int, stop_ps: int) -> np.ndarray:
        """Edges of the segment ``[start, stop)`` (generated in order; recorded for ``edges_ps``)."""
        setting = self.setting
        if setting != self._segment_setting:  # the clock (re)starts its grid here
            self._origin_ps = start_ps
            self._segment_setting = setting
        enabled, rate_hz = setting
        if not enabled:
            return _EMPTY
        edges = pulse_times_ps(start_ps, stop_ps, self._origin_ps, rate_hz)
        if edges.size:
            self._edge_chunks.append(edges)
        return edges

    def add_markers(self, times: np.ndarray, channels: np.ndarray, edges: np.ndarray,
                    horizon_ps: int) -> tuple[np.ndarray, np.ndarray]:
        """The stream ``(times, channels)`` with the marker tags (carried + ``edges``) before the horizon
        inserted; the rest are kept for the next segment."""
        if self._marker_channel is None:
            return times, channels
        markers = np.concatenate((self._marker_carry, edges)) if self._marker_carry.size else edges
        cut = int(np.searchsorted(markers, horizon_ps))
        self._marker_carry = markers[cut:]
        if not cut:
            return times, channels
        return insert_tags(times, channels, markers[:cut], self._marker_channel)

    def edges_ps(self, t0_ps: int, t1_ps: int) -> np.ndarray:
        """Edges in ``[t0, t1)`` (int64 ps, a copy) among the segments generated so far."""
        if len(self._edge_chunks) > 1:
            self._edge_chunks = [np.concatenate(self._edge_chunks)]
        edges = self._edge_chunks[0] if self._edge_chunks else _EMPTY
        lo, hi = np.searchsorted(edges, [int(t0_ps), int(t1_ps)], side="left")
        return edges[lo:hi].copy()

"""When the simulated iXon's exposures start: the trigger timeline of one acquisition.

An ``Acquisition`` lives from ``StartAcquisition`` to its end or abort.  Given the
scene time ("now") and the frame-clock edges, it says which exposures have started:

* ``external`` / ``external_exposure``: at each frame-clock edge, unless the camera is
  still busy with the previous frame (start + minimum cycle time): that edge is ignored
  and counted;
* ``external_start``: the first edge starts the series, then the internal cycle;
* ``internal``: at arming time + k x the internal cycle;
* ``software``: at each ``SendSoftwareTrigger`` the camera is ready for.

Pure bookkeeping in integer ps; ``SimIXonCamera`` (``andor_camera``) turns the starts into frames.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

TRIGGER_INTERNAL, TRIGGER_EXTERNAL, TRIGGER_EXTERNAL_START, TRIGGER_EXTERNAL_EXPOSURE, TRIGGER_SOFTWARE = 0, 1, 6, 7, 10


@dataclass
class Acquisition:
    """State of one acquisition (StartAcquisition .. end or abort); times in ps on the scene clock."""

    number: int
    arm_ps: int
    series: float  # frames to take (inf for run till abort)
    trigger: int
    exposure_ps: int
    readout_ps: int
    min_cycle_ps: int
    internal_cycle_ps: int
    edge_cursor_ps: int
    first_start_ps: int | None = None  # external start: the triggering edge
    last_start_ps: int | None = None
    started: int = 0

    def take(self, start_ps: int) -> int:
        """Record an exposure starting at ``start_ps``; return its 0-based frame index."""
        index = self.started
        self.started += 1
        self.last_start_ps = start_ps
        return index

    def ready_at(self, now_ps: int) -> bool:
        """Frames left to take, and the previous one's minimum cycle is over at ``now_ps``."""
        return self.started < self.series and (
            self.last_start_ps is None or now_ps >= self.last_start_ps + self.min_cycle_ps
        )

    def new_starts(self, frame_edges_ps: Callable[[int, int], np.ndarray], now_ps: int) -> tuple[list[int], int]:
        """Exposure starts (ps) triggered before ``now_ps`` and not yet taken, and how many edges were ignored.

        ``frame_edges_ps(t0, t1)`` gives the frame-clock edges in [t0, t1) (the scene's).
        """
        if self.trigger in (TRIGGER_EXTERNAL, TRIGGER_EXTERNAL_EXPOSURE):
            return self._edge_starts(frame_edges_ps, now_ps)
        if self.trigger == TRIGGER_SOFTWARE:
            return [], 0  # SendSoftwareTrigger starts them
        ignored = 0
        if self.trigger == TRIGGER_EXTERNAL_START:
            if self.first_start_ps is None:
                first, ignored = self._edge_starts(frame_edges_ps, now_ps)
                if not first:
                    return [], ignored
                self.first_start_ps = first[0]
            origin = self.first_start_ps
        else:
            origin = self.arm_ps
        starts = []
        k = self.started
        while k < self.series and origin + k * self.internal_cycle_ps < now_ps:
            starts.append(origin + k * self.internal_cycle_ps)
            k += 1
        return starts, ignored

    def _edge_starts(self, frame_edges_ps: Callable[[int, int], np.ndarray], now_ps: int) -> tuple[list[int], int]:
        """Frame-clock edges since the last look that the camera takes (it ignores those while busy)."""
        edges = frame_edges_ps(self.edge_cursor_ps, now_ps)
        self.edge_cursor_ps = max(self.edge_cursor_ps, now_ps)
        starts: list[int] = []
        ignored = 0
        last = self.last_start_ps
        for edge in edges.tolist():  # one step per frame, not per tag
            if self.started + len(starts) >= self.series:
                break
            if last is not None and edge < last + self.min_cycle_ps:
                ignored += 1
                continue
            starts.append(edge)
            last = edge
        return starts, ignored

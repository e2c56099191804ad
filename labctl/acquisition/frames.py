"""Camera frames on the tagger clock: match frame i to the i-th frame-marker tag of the run.

The camera is armed before the frame clock starts, so the i-th frame-clock edge of the
run both starts frame i and is the i-th frame-marker tag the tagger records.  Frames
and markers arrive through different paths (camera driver, tag stream) at different
times; :class:`FrameMatcher` keeps what is not matched yet across polls and matches
strictly BY INDEX: a frame the camera lost still consumes its marker (it is reported
as skipped with its marker window), so the frames after it never shift.
"""

from __future__ import annotations

import numpy as np

from labctl.blocks import TIMESTAMP_DTYPE, FrameBlock, LossRecord

SKIP_SOURCE = "camera_skip"
"""LossRecord source of a frame the camera never delivered."""


class FrameMatcher:
    """Pairs camera frames (by index) with the run's frame-marker tags (by order).

    Args:
        exposure_ps: exposure time of each frame (ps): ``exposure_stop_ps = marker + exposure_ps``.
        frame_shape: shape of one frame (for empty results).

    Feed it with :meth:`add_markers`, :meth:`add_frames` and :meth:`add_skipped` in any
    order; :meth:`take` returns what can be matched so far.  Markers are kept for the
    whole run (8 bytes each: 29 kB per hour at 10 Hz).
    """

    def __init__(self, exposure_ps: int, frame_shape: tuple[int, ...]) -> None:
        self.exposure_ps = int(exposure_ps)
        self.frame_shape = tuple(frame_shape)
        self._markers: list[np.ndarray] = []
        self._marker_array = np.empty(0, TIMESTAMP_DTYPE)
        self._frame_idx: list[np.ndarray] = []
        self._frames: list[np.ndarray] = []
        self._skipped: list[np.ndarray] = []
        self.frames_matched = 0
        self.skipped_matched = 0

    # -- input -------------------------------------------------------------------------------
    def add_markers(self, timestamps: np.ndarray) -> None:
        """Frame-marker tags in stream order (int64 ps)."""
        if len(timestamps):
            self._markers.append(np.asarray(timestamps, TIMESTAMP_DTYPE))

    def add_frames(self, indices: np.ndarray, frames: np.ndarray) -> None:
        """Frames from ``camera.read_frames()`` (0-based indices since start_frames)."""
        if len(indices):
            self._frame_idx.append(np.asarray(indices, np.int64))
            self._frames.append(np.asarray(frames))

    def add_skipped(self, indices: np.ndarray) -> None:
        """Indices from ``camera.read_skipped_frames()``."""
        if len(indices):
            self._skipped.append(np.asarray(indices, np.int64))

    @property
    def markers(self) -> np.ndarray:
        """Every frame-marker tag seen so far (int64 ps)."""
        if self._markers:
            self._marker_array = np.concatenate([self._marker_array, *self._markers])
            self._markers = []
        return self._marker_array

    @property
    def pending_frames(self) -> int:
        return int(sum(len(i) for i in self._frame_idx))

    @property
    def pending_skipped(self) -> int:
        return int(sum(len(i) for i in self._skipped))

    # -- output ------------------------------------------------------------------------------
    def take(self, last_marker_ps: int | None = None) -> tuple[FrameBlock | None, np.ndarray, list[LossRecord]]:
        """Match what can be matched; keep the rest for later.

        Args:
            last_marker_ps: markers after this time are not part of the run: frames (and
                skips) that belong to them are dropped instead of matched (None = no limit).

        Returns:
            ``(frames, skipped, losses)``: a FrameBlock of the matched frames (None if
            none), the skipped indices whose marker is known (int64), and one
            ``camera_skip`` LossRecord per skipped frame (its marker window).
        """
        markers = self.markers
        n_known = int(markers.size)
        if last_marker_ps is not None:
            n_known = int(np.searchsorted(markers, int(last_marker_ps), side="right"))
        frame_block = None
        if self._frame_idx:
            idx = np.concatenate(self._frame_idx)
            frames = np.concatenate(self._frames)
            ready = idx < n_known
            if last_marker_ps is not None:
                ready |= idx >= n_known  # beyond the run: dropped below, never kept
            keep = ~ready
            self._frame_idx = [idx[keep]] if keep.any() else []
            self._frames = [frames[keep]] if keep.any() else []
            in_run = idx[ready] < n_known
            idx, frames = idx[ready][in_run], frames[ready][in_run]
            if idx.size:
                start = markers[idx]
                frame_block = FrameBlock(idx, frames, start, start + self.exposure_ps)
                self.frames_matched += int(idx.size)
        skipped = np.empty(0, np.int64)
        losses: list[LossRecord] = []
        if self._skipped:
            sk = np.concatenate(self._skipped)
            ready = sk < n_known
            if last_marker_ps is not None:
                ready |= sk >= n_known
            self._skipped = [sk[~ready]] if (~ready).any() else []
            skipped = sk[ready][sk[ready] < n_known]
            losses = [LossRecord(int(markers[i]), int(markers[i]) + self.exposure_ps, SKIP_SOURCE, -1) for i in skipped.tolist()]
            self.skipped_matched += int(skipped.size)
        return frame_block, skipped, losses

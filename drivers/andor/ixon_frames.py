"""The iXon's circular buffer read by image number, with every lost frame accounted for.

``GetNumberNewImages`` + ``GetImages16`` read the images acquired since the previous
read; a frame that was overwritten or never delivered leaves a gap in the numbers and
is recorded as skipped, never silently shifted.  Frame index = SDK image number - 1:
0-based, counted from :meth:`FrameBuffer.start`.
"""

from __future__ import annotations

import logging

import numpy as np

from drivers.andor.atmcd import DRV_GENERAL_ERRORS, DRV_NO_NEW_DATA, DRV_SUCCESS, AndorSDK

log = logging.getLogger(__name__)

FRAME_DTYPE = np.dtype(np.uint16)
INDEX_DTYPE = np.dtype(np.int64)


class FrameBuffer:
    """Frames of one acquisition, read by image number; the caller holds the camera's lock.

    Args:
        sdk: the SDK2 library.
        name: the camera's name, for messages.
    """

    def __init__(self, sdk: AndorSDK, name: str) -> None:
        self._sdk = sdk
        self._name = name
        self.shape: tuple[int, ...] | None = None
        self._next_number = 1
        self._skipped_all: list[np.ndarray] = []
        self._skipped_unread: list[np.ndarray] = []
        self.skipped_count = 0
        """Frames found lost since :meth:`start`."""

    def start(self, shape: tuple[int, ...]) -> None:
        """A new acquisition of frames of ``shape``: numbering from image 1, no skipped frames."""
        self.shape = shape
        self._next_number = 1
        self._skipped_all, self._skipped_unread = [], []
        self.skipped_count = 0

    def read(self) -> tuple[np.ndarray, np.ndarray]:
        """``(indices, frames)`` acquired since the previous read: int64 indices, uint16 frames ``(n, *shape)``."""
        shape = self.shape
        assert shape is not None, "FrameBuffer.read before start"
        empty = (np.empty(0, INDEX_DTYPE), np.empty((0, *shape), FRAME_DTYPE))
        pixels = int(np.prod(shape))
        for attempt in (1, 2):
            total = self._sdk.call("GetTotalNumberImagesAcquired")
            code, run = self._sdk.call_status("GetNumberNewImages", ok=(DRV_SUCCESS, DRV_NO_NEW_DATA))
            if code == DRV_NO_NEW_DATA:
                # Every frame acquired before that call and not retrieved is gone.
                self._skip_until(int(total) + 1)
                return empty
            first, last = (int(n) for n in run)
            self._skip_until(first)
            buffer = np.empty((last - first + 1) * pixels, FRAME_DTYPE)
            # SDK2 manual: a series overwritten meanwhile is DRV_GENERAL_ERRORS ("out of range"):
            # ask again once (overwritten images then count as retrieved).
            retry = (DRV_GENERAL_ERRORS,) if attempt == 1 else ()
            code, valid = self._sdk.call_status(
                "GetImages16", first, last, buffer, ok=(DRV_SUCCESS, DRV_NO_NEW_DATA, *retry)
            )
            if code != DRV_GENERAL_ERRORS:
                break
        if code == DRV_NO_NEW_DATA:  # overwritten between the two calls
            self._skip_until(last + 1)
            return empty
        valid_first, valid_last = (int(n) for n in valid)
        self._skip_until(valid_first)
        self._next_number = valid_last + 1
        n = valid_last - valid_first + 1
        return np.arange(valid_first - 1, valid_last, dtype=INDEX_DTYPE), buffer[: n * pixels].reshape((n, *shape))

    def _skip_until(self, number: int) -> None:
        """Record the frames from the next expected number up to ``number`` (exclusive) as lost."""
        if number <= self._next_number:
            return
        lost = np.arange(self._next_number - 1, number - 1, dtype=INDEX_DTYPE)
        self._next_number = number
        self._skipped_all.append(lost)
        self._skipped_unread.append(lost)
        self.skipped_count += lost.size
        log.warning("%s: %d frame(s) lost (indices %d..%d); %d lost since start_frames",
                    self._name, lost.size, lost[0], lost[-1], self.skipped_count)

    def read_skipped(self) -> np.ndarray:
        """Indices (int64) of the frames found lost since the previous call; clears them."""
        lost = np.concatenate(self._skipped_unread) if self._skipped_unread else np.empty(0, INDEX_DTYPE)
        self._skipped_unread = []
        return lost

    def skipped_indices(self) -> np.ndarray:
        """Indices (int64) of every frame found lost since :meth:`start`."""
        return np.concatenate(self._skipped_all) if self._skipped_all else np.empty(0, INDEX_DTYPE)

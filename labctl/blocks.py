"""Data blocks that move through labctl: raw time tags and photons.

Principle "blocks, not tags": data moves as numpy arrays with explicit dtypes,
never one tag at a time.  Timestamps are always ``int64`` picoseconds on the
time tagger's clock; channels are ``uint8`` tagger input numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

TIMESTAMP_DTYPE = np.dtype(np.int64)
"""Timestamps: signed 64-bit integers in picoseconds."""

CHANNEL_DTYPE = np.dtype(np.uint8)
"""Tagger channel numbers (quTAG: 0 = start input, 1-4 stop inputs, 100-104 markers)."""

NANOTIME_DTYPE = np.dtype(np.int32)
"""Nanotimes (delay after the preceding laser pulse) in picoseconds."""

NO_NANOTIME = np.int32(-1)
"""Nanotime of a photon that arrived before the first laser sync of the run."""


@dataclass(frozen=True)
class ChannelMap:
    """Which tagger input carries which signal (taken from the station file).

    All numbers are tagger channel numbers as they appear in the tag stream.
    """

    laser_sync: int
    spad_a: int
    spad_b: int
    frame_marker: int | None = None

    @property
    def detectors(self) -> tuple[int, int]:
        """The photon-detector channels, SPAD A first."""
        return (self.spad_a, self.spad_b)

    def as_dict(self) -> dict[str, int | None]:
        """Plain dict for snapshots and file metadata."""
        return {
            "laser_sync": self.laser_sync,
            "spad_a": self.spad_a,
            "spad_b": self.spad_b,
            "frame_marker": self.frame_marker,
        }


@dataclass
class TagBlock:
    """A block of raw T2 time tags, sorted by timestamp.

    Attributes:
        timestamps: ``int64`` picoseconds on the tagger clock.
        channels: ``uint8`` tagger channel of each tag.
    """

    timestamps: np.ndarray
    channels: np.ndarray

    def __post_init__(self) -> None:
        if self.timestamps.dtype != TIMESTAMP_DTYPE:
            raise TypeError(f"TagBlock.timestamps: dtype {self.timestamps.dtype}; must be int64 (ps)")
        if self.channels.dtype != CHANNEL_DTYPE:
            raise TypeError(f"TagBlock.channels: dtype {self.channels.dtype}; must be uint8")
        if self.timestamps.shape != self.channels.shape or self.timestamps.ndim != 1:
            raise ValueError(
                f"TagBlock: timestamps shape {self.timestamps.shape} and channels shape "
                f"{self.channels.shape} must be equal and one-dimensional"
            )

    def __len__(self) -> int:
        return int(self.timestamps.shape[0])

    @classmethod
    def empty(cls) -> "TagBlock":
        return cls(np.empty(0, TIMESTAMP_DTYPE), np.empty(0, CHANNEL_DTYPE))

    @classmethod
    def concatenate(cls, blocks: list["TagBlock"]) -> "TagBlock":
        if not blocks:
            return cls.empty()
        return cls(
            np.concatenate([b.timestamps for b in blocks]),
            np.concatenate([b.channels for b in blocks]),
        )


@dataclass(frozen=True)
class LossRecord:
    """A stretch of the tag stream that was lost.

    Attributes:
        start_ps: last good timestamp before the loss (tagger clock, ps).
        stop_ps: first good timestamp after the loss (ps).
        source: what detected it: ``"tagger_flag"`` (the tagger's data-lost flag),
            ``"sync_gap"`` (missing laser syncs the tagger did not flag),
            ``"queue_full:<sink>"`` (a sink could not keep up),
            ``"disk_space:<sink>"`` (the writer stopped before the disk was full).
        missing_syncs: number of laser sync tags missing in the range (-1 if unknown).
    """

    start_ps: int
    stop_ps: int
    source: str
    missing_syncs: int = -1

    @property
    def duration_ps(self) -> int:
        return self.stop_ps - self.start_ps


@dataclass
class FrameBlock:
    """Camera frames placed on the tagger clock by their frame-clock marker tags.

    Attributes:
        indices: ``int64`` frame index in the run (0 = first frame), one per frame.
        frames: counts, shape ``(n, pixels)`` (FVB) or ``(n, rows, pixels)`` (image).
        exposure_start_ps: ``int64`` ps, the frame's marker tag (tagger clock).
        exposure_stop_ps: ``int64`` ps, start + exposure time.
    """

    indices: np.ndarray
    frames: np.ndarray
    exposure_start_ps: np.ndarray
    exposure_stop_ps: np.ndarray

    def __len__(self) -> int:
        return int(self.indices.shape[0])


@dataclass
class PhotonBlock:
    """Photons (detector tags) with macrotime and nanotime, plus side channels.

    Attributes:
        timestamps: ``int64`` ps macrotimes (tagger clock).
        detectors: ``uint8`` tagger channel of each photon.
        nanotimes: ``int32`` ps delay after the preceding laser pulse
            (``NO_NANOTIME`` = -1 before the first sync).
        markers: ``int64`` ps timestamps of frame-marker tags in this block.
        losses: loss records found while producing this block.
        sync_count: laser sync tags consumed for this block.
        span_ps: (start, stop) of the stretch of tagger time this block covers;
            consecutive blocks tile the run without gaps or overlap.
        frames: camera frames completed while this block was read (None = none).
        skipped_frames: frame indices the camera lost (never delivered).
    """

    timestamps: np.ndarray
    detectors: np.ndarray
    nanotimes: np.ndarray
    markers: np.ndarray = field(default_factory=lambda: np.empty(0, TIMESTAMP_DTYPE))
    losses: list[LossRecord] = field(default_factory=list)
    sync_count: int = 0
    span_ps: tuple[int, int] = (0, 0)
    frames: FrameBlock | None = None
    skipped_frames: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))

    def __len__(self) -> int:
        return int(self.timestamps.shape[0])

    @classmethod
    def empty(cls) -> "PhotonBlock":
        return cls(
            np.empty(0, TIMESTAMP_DTYPE), np.empty(0, CHANNEL_DTYPE), np.empty(0, NANOTIME_DTYPE)
        )


def went_back_message(owner: str, ts: np.ndarray, last_ps: int | None) -> str:
    """Where the timestamps ``ts`` (ps) of a block go back in time, after a previous photon at ``last_ps``.

    For error messages only (it scans the block): names the two photons out of order.
    """
    if last_ps is not None and len(ts) and int(ts[0]) < last_ps:
        return (f"{owner}: photon timestamps go back in time: the block starts at {int(ts[0])} ps, before the "
                f"previous photon at {last_ps} ps: blocks must be sorted and in order")
    back = np.flatnonzero(np.diff(ts) < 0)
    if not len(back):
        return f"{owner}: photon timestamps go back in time (block starting at {int(ts[0])} ps)"
    i = int(back[0]) + 1
    return (f"{owner}: photon timestamps go back in time: photon {i} of the block starting at {int(ts[0])} ps "
            f"is at {int(ts[i])} ps, after one at {int(ts[i - 1])} ps: timestamps must be sorted")


def merge_flag_loss(flag: LossRecord | None, losses: list[LossRecord]) -> list[LossRecord]:
    """Merge the tagger's data-lost flag with the sync gaps of the same block.

    A sync gap that overlaps the flagged range is the same loss: keep one record
    with source ``tagger_flag``, the sync gap's exact range and its missing syncs.
    """
    if flag is None:
        return losses
    merged = flag
    rest: list[LossRecord] = []
    for loss in losses:
        if loss.source == "sync_gap" and loss.start_ps <= merged.stop_ps and loss.stop_ps >= merged.start_ps:
            merged = LossRecord(min(loss.start_ps, merged.start_ps), max(loss.stop_ps, merged.stop_ps), "tagger_flag", loss.missing_syncs)
        else:
            rest.append(loss)
    return [merged, *rest]


def tagger_flag_loss(flagged: bool, block: TagBlock, last_ps: int | None, end_ps: int | None) -> LossRecord | None:
    """The loss the tagger flagged on a read: from the last tag read before (``last_ps``) to the
    first tag of ``block`` (ps).

    None when nothing was flagged, on the first read of a run (``last_ps`` None: the run starts
    at the first tag read, so nothing inside it was lost), and when the range lies past the
    run's requested end ``end_ps``.
    """
    if not flagged or last_ps is None:
        return None
    if end_ps is not None and last_ps >= end_ps:
        return None
    stop_ps = int(block.timestamps[0]) if len(block) else last_ps
    if end_ps is not None:
        stop_ps = min(stop_ps, end_ps)
    return LossRecord(last_ps, stop_ps, "tagger_flag", -1)

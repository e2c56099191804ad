"""Make the photon path's kernels ready before the excitation goes on.

numba compiles a kernel at its first call (or loads it from its on-disk cache).  Done on
the first block of a run, the reader thread would stall while the tagger's ring buffer
fills, and at 1 MHz the buffer overflows.  :func:`warm_up` runs the converter, the tag
counter and the standard live accumulators once over a tiny synthetic stream, with the
dtypes of a real run, so that every kernel is ready (loaded) before the stream starts.

On the first run after an install the kernels are not in numba's cache: the process then
runs on their numpy versions while a background process compiles them for the next run
(:mod:`labctl.analysis.kernel_backend`; :func:`compile_kernels` is what it runs for these).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import numpy as np

from labctl.blocks import CHANNEL_DTYPE, TIMESTAMP_DTYPE, ChannelMap, TagBlock

log = logging.getLogger(__name__)

_WARM_PERIOD_PS = 1_000_000  # 1 MHz syncs in the synthetic stream


def _synthetic_block(channels: ChannelMap) -> TagBlock:
    """64 laser syncs with a gap, photons on both SPADs after most of them, a frame marker."""
    syncs = np.arange(64, dtype=np.int64) * _WARM_PERIOD_PS
    syncs = syncs[(syncs < 20 * _WARM_PERIOD_PS) | (syncs >= 40 * _WARM_PERIOD_PS)]  # a sync gap
    parts = [(syncs, channels.laser_sync), (syncs[::2] + 35_000, channels.spad_a), (syncs[1::2] + 50_000, channels.spad_b)]
    if channels.frame_marker is not None:
        parts.append((np.array([10 * _WARM_PERIOD_PS + 7], np.int64), channels.frame_marker))
    timestamps = np.concatenate([t for t, _ in parts]).astype(TIMESTAMP_DTYPE)
    codes = np.concatenate([np.full(t.size, ch, CHANNEL_DTYPE) for t, ch in parts])
    order = np.argsort(timestamps, kind="stable")
    return TagBlock(timestamps[order], codes[order])


WARM_UP_STEPS = 6
"""Steps :func:`warm_up` reports to its ``progress`` callback (tag counter, converter, 4 accumulators)."""


def warm_up(channels: ChannelMap, progress: Callable[[int, int, str], None] | None = None) -> float:
    """Make every kernel of a run's photon path ready; returns the time it took (s).

    Covers the converter (:class:`~labctl.acquisition.photons.PhotonConverter`), the engine's tag
    counter and the standard live accumulators (g(2), lifetime, trace, FLID).  A sink
    with numba kernels of its own should warm them up in its ``open``.

    Args:
        channels: the station's channel map.
        progress: called after each step with (steps done, WARM_UP_STEPS, what was made ready).
    """
    from labctl.analysis._kernels import channel_counts
    from labctl.analysis.accumulator_warm_up import exercise_accumulators
    from labctl.acquisition.photons import PhotonConverter

    steps = iter(range(1, WARM_UP_STEPS + 1))

    def done(what: str) -> None:
        step = next(steps)
        if progress is not None:
            progress(step, WARM_UP_STEPS, what)

    started = time.perf_counter()
    block = _synthetic_block(channels)
    channel_counts(block.channels)
    done("tag counter")
    converter = PhotonConverter(channels, 1, 1)
    half = block.timestamps.size // 2  # two blocks: the carry-over path too
    photons = converter.process(TagBlock(block.timestamps[:half], block.channels[:half]))
    later = converter.process(TagBlock(block.timestamps[half:], block.channels[half:]))
    converter.finish()
    done("photon converter")
    exercise_accumulators([photons, later], [channels.spad_a, channels.spad_b], _WARM_PERIOD_PS, done)
    return time.perf_counter() - started


def compile_kernels() -> None:
    """:func:`warm_up` on the built-in station's channels (the background compiler's warm-up for these kernels)."""
    warm_up(ChannelMap(laser_sync=0, spad_a=1, spad_b=2, frame_marker=3))


def start_warm_up_thread(channels: ChannelMap, report: Callable[[int, int, str], None],
                         report_after_s: float = 0.0) -> threading.Thread:
    """Run :func:`warm_up` on a thread (e.g. while the station connects) and return it.

    ``report(done, total, what)`` is called after each step once the warm-up has taken
    ``report_after_s`` (s): a warm install (kernels loaded from numba's cache in a fraction
    of a second) reports nothing.  An error is logged, not raised: the run's start warms up
    again and raises it there.
    """
    started = time.monotonic()

    def progress(done: int, total: int, what: str) -> None:
        if time.monotonic() - started >= report_after_s:
            report(done, total, what)

    def work() -> None:
        try:
            warm_up(channels, progress=progress)
        except Exception as exc:  # noqa: BLE001 - the engine's own warm-up raises it at the run's start
            log.warning("warming up the photon kernels failed: %s", exc)

    thread = threading.Thread(target=work, name="labctl-warm-up", daemon=True)
    thread.start()
    return thread

"""Compile the photon path's numba kernels before the excitation goes on.

numba compiles a kernel at its first call (or loads it from its on-disk cache,
which a fresh install or a code update does not have).  Compiling the
converter's kernels takes seconds; done on the first block of a run, the reader
thread would stall that long while the tagger's ring buffer fills, and at 1 MHz
the buffer overflows: the first run after an install would start with a loss.
:func:`warm_up` runs the converter, the tag counter and the standard live
accumulators once over a tiny synthetic stream, with the dtypes of a real run,
so that every kernel is ready (compiled or loaded) before the stream starts.

On the first run after an install, :func:`compile_in_process` compiles them in a
process of its own (``python -m labctl.acquisition.warmup``), on the other core, while this
process builds the station (whose simulated instruments compile kernels of their
own): numba compiles one kernel at a time per process.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

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
    """Make every numba kernel of a run's photon path ready; returns the time it took (s).

    Covers the converter (:class:`~labctl.acquisition.photons.PhotonConverter`), the engine's tag
    counter and the standard live accumulators (g(2), lifetime, trace, FLID).  A sink
    with numba kernels of its own should warm them up in its ``open``.

    Args:
        channels: the station's channel map.
        progress: called after each step with (steps done, WARM_UP_STEPS, what was made ready).
    """
    def done(step: int, what: str) -> None:
        if progress is not None:
            progress(step, WARM_UP_STEPS, what)

    from labctl.analysis import FlidAccumulator, G2Accumulator, IntensityTrace, LifetimeAccumulator
    from labctl.analysis._kernels import channel_counts
    from labctl.acquisition.photons import PhotonConverter

    started = time.perf_counter()
    block = _synthetic_block(channels)
    channel_counts(block.channels)
    done(1, "tag counter")
    converter = PhotonConverter(channels, 1, 1)
    half = block.timestamps.size // 2  # two blocks: the carry-over path too
    photons = converter.process(TagBlock(block.timestamps[:half], block.channels[:half]))
    later = converter.process(TagBlock(block.timestamps[half:], block.channels[half:]))
    converter.finish()
    done(2, "photon converter")
    detectors = [channels.spad_a, channels.spad_b]
    accumulators = [G2Accumulator(*detectors, period_ps=_WARM_PERIOD_PS),
                    LifetimeAccumulator(detectors, period_ps=_WARM_PERIOD_PS),
                    IntensityTrace(detectors, bin_ms=0.01), FlidAccumulator(detectors, bin_ms=0.01)]
    for step, accumulator in enumerate(accumulators, start=3):
        accumulator.update(photons)
        accumulator.update(later)
        accumulator.finalize()
        done(step, type(accumulator).__name__)
    return time.perf_counter() - started


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
            compiling = compile_in_process(channels)
            if compiling is not None:  # first run after an install: compiled there, loaded here
                wait_for(compiling, progress)
            warm_up(channels, progress=progress)
        except Exception as exc:  # noqa: BLE001 - the engine's own warm-up raises it at the run's start
            log.warning("warming up the photon kernels failed: %s", exc)

    thread = threading.Thread(target=work, name="labctl-warm-up", daemon=True)
    thread.start()
    return thread


def kernels_cached() -> bool:
    """Whether numba's on-disk cache holds fresh versions of the photon path's kernels.

    False on the first run after an install (or after their source changed).  Reads
    each kernel's cache index (numba's ``FunctionCache``, not a public API): if that
    cannot be read the answer is True, and :func:`warm_up` compiles as it always did.
    """
    from labctl.acquisition import photon_kernels as P
    from labctl.analysis import _kernels as K

    kernels = (K.channel_counts, P.split_tags_after, P.sync_gaps, P.photon_nanotimes, K.split_two_detectors,
               K.add_pair_counts, K.add_nanotime_histograms, K.add_time_bins)
    try:
        return all(kernel._cache._cache_file._load_index() for kernel in kernels)
    except Exception:  # noqa: BLE001 - numba's internals changed: compile in this process, as before
        return True


def compile_in_process(channels: ChannelMap) -> subprocess.Popen[str] | None:
    """Start ``python -m labctl.acquisition.warmup`` to compile the kernels into numba's cache, if they are not there.

    Returns the process (its stdout: a progress line per step, "done total what"), or None
    when the kernels are cached already.  This process then waits for it (:func:`wait_for`)
    and loads them with :func:`warm_up`; if the child fails, :func:`warm_up` compiles here.
    """
    if kernels_cached():
        return None
    root = str(Path(__file__).resolve().parents[2])  # the same labctl, whatever sys.path the child gets
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])}
    try:
        return subprocess.Popen([sys.executable, "-m", "labctl.acquisition.warmup", json.dumps(channels.as_dict())],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True, env=env)
    except OSError as exc:
        log.info("compiling the photon kernels in a process of their own failed to start (%s): here instead", exc)
        return None


@contextmanager
def compiling_aside(channels: ChannelMap) -> Iterator[subprocess.Popen[str] | None]:
    """:func:`compile_in_process` for a ``with`` block: the child is ended if still running at its exit."""
    compiling = compile_in_process(channels)
    try:
        yield compiling
    finally:
        if compiling is not None and compiling.poll() is None:
            compiling.kill()
            compiling.wait()


def wait_for(compiling: subprocess.Popen[str], progress: Callable[[int, int, str], None] | None = None) -> None:
    """Wait for :func:`compile_in_process`'s child, passing its progress lines on; ends it if interrupted."""
    try:
        assert compiling.stdout is not None
        for line in compiling.stdout:
            parts = line.rstrip("\n").split(" ", 2)
            if progress is not None and len(parts) == 3 and parts[0].isdigit() and parts[1].isdigit():
                progress(int(parts[0]), int(parts[1]), parts[2])
        compiling.wait()
    finally:
        if compiling.poll() is None:
            compiling.kill()
            compiling.wait()


if __name__ == "__main__":  # compile_in_process's child: python -m labctl.acquisition.warmup '{"laser_sync": 0, ...}'
    _map = json.loads(sys.argv[1])
    warm_up(ChannelMap(**_map), progress=lambda done, total, what: print(done, total, what, flush=True))

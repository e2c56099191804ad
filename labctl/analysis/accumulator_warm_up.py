"""Run the standard live accumulators over small photon blocks, so that their kernels are ready.

numba compiles one version of a kernel per argument types; the accumulators are run
here with a real run's dtypes (int64 ps, uint8 channels, int32 nanotimes), so what this
compiles (or loads from numba's cache) is what a run calls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from labctl.blocks import CHANNEL_DTYPE, NANOTIME_DTYPE, TIMESTAMP_DTYPE, PhotonBlock

WARM_PERIOD_PS = 1_000_000
"""Laser period of the synthetic photons (1 MHz)."""


def synthetic_photons(detectors: Sequence[int] = (1, 2)) -> list[PhotonBlock]:
    """Two consecutive blocks of photons on both detectors, one after each of 64 pulses (a nanotime missing)."""
    timestamps = np.arange(64, dtype=TIMESTAMP_DTYPE) * WARM_PERIOD_PS + 35_000
    channels = np.array([detectors[i % 2] for i in range(64)], CHANNEL_DTYPE)
    nanotimes = np.full(64, 35_000, NANOTIME_DTYPE)
    nanotimes[0] = -1
    return [PhotonBlock(timestamps[:32].copy(), channels[:32].copy(), nanotimes[:32].copy()),
            PhotonBlock(timestamps[32:].copy(), channels[32:].copy(), nanotimes[32:].copy())]


def exercise_accumulators(blocks: Sequence[PhotonBlock], detectors: Sequence[int], period_ps: int,
                          done: Callable[[str], None] | None = None) -> None:
    """Feed ``blocks`` to a g(2), lifetime, trace and FLID accumulator and finalize each; ``done(name)`` after each."""
    from labctl.analysis import FlidAccumulator, G2Accumulator, IntensityTrace, LifetimeAccumulator

    accumulators = [G2Accumulator(*detectors[:2], period_ps=period_ps), LifetimeAccumulator(detectors, period_ps=period_ps),
                    IntensityTrace(detectors, bin_ms=0.01), FlidAccumulator(detectors, bin_ms=0.01)]
    for accumulator in accumulators:
        for block in blocks:
            accumulator.update(block)
        accumulator.finalize()
        if done is not None:
            done(type(accumulator).__name__)


def compile_kernels() -> None:
    """Every kernel of :mod:`labctl.analysis._kernels` called once (the background compiler's warm-up)."""
    from labctl.analysis._kernels import channel_counts

    blocks = synthetic_photons()
    channel_counts(blocks[0].detectors)
    exercise_accumulators(blocks, (1, 2), WARM_PERIOD_PS)

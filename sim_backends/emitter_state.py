"""The slow state of the quantum dot: blinking (ON/OFF) and the trapping probability P_trap(t).

Both are piecewise-constant processes drawn from their own random streams, in fixed-size
batches and in time order, so the state at any time depends only on the seed and the
config, never on how generation is segmented or how far ahead it has run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

PS_PER_S = 10**12
BATCH = 64
"""Dwell times drawn per extension of a process (fixed: part of the deterministic recipe)."""

_STREAM_BLINKING = 1
_STREAM_P_TRAP = 2


def stream_rng(seed: int, *key: int) -> np.random.Generator:
    """Independent generator for (seed, key...); key (0,) is reserved for the segment streams."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


def power_law_dwell_s(u: np.ndarray, exponent: float, min_s: float, max_s: float) -> np.ndarray:
    """Inverse-CDF samples of p(t) ∝ t**-exponent on [min_s, max_s] from uniforms ``u``."""
    if abs(exponent - 1.0) < 1e-12:
        return min_s * (max_s / min_s) ** u
    e = 1.0 - exponent
    lo, hi = min_s**e, max_s**e
    return (lo + u * (hi - lo)) ** (1.0 / e)


class PiecewiseProcess:
    """Value ``values[i]`` on ``[ends[i-1], ends[i])`` (``ends[-1]`` = 0), extended on demand.

    Args:
        batch: ``batch() -> (dwells_ps int64, values float64)``; called in order, it must
            consume its random stream identically every time (fixed batch size).
    """

    def __init__(self, batch: Callable[[], tuple[np.ndarray, np.ndarray]]) -> None:
        self._batch = batch
        self.ends = np.empty(0, np.int64)  # (16 bytes per dwell: no Python-list copies, ~3 MB per hour less)
        self.values = np.empty(0, np.float64)

    @classmethod
    def constant(cls, value: float) -> "PiecewiseProcess":
        return cls(lambda: (np.array([np.iinfo(np.int64).max // 2], np.int64), np.array([float(value)])))

    def ensure(self, t_ps: int) -> None:
        """Draw dwells until the process is defined on ``[0, t_ps]``."""
        while not self.ends.size or self.ends[-1] <= t_ps:
            dwells, values = self._batch()
            start = int(self.ends[-1]) if self.ends.size else 0
            new_ends = start + np.cumsum(dwells)
            self.ends = np.concatenate((self.ends, new_ends))
            self.values = np.concatenate((self.values, values))

    def at(self, t_ps: np.ndarray) -> np.ndarray:
        """Values at times ``t_ps`` (must be within the ensured range)."""
        return self.values[np.searchsorted(self.ends, t_ps, side="right")]

    def value_at(self, t_ps: int) -> float:
        """Value at one time (within the ensured range)."""
        return float(self.values[int(np.searchsorted(self.ends, t_ps, side="right"))])

    def changes_in(self, start_ps: int, stop_ps: int) -> list[int]:
        """Times in ``(start, stop)`` where the value changes."""
        lo = int(np.searchsorted(self.ends, start_ps, side="right"))
        if self.ends[lo] >= stop_ps:
            return []
        return self.ends[lo : int(np.searchsorted(self.ends, stop_ps, side="left"))].tolist()


def _blinking_process(params: Mapping[str, Any], seed: int) -> PiecewiseProcess:
    rng = stream_rng(seed, _STREAM_BLINKING)
    min_s = params["min_dwell_ms"] * 1e-3
    max_s = params["max_dwell_s"]
    values = np.tile([1.0, 0.0], BATCH)  # start ON, then alternate

    def batch() -> tuple[np.ndarray, np.ndarray]:
        u = rng.random((BATCH, 2))
        on = power_law_dwell_s(u[:, 0], params["exponent_on"], min_s, max_s)
        off = power_law_dwell_s(u[:, 1], params["exponent_off"], min_s, max_s)
        dwell_s = np.column_stack((on, off)).ravel()
        return np.maximum(np.rint(dwell_s * PS_PER_S), 1).astype(np.int64), values

    return PiecewiseProcess(batch)


def _p_trap_process(params: Mapping[str, Any], seed: int) -> PiecewiseProcess:
    mode = params["mode"]
    if mode == "fixed":
        return PiecewiseProcess.constant(params["value"])
    if mode == "two_level":
        dwell = np.full(2 * BATCH, max(round(params["dwell_s"] * PS_PER_S), 1), np.int64)
        levels = np.tile(np.asarray(params["levels"], np.float64), BATCH)
        return PiecewiseProcess(lambda: (dwell, levels))
    if mode == "cycle":  # known truth for tests: the levels in turn, each for dwell_s
        cycle = np.asarray(params["cycle_levels"], np.float64)
        dwell = np.full(cycle.size * BATCH, max(round(params["dwell_s"] * PS_PER_S), 1), np.int64)
        levels = np.tile(cycle, BATCH)
        return PiecewiseProcess(lambda: (dwell, levels))
    rng = stream_rng(seed, _STREAM_P_TRAP)

    def batch() -> tuple[np.ndarray, np.ndarray]:
        levels = rng.random(BATCH) * params["max"]
        dwell_s = rng.exponential(params["timescale_s"], BATCH)
        return np.maximum(np.rint(dwell_s * PS_PER_S), 1).astype(np.int64), levels

    return PiecewiseProcess(batch)


class EmitterState:
    """ON/OFF and P_trap of the emitter as functions of tagger time (ps).

    For emitters other than ``single_qd`` the state is constant: ON (OFF for ``none``) and
    P_trap = 0.
    """

    def __init__(self, emitter: Mapping[str, Any], seed: int) -> None:
        qd = emitter["kind"] == "single_qd"
        if qd and emitter["blinking"]["enabled"]:
            self.blinking = _blinking_process(emitter["blinking"], seed)
        else:
            self.blinking = PiecewiseProcess.constant(1.0 if emitter["kind"] != "none" else 0.0)
        self.p_trap = _p_trap_process(emitter["p_trap"], seed) if qd else PiecewiseProcess.constant(0.0)

    def ensure(self, t_ps: int) -> None:
        self.blinking.ensure(t_ps)
        self.p_trap.ensure(t_ps)

    def on_at(self, t_ps: np.ndarray) -> np.ndarray:
        return self.blinking.at(t_ps) > 0.5

    def p_trap_at(self, t_ps: np.ndarray) -> np.ndarray:
        return self.p_trap.at(t_ps)

    def rows(self, start_ps: int, stop_ps: int) -> tuple[list[int], list[bool], list[float]]:
        """Constant-state rows of ``[start, stop)``: edges ``[start, changes..., stop]``, ON and P_trap per row."""
        changes = self.blinking.changes_in(start_ps, stop_ps) + self.p_trap.changes_in(start_ps, stop_ps)
        edges = [start_ps, *sorted(set(changes)), stop_ps]
        starts = edges[:-1]
        on = [self.blinking.value_at(t) > 0.5 for t in starts]
        return edges, on, [self.p_trap.value_at(t) for t in starts]

    def intervals(self, stop_ps: int) -> dict[str, np.ndarray]:
        """State intervals tiling ``[0, stop_ps)`` (empty arrays if ``stop_ps`` is 0)."""
        if stop_ps <= 0:
            return {
                "start_ps": np.empty(0, np.int64),
                "stop_ps": np.empty(0, np.int64),
                "on": np.empty(0, bool),
                "p_trap": np.empty(0, np.float64),
            }
        self.ensure(stop_ps)
        inner = np.union1d(self.blinking.ends, self.p_trap.ends)
        edges = np.concatenate(([0], inner[inner < stop_ps], [stop_ps])).astype(np.int64)
        starts = edges[:-1]
        return {
            "start_ps": starts,
            "stop_ps": edges[1:].copy(),
            "on": self.on_at(starts),
            "p_trap": self.p_trap_at(starts),
        }

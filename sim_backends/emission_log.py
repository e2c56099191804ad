"""The scene's record of what the emitter sent out: photons by kind per stretch of constant state.

``Scene`` adds one row per generated segment and emitter-state change; the spectral
path (``Scene.emitted_counts`` / ``emitted_spectrum``, read by the simulated camera)
asks it for the rows of a time window.  Only the recent past is kept, so a long run
has bounded memory.
"""

from __future__ import annotations

import numpy as np

from sim_backends.emitters import LOG_COLUMNS

LOG_FIELDS = ("start_ps", "stop_ps", "pulses", *LOG_COLUMNS)
"""Columns of a row: its time span (int64 ps), the laser pulses in it, then photons by kind."""
EMISSION_LOG_KEEP_PS = 60 * 10**12
"""The emission log keeps at least the last 60 s of generated segments (older rows are dropped)."""


class EmissionLog:
    """Append-only table of emission-log rows, kept as Python tuples and packed in blocks.

    Only the recent past is kept: a packed block whose rows all end more than
    ``EMISSION_LOG_KEEP_PS`` before the newest row is dropped (bounded memory over a
    long run; the simulated camera asks only for the windows of recent frames).
    ``kept_from_ps`` is the start of the oldest row kept.
    """

    def __init__(self) -> None:
        self._blocks: list[np.ndarray] = []
        self._rows: list[tuple[int, ...]] = []
        self.kept_from_ps = 0

    def add(self, edges: list[int], pulses: list[int], counts: list[tuple[int, ...]]) -> None:
        """Rows ``[edges[i], edges[i + 1])`` (ps) with ``pulses[i]`` laser pulses and photons ``counts[i]``."""
        for i, c in enumerate(counts):
            self._rows.append((edges[i], edges[i + 1], pulses[i], *c))
        if len(self._rows) >= 4096:
            self._pack()
            newest_ps = int(self._blocks[-1][-1, 1])
            while len(self._blocks) > 1 and int(self._blocks[0][-1, 1]) < newest_ps - EMISSION_LOG_KEEP_PS:
                self._blocks.pop(0)
                self.kept_from_ps = int(self._blocks[0][0, 0])

    def window(self, t0_ps: int, t1_ps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows overlapping ``[t0, t1)``: (start_ps, stop_ps, counts ``(rows, len(LOG_COLUMNS))``).

        Searches the packed blocks from the newest back (windows are usually recent) and
        the rows not packed yet, without packing them (a query must not fragment the table).
        """
        parts = []
        if self._rows:
            pending = np.array(self._rows, np.int64).reshape(-1, len(LOG_FIELDS))
            parts.append(pending[(pending[:, 1] > t0_ps) & (pending[:, 0] < t1_ps)])
        for block in reversed(self._blocks):
            if block.shape[0] == 0 or block[-1, 1] <= t0_ps:
                break
            if block[0, 0] >= t1_ps:
                continue
            lo = int(np.searchsorted(block[:, 1], t0_ps, side="right"))
            hi = int(np.searchsorted(block[:, 0], t1_ps, side="left"))
            parts.append(block[lo:hi])
        rows = np.concatenate(parts[::-1]) if parts else np.empty((0, len(LOG_FIELDS)), np.int64)
        return rows[:, 0], rows[:, 1], rows[:, 3:]

    def table(self) -> dict[str, np.ndarray]:
        """Every row kept, one array per column of ``LOG_FIELDS``."""
        self._pack()
        table = np.concatenate(self._blocks) if self._blocks else np.empty((0, len(LOG_FIELDS)), np.int64)
        return {name: table[:, i].copy() for i, name in enumerate(LOG_FIELDS)}

    def _pack(self) -> None:
        if self._rows:
            self._blocks.append(np.array(self._rows, np.int64).reshape(-1, len(LOG_FIELDS)))
            self._rows = []

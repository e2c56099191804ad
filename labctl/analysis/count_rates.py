"""Count rates per tagger channel from a run's cumulative counts (for status bars and panels).

The engine's status carries cumulative counts per channel and the tagger time
elapsed since the run's first tag.  :class:`CountRateMeter` turns successive
statuses into rates (counts per second of tagger time), averaged over at least
``window_s``.  A new run (a live run restarted after a setting change) starts
from zero counts and zero elapsed time: the meter starts again with it, so a
rate never mixes two runs (which showed the old run's rates frozen, then
negative ones).
"""

from __future__ import annotations

from typing import Any, Mapping

RATE_WINDOW_S = 1.0
"""Rates are averaged over at least this much tagger time (s)."""


class CountRateMeter:
    """Rates (cps) per channel from statuses with ``elapsed_s`` and cumulative ``counts``.

    Args:
        window_s: tagger time (s) over which a rate is averaged (at least).
    """

    def __init__(self, window_s: float = RATE_WINDOW_S) -> None:
        if not window_s > 0:
            raise ValueError(f"CountRateMeter: window_s = {window_s!r}: must be > 0 (s)")
        self.window_s = float(window_s)
        self._ref: tuple[float, dict[int, int]] | None = None
        self.rates_cps: dict[int, float] = {}

    def reset(self) -> None:
        """A new run: forget the reference and the rates."""
        self._ref = None
        self.rates_cps = {}

    def update(self, status: Mapping[str, Any]) -> dict[int, float]:
        """Take a status; returns the rates (cps) by channel (empty until one window has passed).

        A status whose elapsed time or counts went backwards belongs to a new run: the
        meter starts again from it.
        """
        if "elapsed_s" not in status:
            return self.rates_cps
        elapsed_s = float(status["elapsed_s"])
        counts = {int(ch): int(n) for ch, n in (status.get("counts") or {}).items()}
        if self._ref is not None:
            ref_s, ref_counts = self._ref
            if elapsed_s < ref_s or any(counts.get(ch, 0) < n for ch, n in ref_counts.items()):
                self.reset()
        if self._ref is None:
            self._ref = (elapsed_s, counts)
        elif elapsed_s - self._ref[0] >= self.window_s:
            ref_s, ref_counts = self._ref
            span_s = elapsed_s - ref_s
            self.rates_cps = {ch: (n - ref_counts.get(ch, 0)) / span_s for ch, n in counts.items()}
            self._ref = (elapsed_s, counts)
        return self.rates_cps

"""SPAD count-rate protection: which detector stayed above its limit long enough to cut the excitation."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from labctl.blocks import TagBlock


class RateProtection:
    """Watches each detector's count rate block by block.

    Args:
        detectors: the station's photon detectors (``tagger_channel()``, ``max_count_rate_cps()``).
        hold_s: how long (s, tagger time) a detector may stay above its limit before the cut.
    """

    def __init__(self, detectors: Sequence[Any], hold_s: float) -> None:
        self._detectors = list(detectors)
        self._hold_s = float(hold_s)
        self._over_since_ps: dict[int, int] = {}

    def check(self, block: TagBlock) -> str | None:
        """The reason to cut the excitation after ``block`` (None: every rate is fine or not yet held).

        The rate of a block is its count on the channel over its span (first to last tag, ps).
        """
        if len(block) < 2:
            return None
        span_s = (int(block.timestamps[-1]) - int(block.timestamps[0])) * 1e-12
        if span_s <= 0:
            return None
        now_ps = int(block.timestamps[-1])
        for detector in self._detectors:
            channel = detector.tagger_channel()
            rate = np.count_nonzero(block.channels == channel) / span_s
            limit = float(detector.max_count_rate_cps())
            if rate <= limit:
                self._over_since_ps.pop(channel, None)
                continue
            since = self._over_since_ps.setdefault(channel, int(block.timestamps[0]))
            if (now_ps - since) * 1e-12 >= self._hold_s:
                return f"protection: channel {channel} at {rate:.3g} counts/s above its limit {limit:.3g} counts/s"
        return None

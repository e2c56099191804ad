"""Settings of the acquisition engine (the ``engine:`` section of a station file)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

from labctl.station.validation import Number, check_section

ENGINE_SCHEMA = {
    "poll_interval_ms": Number(1, 10_000, unit="ms"),
    "queue_blocks": Number(1, 100_000, integer=True, unit="blocks per sink"),
    "software_sync_divider": Number(1, 1024, integer=True),
    "flush_interval_s": Number(0.01, 60, unit="s"),
    "min_free_mb": Number(0, 10**7, unit="MiB"),
    "rate_protection_hold_s": Number(0, 60, unit="s"),
    "watchdog_s": Number(2, 3600, unit="s"),
}


@dataclass(frozen=True)
class EngineSettings:
    """How the engine polls, buffers and protects.

    Attributes:
        poll_interval_ms: time between two reads of the tagger buffer (ms).
        queue_blocks: blocks each sink may have waiting before new blocks for it are
            dropped and recorded as a loss (bounds memory: at most this many
            tagger-buffer-sized blocks per sink).
        software_sync_divider: keep only every n-th sync tag (on top of the tagger's
            own divider); nanotimes stay exact.
        flush_interval_s: a crash loses at most this much (s): the file writer flushes
            every dataset every ``flush_interval_s / 2`` on a fixed schedule, the other
            half being margin for the flush itself and the tagger read.
        min_free_mb: the writer stops cleanly when free disk space falls below this (MiB).
        rate_protection_hold_s: a SPAD whose count rate stays above its limit this
            long (s) makes the engine cut the excitation and stop.
        watchdog_s: an instrument call (tagger read, camera read, generator write...) that
            has not returned after this long (s) is hung: the run stops cleanly and says
            which call hung (:mod:`labctl.station.watchdog`); the safe-state call gets as long.
    """

    poll_interval_ms: float = 50.0
    queue_blocks: int = 256
    software_sync_divider: int = 1
    flush_interval_s: float = 1.0
    min_free_mb: float = 256.0
    rate_protection_hold_s: float = 0.5
    watchdog_s: float = 5.0

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None, source: str = "") -> "EngineSettings":
        """Validated settings from an ``engine:`` mapping (missing keys keep their defaults)."""
        return cls(**check_section(data, ENGINE_SCHEMA, "engine", source))

    def replace(self, **changes: Any) -> "EngineSettings":
        """A copy with some settings changed (validated like the file)."""
        current = {f.name: getattr(self, f.name) for f in fields(self)}
        current.update(changes)
        return EngineSettings.from_mapping(current, "engine settings")

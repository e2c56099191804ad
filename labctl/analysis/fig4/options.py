"""``ReportOptions``: every choice of ``labctl report`` (units in the names), and ``--regimes`` parsing."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from labctl.errors import ConfigError

PAPER_ON_THRESHOLD_PER_100MS = 400
"""The paper's ON selection (Fig. 4c): more than 400 counts per 100 ms, both SPADs summed."""


@dataclass(frozen=True)
class ReportOptions:
    """Options of ``labctl report`` / ``report_file`` (units in the names).

    Attributes:
        bin_ms: time bin of the intensity and average-lifetime traces (ms); the paper's
            ON threshold is given per 100 ms.
        on_threshold: ON threshold (counts per bin); None: Otsu's split of the trace when
            it is bimodal, else the paper's 400 counts per 100 ms scaled to the bin.
        regimes_ns: lifetime regimes ((lo, hi), ns), shortest first; None: three equal
            ranges spanning the 0.5th to 99.5th percentile of the ON bins' mean lifetimes.
        lifetime_bin_ps: nanotime bin of the decays (rounded to whole TCSPC units).
        afterpulse_veto_ns: a photon is left out of lifetimes and decays if its detector
            registered a photon less than this long before, counted in whole laser
            periods of its sync time (afterpulses; independent of its own nanotime).
        decay_window_taus: per-bin lifetimes use nanotimes up to this many global mean
            lifetimes after the rise; the flat background is measured after that, before
            the next rise.
        pre_rise_ns: the lifetime window starts this long before the rise (IRF).
        min_frame_overlap: a camera frame counts for a regime if at least this fraction of
            its exposure lies in the regime's bins (1.0: entirely).
        g2_bin_ps, g2_range_ps, g2_delay_ps: as ``labctl analyze``.
        gate_ns: time-gated g2(0): only photons later than this after the rise.
        exciton_qy: exciton quantum yield, for the biexciton QY = g2(0) x QY_X (None: only
            the ratio QY_BX / QY_X is given).
        levels_confidence: confidence of the change-point tests (``changepoint.find_levels``).
        detectors: detector ids (one or two); None: the file's first two.
        laser_period_ps: overrides the file's laser period.
    """

    bin_ms: float = 100.0
    on_threshold: float | None = None
    regimes_ns: tuple[tuple[float, float], ...] | None = None
    lifetime_bin_ps: int = 100
    afterpulse_veto_ns: float = 3000.0
    decay_window_taus: float = 12.0
    pre_rise_ns: float = 2.0
    min_frame_overlap: float = 1.0
    g2_bin_ps: int = 1000
    g2_range_ps: int = 3_500_000
    g2_delay_ps: int | None = None
    gate_ns: float = 2.0
    exciton_qy: float | None = None
    levels_confidence: float = 0.95
    detectors: tuple[int, ...] | None = None
    laser_period_ps: int | None = None

    def __post_init__(self) -> None:
        positive = {"--bin-ms": self.bin_ms, "lifetime_bin_ps": self.lifetime_bin_ps,
                    "decay_window_taus": self.decay_window_taus, "g2_bin_ps": self.g2_bin_ps,
                    "g2_range_ps": self.g2_range_ps}
        for name, value in positive.items():
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(name, value, "must be a number > 0")
        for name, value in {"afterpulse_veto_ns": self.afterpulse_veto_ns, "pre_rise_ns": self.pre_rise_ns,
                            "gate_ns": self.gate_ns}.items():
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(name, value, "must be a number >= 0 (ns)")
        if self.on_threshold is not None and not (math.isfinite(self.on_threshold) and self.on_threshold >= 0):
            raise ConfigError("--on-threshold", self.on_threshold, "must be a number of counts per bin >= 0")
        if not 0 < self.min_frame_overlap <= 1:
            raise ConfigError("min_frame_overlap", self.min_frame_overlap, "must be in (0, 1]")
        if not 0 < self.levels_confidence < 1:
            raise ConfigError("levels_confidence", self.levels_confidence, "must be in (0, 1)")
        if self.exciton_qy is not None and not 0 < self.exciton_qy <= 1:
            raise ConfigError("exciton_qy", self.exciton_qy, "must be in (0, 1]")
        if self.regimes_ns is not None:
            check_regimes(self.regimes_ns)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["regimes_ns"] = None if self.regimes_ns is None else [list(r) for r in self.regimes_ns]
        d["detectors"] = None if self.detectors is None else list(self.detectors)
        return d


def check_regimes(regimes: Any) -> tuple[tuple[float, float], ...]:
    """Regimes as ((lo, hi), ...) with 0 <= lo < hi (ns), sorted and not overlapping."""
    allowed = "must be lifetime ranges LO-HI (ns, 0 <= LO < HI), shortest first, not overlapping"
    try:
        out = tuple((float(lo), float(hi)) for lo, hi in regimes)
    except (TypeError, ValueError):
        raise ConfigError("--regimes", regimes, allowed) from None
    if not out or any(not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo < hi) for lo, hi in out):
        raise ConfigError("--regimes", regimes, allowed)
    if any(out[i][1] > out[i + 1][0] for i in range(len(out) - 1)):
        raise ConfigError("--regimes", regimes, allowed)
    return out


def parse_regimes(text: str) -> tuple[tuple[float, float], ...]:
    """``--regimes 40-50,50-60,60-70`` (ns) -> ((40, 50), (50, 60), (60, 70))."""
    pairs = []
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        if not sep:
            raise ConfigError("--regimes", text, "must be LO-HI,LO-HI,... (ns), e.g. 40-50,50-60,60-70")
        try:
            pairs.append((float(lo), float(hi)))
        except ValueError:
            raise ConfigError("--regimes", text, "must be LO-HI,LO-HI,... (ns), e.g. 40-50,50-60,60-70") from None
    try:
        return check_regimes(pairs)
    except ConfigError as exc:
        raise ConfigError("--regimes", text, exc.allowed if hasattr(exc, "allowed") else str(exc)) from None

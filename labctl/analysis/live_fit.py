"""A decay fit for the live view: refit the growing TCSPC histogram now and then.

The live lifetime view shows "the latest fit": fitting on every redraw would
spend the CPU the stream needs, so :class:`PeriodicDecayFit` refits at most
every ``interval_s`` and only once the histogram holds ``min_photons``.  The fit
itself is :func:`labctl.analysis.fit.fit_decay` (Poisson maximum likelihood).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from labctl.analysis.lifetime import LifetimeSnapshot


@dataclass(frozen=True)
class LiveFit:
    """The latest live fit (plain data: crosses processes).

    Attributes:
        model: ``"mono"`` or ``"bi"``.
        tau_ns, tau_err_ns: lifetimes and 1-sigma errors (ns); empty if the fit failed.
        fractions: amplitude fractions.
        photons: photons in the histogram that was fitted.
        message: why there is no result (too few photons, fit error), else "".
    """

    model: str
    tau_ns: tuple[float, ...]
    tau_err_ns: tuple[float, ...]
    fractions: tuple[float, ...]
    photons: int
    message: str = ""


class PeriodicDecayFit:
    """Refit the summed decay at most every ``interval_s`` (s), from ``min_photons`` on.

    Args:
        model: ``"mono"`` or ``"bi"``.
        interval_s: shortest time between two fits (s, wall clock).
        min_photons: photons the histogram needs before the first fit.
    """

    def __init__(self, model: str = "mono", interval_s: float = 2.0, min_photons: int = 2000) -> None:
        if model not in ("mono", "bi"):
            raise ValueError(f"PeriodicDecayFit: model = {model!r}: must be 'mono' or 'bi'")
        self.model = model
        self.interval_s = float(interval_s)
        self.min_photons = int(min_photons)
        self.latest: LiveFit | None = None
        self._last_fit_s = -float("inf")

    def reset(self) -> None:
        """Forget the last fit (a new run)."""
        self.latest = None
        self._last_fit_s = -float("inf")

    def update(self, snapshot: LifetimeSnapshot | None, now_s: float | None = None) -> LiveFit | None:
        """Fit ``snapshot`` if due; return the latest fit (None before the first)."""
        now_s = time.monotonic() if now_s is None else now_s
        if snapshot is None or now_s - self._last_fit_s < self.interval_s:
            return self.latest
        photons = int(snapshot.summed.sum())
        if photons < self.min_photons:
            return self.latest
        self._last_fit_s = now_s
        from labctl.analysis.fit import fit_decay  # scipy: only once a fit is due

        try:
            fit = fit_decay(snapshot.summed, snapshot.bin_edges_ps, model=self.model, period_ps=snapshot.period_ps)
        except ValueError as exc:
            self.latest = LiveFit(self.model, (), (), (), photons, str(exc))
        else:
            self.latest = LiveFit(self.model, tuple(fit.tau_ns), tuple(fit.tau_err_ns), tuple(fit.fractions), photons)
        return self.latest

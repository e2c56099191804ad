"""The decay's background: afterpulses (vetoed by the time since the detector's previous photon) and the
flat level before the rise (dark counts, what is left of afterpulses), as expected counts per time bin.

Why both: an afterpulse follows its photon by the dead time plus a delay of ~100s of ns, so at 1 MHz
its nanotimes are not flat (they decay over the period) and a flat level measured before the rise
misses most of them.  A photon whose detector registered another one in the previous ``K`` laser
periods (``K`` = ``afterpulse_veto_ns`` / period, rounded up) is left out of lifetimes and decays:
afterpulses go, and since the veto depends only on earlier pulses, never on the photon's own
nanotime, the lifetimes of the photons kept are unbiased (a random ~rate x veto fraction of them is
lost).  What remains flat (dark counts) is measured in the nanotime window after the decay
(``decay_window_taus`` global lifetimes past the rise) up to ``pre_rise_ns`` before the next rise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


def afterpulse_keep(timestamps_ps: np.ndarray, detectors: np.ndarray, nanotimes_ps: np.ndarray, period_ps: int,
                    veto_ns: float) -> tuple[np.ndarray, int]:
    """(mask of photons kept, veto in whole periods): a photon goes if its detector registered one
    in the previous ``veto`` periods (by sync time = timestamp - nanotime)."""
    k = int(math.ceil(veto_ns * 1e3 / period_ps)) if veto_ns > 0 else 0
    keep = np.ones(timestamps_ps.size, bool)
    if k == 0 or timestamps_ps.size < 2:
        return keep, k
    sync = timestamps_ps - np.maximum(nanotimes_ps, 0)
    order = np.argsort(detectors, kind="stable")  # per detector, still in time order
    s, d = sync[order], detectors[order]
    gap = np.diff(s)
    vetoed = (d[1:] == d[:-1]) & (gap <= int(round((k + 0.5) * period_ps)))
    keep[order[1:][vetoed]] = False
    return keep, k


@dataclass(frozen=True)
class Background:
    """The flat background and the windows of the per-bin lifetimes.

    Attributes:
        t0_ps: the rise (IRF centre) on the aligned nanotime axis.
        window_ps: (start, stop) of the lifetime window, relative to t0 (start < 0).
        flat_window_ps: (start, stop) of the background window, relative to t0 (cyclic).
        density_per_ps_bin: background photons per ps of nanotime per time bin.
        source: how it was measured.
    """

    t0_ps: float
    window_ps: tuple[float, float]
    flat_window_ps: tuple[float, float] | None
    density_per_ps_bin: float
    source: str

    def expected_in_window(self) -> float:
        """Background photons expected in the lifetime window of one time bin."""
        return self.density_per_ps_bin * (self.window_ps[1] - self.window_ps[0])

    def mean_offset_ps(self) -> float:
        """Mean (nanotime - t0) of flat background photons in the lifetime window."""
        return 0.5 * (self.window_ps[0] + self.window_ps[1])

    def as_dict(self) -> dict[str, Any]:
        return {"t0_ps": self.t0_ps, "lifetime_window_ps": list(self.window_ps),
                "flat_window_ps": None if self.flat_window_ps is None else list(self.flat_window_ps),
                "counts_per_ns_per_bin": self.density_per_ps_bin * 1e3, "source": self.source}


def relative_ps(nanotimes_ps: np.ndarray, t0_ps: float, period_ps: int, pre_ps: float) -> np.ndarray:
    """Nanotime - t0 (ps, float64), cyclic into [-pre, period - pre)."""
    return np.mod(nanotimes_ps - t0_ps + pre_ps, period_ps) - pre_ps


def measure_background(dt_ps: np.ndarray, n_bins: int, period_ps: int, tau_ps: float, pre_ps: float,
                       window_taus: float) -> Background:
    """The flat background from ``dt_ps`` (all kept photons' nanotime - t0 of the analysed bins)."""
    margin = 1000.0
    stop = min(window_taus * tau_ps, 0.8 * period_ps - pre_ps)
    flat = (stop, period_ps - pre_ps - margin)
    if flat[1] - flat[0] < 0.05 * period_ps or n_bins == 0:
        return Background(0.0, (-pre_ps, stop), None, 0.0,
                          f"none: the period ({period_ps} ps) leaves no flat stretch after {window_taus:g} lifetimes")
    n_flat = int(np.count_nonzero((dt_ps >= flat[0]) & (dt_ps < flat[1])))
    density = n_flat / (flat[1] - flat[0]) / n_bins
    return Background(0.0, (-pre_ps, stop), flat, density,
                      f"flat level before the rise: {n_flat} photons in [t0 + {flat[0] / 1e3:.1f} ns, "
                      f"t0 + {flat[1] / 1e3:.1f} ns) over {n_bins} bins")

"""Per-bin intensity and background-corrected mean lifetime, and the shot-noise expectation.

For a bin with N photons of a mono-exponential emitter the mean delay after the rise is
Gamma(N, tau / N) distributed; over the ON bins the histogram of per-bin mean lifetimes
is then expected to follow the mixture of Gamma(N_k, tau / N_k) over the bins' counts
N_k (the shot-noise limit).  A wider histogram means the lifetime itself fluctuates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labctl.analysis.fig4.background import Background


@dataclass(frozen=True)
class BinLifetimes:
    """Per time bin: photons (all), photons in the lifetime window (kept), corrected mean lifetime (ns)."""

    counts: np.ndarray
    window_counts: np.ndarray
    lifetime_ns: np.ndarray


def bin_index(timestamps_ps: np.ndarray, origin_ps: int, bin_ps: int) -> np.ndarray:
    return (timestamps_ps - origin_ps) // bin_ps


def per_bin_lifetimes(index: np.ndarray, n_bins: int, keep: np.ndarray, dt_ps: np.ndarray,
                      bg: Background) -> BinLifetimes:
    """Mean (nanotime - t0) per bin over the lifetime window, minus the flat background's share (ns).

    ``index``: bin of each photon; ``keep``: photons with a nanotime not vetoed; ``dt_ps``:
    their nanotime - t0 (cyclic, see ``background.relative_ps``), for all photons.
    """
    inside = index < n_bins
    counts = np.bincount(index[inside], minlength=n_bins)[:n_bins]
    lo, hi = bg.window_ps
    win = inside & keep & (dt_ps >= lo) & (dt_ps < hi)
    n = np.bincount(index[win], minlength=n_bins)[:n_bins].astype(np.float64)
    s = np.bincount(index[win], weights=dt_ps[win], minlength=n_bins)[:n_bins]
    nbg = bg.expected_in_window()
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = (s - nbg * bg.mean_offset_ps()) / (n - nbg) * 1e-3
    tau[n - nbg <= 0.5] = np.nan
    return BinLifetimes(counts.astype(np.int64), n.astype(np.int64), tau)


def pooled_lifetime_ns(bins: BinLifetimes, select: np.ndarray, bg: Background) -> float:
    """Photon-weighted mean lifetime of the selected bins (background corrected), ns."""
    n = bins.window_counts[select].astype(np.float64)
    tau = bins.lifetime_ns[select]
    ok = np.isfinite(tau)
    nbg = bg.expected_in_window()
    w = n[ok] - nbg
    return float((tau[ok] * w).sum() / w.sum()) if w.sum() > 0 else float("nan")


def shot_noise_expected(edges_ns: np.ndarray, photons: np.ndarray, tau_ns: float) -> np.ndarray:
    """Expected number of bins per histogram bin of mean lifetimes: the sum over bins k of
    Gamma(N_k, tau / N_k) probabilities (``photons``: the N_k, each >= 1)."""
    from scipy.special import gammainc

    n = np.asarray(photons, np.float64)[:, None]
    e = np.asarray(edges_ns, np.float64)[None, :]
    cdf = gammainc(n, np.clip(e, 0.0, None) * n / tau_ns)
    return np.diff(cdf, axis=1).sum(axis=0)


def default_regimes(lifetimes_ns: np.ndarray, n: int = 3) -> tuple[tuple[float, float], ...]:
    """``n`` equal ranges spanning the 0.5th to 99.5th percentile of the lifetimes (ns)."""
    x = lifetimes_ns[np.isfinite(lifetimes_ns)]
    if x.size < 2:
        return ()
    lo, hi = np.percentile(x, [0.5, 99.5])
    if hi <= lo:
        hi = lo + 1e-3
    cuts = np.linspace(lo, hi, n + 1)
    return tuple((float(cuts[i]), float(cuts[i + 1])) for i in range(n))

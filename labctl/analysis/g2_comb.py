"""The pulsed g(2) comb of a finished histogram: its period, its phase, and which tooth is zero delay.

Under pulsed excitation the pair histogram is a comb: a tooth every laser period P.
Real HBT setups have a cable delay D between the two detector paths, so the
zero-delay tooth sits at lag D (tens of ns), not at 0.  What the data tell:

* the period P: from the file, the sync stream (``period_from_sync_times``), or the
  comb itself (``period_from_comb``: the autocorrelation of the histogram);
* the comb's phase, D modulo P, exactly (``comb_phase_ps``: circular mean of the
  lags, weighted by their pair counts);
* which tooth is zero delay: only if one tooth stands out from its neighbours (an
  antibunched source: the missing tooth; a bunched one: the tall one).  For a
  Poissonian source every tooth is alike: the zero tooth cannot be located, and
  g2(0) = 1 whichever it is.  ``find_zero_tooth`` takes the tooth whose area
  deviates most from the median of its neighbours, in Poisson standard deviations
  (z), and calls it found when ``|z| >= Z_FOUND`` (5 sigma: with ~10**3 teeth the
  largest |z| of pure noise stays below 4).

All lags in ps, lags = t_B - t_A (- the delay already applied, if any).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Z_FOUND = 5.0
"""A tooth is the zero-delay tooth when its area deviates this many Poisson sigmas from its neighbours'."""

NEIGHBOURS = 4
"""Teeth on each side whose median area is a tooth's baseline."""


def period_from_sync_times(sync_ps: np.ndarray, min_intervals: int = 100) -> float | None:
    """Laser period (ps) from times that are all on laser syncs (e.g. t - nanotime), or None.

    Differences between distinct sync times are whole multiples of the period: the
    smallest one is taken as the period's first guess, every difference divided by it
    and rounded gives its multiple n, and the period is sum(differences) / sum(n).
    None unless at least ``min_intervals`` differences are found and 99 % of them lie
    within 1 % of a period from a whole multiple (not a sync-locked stream).
    """
    s = np.unique(np.asarray(sync_ps, np.int64))
    d = np.diff(s)
    d = d[d > 0]
    if d.size < min_intervals:
        return None
    p0 = float(d.min())
    if p0 < 100:  # not a laser period (ps)
        return None
    n = np.rint(d / p0)
    period = float(d.sum() / n.sum())
    residual = np.abs(d - n * period)
    if np.mean(residual <= 0.01 * period) < 0.99:
        return None
    return period


def period_from_comb(counts: np.ndarray, lag_edges_ps: np.ndarray, min_teeth: int = 4) -> float | None:
    """The comb's period (ps) from the histogram's autocorrelation, or None if it shows no comb.

    The first autocorrelation maximum after the central lobe (the first above 70 % of the
    highest) gives the period to a bin; the maxima near 4, 16, 64, ... times it (parabolic
    vertex, divided by the multiple) refine it, up to half the range.  None if fewer than ``min_teeth`` periods fit into the
    range or the autocorrelation has no clear maximum (contrast below 5 %).
    """
    y = np.asarray(counts, np.float64)
    bin_ps = float(lag_edges_ps[1] - lag_edges_ps[0])
    n = y.size
    if n < 8 or y.sum() <= 0:
        return None
    x = y - y.mean()
    spec = np.fft.rfft(x, 2 * n)
    ac = np.fft.irfft(spec * np.conj(spec), 2 * n)[:n]
    if ac[0] <= 0:
        return None
    ac = ac / ac[0]
    # end of the central lobe: the first local minimum
    dac = np.diff(ac)
    minima = np.flatnonzero((dac[:-1] <= 0) & (dac[1:] > 0))
    if not minima.size or minima[0] + 1 >= n // (2 * min_teeth):
        return None
    start = int(minima[0] + 1)
    half = n // 2
    top = float(ac[start:half].max())
    if top - float(ac[start]) < 0.05:
        return None
    j1 = start + int(np.flatnonzero(ac[start:half] >= 0.7 * top)[0])  # the first tooth (not its multiples)
    j1 += int(np.argmax(ac[j1:min(j1 + max(2, j1 // 4), half)]))
    if j1 * min_teeth >= n:
        return None
    period_bins = float(j1)
    m = 1
    while 4 * m * period_bins < half:  # refine on ever farther teeth: the error shrinks 4x per step
        m *= 4
        centre = m * period_bins
        lo, hi = max(int(centre - 0.4 * period_bins), 1), min(int(centre + 0.4 * period_bins) + 1, n - 1)
        jm = lo + int(np.argmax(ac[lo:hi]))
        a, b, c = ac[jm - 1], ac[jm], ac[jm + 1]
        den = a - 2 * b + c
        period_bins = (jm + (0.5 * (a - c) / den if den < 0 else 0.0)) / m
    return period_bins * bin_ps


def comb_phase_ps(counts: np.ndarray, lag_edges_ps: np.ndarray, period_ps: float) -> tuple[float, float]:
    """(phase in [-P/2, P/2), resultant length in [0, 1]): where the comb's teeth sit modulo P.

    Circular mean of the bin centres on a circle of circumference P, weighted by their
    counts.  The resultant length is ~1 for narrow teeth, ~1/sqrt(pairs) for no comb.
    """
    w = np.asarray(counts, np.float64)
    centres = 0.5 * (lag_edges_ps[1:] + lag_edges_ps[:-1]).astype(np.float64)
    angle = 2 * np.pi * np.mod(centres, period_ps) / period_ps
    total = w.sum()
    if total <= 0:
        return 0.0, 0.0
    c, s = float((w * np.cos(angle)).sum()), float((w * np.sin(angle)).sum())
    phase = math.atan2(s, c) / (2 * np.pi) * period_ps
    return float(np.mod(phase + 0.5 * period_ps, period_ps) - 0.5 * period_ps), math.hypot(c, s) / total


def tooth_areas(counts: np.ndarray, lag_edges_ps: np.ndarray, period_ps: float, phase_ps: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """(tooth index k, pairs in tooth k) for every tooth ``[phase + k P - P/2, phase + k P + P/2)``
    whose whole window lies inside the edges; a bin belongs to the tooth holding its centre."""
    centres = 0.5 * (lag_edges_ps[1:] + lag_edges_ps[:-1]).astype(np.float64)
    k = np.floor((centres - phase_ps + 0.5 * period_ps) / period_ps).astype(np.int64)
    lo, hi = float(lag_edges_ps[0]), float(lag_edges_ps[-1])
    k_lo = math.ceil((lo - phase_ps + 0.5 * period_ps) / period_ps)
    k_hi = math.floor((hi - phase_ps - 0.5 * period_ps) / period_ps)
    if k_hi < k_lo:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    inside = (k >= k_lo) & (k <= k_hi)
    areas = np.bincount(k[inside] - k_lo, weights=np.asarray(counts, np.float64)[inside], minlength=k_hi - k_lo + 1)
    return np.arange(k_lo, k_hi + 1, dtype=np.int64), np.rint(areas).astype(np.int64)


@dataclass(frozen=True)
class ZeroTooth:
    """Outcome of ``find_zero_tooth``.

    Attributes:
        phase_ps: the comb's phase (lag of the tooth nearest 0, in [-P/2, P/2)).
        lag_ps: lag of the tooth that deviates most from its neighbours (ps).
        z: its deviation in Poisson sigmas (negative: a dip, antibunching).
        next_z: the largest |z| among the other teeth.
        found: ``|z| >= Z_FOUND`` (it is the zero-delay tooth).
        n_teeth: teeth inside the range.
    """

    phase_ps: float
    lag_ps: float
    z: float
    next_z: float
    found: bool
    n_teeth: int


def find_zero_tooth(counts: np.ndarray, lag_edges_ps: np.ndarray, period_ps: float) -> ZeroTooth | None:
    """The tooth that deviates most from the median of its ``NEIGHBOURS`` neighbours on each side.

    z = (A_k - m_k) / sqrt(m_k (1 + pi / (2 n)) + 1), m_k the median of the n neighbours'
    areas (its variance ~ pi m / (2 n)).  None with fewer than 3 teeth in the range.
    """
    phase, _ = comb_phase_ps(counts, lag_edges_ps, period_ps)
    k, areas = tooth_areas(counts, lag_edges_ps, period_ps, phase)
    if k.size < 3:
        return None
    a = areas.astype(np.float64)
    z = np.empty(a.size)
    for i in range(a.size):  # a loop over teeth (hundreds), not photons
        nb = np.concatenate([a[max(0, i - NEIGHBOURS):i], a[i + 1:i + 1 + NEIGHBOURS]])
        m = float(np.median(nb))
        z[i] = (a[i] - m) / math.sqrt(m * (1 + math.pi / (2 * nb.size)) + 1.0)
    best = int(np.argmax(np.abs(z)))
    others = np.abs(np.delete(z, best))
    return ZeroTooth(phase_ps=phase, lag_ps=phase + float(k[best]) * period_ps, z=float(z[best]),
                     next_z=float(others.max()) if others.size else 0.0,
                     found=bool(abs(z[best]) >= Z_FOUND), n_teeth=int(k.size))

"""Grouping of change-point levels into intensity states (Watkins & Yang 2005, section on clustering).

A level ``j`` holds ``n_j`` photons in ``T_j`` seconds.  A state ``m`` has an
intensity ``I_m`` (counts/s) and a weight ``p_m``; the levels are a mixture
``P(n_j) = Σ_m p_m Poisson(n_j; I_m T_j)``.

1. Agglomerative clustering: every level starts as its own group; the two
   groups whose merging costs the least Poisson log-likelihood
   (``Σ n ln(n / T)`` over groups) are merged, down to one group.  Levels are
   one-dimensional in intensity, so only groups neighbouring in intensity are
   candidates (a merge of non-neighbours would cost more).
2. For each number of states G = 1 ... ``max_groups``: the clustering's
   partition seeds an expectation-maximisation of the mixture above.
3. The G with the largest Bayesian information criterion
   ``BIC = 2 ln L − (2G − 1) ln(number of levels)`` wins (G intensities and
   G − 1 free weights); each level goes to its most probable state.

States are numbered by intensity, 0 the dimmest.
"""

from __future__ import annotations

import heapq
import math

import numpy as np
from scipy.special import gammaln

__all__ = ["group_levels", "agglomerate", "em_poisson_mixture"]


def agglomerate(photons: np.ndarray, duration_s: np.ndarray, max_groups: int) -> dict[int, np.ndarray]:
    """Partitions of the levels for G = 1 ... max_groups: ``{G: group label per level}`` (labels by intensity).

    Groups are runs of the intensity order; the cheapest neighbouring merge comes off a heap
    (stale entries skipped), so n levels cost O(n log n)."""
    n = np.asarray(photons, np.float64)
    t = np.asarray(duration_s, np.float64)
    order = np.argsort(n / t, kind="stable")
    gn, gt = n[order].tolist(), t[order].tolist()
    size = len(gn)
    right = list(range(1, size + 1))  # next group's index (size: none)
    left = list(range(-1, size - 1))
    alive = [True] * size
    version = [0] * size

    def loglik(a: float, b: float) -> float:
        return a * math.log(a / b) if a > 0 else 0.0

    def cost(i: int) -> float:
        j = right[i]
        return loglik(gn[i], gt[i]) + loglik(gn[j], gt[j]) - loglik(gn[i] + gn[j], gt[i] + gt[j])

    heap = [(cost(i), i, 0, 0) for i in range(size - 1)]
    heapq.heapify(heap)
    out: dict[int, np.ndarray] = {}
    groups = size

    def snapshot() -> np.ndarray:
        starts = np.array([i for i in range(size) if alive[i]], np.int64)
        labels = np.empty(size, np.int64)
        labels[order] = np.searchsorted(starts, np.arange(size), side="right") - 1
        return labels

    while True:
        if groups <= max_groups:
            out[groups] = snapshot()
        if groups == 1:
            return out
        while True:
            _, i, vi, vj = heapq.heappop(heap)
            j = right[i] if i < size and alive[i] else size
            if alive[i] and j < size and version[i] == vi and version[j] == vj:
                break
        gn[i] += gn[j]
        gt[i] += gt[j]
        alive[j] = False
        right[i] = right[j]
        if right[j] < size:
            left[right[j]] = i
        version[i] += 1
        groups -= 1
        if right[i] < size:
            heapq.heappush(heap, (cost(i), i, version[i], version[right[i]]))
        if left[i] >= 0:
            heapq.heappush(heap, (cost(left[i]), left[i], version[left[i]], version[i]))


def em_poisson_mixture(photons: np.ndarray, duration_s: np.ndarray, labels: np.ndarray,
                       iterations: int = 200, tolerance: float = 1e-3) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """EM of the Poisson mixture seeded by ``labels``: (intensities cps, weights, responsibilities, ln L).

    Stops when ln L gains less than ``tolerance`` per iteration (the BIC compares ln L at ~1),
    or after ``iterations``."""
    n1 = np.asarray(photons, np.float64)
    t1 = np.asarray(duration_s, np.float64)
    n, t = n1[:, None], t1[:, None]
    g = int(labels.max()) + 1
    resp = np.eye(g)[labels]
    const = float(np.sum(n1 * np.log(t1) - gammaln(n1 + 1.0)))  # the level's own terms of ln Poisson
    previous = loglik = -np.inf
    for _ in range(iterations):
        weight = resp.sum(axis=0) / len(n1)
        rate = (n1 @ resp) / np.maximum(t1 @ resp, 1e-300)
        with np.errstate(divide="ignore"):
            log_p = np.log(weight) + n * np.log(np.maximum(rate, 1e-300)) - t * rate
        top = log_p.max(axis=1)
        resp = np.exp(log_p - top[:, None])
        total = resp.sum(axis=1)
        resp /= total[:, None]
        loglik = float(np.sum(top + np.log(total))) + const
        if loglik - previous < tolerance:
            break
        previous = loglik
    return rate, weight, resp, loglik


def group_levels(photons: np.ndarray, duration_s: np.ndarray, max_groups: int = 8,
                 min_fit_duration_s: float = 0.01, min_state_fraction: float = 0.05,
                 min_separation_sigma: float = 3.0) -> np.ndarray:
    """Intensity state of each level (0 = dimmest), the number of states chosen by maximal BIC.

    The states are fitted on the levels lasting ≥ ``min_fit_duration_s`` (all levels if fewer
    than two do); every level then goes to its most probable state.  A model whose smallest
    state holds less than ``min_state_fraction`` of the fitted levels is not a candidate:
    the few levels that straddle a change the test missed (two states mixed, an intermediate
    intensity, far from Poisson) would otherwise form a "state" of their own once there are
    thousands of levels (the BIC's penalty grows only as ln(levels)).  Neighbouring states
    must also differ by more than ``min_separation_sigma`` Poisson σ of a level of the median
    duration: the segmentation places each boundary where the photons fluctuate, which makes
    the levels' counts a little wider than Poisson, and with thousands of levels the BIC
    would split one state into two a σ apart that no level could tell apart."""
    n_levels = len(photons)
    if n_levels == 0:
        return np.zeros(0, np.int64)
    photons = np.asarray(photons, np.float64)
    duration_s = np.maximum(np.asarray(duration_s, np.float64), 1e-12)
    fit = duration_s >= min_fit_duration_s
    if fit.sum() < 2:
        fit[:] = True
    n_fit = int(fit.sum())
    partitions = agglomerate(photons[fit], duration_s[fit], max(1, min(int(max_groups), n_fit)))
    typical_s = float(np.median(duration_s[fit]))
    best_bic, best = -np.inf, None
    for g, seed in sorted(partitions.items()):
        result = em_poisson_mixture(photons[fit], duration_s[fit], seed)
        bic = 2.0 * result[3] - (2 * g - 1) * np.log(n_fit)
        rates = np.sort(result[0])
        resolved = np.all(np.diff(rates) > min_separation_sigma * np.sqrt((rates[1:] + rates[:-1]) / 2 / typical_s))
        if (g == 1 or (result[1].min() >= min_state_fraction and resolved)) and bic > best_bic:
            best_bic, best = bic, result
    rate, weight = best[0], best[1]
    with np.errstate(divide="ignore"):
        log_p = np.log(weight) + photons[:, None] * np.log(np.maximum(rate * duration_s[:, None], 1e-300)) \
            - rate * duration_s[:, None]
    labels = np.argmax(log_p, axis=1)
    rank = np.argsort(np.argsort(rate))  # by intensity
    used = np.unique(rank[labels])
    return np.searchsorted(used, rank[labels]).astype(np.int64)

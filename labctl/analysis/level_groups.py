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

import numpy as np
from scipy.special import gammaln

__all__ = ["group_levels", "agglomerate", "em_poisson_mixture"]


def agglomerate(photons: np.ndarray, duration_s: np.ndarray, max_groups: int) -> dict[int, np.ndarray]:
    """Partitions of the levels for G = 1 ... max_groups: ``{G: group label per level}`` (labels by intensity)."""
    n = np.asarray(photons, np.float64)
    t = np.asarray(duration_s, np.float64)
    order = np.argsort(n / t, kind="stable")
    gn, gt = list(n[order]), list(t[order])  # groups as runs of the intensity order
    members = [[int(i)] for i in order]
    out: dict[int, np.ndarray] = {}

    def loglik(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.where(a > 0, a * np.log(np.where(a > 0, a, 1.0) / b), 0.0)

    while True:
        if len(gn) <= max_groups:
            labels = np.empty(len(n), np.int64)
            for g, m in enumerate(members):
                labels[m] = g
            out[len(gn)] = labels
        if len(gn) == 1:
            return out
        an, at = np.asarray(gn), np.asarray(gt)
        cost = loglik(an[:-1], at[:-1]) + loglik(an[1:], at[1:]) - loglik(an[:-1] + an[1:], at[:-1] + at[1:])
        i = int(np.argmin(cost))
        gn[i:i + 2] = [gn[i] + gn[i + 1]]
        gt[i:i + 2] = [gt[i] + gt[i + 1]]
        members[i:i + 2] = [members[i] + members[i + 1]]


def em_poisson_mixture(photons: np.ndarray, duration_s: np.ndarray, labels: np.ndarray,
                       iterations: int = 300, tolerance: float = 1e-4) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """EM of the Poisson mixture seeded by ``labels``: (intensities cps, weights, responsibilities, ln L).

    Stops when ln L gains less than ``tolerance`` per iteration (the BIC compares ln L at ~1)."""
    n = np.asarray(photons, np.float64)[:, None]
    t = np.asarray(duration_s, np.float64)[:, None]
    g = int(labels.max()) + 1
    onehot = np.eye(g)[labels]
    resp = onehot
    const = -gammaln(n[:, 0] + 1.0)
    previous = -np.inf
    loglik = -np.inf
    for _ in range(iterations):
        weight = resp.sum(axis=0) / len(n)
        rate = (resp * n).sum(axis=0) / np.maximum((resp * t).sum(axis=0), 1e-300)
        with np.errstate(divide="ignore"):
            log_p = np.log(weight) + n * np.log(np.maximum(rate * t, 1e-300)) - rate * t
        top = log_p.max(axis=1)
        norm = top + np.log(np.exp(log_p - top[:, None]).sum(axis=1))
        loglik = float(np.sum(norm + const))
        resp = np.exp(log_p - norm[:, None])
        if loglik - previous < tolerance:
            break
        previous = loglik
    return rate, weight, resp, loglik


def group_levels(photons: np.ndarray, duration_s: np.ndarray, max_groups: int = 8,
                 min_fit_duration_s: float = 0.01) -> np.ndarray:
    """Intensity state of each level (0 = dimmest), the number of states chosen by maximal BIC.

    The states are fitted on the levels lasting ≥ ``min_fit_duration_s`` (all levels if fewer
    than two do); every level then goes to its most probable state."""
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
    fits = {g: em_poisson_mixture(photons[fit], duration_s[fit], seed) for g, seed in sorted(partitions.items())}
    phi = overdispersion(photons[fit], duration_s[fit], *fits[max(fits)][:3], n_params=2 * max(fits) - 1)
    best_bic, best = -np.inf, fits[1]
    for g, result in fits.items():
        bic = 2.0 * result[3] / phi - (2 * g - 1) * np.log(n_fit)
        if bic > best_bic:
            best_bic, best = bic, result
    rate, weight = best[0], best[1]
    with np.errstate(divide="ignore"):
        log_p = np.log(weight) + photons[:, None] * np.log(np.maximum(rate * duration_s[:, None], 1e-300)) \
            - rate * duration_s[:, None]
    labels = np.argmax(log_p, axis=1)
    rank = np.argsort(np.argsort(rate))  # by intensity
    used = np.unique(rank[labels])
    return np.searchsorted(used, rank[labels]).astype(np.int64)


def overdispersion(photons: np.ndarray, duration_s: np.ndarray, rate: np.ndarray, weight: np.ndarray,
                   resp: np.ndarray, n_params: int) -> float:
    """Dispersion of the levels about their states in the richest fit (≥ 1), robust to outlier levels:
    the median squared Pearson residual over the median of χ²(1) (0.4549)."""
    expected = rate[None, :] * np.asarray(duration_s, np.float64)[:, None]
    n = np.asarray(photons, np.float64)[:, None]
    pearson2 = np.sum(resp * (n - expected) ** 2 / np.maximum(expected, 1e-300), axis=1)
    if len(photons) <= n_params:
        return 1.0
    return max(1.0, float(np.median(pearson2)) / 0.4549)

"""The Poisson likelihood of a decay fit and its minimisation (the engine behind ``fit.fit_decay``).

``Problem`` is the negative log-likelihood of the fit-range counts over internal
parameters of order 1, with analytic model derivatives (but the measured-IRF kernel's
d/d tau: central differences).  ``optimise`` minimises it: scipy.optimize.minimize
(L-BFGS-B, bounds tau > 0, N >= 0, bg >= 0) in coordinates scaled by the Fisher
information at the start, first with the Gaussian IRF's width held, then all free, then
a few Fisher-scoring steps to polish.  ``information`` gives the observed Fisher
information (the Hessian of the NLL at the optimum: exact first derivatives of the
model, second derivatives by central differences of them) from which errors come.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from scipy.optimize import minimize
from scipy.special import gammaln

from labctl.analysis.decay_shapes import gaussian_irf_shape, measured_irf_kernel

TAU_MIN_PS = 1.0
"""Smallest lifetime a fit may reach (ps)."""

_SIGMA_MIN_PS = 0.5
_FD_STEP_2 = 1e-3  # step of the second derivatives (Hessian)


@dataclass(frozen=True)
class Histogram:
    """The histogram a fit is over: counts and edges of the fit range, and of the whole histogram."""

    y: np.ndarray  # counts in the fit range
    edges: np.ndarray  # float64 edges of the fit range
    all_counts: np.ndarray
    all_edges: np.ndarray
    lo: int  # first bin of the fit range
    width_ps: float
    period_ps: float
    bg_weight: np.ndarray | float = 1.0  # each fit bin's width / width_ps (a partial last bin < 1)


class Problem:
    """Poisson NLL of the fit-range counts over internal parameters of order 1.

    Full internal vector: ``[xN_1..xN_c, x_bg, ln(tau_1/ns)..ln(tau_c/ns), x_pos, (x_var)]``,
    ``N_i = s_n * xN_i``, ``bg = s_bg * x_bg``, IRF position ``pos0 + w * x_pos`` and Gaussian
    IRF ``sigma = s_sigma * sqrt(x_var)``.  The variance, not ln sigma: the model depends on
    sigma**2, so the likelihood keeps a slope where the IRF is much narrower than a bin.
    """

    def __init__(
        self, hist: Histogram, n_comp: int, irf: np.ndarray | None, pos0: float, s_n: float, s_bg: float,
        s_sigma: float = 1.0,
    ) -> None:  # fmt: skip
        self.h = hist
        self.c = n_comp
        self.gaussian = irf is None
        self.pos0, self.s_n, self.s_bg, self.s_sigma = pos0, s_n, s_bg, s_sigma
        self.y = hist.y
        self.n_local = 3 if self.gaussian else 2  # ln tau, x_pos, (x_var)
        self.size = 2 * n_comp + 1 + (self.n_local - 1)
        if irf is not None:
            self.irf_fft = np.fft.rfft(irf / irf.sum())
        ylogy = np.where(self.y > 0, self.y * np.log(np.where(self.y > 0, self.y, 1.0)), 0.0)
        self.const = float((ylogy - self.y).sum())
        self.nll_offset = float(gammaln(self.y + 1.0).sum()) - float(ylogy.sum()) + float(self.y.sum())
        self.free = np.ones(self.size, bool)
        T, w = hist.period_ps, hist.width_ps
        lo = [0.0] * n_comp + [0.0] + [math.log(TAU_MIN_PS / 1e3)] * n_comp + [-0.25 * T / w]
        hi = [None] * n_comp + [None] + [math.log(100 * T / 1e3)] * n_comp + [0.25 * T / w]
        if self.gaussian:
            lo.append((_SIGMA_MIN_PS / s_sigma) ** 2)
            hi.append((T / 20 / s_sigma) ** 2)
        self.lower = np.array(lo, np.float64)
        self.upper = np.array([np.inf if v is None else v for v in hi], np.float64)

    # indices
    def i_tau(self, i: int) -> int:
        return self.c + 1 + i

    def local_index(self, i: int) -> list[int]:
        """Global indices of component i's local parameters (ln tau, x_pos, x_var)."""
        return [self.i_tau(i)] + list(range(2 * self.c + 1, self.size))

    def shape(self, q: np.ndarray, gradient: bool = False) -> Any:
        """One component's shape on the fit bins from its local parameters (and its gradient)."""
        tau = math.exp(q[0]) * 1e3
        h = self.h
        w = h.width_ps
        pos = self.pos0 + w * q[1]
        if self.gaussian:
            out = gaussian_irf_shape(h.edges, tau, pos, self.s_sigma * math.sqrt(q[2]), h.period_ps, gradient=gradient)
            if gradient:
                out[1][1] *= w
                out[1][2] /= 2 * q[2]  # d/d ln sigma -> d/d x_var
            return out
        n = h.all_counts.size
        sl = slice(h.lo, h.lo + h.y.size)
        if not gradient:
            kernel = measured_irf_kernel(n, w, tau, pos)
            return np.maximum(np.fft.irfft(self.irf_fft * np.fft.rfft(kernel), n)[sl], 0.0)
        kernel, d_kernel = measured_irf_kernel(n, w, tau, pos, gradient=True)
        d_kernel[1] *= w
        conv = np.fft.irfft(self.irf_fft * np.fft.rfft(np.vstack([kernel, d_kernel]), axis=1), n, axis=1)[:, sl]
        return np.maximum(conv[0], 0.0), conv[1:]

    def physical(self, p: np.ndarray) -> dict[str, Any]:
        c = self.c
        out = {
            "n": self.s_n * p[:c],
            "bg": self.s_bg * p[c],
            "tau_ps": np.exp(p[c + 1 : 2 * c + 1]) * 1e3,
            "pos_ps": self.pos0 + self.h.width_ps * p[2 * c + 1],
        }
        out["sigma_ps"] = self.s_sigma * math.sqrt(p[2 * c + 2]) if self.gaussian else None
        return out

    def derivatives(self, p: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """mu, d mu / d p (size x bins) and, for order 2, d2 mu / dp dp (size x size x bins)."""
        c, nb = self.c, self.y.size
        jac = np.zeros((self.size, nb))
        hess = np.zeros((self.size, self.size, nb)) if order == 2 else None
        mu = self.s_bg * p[c] * np.broadcast_to(self.h.bg_weight, (nb,))
        jac[c] = self.s_bg * np.broadcast_to(self.h.bg_weight, (nb,))
        for i in range(c):
            idx = self.local_index(i)
            steps = np.full(len(idx), _FD_STEP_2)
            if self.gaussian:
                steps[2] *= p[idx[2]]  # relative step in the variance (it can be small)
            s, ds, d2s = _local_derivatives(self.shape, p[idx], order, steps)
            n_i = self.s_n * p[i]
            mu += n_i * s
            jac[i] = self.s_n * s
            if ds is not None:
                jac[idx] += n_i * ds
            if hess is not None:
                hess[i, idx] += self.s_n * ds
                hess[idx, i] += self.s_n * ds
                hess[np.ix_(idx, idx)] += n_i * d2s
        return mu, jac, hess

    def fun(self, x: np.ndarray, p_full: np.ndarray) -> tuple[float, np.ndarray]:
        p = p_full.copy()
        p[self.free] = x
        mu, jac, _ = self.derivatives(p, 1)
        mu = np.maximum(mu, 1e-300)
        f = float((mu - self.y * np.log(mu)).sum()) + self.const
        g = jac[self.free] @ (1.0 - self.y / mu)
        return f, g

    def observed_information(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """Hessian of the NLL over all parameters, the gradient, and the NLL (deviance / 2)."""
        mu, jac, hess = self.derivatives(p, 2)
        mu = np.maximum(mu, 1e-300)
        r = self.y / mu
        H = (jac * (r / mu)) @ jac.T + np.tensordot(hess, 1.0 - r, axes=([2], [0]))
        f = float((mu - self.y * np.log(mu)).sum()) + self.const
        return 0.5 * (H + H.T), jac @ (1.0 - r), f

    def model(self, p: np.ndarray) -> np.ndarray:
        return self.derivatives(p, 0)[0]


def _local_derivatives(
    fn: Callable[..., Any], q: np.ndarray, order: int, steps: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """f(q); for order >= 1 its gradient (k x n); for order 2 its Hessian (k x k x n),
    by central differences of the gradient."""
    q = np.asarray(q, np.float64)
    if order == 0:
        return fn(q), None, None
    f0, grad = fn(q, True)
    if order == 1:
        return f0, grad, None
    k = q.size
    hess = np.empty((k, k, f0.size))
    for a in range(k):
        e = np.zeros(k)
        e[a] = steps[a]
        hess[a] = (fn(q + e, True)[1] - fn(q - e, True)[1]) / (2 * steps[a])
    return f0, grad, 0.5 * (hess + hess.transpose(1, 0, 2))


@dataclass
class Solution:
    """Parameters (internal), NLL and outcome of one optimisation."""

    p: np.ndarray
    f: float
    ok: bool
    message: str


def optimise(prob: Problem, p0: np.ndarray) -> Solution:
    """Minimise the NLL from ``p0``: first with the Gaussian IRF width held (while the lifetimes
    are far off, the likelihood pulls the width to its bound), then with everything free."""
    width = prob.size - 1
    if prob.gaussian and prob.free[width]:
        prob.free[width] = False
        try:
            p0 = _lbfgsb(prob, p0).p
        finally:
            prob.free[width] = True
    return _lbfgsb(prob, p0)


def _lbfgsb(prob: Problem, p0: np.ndarray) -> Solution:
    """L-BFGS-B on the free parameters, in coordinates scaled by the Fisher information at
    ``p0`` (each parameter's curvature ~1), then Fisher-scoring steps to polish."""
    p0 = np.clip(p0, prob.lower, prob.upper)
    free = prob.free
    mu, jac, _ = prob.derivatives(p0, 1)
    curvature = ((jac[free] ** 2) / np.maximum(mu, 1e-300)).sum(axis=1)
    scale = np.sqrt(np.maximum(curvature, 1e-6 * max(curvature.max(), 1e-300)))

    def fun(z: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = prob.fun(p0[free] + z / scale, p0)
        return f, g / scale

    lower = (prob.lower[free] - p0[free]) * scale
    upper = (prob.upper[free] - p0[free]) * scale
    bounds = [(lo, None if np.isinf(hi) else hi) for lo, hi in zip(lower, upper)]
    res = minimize(
        fun, np.zeros(free.sum()), jac=True, method="L-BFGS-B", bounds=bounds,
        options={"maxiter": 2000, "ftol": 1e-10, "gtol": 1e-6, "maxcor": 20},
    )  # fmt: skip
    p = p0.copy()
    p[free] = np.clip(p0[free] + res.x / scale, prob.lower[free], prob.upper[free])
    p, f, newton_ok = _newton_polish(prob, p, float(res.fun))
    return Solution(p, f, bool(res.success) or newton_ok, str(res.message))


def _newton_polish(prob: Problem, p: np.ndarray, f: float, steps: int = 8) -> tuple[np.ndarray, float, bool]:
    """Fisher-scoring (Gauss-Newton) steps from the L-BFGS-B optimum, on the free parameters off
    their bounds; True when the Newton decrement is negligible (the optimum is reached)."""
    for _ in range(steps):
        mu, jac, _ = prob.derivatives(p, 1)
        mu = np.maximum(mu, 1e-300)
        subset = free_off_bounds(prob, p)
        g = jac[subset] @ (1.0 - prob.y / mu)
        info = (jac[subset] / mu) @ jac[subset].T
        info[np.diag_indices_from(info)] *= 1.0 + 1e-10
        try:
            step_sub = -np.linalg.solve(info, g)
        except np.linalg.LinAlgError:
            return p, f, False
        decrement = float(-g @ step_sub)
        if decrement < 1e-9:
            return p, f, True
        step = np.zeros_like(p)
        step[subset] = step_sub
        for scale in (1.0, 0.5, 0.25):
            trial = np.clip(p + scale * step, prob.lower, prob.upper)
            f_trial = prob.fun(trial[prob.free], trial)[0]
            if f_trial < f:
                p, f = trial, f_trial
                break
        else:
            return p, f, decrement < 1e-4
    return p, f, True


def information(prob: Problem, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, np.ndarray, np.ndarray] | None:
    """Observed information (NLL Hessian), gradient, NLL, the parameters it covers and its Cholesky factor.

    The parameters covered are the free ones off their bounds, less the IRF width (and
    then the IRF position) if the information is not positive definite with them: with
    bins much wider than the IRF the data do not determine its width, and the other
    parameters' errors are then conditional on the fitted IRF.  ``None`` if still not
    positive definite.
    """
    H, g, f = prob.observed_information(p)
    subset = free_off_bounds(prob, p)
    irf = list(range(prob.size - 1, 2 * prob.c, -1))  # width (if Gaussian), then position
    for drop in [[], *([irf[: k + 1] for k in range(len(irf))])]:
        trial = subset.copy()
        trial[drop] = False
        try:
            return H, g, f, trial, np.linalg.cholesky(H[np.ix_(trial, trial)])
        except np.linalg.LinAlgError:
            continue
    return None


def free_off_bounds(prob: Problem, p: np.ndarray) -> np.ndarray:
    """Free parameters not sitting on a bound."""
    at_lower = p - prob.lower <= 1e-10 * np.maximum(np.abs(prob.lower), 1.0)
    finite = np.isfinite(prob.upper)
    at_upper = np.zeros_like(at_lower)
    at_upper[finite] = prob.upper[finite] - p[finite] <= 1e-10 * np.maximum(np.abs(prob.upper[finite]), 1.0)
    return prob.free & ~at_lower & ~at_upper

"""Fluorescence-decay fits of nanotime histograms: mono- and bi-exponential, Poisson maximum likelihood.

Model, in expected counts per bin (time axis = the histogram's, ps after the laser sync)::

    mu_k = bg + sum_i N_i * P_i(k)

``P_i(k)`` is the fraction of component i's photons that falls in bin k: the decay
``exp(-t / tau_i)`` started by every laser pulse (period T, so the tails of earlier
pulses wrap around; their sum is the factor ``1 / (1 - exp(-T / tau_i))``),
convolved with the instrument response (IRF) and integrated exactly over the bin.
``N_i`` is the number of photons of component i per histogram (over a whole period),
so ``a_i = N_i / tau_i`` is its amplitude (counts per ps at the start of the decay).

IRF:

* none given: a Gaussian of fitted centre ``t0`` and width; the bin integrals are
  the closed-form integrals of the exponentially modified Gaussian.
* ``irf`` given (a measured histogram on the same bins, covering one period): circular
  convolution by FFT.  Each IRF bin's photons are spread uniformly over the bin and
  shifted by a fitted ``shift`` (any real number of ps); the kernel "box-shifted
  exponential integrated over a bin" is analytic, so sub-bin shifts keep the model
  positive and smooth.

Estimation: Poisson maximum likelihood: scipy.optimize.minimize (L-BFGS-B, bounds
tau > 0, N >= 0, bg >= 0) on the negative log-likelihood, with analytic model
derivatives (but the measured-IRF kernel's d/d tau: central differences), in
coordinates scaled by the Fisher information at the start, first with the Gaussian
IRF's width held, then all free, then a few Fisher-scoring steps to polish.  A
bi-exponential fit starts at 0.6 and 1.6 times the moment lifetime, and again at 0.15
and 1.1 times if that ends degenerate.  Errors come from the inverse of the observed
Fisher information (the Hessian of the negative log-likelihood at the optimum: exact
first derivatives of the model, second derivatives by central differences of them),
propagated to the fractions by the delta method.

This module is the public entry (``fit_decay``, ``DecayFit``, input checks, the result);
the parts live in ``decay_shapes`` (component shapes and IRF), ``decay_start`` (start
values, ``estimate_irf_offset_ps``) and ``decay_likelihood`` (the likelihood and its
minimisation).  All public names remain importable from here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from labctl.analysis.decay_likelihood import (
    TAU_MIN_PS,
    Histogram,
    Problem,
    Solution,
    free_off_bounds,
    information,
    optimise,
)
from labctl.analysis.decay_shapes import gaussian_irf_shape, measured_irf_kernel
from labctl.analysis.decay_start import (
    as_counts,
    background_guess,
    estimate_irf_offset_ps,
    irf_centroid_ps,
    onset_ps,
    tau_moment_ps,
)

__all__ = [
    "MODELS",
    "MIN_COUNTS",
    "FWHM_PER_SIGMA",
    "DecayFit",
    "fit_decay",
    "estimate_irf_offset_ps",
    "gaussian_irf_shape",
    "measured_irf_kernel",
]

MODELS = {"mono": 1, "bi": 2}
"""Allowed ``model`` names and their number of exponential components."""

MIN_COUNTS = {"mono": 100, "bi": 1000}
"""Fewest photons in the fit range for which a fit is attempted."""

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


@dataclass(frozen=True)
class DecayFit:
    """Result of ``fit_decay``.  Lifetimes sorted ascending; the other per-component tuples follow.

    Attributes:
        model: ``"mono"`` or ``"bi"``.
        tau_ns, tau_err_ns: lifetimes and their 1-sigma errors (ns).
        fractions, fractions_err: amplitude fractions ``a_i / sum(a)`` and errors.
        intensity_fractions: photon fractions ``a_i tau_i / sum(a tau)``.
        background_per_bin, background_err: flat background (counts per bin).
        irf_shift_ps: Gaussian IRF: its fitted centre on the histogram axis (ps);
            measured IRF: the fitted shift applied to it (ps, positive = later).
        irf_fwhm_ps: fitted FWHM of the Gaussian IRF; ``None`` with a measured IRF.
        amplitude_total: photons in the decay components (per histogram, whole period).
        neg_log_likelihood: Poisson negative log-likelihood at the optimum (fit range).
        reduced_chi2: Pearson chi^2 / degrees of freedom (information only).
        converged: the optimiser converged and the observed information is positive definite
            (without the IRF parameters if the data do not determine them: see ``message``).
        message: the optimiser's message and any notes (parameters at bounds, fixed IRF).
        model_edges_ps: edges of the fitted bins (ps; the fit range).
        model_counts: the fitted model's expected counts in those bins (for drawing the fit).
    """

    model: str
    tau_ns: tuple[float, ...]
    tau_err_ns: tuple[float, ...]
    fractions: tuple[float, ...]
    fractions_err: tuple[float, ...]
    intensity_fractions: tuple[float, ...]
    background_per_bin: float
    background_err: float
    irf_shift_ps: float
    irf_fwhm_ps: float | None
    amplitude_total: float
    neg_log_likelihood: float
    reduced_chi2: float
    converged: bool
    message: str
    model_edges_ps: tuple[float, ...] = field(default=(), repr=False)
    model_counts: tuple[float, ...] = field(default=(), repr=False)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict: tuples become lists, non-finite numbers ``None``."""

        def clean(v: Any) -> Any:
            if isinstance(v, (tuple, list)):
                if len(v) > 16:  # the model curve (10^4 floats): one numpy check instead of a call per number
                    a = np.asarray(v)
                    if a.ndim == 1 and a.dtype == np.float64 and bool(np.isfinite(a).all()):
                        return list(v)
                return [clean(x) for x in v]
            if isinstance(v, float) and not math.isfinite(v):
                return None
            return v

        # Field by field: dataclasses.asdict deep-copies the 10^4-element model tuples (~50 ms).
        return {f.name: clean(getattr(self, f.name)) for f in fields(self)}


# ------------------------------------------------------------------ input checks


def _check_inputs(
    counts: np.ndarray,
    bin_edges_ps: np.ndarray,
    model: str,
    period_ps: int | None,
    irf: np.ndarray | None,
    fit_range_ps: tuple[int, int] | None,
    tau_guess_ns: Sequence[float] | None,
) -> tuple[Histogram, np.ndarray | None, np.ndarray | None]:
    if model not in MODELS:
        raise ValueError(f"model = {model!r}: must be one of " + ", ".join(repr(m) for m in MODELS))
    y_all = as_counts("counts", counts)
    edges = np.asarray(bin_edges_ps, dtype=np.float64)
    if edges.ndim != 1 or edges.size != y_all.size + 1:
        raise ValueError(
            f"bin_edges_ps: {edges.size} edges for {y_all.size} bins of counts: must be len(counts) + 1"
        )
    if y_all.size < 8:
        raise ValueError(f"counts: {y_all.size} bins: must be at least 8")
    widths = np.diff(edges)
    full = widths[:-1]  # the last bin may be partial: a period that is not a whole number of bins
    if (not np.all(np.isfinite(edges)) or widths.min() <= 0 or full.max() - full.min() > 1e-6 * full.max()
            or widths[-1] > full.max() * (1 + 1e-6)):
        raise ValueError(
            f"bin_edges_ps: bin widths from {widths.min():g} to {widths.max():g} ps: "
            "must be increasing edges of equal-width bins (the last bin may be shorter)"
        )
    w = float(full.mean())
    span = float(edges[-1] - edges[0])
    if period_ps is None:
        period = span
    else:
        period = float(period_ps)
        if not math.isfinite(period) or period < span * (1 - 1e-9):
            raise ValueError(f"period_ps = {period_ps}: must be >= the histogram span, {span:g} ps")
    n_comp = MODELS[model]
    tau0 = None
    if tau_guess_ns is not None:
        tau0 = np.asarray(tau_guess_ns, dtype=np.float64).ravel()
        if tau0.size != n_comp or not np.all(np.isfinite(tau0)) or np.any(tau0 <= 0):
            raise ValueError(
                f"tau_guess_ns = {list(tau_guess_ns)}: must be {n_comp} positive lifetime(s) (ns) for model {model!r}"
            )
    irf_arr = None
    if irf is not None:
        irf_arr = as_counts("irf", irf)
        if irf_arr.size != y_all.size:
            raise ValueError(f"irf: {irf_arr.size} bins: must be on the same bins as counts ({y_all.size})")
        if irf_arr.sum() <= 0:
            raise ValueError("irf: all zero: must hold the measured instrument response")
        if abs(period - span) > 1e-6 * period or widths[-1] < w * (1 - 1e-6):
            raise ValueError(
                f"irf: a measured IRF needs the histogram to cover exactly one laser period "
                f"(span {span:g} ps, period_ps {period:g} ps)"
            )
    n_params = 2 * n_comp + 3
    lo, hi = 0, y_all.size
    if fit_range_ps is not None:
        try:
            start, stop = (float(v) for v in fit_range_ps)
        except (TypeError, ValueError):
            start, stop = math.nan, math.nan
        lo = int(np.searchsorted(edges, start, "left"))
        hi = int(np.searchsorted(edges, stop, "right")) - 1
        if not (edges[0] <= start < stop <= edges[-1]) or hi - lo < 2 * n_params:
            raise ValueError(
                f"fit_range_ps = {fit_range_ps}: must be (start, stop) with {edges[0]:g} <= start < stop "
                f"<= {edges[-1]:g} ps, holding at least {2 * n_params} whole bins"
            )
    y = y_all[lo:hi]
    total = float(y.sum())
    if total < MIN_COUNTS[model]:
        raise ValueError(
            f"counts: {total:g} photons in the fit range: a {model!r} fit needs at least {MIN_COUNTS[model]}"
        )
    hist = Histogram(y, edges[lo : hi + 1], y_all, edges, lo, w, period, np.diff(edges[lo : hi + 1]) / w)
    return hist, irf_arr, tau0


# ------------------------------------------------------------------ fitting


def fit_decay(
    counts: np.ndarray,
    bin_edges_ps: np.ndarray,
    *,
    model: str = "mono",
    period_ps: int | None = None,
    irf: np.ndarray | None = None,
    fit_range_ps: tuple[int, int] | None = None,
    tau_guess_ns: Sequence[float] | None = None,
    fixed_tau_ns: float | None = None,
) -> DecayFit:
    """Poisson maximum-likelihood fit of a periodic mono- or bi-exponential decay.

    Args:
        counts: photons per bin of a nanotime histogram (any non-negative numbers).
        bin_edges_ps: ``len(counts) + 1`` increasing edges of equal-width bins (ps,
            the nanotime axis: ps after the laser sync); the last bin may be shorter
            (a period that is not a whole number of bins: last edge = the period).
            The model integrates over each bin's true edges; the flat background
            scales with each bin's width.
        model: ``"mono"`` or ``"bi"``.
        period_ps: laser period; ``None`` = the histogram span (the histogram covers
            one period).  Tails of earlier pulses wrap around with this period.
        irf: measured instrument response on the same bins (background subtracted),
            needs a histogram covering exactly one period; ``None`` = a fitted Gaussian.
            Its fitted shift is exact to a fraction of a bin only: each IRF bin's
            photons are taken as spread uniformly over the bin.
        fit_range_ps: (start, stop): fit only the whole bins inside; if the rise is
            outside it (a tail fit), the IRF position and width are held at their
            estimates (see ``message``).
        tau_guess_ns: starting lifetimes (one per component); default from moments.
        fixed_tau_ns: ``"bi"`` only: one component's lifetime held at this value (ns), e.g.
            the band-edge lifetime from a mono fit (the paper's Fig. 4 regimes); its error
            is then 0 (conditional on the value).

    Raises:
        ValueError: bad input, naming the argument, its value and what is allowed.
    """
    hist, irf_arr, tau0 = _check_inputs(counts, bin_edges_ps, model, period_ps, irf, fit_range_ps, tau_guess_ns)
    n_comp = MODELS[model]
    if fixed_tau_ns is not None and (model != "bi" or not math.isfinite(fixed_tau_ns) or fixed_tau_ns <= 0):
        raise ValueError(f"fixed_tau_ns = {fixed_tau_ns}: must be a lifetime > 0 (ns), with model 'bi' only")
    T, w = hist.period_ps, hist.width_ps
    y_all, edges_all = hist.all_counts, hist.all_edges
    bg0 = background_guess(y_all)
    t_on = onset_ps(y_all, edges_all, bg0)
    tau_m = tau_moment_ps(y_all, edges_all, bg0, t_on, T)
    centres = 0.5 * (edges_all[1:] + edges_all[:-1])
    dt = np.mod(centres - t_on, T)
    far = (dt > 8 * tau_m) & (dt < T - 5 * w)
    if far.sum() >= 10:
        bg0 = float(y_all[far].mean())
    if irf_arr is None:
        pos0 = t_on
        width0 = max(0.25 * w, 2.0)
    else:
        pos0 = t_on - irf_centroid_ps(irf_arr, edges_all)
        pos0 = float(np.mod(pos0 + 0.5 * T, T) - 0.5 * T)
        width0 = None
    s_n = max(float(hist.y.sum()), 1.0)
    s_bg = max(bg0, 1e-3 * s_n / hist.y.size, 1e-9)
    prob = Problem(hist, n_comp, irf_arr, pos0, s_n, s_bg, width0 or 1.0)
    notes = []
    if (t_on - hist.edges[0]) % T >= hist.edges[-1] - hist.edges[0]:  # a tail fit
        prob.free[2 * n_comp + 1 :] = False
        notes.append("rise outside the fit range: IRF position/width held at their estimates")

    def start(taus_ps: Sequence[float], amp_fracs: Sequence[float], base: np.ndarray | None = None) -> np.ndarray:
        p = np.zeros(prob.size) if base is None else base.copy()
        if base is None:
            p[n_comp] = bg0 / s_bg
            if width0 is not None:
                p[2 * n_comp + 2] = 1.0  # sigma = width0
        for i, tau in enumerate(taus_ps):
            p[prob.i_tau(i)] = math.log(min(max(tau, 2 * TAU_MIN_PS), 50 * T) / 1e3)
        weights = np.array(amp_fracs) * np.array(taus_ps)
        weights = weights / weights.sum()
        shape_sum = sum(wt * prob.shape(p[prob.local_index(i)]).sum() for i, wt in enumerate(weights))
        n_tot = max(float(hist.y.sum()) - p[n_comp] * s_bg * hist.y.size, 1.0) / max(shape_sum, 1e-3)
        p[:n_comp] = n_tot * weights / s_n
        return p

    if n_comp == 1:
        sol = optimise(prob, start([tau0[0] * 1e3 if tau0 is not None else tau_m], [1.0]))
    elif fixed_tau_ns is not None:  # component 1 held; the other starts above and below it, the better wins
        prob.free[prob.i_tau(0)] = False
        notes.append(f"lifetime {fixed_tau_ns:g} ns held fixed")
        fixed_ps = fixed_tau_ns * 1e3
        other = [tau0[1] * 1e3] if tau0 is not None else [max(1.6 * tau_m, 1.3 * fixed_ps), 0.5 * fixed_ps]
        sol = min((optimise(prob, start([fixed_ps, t], [0.5, 0.5])) for t in other), key=lambda s: s.f)
    elif tau0 is not None:
        sol = optimise(prob, start(tau0 * 1e3, [0.5, 0.5]))
    else:  # bi: one start around the moment lifetime, a second if the first is degenerate
        sol = optimise(prob, start([0.6 * tau_m, 1.6 * tau_m], [0.5, 0.5]))
        if _degenerate(prob, sol):
            sol = min(sol, optimise(prob, start([0.15 * tau_m, 1.1 * tau_m], [0.5, 0.5])), key=lambda s: s.f)
    return _result(prob, sol, model, notes)


def _degenerate(prob: Problem, sol: Solution) -> bool:
    """Not converged, a component with (almost) no amplitude, or two (almost) equal lifetimes."""
    ph = prob.physical(sol.p)
    amp = ph["n"] / ph["tau_ps"]
    tau = np.sort(ph["tau_ps"])
    return not sol.ok or amp.min() < 0.01 * amp.sum() or tau[-1] < 1.05 * tau[0]


def _result(prob: Problem, sol: Solution, model: str, notes: list[str]) -> DecayFit:
    p = sol.p
    c = prob.c
    info = information(prob, p)
    cov = np.full((prob.size, prob.size), np.nan)
    inner = free_off_bounds(prob, p)
    if info is None:
        f = prob.observed_information(p)[2]
        notes.append("observed information not positive definite: errors unavailable")
        subset = np.zeros(prob.size, bool)
    else:
        _, _, f, subset, chol = info
        inv = np.linalg.inv(chol)
        cov[np.ix_(subset, subset)] = inv.T @ inv
        if not np.array_equal(subset, inner):
            notes.append("IRF not determined by the data: errors are conditional on the fitted IRF")
    names = [f"amplitude {i + 1}" for i in range(c)] + ["background"] + [f"tau {i + 1}" for i in range(c)]
    names += ["IRF position", "IRF width"][: prob.size - 2 * c - 1]
    at_bound = [names[i] for i in np.flatnonzero(prob.free & ~inner)]
    if at_bound:
        notes.append("at a bound (error not available): " + ", ".join(at_bound))
    phys = prob.physical(p)
    order = np.argsort(phys["tau_ps"])

    def derived(q: np.ndarray) -> np.ndarray:
        ph = prob.physical(q)
        amp = ph["n"] / ph["tau_ps"]
        with np.errstate(invalid="ignore", divide="ignore"):  # no photons in the decay: fractions NaN, shown as "-"
            fractions = amp / amp.sum()
        return np.concatenate([ph["tau_ps"][order] / 1e3, fractions[order], [ph["bg"]]])

    value = derived(p)
    jac = np.zeros((value.size, prob.size))
    for k in np.flatnonzero(prob.free[: 2 * c + 1]):  # amplitudes, background, lifetimes
        e = np.zeros(prob.size)
        e[k] = 1e-6
        jac[:, k] = (derived(p + e) - derived(p - e)) / 2e-6
    var = np.einsum("ij,jk,ik->i", jac[:, subset], cov[np.ix_(subset, subset)], jac[:, subset])
    err = np.sqrt(var) if info is not None else np.full(value.size, np.nan)
    err[(jac[:, prob.free & ~inner] != 0).any(axis=1)] = np.nan  # depends on a parameter at a bound
    mu = np.maximum(prob.model(p), 1e-300)
    dof = max(prob.y.size - int(prob.free.sum()), 1)
    chi2 = float(((prob.y - mu) ** 2 / mu).sum()) / dof
    n = phys["n"]
    total = float(n.sum())
    sigma = phys["sigma_ps"]
    return DecayFit(
        model=model,
        tau_ns=tuple(float(v) for v in value[:c]),
        tau_err_ns=tuple(float(v) for v in err[:c]),
        fractions=tuple(float(v) for v in value[c : 2 * c]),
        fractions_err=tuple(float(v) for v in err[c : 2 * c]),
        intensity_fractions=tuple(float(v) for v in (n[order] / total if total > 0 else np.full(c, np.nan))),
        background_per_bin=float(phys["bg"]),
        background_err=float(err[-1]),
        irf_shift_ps=float(phys["pos_ps"]),
        irf_fwhm_ps=None if sigma is None else float(sigma * FWHM_PER_SIGMA),
        amplitude_total=total,
        neg_log_likelihood=float(f + prob.nll_offset),
        reduced_chi2=chi2,
        converged=bool(sol.ok and info is not None),
        message="; ".join([sol.message, *notes]),
        model_edges_ps=tuple(np.asarray(prob.h.edges, np.float64).tolist()),
        model_counts=tuple(np.asarray(prob.model(p), np.float64).tolist()),
    )

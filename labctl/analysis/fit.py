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
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np
from scipy.optimize import minimize
from scipy.special import gammaln, log_ndtr, ndtr

MODELS = {"mono": 1, "bi": 2}
"""Allowed ``model`` names and their number of exponential components."""

MIN_COUNTS = {"mono": 100, "bi": 1000}
"""Fewest photons in the fit range for which a fit is attempted."""

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))

_TAU_MIN_PS = 1.0
_SIGMA_MIN_PS = 0.5
_FD_STEP = 1e-5  # central-difference step of the model derivatives (internal units, O(1))
_FD_STEP_2 = 1e-3  # step of the second derivatives (Hessian)


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

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict: tuples become lists, non-finite numbers ``None``."""

        def clean(v: Any) -> Any:
            if isinstance(v, (tuple, list)):
                return [clean(x) for x in v]
            if isinstance(v, float) and not math.isfinite(v):
                return None
            return v

        return {k: clean(v) for k, v in asdict(self).items()}


# ------------------------------------------------------------------ component shapes


def gaussian_irf_shape(
    edges_ps: np.ndarray, tau_ps: float, t0_ps: float, sigma_ps: float, period_ps: float, *, gradient: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Fraction of a periodic decay exp(-t/tau) convolved with a Gaussian IRF, per bin.

    ``edges_ps`` are contiguous bin edges (any part of the period); the fractions sum
    to 1 over one whole period.  Exact (closed-form exponentially modified Gaussian,
    earlier pulses summed analytically) for any tau > 0 and ``sigma_ps <= period_ps / 20``.
    With ``gradient``, also the derivatives (rows: d/d ln tau, d/d t0 per ps, d/d ln sigma).
    """
    T, tau, sigma = period_ps, tau_ps, sigma_ps
    v = edges_ps - (t0_ps - 0.5 * T)
    u = v - T * np.floor(v / T) - 0.5 * T  # time since the nearest pulse's IRF centre, in [-T/2, T/2)
    pos = u > 0
    log_q = -_log_expm1(T / tau)  # log Q, Q = q / (1 - q), q = exp(-T / tau): all earlier pulses
    big_q = math.exp(min(log_q, 700.0))
    big_phi = pos.astype(np.float64)
    # E(u) = exp(-u/tau + s) * (Phi(z) + Q * Phi(z1)), z = x - sigma/tau, z1 = z + T/sigma.  Away from
    # the IRF (outside `window`), Phi(z) is 0 (u < 0) or 1 (u > 0) and Phi(z1) is 1.
    s = 0.5 * (sigma / tau) ** 2
    z_shift = sigma / tau
    lo, hi = -40.0 * sigma, (9.0 + z_shift) * sigma  # (x > -40) & (z < 9)
    window = np.flatnonzero((u > lo) & (u < hi)) if T / sigma - z_shift > 9.0 else np.arange(u.size)
    log_tail = np.where(pos, math.log1p(big_q), log_q)
    uw = u[window]
    xw, zw = uw / sigma, uw / sigma - z_shift
    log_pz1 = log_ndtr(zw + T / sigma)
    log_tail[window] = np.logaddexp(log_ndtr(zw), log_pz1 + log_q)
    e = np.exp(-u / tau + s + log_tail)
    big_phi[window] = ndtr(xw)
    wrapped = u[1:] < u[:-1]
    shape = (big_phi[1:] - big_phi[:-1]) + wrapped - (e[1:] - e[:-1])
    if not gradient:
        return shape
    # derivatives: m = exp(-u/tau + s) Phi(z1) Q (1 + Q); the Gaussian density phi(x) is 0 off the window
    m = e * np.where(pos, big_q, 1.0 + big_q)
    m[window] = np.exp(-uw / tau + s + log_pz1 + log_q + math.log1p(big_q))
    small_phi_w = np.exp(-0.5 * xw**2) / math.sqrt(2.0 * math.pi)
    grads = np.empty((3, u.size))
    grads[0] = -(e * (u - sigma**2 / tau) + T * m) / tau
    grads[0, window] -= sigma * small_phi_w / tau
    grads[1] = -e / tau
    grads[2] = -((sigma / tau) ** 2) * e
    grads[2, window] += sigma * small_phi_w / tau
    return shape, grads[:, 1:] - grads[:, :-1]


def measured_irf_kernel(
    n_bins: int, width_ps: float, tau_ps: float, shift_ps: float, *, gradient: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Periodic decay kernel on a circular histogram of ``n_bins`` bins of ``width_ps``.

    Element m is the fraction of the decay's photons in bin ``j + m`` for an excitation
    spread uniformly over bin ``j`` and delayed by ``shift_ps``; sums to 1.  With
    ``gradient``, also the derivatives (rows: d/d ln tau, d/d shift per ps).
    """
    w, tau = width_ps, tau_ps
    T = n_bins * w
    a = np.mod(np.arange(n_bins) * w - shift_ps + w, T) - w  # delay of bin m after the shifted bin j, in [-w, T - w)
    one_minus_q = -math.expm1(-T / tau)
    c = (tau / w) * math.expm1(-w / tau) ** 2
    late = a >= w
    k = np.where(late, c / one_minus_q * np.exp(np.minimum(w - a, 0.0) / tau), 0.0)
    close = np.flatnonzero(~late)  # the two bins where the decay starts: second difference of H2
    ac = a[close]
    tail = c * np.exp((w - ac - T) / tau) / one_minus_q  # earlier pulses
    k[close] = (_h2(ac + w, tau) - 2.0 * _h2(ac, tau) + _h2(ac - w, tau)) / w + tail
    if not gradient:
        return k
    d_shift = k / tau  # d/d shift = -d/d a
    d_shift[close] = -(_h1(ac + w, tau) - 2.0 * _h1(ac, tau) + _h1(ac - w, tau)) / w + tail / tau
    h = _FD_STEP
    d_ln_tau = (
        measured_irf_kernel(n_bins, w, tau * math.exp(h), shift_ps)
        - measured_irf_kernel(n_bins, w, tau * math.exp(-h), shift_ps)
    ) / (2 * h)
    return k, np.stack([d_ln_tau, d_shift])


def _h1(x: np.ndarray, tau: float) -> np.ndarray:
    """Integrated exp(-t/tau) step, over tau: 1 - exp(-x/tau) for x >= 0."""
    return -np.expm1(-np.maximum(x, 0.0) / tau)


def _h2(x: np.ndarray, tau: float) -> np.ndarray:
    """Twice-integrated exp(-t/tau) step, over tau: tau * (y - 1 + exp(-y)), y = x / tau >= 0."""
    y = np.maximum(x, 0.0) / tau
    return tau * (y + np.expm1(-y))


def _log_expm1(x: float) -> float:
    return x + math.log1p(-math.exp(-x)) if x > 30.0 else math.log(math.expm1(x))


# ------------------------------------------------------------------ input checks


@dataclass(frozen=True)
class _Histogram:
    y: np.ndarray  # counts in the fit range
    edges: np.ndarray  # float64 edges of the fit range
    all_counts: np.ndarray
    all_edges: np.ndarray
    lo: int  # first bin of the fit range
    width_ps: float
    period_ps: float


def _check_inputs(
    counts: np.ndarray,
    bin_edges_ps: np.ndarray,
    model: str,
    period_ps: int | None,
    irf: np.ndarray | None,
    fit_range_ps: tuple[int, int] | None,
    tau_guess_ns: Sequence[float] | None,
) -> tuple[_Histogram, np.ndarray | None, np.ndarray | None]:
    if model not in MODELS:
        raise ValueError(f"model = {model!r}: must be one of " + ", ".join(repr(m) for m in MODELS))
    y_all = _nonnegative_1d("counts", counts)
    edges = np.asarray(bin_edges_ps, dtype=np.float64)
    if edges.ndim != 1 or edges.size != y_all.size + 1:
        raise ValueError(
            f"bin_edges_ps: {edges.size} edges for {y_all.size} bins of counts: must be len(counts) + 1"
        )
    if y_all.size < 8:
        raise ValueError(f"counts: {y_all.size} bins: must be at least 8")
    widths = np.diff(edges)
    if not np.all(np.isfinite(edges)) or widths.min() <= 0 or widths.max() - widths.min() > 1e-6 * widths.max():
        raise ValueError(
            f"bin_edges_ps: bin widths from {widths.min():g} to {widths.max():g} ps: "
            "must be increasing edges of equal-width bins"
        )
    w = float(widths.mean())
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
        irf_arr = _nonnegative_1d("irf", irf)
        if irf_arr.size != y_all.size:
            raise ValueError(f"irf: {irf_arr.size} bins: must be on the same bins as counts ({y_all.size})")
        if irf_arr.sum() <= 0:
            raise ValueError("irf: all zero: must hold the measured instrument response")
        if abs(period - span) > 1e-6 * period:
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
    hist = _Histogram(y, edges[lo : hi + 1], y_all, edges, lo, w, period)
    return hist, irf_arr, tau0


def _nonnegative_1d(name: str, values: np.ndarray) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name}: shape {arr.shape}: must be a one-dimensional array of finite counts >= 0")
    return arr


# ------------------------------------------------------------------ start values


def estimate_irf_offset_ps(counts: np.ndarray, bin_edges_ps: np.ndarray) -> int:
    """Onset of a decay histogram: where the decay starts (the IRF centre), in ps.

    The histogram is taken as one laser period (it wraps around).  The onset is found
    from the rising edge: ``t = e_right(j1) - w * sum_j (c_j - bg) / level_j`` over the
    bins j of the rise (up to j1, just past it), ``level`` being the decay's level
    right after the rise.  That is exact for a step at any sub-bin position and for a
    symmetric IRF of any width.  Precision (1 sigma; 35 ns decay, 100 ps bins, 40 ps
    IRF): 4 ps with 1e6 photons, 8 ps with 2e5, 30 ps with 2e4; with fewer, bins are
    merged and it drops to about a merged bin.  Use it as the FLID nanotime offset.

    Raises:
        ValueError: counts and edges of inconsistent length, or an empty histogram.
    """
    y = _nonnegative_1d("counts", counts)
    edges = np.asarray(bin_edges_ps, dtype=np.float64)
    if edges.ndim != 1 or edges.size != y.size + 1 or y.size < 8:
        raise ValueError(
            f"bin_edges_ps: {edges.size} edges for {y.size} bins of counts: must be len(counts) + 1 (>= 9)"
        )
    if y.sum() <= 0:
        raise ValueError("counts: all zero: no decay to locate")
    return int(round(_onset_ps(y, edges, _background_guess(y))))


def _background_guess(y: np.ndarray) -> float:
    """Flat background: the mean of the lower half of the bins, corrected up for its selection."""
    low = np.sort(y)[: max(1, y.size // 2)]
    return float(min(np.median(y), low.mean() + np.sqrt(max(low.mean(), 0.0)) * 0.8))


def _onset_ps(y: np.ndarray, edges: np.ndarray, bg: float) -> float:
    """Onset of the decay (ps): see ``estimate_irf_offset_ps``.  Bins are merged in pairs
    until the peak stands 50 counts above the background."""
    n, merge = y.size, 1
    while True:
        n_merged = n // merge
        merged = y[: n_merged * merge].reshape(n_merged, merge).sum(axis=1)
        if _smooth(merged).max() - bg * merge >= 50 or n_merged < 128:
            break
        merge *= 2
    edges_merged = edges[: n_merged * merge + 1 : merge]
    rough = _onset_merged_ps(merged, edges_merged, bg * merge, None)
    tau = _tau_moment_ps(y, edges, bg, rough, edges[-1] - edges[0])  # for the decay over the rise
    return _onset_merged_ps(merged, edges_merged, bg * merge, math.exp(-(edges_merged[1] - edges_merged[0]) / tau))


def _smooth(y: np.ndarray, k: int = 5) -> np.ndarray:
    """Circular moving average over ``k`` bins."""
    return np.convolve(np.concatenate([y[-k:], y, y[:k]]), np.ones(k) / k, "same")[k:-k]


def _onset_merged_ps(y: np.ndarray, edges: np.ndarray, bg: float, decay: float | None, m: int = 8) -> float:
    """Onset from the rise; ``decay``: of the decay per bin (None: from the bins after the peak)."""
    n = y.size
    w = (edges[-1] - edges[0]) / n
    p = int(np.argmax(_smooth(y)))
    c = n // 2
    yr = np.roll(y, c - p).astype(np.float64) - bg  # the peak moved to index c
    s1, s2 = yr[c + 1 : c + 1 + m].sum(), yr[c + 1 + m : c + 1 + 2 * m].sum()
    if s1 <= 0:
        return float(edges[p])
    # level of the decay just after the peak, extrapolated back where it decays significantly
    if decay is None:
        decay = 1.0
        if 1.0 - s2 / s1 > 5.0 * math.sqrt(1.0 / s1 + 1.0 / max(s2, 1.0)):
            decay = max(s2 / s1, 1e-3) ** (1.0 / m)
    bins_before = np.minimum(c + (m + 1) / 2 - np.arange(c + 1), 50.0)
    r = yr[: c + 1] / (s1 / m * decay**-bins_before)
    below_half = np.flatnonzero(r < 0.5)
    h = int(below_half[-1]) if below_half.size else c
    low = np.flatnonzero(r[: h + 1] <= 0.05)
    j0 = int(low[-1]) if low.size else 0  # the rise: from j0 (~background) ...
    high = np.flatnonzero(r[h + 1 :] >= 0.95)
    j1 = min(h + 2 + int(high[0]), c) if high.size else c  # ... to j1 (on the decay, one bin of margin)
    t = edges[0] + (p - c + j1 + 1) * w - w * r[j0 : j1 + 1].sum()
    return float(edges[0] + np.mod(t - edges[0], n * w))


def _tau_moment_ps(y: np.ndarray, edges: np.ndarray, bg: float, t_on: float, period: float) -> float:
    centres = 0.5 * (edges[1:] + edges[:-1])
    dt = np.mod(centres - t_on, period)
    tau = max(0.1 * period, 10 * (edges[1] - edges[0]))
    for _ in range(3):
        sel = dt < 8 * tau
        sig = y[sel] - bg
        if sig.sum() <= 0:
            break
        tau = float(np.clip((dt[sel] * sig).sum() / sig.sum(), 2 * (edges[1] - edges[0]), period))
    return tau


# ------------------------------------------------------------------ the likelihood problem


class _Problem:
    """Poisson NLL of the fit-range counts over internal parameters of order 1.

    Full internal vector: ``[xN_1..xN_c, x_bg, ln(tau_1/ns)..ln(tau_c/ns), x_pos, (x_var)]``,
    ``N_i = s_n * xN_i``, ``bg = s_bg * x_bg``, IRF position ``pos0 + w * x_pos`` and Gaussian
    IRF ``sigma = s_sigma * sqrt(x_var)``.  The variance, not ln sigma: the model depends on
    sigma**2, so the likelihood keeps a slope where the IRF is much narrower than a bin.
    """

    def __init__(
        self, hist: _Histogram, n_comp: int, irf: np.ndarray | None, pos0: float, s_n: float, s_bg: float,
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
        lo = [0.0] * n_comp + [0.0] + [math.log(_TAU_MIN_PS / 1e3)] * n_comp + [-0.25 * T / w]
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
        mu = np.full(nb, self.s_bg * p[c])
        jac[c] = self.s_bg
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


# ------------------------------------------------------------------ fitting


@dataclass
class _Solution:
    p: np.ndarray
    f: float
    ok: bool
    message: str


def _optimise(prob: _Problem, p0: np.ndarray) -> _Solution:
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


def _lbfgsb(prob: _Problem, p0: np.ndarray) -> _Solution:
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
    return _Solution(p, f, bool(res.success) or newton_ok, str(res.message))


def _newton_polish(prob: _Problem, p: np.ndarray, f: float, steps: int = 8) -> tuple[np.ndarray, float, bool]:
    """Fisher-scoring (Gauss-Newton) steps from the L-BFGS-B optimum, on the free parameters off
    their bounds; True when the Newton decrement is negligible (the optimum is reached)."""
    for _ in range(steps):
        mu, jac, _ = prob.derivatives(p, 1)
        mu = np.maximum(mu, 1e-300)
        subset = _inner(prob, p)
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


def _information(prob: _Problem, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, np.ndarray, np.ndarray] | None:
    """Observed information (NLL Hessian), gradient, NLL, the parameters it covers and its Cholesky factor.

    The parameters covered are the free ones off their bounds, less the IRF width (and
    then the IRF position) if the information is not positive definite with them: with
    bins much wider than the IRF the data do not determine its width, and the other
    parameters' errors are then conditional on the fitted IRF.  ``None`` if still not
    positive definite.
    """
    H, g, f = prob.observed_information(p)
    subset = _inner(prob, p)
    irf = list(range(prob.size - 1, 2 * prob.c, -1))  # width (if Gaussian), then position
    for drop in [[], *([irf[: k + 1] for k in range(len(irf))])]:
        trial = subset.copy()
        trial[drop] = False
        try:
            return H, g, f, trial, np.linalg.cholesky(H[np.ix_(trial, trial)])
        except np.linalg.LinAlgError:
            continue
    return None


def _inner(prob: _Problem, p: np.ndarray) -> np.ndarray:
    """Free parameters not sitting on a bound."""
    at_lower = p - prob.lower <= 1e-10 * np.maximum(np.abs(prob.lower), 1.0)
    finite = np.isfinite(prob.upper)
    at_upper = np.zeros_like(at_lower)
    at_upper[finite] = prob.upper[finite] - p[finite] <= 1e-10 * np.maximum(np.abs(prob.upper[finite]), 1.0)
    return prob.free & ~at_lower & ~at_upper


def fit_decay(
    counts: np.ndarray,
    bin_edges_ps: np.ndarray,
    *,
    model: str = "mono",
    period_ps: int | None = None,
    irf: np.ndarray | None = None,
    fit_range_ps: tuple[int, int] | None = None,
    tau_guess_ns: Sequence[float] | None = None,
) -> DecayFit:
    """Poisson maximum-likelihood fit of a periodic mono- or bi-exponential decay.

    Args:
        counts: photons per bin of a nanotime histogram (any non-negative numbers).
        bin_edges_ps: ``len(counts) + 1`` increasing edges of equal-width bins (ps,
            the nanotime axis: ps after the laser sync).
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

    Raises:
        ValueError: bad input, naming the argument, its value and what is allowed.
    """
    hist, irf_arr, tau0 = _check_inputs(counts, bin_edges_ps, model, period_ps, irf, fit_range_ps, tau_guess_ns)
    n_comp = MODELS[model]
    T, w = hist.period_ps, hist.width_ps
    y_all, edges_all = hist.all_counts, hist.all_edges
    bg0 = _background_guess(y_all)
    t_on = _onset_ps(y_all, edges_all, bg0)
    tau_m = _tau_moment_ps(y_all, edges_all, bg0, t_on, T)
    centres = 0.5 * (edges_all[1:] + edges_all[:-1])
    dt = np.mod(centres - t_on, T)
    far = (dt > 8 * tau_m) & (dt < T - 5 * w)
    if far.sum() >= 10:
        bg0 = float(y_all[far].mean())
    if irf_arr is None:
        pos0 = t_on
        width0 = max(0.25 * w, 2.0)
    else:
        pos0 = t_on - _centroid_ps(irf_arr, edges_all)
        pos0 = float(np.mod(pos0 + 0.5 * T, T) - 0.5 * T)
        width0 = None
    s_n = max(float(hist.y.sum()), 1.0)
    s_bg = max(bg0, 1e-3 * s_n / hist.y.size, 1e-9)
    prob = _Problem(hist, n_comp, irf_arr, pos0, s_n, s_bg, width0 or 1.0)
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
            p[prob.i_tau(i)] = math.log(min(max(tau, 2 * _TAU_MIN_PS), 50 * T) / 1e3)
        weights = np.array(amp_fracs) * np.array(taus_ps)
        weights = weights / weights.sum()
        shape_sum = sum(wt * prob.shape(p[prob.local_index(i)]).sum() for i, wt in enumerate(weights))
        n_tot = max(float(hist.y.sum()) - p[n_comp] * s_bg * hist.y.size, 1.0) / max(shape_sum, 1e-3)
        p[:n_comp] = n_tot * weights / s_n
        return p

    if n_comp == 1:
        sol = _optimise(prob, start([tau0[0] * 1e3 if tau0 is not None else tau_m], [1.0]))
    elif tau0 is not None:
        sol = _optimise(prob, start(tau0 * 1e3, [0.5, 0.5]))
    else:  # bi: one start around the moment lifetime, a second if the first is degenerate
        sol = _optimise(prob, start([0.6 * tau_m, 1.6 * tau_m], [0.5, 0.5]))
        if _degenerate(prob, sol):
            sol = min(sol, _optimise(prob, start([0.15 * tau_m, 1.1 * tau_m], [0.5, 0.5])), key=lambda s: s.f)
    return _result(prob, sol, model, notes)


def _degenerate(prob: _Problem, sol: _Solution) -> bool:
    """Not converged, a component with (almost) no amplitude, or two (almost) equal lifetimes."""
    ph = prob.physical(sol.p)
    amp = ph["n"] / ph["tau_ps"]
    tau = np.sort(ph["tau_ps"])
    return not sol.ok or amp.min() < 0.01 * amp.sum() or tau[-1] < 1.05 * tau[0]


def _centroid_ps(irf: np.ndarray, edges: np.ndarray) -> float:
    """Centre of mass of the IRF around its peak (circular, within +-n/4 bins)."""
    n = irf.size
    w = (edges[-1] - edges[0]) / n
    p = int(np.argmax(irf))
    offsets = np.arange(-(n // 4), n // 4)
    weights = irf[(p + offsets) % n]
    return float(edges[0] + (p + 0.5) * w + w * (weights * offsets).sum() / weights.sum())


def _result(prob: _Problem, sol: _Solution, model: str, notes: list[str]) -> DecayFit:
    p = sol.p
    c = prob.c
    info = _information(prob, p)
    cov = np.full((prob.size, prob.size), np.nan)
    inner = _inner(prob, p)
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
        return np.concatenate([ph["tau_ps"][order] / 1e3, (amp / amp.sum())[order], [ph["bg"]]])

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
    )

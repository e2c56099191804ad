"""Component shapes of the decay model: the fraction of a periodic decay's photons in each bin.

A decay ``exp(-t / tau)`` is started by every laser pulse (period T, so the tails of
earlier pulses wrap around) and convolved with the instrument response (IRF):

* ``gaussian_irf_shape``: a Gaussian IRF; the bin integrals are the closed-form
  integrals of the exponentially modified Gaussian.
* ``measured_irf_kernel``: the kernel a measured IRF is circularly convolved with (by
  FFT, in ``decay_likelihood``).  Each IRF bin's photons are spread uniformly over the
  bin and shifted by any real number of ps; the kernel "box-shifted exponential
  integrated over a bin" is analytic, so sub-bin shifts keep the model positive and smooth.

Both return the derivatives the likelihood needs on request (``gradient=True``).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import log_ndtr, ndtr

_FD_STEP = 1e-5  # central-difference step of the model derivatives (internal units, O(1))


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

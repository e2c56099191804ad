"""Lifetime regimes (the paper's Fig. 4f-h): per regime the summed decay and its fit.

The shortest regime's decay is fitted mono-exponentially: its lifetime is the band edge's.
The others are fitted bi-exponentially with the band-edge lifetime held fixed; the free
component is the trap emission.  Both by Poisson maximum likelihood with a Gaussian IRF
reconvolved and the tails of earlier pulses wrapped in (``labctl.analysis.fit.fit_decay``).
Emission fractions are a_i tau_i / sum(a tau); with equal radiative yields the trap
emission fraction is the trap probability P_trap of the regime.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def regime_decay(nanotimes_ps: np.ndarray, index: np.ndarray, keep: np.ndarray, in_regime: np.ndarray,
                 edges_ps: np.ndarray) -> np.ndarray:
    """int64 nanotime histogram of the kept photons whose time bin is in the regime."""
    n_bins = in_regime.size
    sel = keep & (index < n_bins)
    sel[sel] = in_regime[index[sel]]
    return np.histogram(nanotimes_ps[sel], edges_ps)[0].astype(np.int64)


def _fit(counts: np.ndarray, edges_ps: np.ndarray, period_ps: int, model: str,
         fixed_tau_ns: float | None = None) -> dict[str, Any]:
    from labctl.analysis.fit import fit_decay

    try:
        return fit_decay(counts, edges_ps, model=model, period_ps=period_ps, fixed_tau_ns=fixed_tau_ns).as_dict()
    except ValueError as exc:  # too few photons: said, not fatal
        return {"model": model, "error": str(exc), "tau_ns": [], "tau_err_ns": [], "fractions": [],
                "intensity_fractions": [], "reduced_chi2": None}


def fit_regimes(decays: list[np.ndarray], edges_ps: np.ndarray, period_ps: int) -> tuple[list[dict[str, Any]], dict]:
    """Fit each regime's decay: (per regime {decay_fit, trap_fraction, trap_fraction_err, trap_tau_ns, ...},
    band-edge and trap lifetimes {band_edge: (tau, err), trap: (tau, err)})."""
    out: list[dict[str, Any]] = []
    first = _fit(decays[0], edges_ps, period_ps, "mono") if decays else None
    tau_be = first["tau_ns"][0] if first and first["tau_ns"] else None
    tau_be_err = first["tau_err_ns"][0] if first and first["tau_err_ns"] else None
    trap_taus: list[tuple[float, float]] = []
    for i, counts in enumerate(decays):
        if i == 0:
            out.append({"decay_fit": first, "trap_fraction": 0.0 if tau_be is not None else None,
                        "trap_fraction_err": None, "trap_tau_ns": None,
                        "note": "shortest regime: mono-exponential, taken as band-edge emission only"})
            continue
        if tau_be is None:
            out.append({"decay_fit": None, "trap_fraction": None, "trap_fraction_err": None, "trap_tau_ns": None,
                        "note": "no band-edge lifetime (the shortest regime's fit failed)"})
            continue
        fit = _fit(counts, edges_ps, period_ps, "bi", fixed_tau_ns=tau_be)
        entry: dict[str, Any] = {"decay_fit": fit, "trap_fraction": None, "trap_fraction_err": None,
                                 "trap_tau_ns": None, "note": f"bi-exponential, band edge held at {tau_be:.3f} ns"}
        if fit.get("tau_ns"):
            taus = fit["tau_ns"]
            j = int(np.argmax([abs(t - tau_be) for t in taus]))  # the free component
            tau_t, f_i = taus[j], fit["intensity_fractions"][j]
            entry["trap_tau_ns"] = tau_t
            entry["trap_fraction"] = f_i
            fa, fa_err = fit["fractions"][j], fit["fractions_err"][j]
            if fa_err is not None:  # photon fraction from the amplitude fraction (delta method, taus fixed)
                denom = fa * tau_t + (1 - fa) * tau_be
                entry["trap_fraction_err"] = fa_err * tau_t * tau_be / denom**2
            err = fit["tau_err_ns"][j]
            if err is not None and err > 0 and math.isfinite(err):
                trap_taus.append((tau_t, err))
        out.append(entry)
    trap = (None, None)
    if trap_taus:
        w = np.array([1 / e**2 for _, e in trap_taus])
        t = np.array([t for t, _ in trap_taus])
        trap = (float((w * t).sum() / w.sum()), float(1 / math.sqrt(w.sum())))
    return out, {"band_edge": (tau_be, tau_be_err), "trap": trap}

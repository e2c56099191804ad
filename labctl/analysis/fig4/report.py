"""``report_file``: the paper's single-QD analysis (Fig. 4) of one Photon-HDF5 file, as report.json's dict.

Steps: photons in memory with detectors aligned on their IRFs (``photons``); intensity per
time bin and the ON threshold; afterpulse veto and the flat background (``background``);
the rise t0 from a mono fit of the ON decay; per-bin background-corrected mean lifetimes and
their shot-noise expectation (``lifetime_bins``); lifetime regimes with their decays and
fits (``regimes``) and spectra (``spectra_select``); g(2) and the biexciton QY
(``g2_biexciton``); change-point levels (``labctl.analysis.changepoint``, when present).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from pathlib import Path
from typing import Any

import numpy as np

from labctl.analysis.analyze_parts import on_threshold_from_trace
from labctl.analysis.decay_start import background_guess, estimate_irf_offset_ps, tau_moment_ps
from labctl.analysis.fig4.background import afterpulse_keep, measure_background, relative_ps
from labctl.analysis.fig4.g2_biexciton import g2_and_biexciton
from labctl.analysis.fig4.lifetime_bins import (
    bin_index,
    default_regimes,
    per_bin_lifetimes,
    pooled_lifetime_ns,
    shot_noise_expected,
)
from labctl.analysis.fig4.options import PAPER_ON_THRESHOLD_PER_100MS, ReportOptions
from labctl.analysis.fig4.photons import PhotonData, load_photons
from labctl.analysis.fig4.regimes import fit_regimes, regime_decay
from labctl.analysis.fig4.spectra_select import read_spectra, regime_spectra
from labctl.errors import ConfigError

HISTOGRAM_BINS = 50
"""Bins of the histogram of per-bin mean lifetimes."""


def report_file(path: str | Path, options: ReportOptions | None = None) -> dict[str, Any]:
    """The report of one file: the content of report.json (JSON-serialisable; see README "labctl report").

    Raises:
        ConfigError: the file cannot be analysed (no nanotimes, no laser period, too short, ...).
    """
    opts = options or ReportOptions()
    data = load_photons(path, opts.detectors, opts.laser_period_ps, opts.lifetime_bin_ps)
    notes: list[str] = list(data.warnings)
    bin_ps = int(round(opts.bin_ms * 1e9))
    n_bins = int((data.timestamps_ps[-1] - data.origin_ps) // bin_ps)
    if n_bins < 1:
        raise ConfigError("--bin-ms", opts.bin_ms, f"must be shorter than the recording ({data.duration_s:.3g} s)")
    index = bin_index(data.timestamps_ps, data.origin_ps, bin_ps)
    counts = np.bincount(index[index < n_bins], minlength=n_bins)[:n_bins]
    paper = PAPER_ON_THRESHOLD_PER_100MS * opts.bin_ms / 100.0
    if opts.on_threshold is not None:
        threshold, source = float(opts.on_threshold), "given (--on-threshold)"
    else:
        threshold, source = on_threshold_from_trace(counts, paper)
    on = counts > threshold
    if not on.any():
        notes.append(f"on: no bin above the threshold ({threshold:g} counts per {opts.bin_ms:g} ms): no lifetimes, "
                     "regimes or spectra")

    keep, veto_periods = afterpulse_keep(data.timestamps_ps, data.detectors, data.nanotimes_ps, data.period_ps,
                                         opts.afterpulse_veto_ns)
    n_vetoed = int(np.count_nonzero(~keep & (data.nanotimes_ps >= 0)))
    keep &= data.nanotimes_ps >= 0
    edges = data.edges_ps()
    on_photons = keep & (index < n_bins)
    on_photons[on_photons] = on[index[on_photons]]
    t0_ps, tau_global_ps, rise = _rise(np.histogram(data.nanotimes_ps[on_photons], edges)[0], edges, data.period_ps)
    pre_ps = opts.pre_rise_ns * 1e3
    dt = relative_ps(data.nanotimes_ps, t0_ps, data.period_ps, pre_ps)
    inside = keep & (index < n_bins)
    bg = dataclasses.replace(measure_background(dt[inside], n_bins, data.period_ps, tau_global_ps, pre_ps,
                                                opts.decay_window_taus), t0_ps=t0_ps)
    bins = per_bin_lifetimes(index, n_bins, keep, dt, bg)
    on_ok = on & np.isfinite(bins.lifetime_ns)
    tau_on = pooled_lifetime_ns(bins, on_ok, bg)
    histogram = _lifetime_histogram(bins.lifetime_ns[on_ok], bins.window_counts[on_ok], tau_on)

    regimes_ns = opts.regimes_ns or default_regimes(bins.lifetime_ns[on_ok])
    masks = [on_ok & (bins.lifetime_ns >= lo) & (bins.lifetime_ns < hi) for lo, hi in regimes_ns]
    decays = [regime_decay(data.nanotimes_ps, index, keep, m, edges) for m in masks]
    fitted, lifetimes = fit_regimes(decays, edges, data.period_ps)
    spectra = read_spectra(path)
    trap_fractions = [r["trap_fraction"] for r in fitted]
    spec = (regime_spectra(spectra, masks, data.origin_ps, bin_ps, opts.min_frame_overlap, trap_fractions)
            if spectra is not None else None)
    if spec is None:
        notes.append("spectra: the file has no camera frames: no spectra, peak energies or widths")
    regimes = []
    for i, ((lo, hi), mask, decay, fit) in enumerate(zip(regimes_ns, masks, decays, fitted)):
        s = spec["regimes"][i] if spec else {"peak_ev": None, "fwhm_ev": None, "frames": 0, "counts": None}
        regimes.append({"lifetime_range_ns": [lo, hi], "bins": int(mask.sum()), "photons": int(decay.sum()),
                        **fit, "decay_counts": decay.tolist(), "spectrum": s})
    be_spec = spec["regimes"][0] if spec and spec["regimes"] else {}
    trap_spec = spec["trap"] if spec else {}
    pair = tuple(data.detector_ids[:2]) if len(data.detector_ids) >= 2 else None
    g2 = g2_and_biexciton(data.timestamps_ps, data.detectors, data.nanotimes_ps, dt, pair, data.period_ps,
                          data.period_source, opts)
    levels, levels_note = _levels(data, opts, t0_ps)
    if levels_note:
        notes.append(levels_note)
    result = {
        "file": str(path),
        "duration_s": data.duration_s,
        "on": {"threshold_counts": threshold, "bin_ms": opts.bin_ms, "fraction": float(on.mean()),
               "source": source},
        "band_edge": {"tau_ns": lifetimes["band_edge"][0], "tau_err_ns": lifetimes["band_edge"][1],
                      "peak_ev": be_spec.get("peak_ev"), "fwhm_ev": be_spec.get("fwhm_ev")},
        "trap": {"tau_ns": lifetimes["trap"][0], "tau_err_ns": lifetimes["trap"][1],
                 "peak_ev": trap_spec.get("peak_ev"), "fwhm_ev": trap_spec.get("fwhm_ev"),
                 "spectrum_counts": trap_spec.get("counts")},
        "regimes": regimes,
        "g2": g2,
        "levels": levels,
        "trace": {"bin_ms": opts.bin_ms, "counts": counts.tolist(), "lifetime_ns": bins.lifetime_ns.tolist(),
                  "on": on.tolist(), "on_lifetime_ns": tau_on},
        "lifetime_histogram": histogram,
        "decay_edges_ps": edges.tolist(),
        "energy_ev": spec["energy_ev"] if spec else None,
        "settings": {
            "options": opts.as_dict(),
            "detectors": list(data.detector_ids),
            "detector_shifts_ps": {str(k): v for k, v in data.detector_shifts_ps.items()},
            "period_ps": data.period_ps, "period_source": data.period_source,
            "duration_source": data.duration_source,
            "bins": {"time_bin_ms": opts.bin_ms, "time_bins": n_bins, "origin_ps": data.origin_ps,
                     "nanotime_bin_ps": data.bin_ps, "nanotime_bin_source": data.bin_source},
            "threshold": {"counts_per_bin": threshold, "source": source, "paper_counts_per_bin": paper},
            "rise": rise,
            "windows": {"lifetime_ps": list(bg.window_ps), "flat_background_ps": bg.flat_window_ps and
                        list(bg.flat_window_ps), "relative_to": "t0 (the rise, IRF centre)"},
            "background": {**bg.as_dict(), "afterpulse_veto_periods": veto_periods, "photons_vetoed": n_vetoed},
            "regimes_ns": [list(r) for r in regimes_ns],
            "regimes_source": "given (--regimes)" if opts.regimes_ns else
                              "three equal ranges over the 0.5-99.5th percentile of the ON bins' mean lifetimes",
            "spectra_frame_selection": f"frames with >= {opts.min_frame_overlap:g} of their exposure in the bins",
        },
        "notes": notes,
    }
    return clean_json(result)


def _rise(hist: np.ndarray, edges: np.ndarray, period_ps: int) -> tuple[float, float, dict[str, Any]]:
    """(t0 ps, lifetime ps, how): the Gaussian IRF centre and lifetime of a mono fit of the ON decay;
    the onset estimate and moment lifetime if that fit fails."""
    from labctl.analysis.fit import fit_decay

    try:
        fit = fit_decay(hist, edges, model="mono", period_ps=period_ps)
        return fit.irf_shift_ps, fit.tau_ns[0] * 1e3, {
            "t0_ps": fit.irf_shift_ps, "tau_ns": fit.tau_ns[0],
            "source": "mono fit of the ON photons' decay: its Gaussian IRF centre"}
    except ValueError as exc:
        t0 = float(estimate_irf_offset_ps(hist, edges)) if hist.sum() else 0.0
        bg = background_guess(hist)
        tau = tau_moment_ps(hist, edges, bg, t0, period_ps)
        return t0, tau, {"t0_ps": t0, "tau_ns": tau / 1e3,
                         "source": f"onset of the ON decay (the mono fit failed: {exc})"}


def _lifetime_histogram(tau_ns: np.ndarray, photons: np.ndarray, tau_on: float) -> dict[str, Any]:
    """Histogram of the ON bins' mean lifetimes and its shot-noise expectation (mixture of Gamma)."""
    if tau_ns.size < 2 or not math.isfinite(tau_on):
        return {"edges_ns": [], "counts": [], "shot_noise": [], "tau_ns": None}
    lo, hi = np.percentile(tau_ns, [0.1, 99.9])
    pad = 0.1 * (hi - lo) + 1e-3
    edges = np.linspace(max(lo - pad, 0.0), hi + pad, HISTOGRAM_BINS + 1)
    counts = np.histogram(tau_ns, edges)[0]
    expected = shot_noise_expected(edges, np.maximum(photons, 1), tau_on)
    return {"edges_ns": edges.tolist(), "counts": counts.tolist(), "shot_noise": expected.tolist(), "tau_ns": tau_on,
            "std_ns": float(np.std(tau_ns)), "shot_noise_std_ns": float(tau_on * np.sqrt(np.mean(1.0 / np.maximum(photons, 1))))}


def _levels(data: PhotonData, opts: ReportOptions, t0_ps: float) -> tuple[list[dict[str, Any]], str | None]:
    """Change-point levels from ``labctl.analysis.changepoint.find_levels`` if that module exists."""
    if importlib.util.find_spec("labctl.analysis.changepoint") is None:
        return [], "levels: labctl.analysis.changepoint is not installed: no change-point levels"
    from labctl.analysis.changepoint import find_levels  # type: ignore[import-not-found]

    nanotimes = np.where(data.nanotimes_ps >= 0, data.nanotimes_ps, int(round(t0_ps)))
    try:
        found = find_levels(data.timestamps_ps, confidence=opts.levels_confidence, nanotimes_ps=nanotimes,
                            irf_offset_ps=t0_ps, origin_ps=data.origin_ps)
    except (TypeError, ValueError) as exc:  # another signature, or a stream it cannot cut: said, not fatal
        return [], f"levels: changepoint.find_levels failed: {type(exc).__name__}: {exc}"
    keys = ("start_s", "stop_s", "intensity_cps", "lifetime_ns", "group")
    return [{k: getattr(level, k) for k in keys} for level in found], None


def clean_json(value: Any) -> Any:
    """Numbers to plain Python, non-finite floats to None (report.json has no NaN)."""
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.bool_):
        return bool(value)
    return value

"""``write_report``: report.json, the figures as PNG and report.html (readable without a server)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

COLOURS = ["tab:blue", "tab:green", "tab:orange", "tab:red", "tab:purple", "tab:brown"]


def write_report(result: dict[str, Any], out_dir: Path) -> None:
    """Write ``out_dir``/report.json, the PNG figures and report.html (the folder is created)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(result, allow_nan=False))
    figures = _figures(result, out)
    (out / "report.html").write_text(_html(result, figures), encoding="utf-8")


def _figures(r: dict[str, Any], out: Path) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[tuple[str, str]] = []

    def save(fig: Any, name: str, caption: str) -> None:
        fig.tight_layout()
        fig.savefig(out / name, dpi=90)
        plt.close(fig)
        written.append((name, caption))

    trace = r["trace"]
    counts = np.asarray(trace["counts"], np.float64)
    t_s = np.arange(counts.size) * trace["bin_ms"] * 1e-3
    tau = np.array([np.nan if v is None else v for v in trace["lifetime_ns"]], np.float64)
    on = np.asarray(trace["on"], bool)
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(9, 5), sharex=True)
    a1.plot(t_s, counts, lw=0.6, color="k")
    a1.axhline(r["on"]["threshold_counts"], color="r", lw=0.8, label=f"ON threshold ({r['on']['source']})"[:80])
    a1.set(ylabel=f"counts / {trace['bin_ms']:g} ms")
    a1.legend(loc="upper right", fontsize=7)
    a2.plot(t_s[on], tau[on], ".", ms=2)
    a2.set(xlabel="time (s)", ylabel="mean lifetime (ns), ON bins")
    save(fig, "trace.png", "Intensity trace with the ON threshold; average-lifetime trace of the ON bins")

    hist = r["lifetime_histogram"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 4))
    ok = on & np.isfinite(tau)
    if ok.sum() > 1:
        a1.hist2d(tau[ok], counts[ok], bins=40, cmap="viridis")
    a1.set(xlabel="mean lifetime (ns)", ylabel=f"counts / {trace['bin_ms']:g} ms", title="FLID (ON bins)")
    if hist["edges_ns"]:
        a2.stairs(hist["counts"], hist["edges_ns"], label="ON bins")
        centres = 0.5 * (np.asarray(hist["edges_ns"][1:]) + np.asarray(hist["edges_ns"][:-1]))
        a2.plot(centres, hist["shot_noise"], "r-", label="shot-noise limit (mono)")
        for i, reg in enumerate(r["regimes"]):
            a2.axvspan(*reg["lifetime_range_ns"], color=COLOURS[i % 6], alpha=0.15)
        a2.legend(fontsize=7)
    a2.set(xlabel="mean lifetime (ns)", ylabel="bins")
    save(fig, "flid.png", "FLID and histogram of per-bin mean lifetimes with the shot-noise expectation; regimes shaded")

    edges = np.asarray(r["decay_edges_ps"], np.float64) * 1e-3
    fig, ax = plt.subplots(figsize=(9, 4))
    for i, reg in enumerate(r["regimes"]):
        c = COLOURS[i % 6]
        ax.stairs(np.maximum(reg["decay_counts"], 0.5), edges, color=c, alpha=0.6,
                  label=f"{reg['lifetime_range_ns'][0]:.1f}-{reg['lifetime_range_ns'][1]:.1f} ns")
        fit = reg.get("decay_fit") or {}
        if fit.get("model_counts"):
            me = np.asarray(fit["model_edges_ps"]) * 1e-3
            ax.plot(0.5 * (me[1:] + me[:-1]), fit["model_counts"], color=c, lw=1)
    ax.set_yscale("log")
    ax.set(xlabel="delay after the laser pulse (ns)", ylabel="photons per bin", xlim=(0, min(edges[-1], 600)))
    if r["regimes"]:
        ax.legend(fontsize=7)
    save(fig, "decays.png", "Decay per lifetime regime with its fit (shortest: mono; others: bi, band edge fixed)")

    if r.get("energy_ev"):
        energy = np.asarray(r["energy_ev"])
        fig, ax = plt.subplots(figsize=(9, 4))
        for i, reg in enumerate(r["regimes"]):
            s = reg["spectrum"].get("counts")
            if s:
                s = np.asarray(s)
                ax.plot(energy, s / max(s.sum(), 1e-9), color=COLOURS[i % 6], lw=1)
        trap = r["trap"].get("spectrum_counts")
        if trap:
            t = np.asarray(trap)
            ax.plot(energy, t / max(t.sum(), 1e-9), "k--", lw=1, label="trap (reconstructed)")
            ax.legend(fontsize=7)
        ax.set(xlabel="photon energy (eV)", ylabel="normalised counts")
        save(fig, "spectra.png", "Spectrum per regime (area-normalised) and the reconstructed trap spectrum")

    g2 = r["g2"]
    if g2.get("counts"):
        fig, ax = plt.subplots(figsize=(9, 3.5))
        ax.stairs(g2["counts"], np.asarray(g2["lag_edges_ps"]) * 1e-3)
        ax.set(xlabel="lag (ns)", ylabel="pairs per bin", title=_g2_title(g2))
        save(fig, "g2.png", "g(2) of the two detectors")
    return written


def _g2_title(g2: dict[str, Any]) -> str:
    if g2.get("g2_zero") is None:
        return "g(2)"
    text = f"g2(0) = {g2['g2_zero']:.3f} ± {g2['g2_zero_err']:.3f}"
    if g2.get("gated_g2_zero") is not None:
        text += f"; gated (> {g2['gate_ns']:g} ns) {g2['gated_g2_zero']:.3f}"
    return text


def _num(v: Any, fmt: str = ".4g") -> str:
    return "–" if v is None else format(v, fmt)


def _html(r: dict[str, Any], figures: list[tuple[str, str]]) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{reg['lifetime_range_ns'][0]:.1f}–{reg['lifetime_range_ns'][1]:.1f}</td><td>{reg['bins']}</td>"
        f"<td>{reg['photons']}</td><td>{e(', '.join(_num(t) for t in (reg.get('decay_fit') or {}).get('tau_ns', [])))}</td>"
        f"<td>{_num(reg['trap_fraction'], '.3f')}</td><td>{_num(reg['spectrum']['peak_ev'], '.4f')}</td>"
        f"<td>{_num(reg['spectrum']['fwhm_ev'] and reg['spectrum']['fwhm_ev'] * 1e3, '.1f')}</td>"
        f"<td>{reg['spectrum']['frames']}</td></tr>" for reg in r["regimes"])
    be, trap, g2, on = r["band_edge"], r["trap"], r["g2"], r["on"]
    figs = "".join(f'<figure><img src="{e(n)}" alt="{e(c)}"><figcaption>{e(c)}</figcaption></figure>'
                   for n, c in figures)
    notes = "".join(f"<li>{e(n)}</li>" for n in r.get("notes", []))
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>labctl report: {e(r['file'])}</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:auto}}td,th{{padding:2px 8px;text-align:right}}
img{{max-width:100%}}</style></head><body>
<h1>Single-QD report</h1><p>{e(r['file'])}, {r['duration_s']:.1f} s</p>
<p>ON: &gt; {on['threshold_counts']:g} counts per {on['bin_ms']:g} ms ({e(on['source'])}); ON fraction {on['fraction']:.3f}</p>
<table><tr><th></th><th>τ (ns)</th><th>σ (ns)</th><th>peak (eV)</th><th>FWHM (meV)</th></tr>
<tr><td>band edge</td><td>{_num(be['tau_ns'])}</td><td>{_num(be['tau_err_ns'], '.2g')}</td><td>{_num(be['peak_ev'], '.4f')}</td><td>{_num(be['fwhm_ev'] and be['fwhm_ev'] * 1e3, '.1f')}</td></tr>
<tr><td>trap</td><td>{_num(trap['tau_ns'])}</td><td>{_num(trap['tau_err_ns'], '.2g')}</td><td>{_num(trap['peak_ev'], '.4f')}</td><td>{_num(trap['fwhm_ev'] and trap['fwhm_ev'] * 1e3, '.1f')}</td></tr></table>
<h2>Lifetime regimes</h2>
<table><tr><th>range (ns)</th><th>bins</th><th>photons</th><th>τ fit (ns)</th><th>trap fraction</th><th>peak (eV)</th><th>FWHM (meV)</th><th>frames</th></tr>{rows}</table>
<p>g2(0) = {_num(g2.get('g2_zero'), '.4f')} ± {_num(g2.get('g2_zero_err'), '.4f')};
gated g2(0) = {_num(g2.get('gated_g2_zero'), '.4f')}; QY_BX/QY_X = {_num(g2.get('biexciton_qy_ratio'), '.4f')}</p>
<p>Levels (change points): {len(r['levels'])}</p>
{figs}<h2>Notes</h2><ul>{notes}</ul>
<p>Every setting is in report.json, key <code>settings</code>.</p></body></html>
"""

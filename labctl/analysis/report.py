"""What ``labctl analyze`` prints and draws from its result (the JSON-ready dict)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def format_result(result: dict[str, Any]) -> str:
    """The text ``labctl analyze`` prints."""
    lines = [f"file        {result['file']}",
             f"duration    {result['duration_s']:.3f} s  ({result.get('duration_source', 'file')})"]
    for det, rate in result["rates_cps"].items():
        lines.append(f"detector {det:>2}  {result['photons'][det]:>10,d} photons  {rate:>12,.1f} counts/s")
    g2 = result["g2"]
    if g2 is None:
        lines.append(f"g2(0)       - ({result.get('g2_note', 'one detector')})")
    elif g2["g2_zero"] is not None and g2["g2_zero_err"] is not None and g2["g2_zero_err"] > 1:
        lines.append(f"g2(0)       - (too few pairs: error {g2['g2_zero_err']:.3g} > 1)")
    elif g2["g2_zero"] is not None:
        err = f"{g2['g2_zero_err']:.4f}" if g2["g2_zero_err"] is not None else "?"
        lines.append(f"g2(0)       {g2['g2_zero']:.4f} ± {err}  (zero-delay peak / mean side peak, "
                     f"detectors {g2['detectors'][0]} x {g2['detectors'][1]}; zero delay at {g2['delay_ps']} ps: "
                     f"{g2['delay_source']}; period {g2['period_ps']} ps: {g2['period_source']})")
    else:
        lines.append(f"g2(0)       - ({g2.get('delay_source') or 'no laser period, or no side-peak pairs'})")
    lifetime = result.get("lifetime")
    if lifetime is not None:
        fit = lifetime["fit"]
        if fit.get("error"):
            lines.append(f"lifetime    fit failed: {fit['error']}")
        else:
            lines.append("lifetime    " + _fit_line(fit))
        for det, dfit in (lifetime.get("detector_fits") or {}).items():
            lines.append(f"  detector {det}: " + (f"fit failed: {dfit['error']}" if dfit.get("error") else _fit_line(dfit)))
    else:
        lines.append("lifetime    - (no nanotimes in the file)")
    trace = result["trace"]
    if trace["on_fraction"] is not None:
        lines.append(f"ON fraction {trace['on_fraction']:.3f}  (> {trace['on_threshold']:g} counts per "
                     f"{trace['bin_ms']:g} ms bin; threshold {trace.get('on_threshold_source', '')})")
    lines.extend(f"warning     {w}" for w in result.get("warnings", []))
    return "\n".join(lines)


def _fit_line(fit: dict[str, Any]) -> str:
    taus = ", ".join("- ns" if t is None else f"{t:.3f} ± {e:.2g} ns" if e is not None
                     else f"{t:.3f} ns (error not available)" for t, e in zip(fit["tau_ns"], fit["tau_err_ns"]))
    fractions = ", ".join("-" if f is None else f"{f:.3f}" for f in fit["fractions"])  # None: not finite
    chi2 = fit.get("reduced_chi2")
    chi2_text = f", reduced chi2 {chi2:.2f}" if chi2 is not None else ""
    return f"{fit['model']}: {taus}  (amplitude fractions {fractions}{chi2_text})"


def write_plots(result: dict[str, Any], folder: str | Path) -> list[Path]:
    """PNG figures of g(2), decay with fit, intensity trace and FLID into ``folder``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def save(fig: Any, name: str) -> None:
        path = folder / name
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)

    g2 = result["g2"]
    if g2 is not None:
        edges = np.asarray(g2["lag_edges_ps"]) * 1e-3
        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.stairs(g2["counts"], edges)
        ax.set(xlabel=f"lag t_B - t_A - {g2.get('lag_offset_ps', 0)} ps (ns)", ylabel="pairs per bin",
               title=(f"g(2)(0) = {g2['g2_zero']:.3f} ± {g2['g2_zero_err']:.3f}"
                      if g2["g2_zero"] is not None and g2["g2_zero_err"] is not None else "g(2)"))
        save(fig, "g2.png")

    trace = result["trace"]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    counts = np.asarray(trace["counts"])
    ax.plot(np.arange(counts.size) * trace["bin_ms"] * 1e-3, counts, lw=0.6)
    ax.axhline(trace["on_threshold"], color="r", lw=0.8, label="ON threshold")
    ax.set(xlabel="time (s)", ylabel=f"counts per {trace['bin_ms']:g} ms")
    ax.legend(loc="upper right")
    save(fig, "trace.png")

    lifetime = result.get("lifetime")
    if lifetime is not None:
        edges = np.asarray(lifetime["bin_edges_ps"])
        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.stairs(np.maximum(lifetime["counts"], 0.5), edges * 1e-3)
        ax.set_yscale("log")
        fit = lifetime["fit"]
        ax.set(xlabel="delay after laser pulse (ns)", ylabel="photons per bin",
               title=(f"{fit['model']} fit: " + ", ".join("-" if t is None else f"{t:.1f} ns" for t in fit["tau_ns"])) if fit["tau_ns"] else "decay")
        save(fig, "lifetime.png")
        flid = result["flid"]
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.pcolormesh(flid["lifetime_edges_ns"], flid["intensity_edges"], np.asarray(flid["counts"]), cmap="viridis")
        ax.set(xlabel="mean lifetime (ns)", ylabel=f"counts per {trace['bin_ms']:g} ms", title="FLID")
        save(fig, "flid.png")
    return written

"""Numbers the live views show besides the accumulators' own: ON/OFF, normalised g(2), fit quality.

Small pure functions over snapshots (numpy in, numpy or floats out), so that the
GUI only draws:

* :func:`on_fraction` and :func:`default_on_threshold`: the intensity trace's ON
  fraction above a threshold, and a threshold chosen from the data (midway
  between its OFF and ON levels) or the paper's 400 counts per 100 ms;
* :func:`normalised_peak_areas`: the pulsed g(2) as peak areas over the mean
  side-peak area (side peaks = 1, the centre peak = g2(0));
* :func:`decay_residuals`: the decay's Poisson-weighted residuals against the
  fitted curve over the fit range (the live fit carries them with its reduced χ²).
"""

from __future__ import annotations

from typing import Any

import numpy as np

MIN_BINS_FOR_DATA_THRESHOLD = 300
"""Trace bins needed before a threshold is taken from the data."""


def on_fraction(counts: np.ndarray, threshold_counts: float) -> float | None:
    """Fraction of trace bins with more than ``threshold_counts`` counts (None: no bins)."""
    counts = np.asarray(counts)
    if counts.size == 0:
        return None
    return float(np.count_nonzero(counts > threshold_counts)) / counts.size


def default_on_threshold(counts: np.ndarray, bin_ms: float) -> tuple[float, str]:
    """The ON threshold (counts per bin of ``bin_ms`` ms) and where it comes from, in words.

    From the data when the trace shows two levels: midway between its OFF level (10th
    percentile) and its ON level (90th percentile), if they differ by more than 6 times
    the OFF level's Poisson noise.  Otherwise (too few bins, or one level only) the
    paper's 400 counts per 100 ms, scaled to the bin.
    """
    from labctl.analysis.analyze import PAPER_ON_THRESHOLD_PER_100MS

    paper = PAPER_ON_THRESHOLD_PER_100MS * bin_ms / 100.0
    counts = np.asarray(counts, dtype=np.float64)
    if counts.size >= MIN_BINS_FOR_DATA_THRESHOLD:
        off, on = np.percentile(counts, [10.0, 90.0])
        if on - off > 6.0 * np.sqrt(max(off, 1.0)):
            return float(0.5 * (off + on)), f"data: midway between OFF {off:.0f} and ON {on:.0f}"
    return float(paper), "the paper's 400 per 100 ms"


def normalised_peak_areas(snapshot: Any) -> tuple[np.ndarray, np.ndarray]:
    """Pulsed g(2) as (peak lag (ns), area / mean side-peak area): side peaks ~1, centre = g2(0).

    Takes a :class:`~labctl.analysis.g2.G2Snapshot`; empty arrays without a period or
    side-peak counts.
    """
    side = np.asarray(snapshot.side_peak_areas, dtype=np.float64)
    if snapshot.period_ps is None or side.size == 0 or snapshot.center_peak_area is None or side.mean() <= 0:
        return np.empty(0), np.empty(0)
    mean = side.mean()
    lags_ns = np.concatenate([[0.0], np.asarray(snapshot.side_peak_lags_ps, dtype=np.float64) * 1e-3])
    ratios = np.concatenate([[float(snapshot.center_peak_area)], side]) / mean
    order = np.argsort(lags_ns, kind="stable")
    return lags_ns[order], ratios[order]


def decay_residuals(summed: np.ndarray, bin_edges_ps: np.ndarray, model_edges_ps: np.ndarray,
                    model_counts: np.ndarray) -> np.ndarray:
    """Poisson-weighted residuals ``(observed - model) / sqrt(model)`` in a fit's bins.

    Args:
        summed: photons per histogram bin.
        bin_edges_ps: the histogram's edges (ps).
        model_edges_ps: edges of the fitted bins (ps), on the histogram's edges (a sub-range,
            possibly merged bins).
        model_counts: the model's expected counts in the fitted bins.
    """
    cumulative = np.concatenate([[0.0], np.cumsum(np.asarray(summed, dtype=np.float64))])
    edges = np.asarray(bin_edges_ps, dtype=np.float64)
    observed = np.diff(np.interp(np.asarray(model_edges_ps, dtype=np.float64), edges, cumulative))
    model = np.asarray(model_counts, dtype=np.float64)
    return np.where(model > 0, (observed - model) / np.sqrt(np.maximum(model, 1e-300)), 0.0)

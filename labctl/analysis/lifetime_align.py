"""Lifetime histograms of real setups: any period and bin width, detectors with different IRF offsets.

* ``period_edges``: the accumulator's edges with the last one moved to the period,
  so that a period that is not a whole number of bins (80.03 MHz = 12496 ps with
  100 ps bins; PicoHarp's 76.2 MHz) ends in a partial last bin; the fit
  (``fit.fit_decay``) integrates its model over each bin's true edges.
* ``shift_periodic``: a histogram over one period moved by any number of ps,
  circularly (a photon's delay after the pulse is periodic), photons conserved.
* ``align_detectors``: each detector's IRF offset (``estimate_irf_offset_ps``, the
  rising edge) and its histogram moved by whole bins onto the reference detector's
  (the one with most photons), so that the summed decay has one IRF, not two.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labctl.analysis.decay_start import estimate_irf_offset_ps

MIN_ALIGN_PHOTONS = 1000
"""Fewest photons a detector needs for its IRF offset to be estimated (else it is not moved)."""


def period_edges(bin_edges_ps: np.ndarray, period_ps: int) -> np.ndarray:
    """int64 edges ``0, w, 2w, ..., period``: the last bin ends at the period (partial if needed)."""
    edges = np.asarray(bin_edges_ps, np.int64).copy()
    if edges.size and edges[-1] > period_ps:
        edges[-1] = period_ps
    return edges


def shift_periodic(counts: np.ndarray, edges_ps: np.ndarray, delta_ps: float) -> np.ndarray:
    """Counts of the photons at ``t - delta_ps`` (mod the period ``edges_ps[-1]``) on the same bins.

    The cumulative count is interpolated linearly within a bin (exact on bin edges,
    so a shift by whole bins away from the period's end just moves bins) and extended
    periodically; each new bin gets the rounded cumulative difference, so the result is
    int64, >= 0, and sums to the same total.
    """
    edges = np.asarray(edges_ps, np.float64)
    period = edges[-1] - edges[0]
    cum = np.concatenate([[0.0], np.cumsum(np.asarray(counts, np.float64))])
    total = cum[-1]
    x = edges + delta_ps - edges[0]
    wraps = np.floor(x / period)
    g = np.interp(x - wraps * period + edges[0], edges, cum) + wraps * total
    return np.diff(np.floor(g + 0.5).astype(np.int64))


@dataclass(frozen=True)
class Alignment:
    """Per-detector IRF offsets and the shifts applied (rows as in the accumulator).

    Attributes:
        offsets_ps: each detector's IRF offset (ps; None: too few photons to estimate).
        shifts_ps: the shift applied to each detector's histogram (whole bins, ps).
        reference: row of the reference detector (most photons).
        summed: int64 aligned sum over the detectors.
    """

    offsets_ps: list[int | None]
    shifts_ps: list[int]
    reference: int
    summed: np.ndarray


def align_detectors(counts: np.ndarray, edges_ps: np.ndarray, bin_width_ps: int) -> Alignment:
    """Move each detector's histogram (rows of ``counts``) by whole bins onto the reference detector's IRF.

    Shift = round((offset_d - offset_ref) / bin) bins; a detector with fewer than
    ``MIN_ALIGN_PHOTONS`` photons (or a histogram of fewer than 8 bins) is not moved.
    """
    counts = np.asarray(counts, np.int64)
    totals = counts.sum(axis=1)
    ref = int(np.argmax(totals)) if totals.size else 0
    offsets: list[int | None] = []
    for row in counts:
        try:
            offsets.append(int(estimate_irf_offset_ps(row, edges_ps)) if row.sum() >= MIN_ALIGN_PHOTONS else None)
        except ValueError:  # fewer than 8 bins in the period: no onset to estimate
            offsets.append(None)
    shifts: list[int] = []
    summed = np.zeros(counts.shape[1], np.int64)
    period = float(edges_ps[-1] - edges_ps[0])
    for row, off in zip(counts, offsets):
        shift = 0
        if off is not None and offsets[ref] is not None:
            delta = (off - offsets[ref] + 0.5 * period) % period - 0.5 * period  # nearest way round
            shift = int(round(delta / bin_width_ps)) * bin_width_ps
        shifts.append(shift)
        summed += shift_periodic(row, edges_ps, shift) if shift else row
    return Alignment(offsets, shifts, ref, summed)

"""The parts of ``labctl analyze`` that make real recordings safe to analyse.

* ``period_from_first_block``: the laser period, from the user, the file, or the
  sync stream (the photons' sync times in the first block), and whether the file is
  T3 (timestamps in laser-sync ticks: photon time = sync time + nanotime).
* ``t3_photon_times``: T3 blocks to blocks of photon times, sorted, chunk by chunk.
* ``duration_choice``: the file's ``/acquisition_duration`` unless it is missing or
  disagrees with the first-to-last tag span by more than 1 %.
* ``g2_result``: the g(2) JSON, with the period's source and the zero-delay peak
  (given, found, assumed or not located: ``labctl.analysis.g2_comb``).
* ``lifetime_result``: lifetime and FLID JSON: any period and bin width, detectors
  aligned on their IRFs, reduced chi^2 of every fit, photons left out.
* ``on_threshold_from_trace``: the ON threshold between the trace's OFF and ON levels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from labctl.analysis.decay_start import estimate_irf_offset_ps
from labctl.analysis.fit_process import fit_histograms
from labctl.analysis.g2 import G2Snapshot, pulsed_g2_zero
from labctl.analysis.g2_comb import Z_FOUND, find_zero_tooth, period_from_comb, period_from_sync_times
from labctl.analysis.lifetime_align import align_detectors, period_edges
from labctl.blocks import PhotonBlock

DURATION_TOLERANCE = 0.01
"""The file's duration is used while it agrees with the tag span within this fraction."""

LEFT_OUT_WARNING = 0.01
"""A view that leaves out more than this fraction of its photons says so in ``warnings``."""

CHI2_WARNING = 2.0
"""A fit whose reduced chi^2 exceeds this gets a warning: the model does not describe the data."""


def period_from_first_block(given_ps: int | None, rate_hz: float | None, block: PhotonBlock | None,
                            has_nanotimes: bool, timestamps_unit_ps: float, labctl_file: bool
                            ) -> tuple[int | None, str | None, bool]:
    """(period in ps or None, its source, whether the file is T3).

    T3: a file with nanotimes (not labctl's) whose timestamp unit is at least half the
    laser period: its timestamps are sync times, the photon's time adds the nanotime.
    Sync stream: the first block's sync times (t - nanotime for photon times; t for T3),
    whose differences are whole periods (``g2_comb.period_from_sync_times``).
    """
    period: float | None = None
    source = None
    if given_ps is not None:
        period, source = float(given_ps), "given (--laser-period-ps)"
    elif rate_hz:
        period, source = 1e12 / rate_hz, "file (laser_repetition_rate)"
    elif has_nanotimes and block is not None and len(block):
        ok = block.nanotimes >= 0
        for sync, how in ((block.timestamps[ok] - block.nanotimes[ok], "timestamp - nanotime"),
                          (block.timestamps[ok], "the timestamps themselves (T3)")):
            found = period_from_sync_times(sync)
            if found is not None:
                period, source = found, f"sync stream: differences of the photons' sync times ({how})"
                break
    t3 = bool(has_nanotimes and not labctl_file and period is not None and timestamps_unit_ps >= 0.5 * period)
    return (None if period is None else int(round(period))), source, t3


def t3_photon_times(blocks: Iterable[PhotonBlock]) -> Iterator[PhotonBlock]:
    """Blocks of a T3 file (timestamp = sync time) as blocks of photon times (sync time + nanotime), sorted.

    Photons of later blocks have times >= this block's last sync time, so a block's
    photons before it are final (sorted stably); the rest wait for the next block.
    Photons without a nanotime (< 0) keep their sync time.
    """
    carry = PhotonBlock.empty()
    for block in blocks:
        if not len(block):
            continue
        ts = block.timestamps + np.maximum(block.nanotimes, 0)
        det, nt = block.detectors, block.nanotimes
        if len(carry):
            ts = np.concatenate([carry.timestamps, ts])
            det = np.concatenate([carry.detectors, det])
            nt = np.concatenate([carry.nanotimes, nt])
        if not bool(np.all(ts[1:] >= ts[:-1])):  # a card's records are in arrival order: usually sorted already
            order = np.argsort(ts, kind="stable")
            ts, det, nt = ts[order], det[order], nt[order]
        k = int(np.searchsorted(ts, block.timestamps[-1], side="left"))
        carry = PhotonBlock(ts[k:], det[k:], nt[k:])
        if k:
            yield PhotonBlock(ts[:k], det[:k], nt[:k])
    if len(carry):
        yield carry


def duration_choice(file_s: float | None, first_ps: int | None, last_ps: int | None,
                    warnings: list[str]) -> tuple[float, str]:
    """(duration in s, its source): the file's value, else (missing, or off by > 1 %) the tag span."""
    span_s = (last_ps - first_ps) * 1e-12 if first_ps is not None and last_ps is not None else 0.0
    if file_s and file_s > 0:
        if span_s <= 0 or abs(file_s - span_s) <= DURATION_TOLERANCE * span_s:
            return float(file_s), "file (/acquisition_duration)"
        warnings.append(f"duration: the file's /acquisition_duration {file_s:.6g} s disagrees with the first-to-last "
                        f"tag span {span_s:.6g} s by {100 * (file_s - span_s) / span_s:+.1f} %: rates use the span")
        return span_s, f"tags (first to last; the file's {file_s:.6g} s disagrees by more than 1 %)"
    return span_s, "tags (first to last; no /acquisition_duration in the file)"


def g2_result(g: G2Snapshot, options: Any, period_ps: int | None, period_source: str | None,
              warnings: list[str]) -> dict[str, Any]:
    """The g(2) JSON: counts, the period and its source, the zero-delay peak and g2(0) (or null, and why)."""
    counts, edges = g.counts, g.lag_edges_ps
    if period_ps is None:
        comb = period_from_comb(counts, edges)
        if comb is not None:
            period_ps, period_source = int(round(comb)), "comb: the autocorrelation of the pair histogram"
    given = options.g2_delay_ps
    out: dict[str, Any] = {
        "detectors": [int(g.detector_a), int(g.detector_b)],
        "lag_edges_ps": edges.tolist(),
        "counts": counts.tolist(),
        "g2_zero": None,
        "g2_zero_err": None,
        "period_ps": period_ps,
        "period_source": period_source,
        "lag_offset_ps": int(given or 0),
        "delay_ps": None if given is None else int(given),
        "delay_source": None if given is None else "given (--g2-delay-ps)",
        "zero_peak": None,
    }
    if g.n_a == 0 or g.n_b == 0:
        empty = g.detector_a if g.n_a == 0 else g.detector_b
        out["delay_source"] = f"none: detector {empty} has no photons"
        warnings.append(f"g2: detector {empty} has no photons: no g(2) (use --detectors A for one detector)")
        return out
    if period_ps is None:
        out["delay_source"] = out["delay_source"] or "none: no laser period (continuous excitation?)"
        return out
    tooth = find_zero_tooth(counts, edges, period_ps)
    if tooth is not None:
        out["zero_peak"] = {"lag_ps": round(tooth.lag_ps), "z": tooth.z, "next_largest_abs_z": tooth.next_z,
                            "found": tooth.found, "teeth": tooth.n_teeth, "comb_phase_ps": tooth.phase_ps}
    shift = 0
    centred = tooth is not None and abs(tooth.phase_ps) <= max(g.bin_width_ps, period_ps / 20)
    if given is not None:
        if tooth is not None and tooth.found and abs(tooth.lag_ps) > period_ps / 2:
            warnings.append(f"g2: with --g2-delay-ps {given} the peak at lag 0 is a side peak: the tooth at lag "
                            f"{tooth.lag_ps:.0f} ps stands out (z = {tooth.z:.1f}); the delay may be "
                            f"{given + round(tooth.lag_ps)} ps")
    elif tooth is None:
        warnings.append("g2: fewer than 3 comb teeth in the g(2) range: the zero-delay peak cannot be located; "
                        "g2(0) left out (widen --g2-range-ps or give --g2-delay-ps)")
        out["delay_source"] = "not located: fewer than 3 teeth in the range"
        return out
    elif tooth.found:
        # a phase within the centring tolerance moves the +-P/2 windows by a negligible amount: keep whole periods
        lag = tooth.lag_ps - (tooth.phase_ps if centred else 0.0)
        shift = int(round(lag / g.bin_width_ps)) * g.bin_width_ps
        out["delay_ps"] = shift
        out["delay_source"] = (f"found: the comb tooth at lag {tooth.lag_ps:.0f} ps deviates most from its "
                               f"neighbours (z = {tooth.z:.1f}, >= {Z_FOUND:g}; next largest |z| {tooth.next_z:.1f}); "
                               + ("comb centred (phase within max(bin, period/20)): whole periods" if centred
                                  else "rounded to the g2 bin"))
    elif centred:
        out["delay_ps"] = 0
        out["delay_source"] = (f"assumed 0: the comb is centred on lag 0 and no tooth stands out (largest |z| "
                               f"{abs(tooth.z):.1f} < {Z_FOUND:g}): every peak is alike, g2(0) is that of any of them")
        warnings.append("g2: no comb tooth stands out from its neighbours: g2(0) assumes the zero-delay peak at lag 0 "
                        "(right for a Poissonian source; give --g2-delay-ps if the detectors' paths differ)")
    else:
        suggestion = round(tooth.phase_ps)
        out["delay_source"] = (f"not located: the comb is off-centre (teeth at lag {suggestion} + k x {period_ps} ps) "
                               f"and no tooth stands out (largest |z| {abs(tooth.z):.1f} < {Z_FOUND:g})")
        warnings.append(f"g2: the comb is off-centre (teeth at {suggestion} + k x {period_ps} ps) and no tooth stands "
                        f"out: g2(0) not given; pass --g2-delay-ps with the cable delay (e.g. {suggestion} + k x "
                        f"{period_ps})")
        return out
    _, _, _, g2_zero, g2_err = pulsed_g2_zero(counts, edges - shift, period_ps)
    out["g2_zero"] = None if g2_zero is None or not math.isfinite(g2_zero) else float(g2_zero)
    out["g2_zero_err"] = None if g2_err is None or not math.isfinite(g2_err) else float(g2_err)
    if out["g2_zero_err"] is not None and out["g2_zero_err"] > 1:
        warnings.append(f"g2: g2(0) error {out['g2_zero_err']:.3g} > 1: too few pairs for g2(0) to mean anything")
    return out


def lifetime_bin_ps(wanted_ps: int, nanotime_unit_s: float | None) -> tuple[int, str]:
    """(bin width in ps, why): ``wanted_ps`` rounded to a whole number of TCSPC units.

    A bin that is not a whole number of the file's TCSPC units (100 ps bins of 16 ps
    units hold 6 or 7 units) makes a comb of +-8 % in the histogram that no decay model
    fits; rounding the bin to whole units removes it.
    """
    unit_ps = None if nanotime_unit_s is None else nanotime_unit_s * 1e12
    if unit_ps is None or unit_ps <= 1.0 + 1e-9:
        return int(wanted_ps), "--lifetime-bin-ps"
    units = max(1, round(wanted_ps / unit_ps))
    width = int(round(units * unit_ps))
    if width == wanted_ps:
        return int(wanted_ps), "--lifetime-bin-ps"
    return width, (f"--lifetime-bin-ps {wanted_ps} rounded to {units} TCSPC units of {unit_ps:g} ps (a bin that is "
                   "not a whole number of units aliases)")


Fitter = Callable[[Sequence[np.ndarray], np.ndarray, str, int], list[dict[str, Any]]]
"""(histograms, bin edges in ps, model, laser period in ps) -> one fit dict each (``fit_process.fit_histograms``)."""


def lifetime_result(lifetime: Any, flid: Any, period_ps: int, options: Any, outside_period: dict[int, int],
                    warnings: list[str], fitter: Fitter = fit_histograms) -> tuple[dict[str, Any], dict[str, Any]]:
    """Lifetime (histograms aligned per detector, fits with reduced chi^2, photons left out) and FLID JSON.

    ``fitter`` fits the summed decay (and each detector's, with ``options.per_detector_fits``): in this
    process by default, or by a worker process (``FitProcess.fit``), with the same results.
    """
    lt = lifetime.snapshot()
    edges = period_edges(lt.bin_edges_ps, period_ps)
    rows = lt.counts.copy()
    dets = [int(d) for d in lt.detectors]
    # nanotimes in [period, last accumulator edge) fell in the last bin: they are outside the period
    rows[:, -1] -= np.array([outside_period[d] for d in dets], np.int64) - lt.n_out_of_range
    align = align_detectors(rows, edges, lt.bin_width_ps)
    summed = align.summed
    offset_ps = estimate_irf_offset_ps(summed, edges) if summed.sum() and summed.size >= 8 else 0

    histograms = [summed, *(rows if options.per_detector_fits else [])]
    fitted = fitter(histograms, edges, options.fit, period_ps)  # a fit refused (too few photons etc.): an "error" dict
    fits = {"summed": fitted[0]}
    if options.per_detector_fits:
        fits.update({str(d): f for d, f in zip(dets, fitted[1:])})
    for name, f in fits.items():
        chi2 = f.get("reduced_chi2")
        if chi2 is not None and chi2 > CHI2_WARNING:
            warnings.append(f"lifetime: the {f['model']} fit of {'the summed decay' if name == 'summed' else 'detector ' + name}"
                            f" has reduced chi2 = {chi2:.2f} (> {CHI2_WARNING:g}): the model does not describe the data"
                            " (another model, IRF, or detectors?)")
    n_total = rows.sum() + lt.n_no_nanotime.sum() + sum(outside_period.values())
    left_out = {"no_nanotime": int(lt.n_no_nanotime.sum()), "outside_period": int(sum(outside_period.values()))}
    n_left = sum(left_out.values())
    if n_total and n_left > LEFT_OUT_WARNING * n_total:
        warnings.append(f"lifetime: {n_left:,} of {int(n_total):,} photons ({100 * n_left / n_total:.1f} %) left out "
                        f"of the lifetime view ({left_out['no_nanotime']:,} without a nanotime, "
                        f"{left_out['outside_period']:,} with a nanotime outside [0, {period_ps}) ps)")
    out = {
        "bin_edges_ps": edges.tolist(),
        "counts": summed.tolist(),
        "detector_counts": rows.tolist(),
        "irf_offset_ps": int(offset_ps),
        "fit": fits["summed"],
        "reduced_chi2": fits["summed"].get("reduced_chi2"),
        "period_ps": int(period_ps),
        "detectors": dets,
        "detector_irf_offsets_ps": {str(d): o for d, o in zip(dets, align.offsets_ps)},
        "detector_shifts_ps": {str(d): s for d, s in zip(dets, align.shifts_ps)},
        "left_out": left_out,
        "left_out_per_detector": {str(d): {"no_nanotime": int(n), "outside_period": int(outside_period[d])}
                                  for d, n in zip(dets, lt.n_no_nanotime)},
    }
    if options.per_detector_fits:
        out["detector_fits"] = {k: v for k, v in fits.items() if k != "summed"}
    fl = flid.snapshot()
    tr = flid.trace_snapshot()
    # FLID accumulated with offset 0: subtract each detector's IRF offset, weighted by its photons in the bin
    det_offsets = np.array([offset_ps + s for s in align.shifts_ps], np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        weighted = (np.asarray(tr.counts, np.float64) @ det_offsets) / np.maximum(fl.intensity, 1)
    mean_ns = fl.mean_lifetime_ns - weighted * 1e-3
    ok = np.isfinite(mean_ns)
    hist, _, _ = np.histogram2d(fl.intensity[ok], mean_ns[ok], bins=(fl.intensity_edges, fl.lifetime_edges_ns))
    flid_out = {
        "intensity_edges": fl.intensity_edges.tolist(),
        "lifetime_edges_ns": fl.lifetime_edges_ns.tolist(),
        "counts": hist.astype(np.int64).tolist(),
        "nanotime_offset_ps": int(offset_ps),
        "detector_nanotime_offsets_ps": {str(d): int(o) for d, o in zip(dets, det_offsets)},
        "mean_lifetime_ns": [None if not math.isfinite(x) else float(x) for x in mean_ns.tolist()],
    }
    return out, flid_out


def on_threshold_from_trace(total: np.ndarray, paper_counts: float) -> tuple[float, str]:
    """(ON threshold in counts per bin, its source): Otsu's split of the trace's counts when the trace is
    bimodal (the OFF and ON levels lie more than 3 Poisson sigmas of the ON level apart), else the
    paper's 400 per 100 ms scaled to the bin."""
    y = np.asarray(total, np.int64)
    if y.size >= 20 and y.max() > y.min():
        hist = np.bincount(y - y.min()).astype(np.float64)
        levels = np.arange(hist.size) + y.min()
        w0 = np.cumsum(hist)
        m0 = np.cumsum(hist * levels)
        n, mt = w0[-1], m0[-1]
        w1 = n - w0
        with np.errstate(invalid="ignore", divide="ignore"):
            between = (mt * w0 / n - m0) ** 2 / (w0 * w1)
        between[~np.isfinite(between)] = -1
        k = int(np.argmax(between))
        off, on = m0[k] / w0[k], (mt - m0[k]) / w1[k]
        if w0[k] >= 0.02 * n and w1[k] >= 0.02 * n and on - off > 3 * math.sqrt(max(on, 1.0)):
            threshold = float(levels[k]) + 0.5
            return threshold, (f"from the data: Otsu's split of the trace between its OFF level ({off:.1f}) and ON "
                               f"level ({on:.1f}) counts per bin")
    return float(paper_counts), "the paper's 400 counts per 100 ms, scaled to the bin (the trace is not bimodal)"

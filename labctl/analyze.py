"""``labctl analyze``: the live accumulators and fits over a Photon-HDF5 file, in chunks.

One pass over the file with bounded memory (``chunk_photons`` photons at a
time), any valid Photon-HDF5 file with two or more detectors (nanotimes
optional: without them the lifetime, fit and FLID are left out).  The JSON
written by ``--json`` is a public contract (README, "labctl analyze").
"""

from __future__ import annotations

import importlib
import json
import math
import queue
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from labctl.analysis import FlidAccumulator, G2Accumulator, IntensityTrace, LifetimeAccumulator
from labctl.errors import ConfigError
from labctl.storage import PhotonHDF5Reader

PAPER_ON_THRESHOLD_PER_100MS = 400
"""The paper's ON selection: more than 400 counts per 100 ms (both SPADs)."""

MAX_HISTOGRAM_BINS = 10_000_000
"""Most bins of one g(2) histogram or one intensity trace (80 MB of int64 counts each)."""


@dataclass(frozen=True)
class AnalyzeOptions:
    """Options of ``labctl analyze`` (units in the names)."""

    detectors: tuple[int, int] | None = None
    g2_bin_ps: int = 1000
    g2_range_ps: int = 3_500_000
    lifetime_bin_ps: int = 100
    trace_bin_ms: float = 10.0
    fit: str = "mono"
    on_threshold: float | None = None
    chunk_photons: int = 1 << 20  # 13 MB of photons: the kernels work in cache (4x larger measured 15 % slower)

    def threshold_counts(self) -> float:
        """ON threshold in counts per trace bin (default: the paper's 400 per 100 ms, scaled)."""
        if self.on_threshold is not None:
            return float(self.on_threshold)
        return PAPER_ON_THRESHOLD_PER_100MS * self.trace_bin_ms / 100.0


class _BackgroundImport:
    """Import a module on a thread while this one streams the file.

    The fit needs scipy.optimize, ~0.3 s of imports (measured); the streaming loop
    spends most of its time in numba kernels and numpy calls that release the GIL,
    so the import runs beside it on the second core.  While any such import runs
    the GIL switch interval is cut to 0.5 ms, so that the streaming thread gets the
    GIL back promptly after each kernel.  An import error is left to the ordinary
    import that follows ``join``.
    """

    _lock = threading.Lock()
    _running = 0  # imports in flight (analyze_file may run in several threads)
    _saved_interval_s = 0.005

    def __init__(self, module: str) -> None:
        self.module = module
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None or self.module in sys.modules:
            return
        with _BackgroundImport._lock:
            if _BackgroundImport._running == 0:
                _BackgroundImport._saved_interval_s = sys.getswitchinterval()
                sys.setswitchinterval(min(_BackgroundImport._saved_interval_s, 0.0005))
            _BackgroundImport._running += 1
        self._thread = threading.Thread(target=self._run, name=f"import {self.module}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            importlib.import_module(self.module)
        except BaseException:  # noqa: BLE001 - the import after join() raises it where it belongs
            pass

    def join(self) -> None:
        if self._thread is None:
            return
        self._thread.join()
        self._thread = None
        with _BackgroundImport._lock:
            _BackgroundImport._running -= 1
            if _BackgroundImport._running == 0:
                sys.setswitchinterval(_BackgroundImport._saved_interval_s)


class _OnThread:
    """Feed one accumulator on its own thread, blocks in order (a bounded queue of two).

    Its kernels release the GIL, so it runs beside the others on a second core; the
    results are the same (one thread, same blocks, same order).  An exception in
    ``update`` is raised again by the next ``update`` or by ``close``.
    """

    def __init__(self, accumulator: Any) -> None:
        self.accumulator = accumulator
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"analyze {type(accumulator).__name__}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (block := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self.accumulator.update(block)
                except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
                    self._error = exc

    def update(self, block: Any) -> None:
        if self._error is not None:
            self.close()
        self._queue.put(block)

    def close(self) -> None:
        """Wait until every block is in; raise the accumulator's error, if any."""
        self.stop()
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        """End the thread once the queued blocks are in (never raises)."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


def analyze_file(path: str | Path, options: AnalyzeOptions = AnalyzeOptions()) -> dict[str, Any]:
    """Run g(2), lifetime (+ fit), intensity trace and FLID over ``path``; return the JSON-ready result."""
    if options.fit not in ("mono", "bi"):
        raise ConfigError("--fit", options.fit, "must be one of 'mono', 'bi'")
    warnings = check_options(path, options)
    fit_module = _BackgroundImport("labctl.analysis.fit")
    try:
        result, lifetime, flid, period_ps = _accumulate(path, options, fit_module)
    finally:
        fit_module.join()
    result["warnings"] = warnings
    from labctl.analysis.fit import estimate_irf_offset_ps, fit_decay

    if lifetime is not None and flid is not None:
        lt = lifetime.snapshot()
        offset_ps = estimate_irf_offset_ps(lt.summed, lt.bin_edges_ps) if lt.summed.sum() else 0
        fit_result: dict[str, Any] | None = None
        try:
            fit = fit_decay(lt.summed, lt.bin_edges_ps, model=options.fit, period_ps=period_ps)
            fit_result = fit.as_dict()
        except ValueError as exc:  # too few photons etc.: report, do not fail the whole analysis
            fit_result = {"model": options.fit, "error": str(exc), "tau_ns": [], "tau_err_ns": [], "fractions": []}
        result["lifetime"] = {
            "bin_edges_ps": lt.bin_edges_ps.tolist(),
            "counts": lt.summed.tolist(),
            "detector_counts": lt.counts.tolist(),
            "irf_offset_ps": int(offset_ps),
            "fit": fit_result,
        }
        fl = flid.snapshot()
        # FLID accumulated with offset 0; the mean (nanotime - offset) is the mean minus the offset.
        mean_ns = fl.mean_lifetime_ns - offset_ps * 1e-3
        ok = np.isfinite(mean_ns)
        hist, _, _ = np.histogram2d(fl.intensity[ok], mean_ns[ok], bins=(fl.intensity_edges, fl.lifetime_edges_ns))
        result["flid"] = {
            "intensity_edges": fl.intensity_edges.tolist(),
            "lifetime_edges_ns": fl.lifetime_edges_ns.tolist(),
            "counts": hist.astype(np.int64).tolist(),
            "nanotime_offset_ps": int(offset_ps),
            "mean_lifetime_ns": [_finite(x) for x in mean_ns.tolist()],
        }
    return result


def check_options(path: str | Path, options: AnalyzeOptions) -> list[str]:
    """Refuse options that cannot work before any photon is read: non-finite or non-positive values,
    histograms of more than ``MAX_HISTOGRAM_BINS`` bins (the trace's count needs the file's time span).
    Return the file's warnings (``PhotonHDF5Reader.warnings``: unequal photon datasets, truncation).

    Raises:
        ConfigError: names the option, its value and what is allowed (with the number of bins).
    """
    for option, value in (("--g2-bin-ps", options.g2_bin_ps), ("--g2-range-ps", options.g2_range_ps),
                          ("--lifetime-bin-ps", options.lifetime_bin_ps)):
        if value < 1:
            raise ConfigError(option, value, "must be a whole number of ps >= 1")
    g2_bins = 2 * (options.g2_range_ps // options.g2_bin_ps)
    if g2_bins > MAX_HISTOGRAM_BINS:
        raise ConfigError("--g2-range-ps", options.g2_range_ps,
                          f"with --g2-bin-ps {options.g2_bin_ps} that is {g2_bins:,} bins of g(2); at most "
                          f"{MAX_HISTOGRAM_BINS:,} fit in memory (narrow the range or widen the bins)")
    if not (math.isfinite(options.trace_bin_ms) and options.trace_bin_ms > 0):
        raise ConfigError("--trace-bin-ms", options.trace_bin_ms, "must be a finite number of ms > 0")
    if options.on_threshold is not None and not (math.isfinite(options.on_threshold) and options.on_threshold >= 0):
        raise ConfigError("--on-threshold", options.on_threshold, "must be a finite number of counts >= 0")
    with PhotonHDF5Reader(path) as reader:
        ends = reader.first_last_ps()
        span_s = max(reader.acquisition_duration_s or 0.0, (ends[1] - ends[0]) * 1e-12 if ends else 0.0)
        warnings = reader.warnings()
    trace_bins = math.ceil(span_s * 1e3 / options.trace_bin_ms)
    if trace_bins > MAX_HISTOGRAM_BINS:
        raise ConfigError("--trace-bin-ms", options.trace_bin_ms,
                          f"over the {span_s:.6g} s of {path} that is {trace_bins:,} bins of the intensity trace; "
                          f"at most {MAX_HISTOGRAM_BINS:,} fit in memory (widen the bins)")
    return warnings


def _accumulate(path: str | Path, options: AnalyzeOptions, fit_module: _BackgroundImport
                ) -> tuple[dict[str, Any], Any, Any, int | None]:
    """One pass over the file: (result with rates, g2 and trace; lifetime and FLID accumulators or None;
    laser period in ps or None)."""
    with PhotonHDF5Reader(path) as reader:
        ids = reader.detector_ids
        detectors = options.detectors or (tuple(ids[:2]) if len(ids) >= 2 else None)
        if detectors is None:
            raise ConfigError("--detectors", list(ids), f"{path} has {len(ids)} detector(s); g(2) needs two")
        for det in detectors:
            if det not in ids:
                raise ConfigError("--detectors", list(detectors), f"must be detectors of {path}: {list(ids)}")
        rate_hz = reader.laser_repetition_rate_hz
        period_ps = int(round(1e12 / rate_hz)) if rate_hz else None
        has_nanotimes = reader.nanotimes_unit_s is not None and period_ps is not None
        g2 = G2Accumulator(detectors[0], detectors[1], bin_width_ps=options.g2_bin_ps,
                           range_ps=options.g2_range_ps, period_ps=period_ps or 0)
        g2_thread = _OnThread(g2)  # the largest share of the work
        accumulators: list[Any] = [g2_thread]
        lifetime = flid = trace = None
        if has_nanotimes:  # the FLID bins the photons by time anyway: the trace comes from its bins
            lifetime = LifetimeAccumulator(list(detectors), bin_width_ps=options.lifetime_bin_ps, period_ps=period_ps)
            flid = FlidAccumulator(list(detectors), bin_ms=options.trace_bin_ms, nanotime_offset_ps=0)
            accumulators += [lifetime, flid]
        else:
            trace = IntensityTrace(list(detectors), bin_ms=options.trace_bin_ms)
            accumulators.append(trace)
        try:
            first_ps = last_ps = None
            counts = {int(d): 0 for d in detectors}
            for block in reader.iter_blocks(options.chunk_photons):
                if not len(block):
                    continue
                n_a = int(np.count_nonzero(block.detectors == detectors[0]))
                n_b = int(np.count_nonzero(block.detectors == detectors[1]))
                if n_a + n_b < len(block):  # other detectors in the file: leave them out (a pass only then)
                    keep = (block.detectors == detectors[0]) | (block.detectors == detectors[1])
                    block.timestamps, block.detectors, block.nanotimes = (
                        block.timestamps[keep], block.detectors[keep], block.nanotimes[keep])
                    if not len(block):
                        continue
                first_ps = int(block.timestamps[0]) if first_ps is None else first_ps
                last_ps = int(block.timestamps[-1])
                counts[int(detectors[0])] += n_a
                counts[int(detectors[1])] += n_b
                for acc in accumulators:
                    acc.update(block)
                fit_module.start()  # after the first block: the kernels are loaded, the loop is mostly GIL-free
            g2_thread.close()
        finally:
            g2_thread.stop()
        for acc in (g2, *accumulators[1:]):
            acc.finalize()
        duration_s = reader.acquisition_duration_s or (
            (last_ps - first_ps) * 1e-12 if first_ps is not None and last_ps is not None else 0.0)

    result: dict[str, Any] = {
        "file": str(path),
        "duration_s": duration_s,
        "rates_cps": {str(d): (n / duration_s if duration_s else 0.0) for d, n in counts.items()},
        "photons": {str(d): n for d, n in counts.items()},
    }
    g = g2.snapshot()
    result["g2"] = {
        "detectors": [int(detectors[0]), int(detectors[1])],
        "lag_edges_ps": g.lag_edges_ps.tolist(),
        "counts": g.counts.tolist(),
        "g2_zero": _finite(g.g2_zero),
        "g2_zero_err": _finite(g.g2_zero_err),
        "period_ps": period_ps,
    }
    t = trace.snapshot() if trace is not None else flid.trace_snapshot()
    total = t.total[: t.n_complete_bins] if t.n_complete_bins else t.total
    threshold = options.threshold_counts()
    result["trace"] = {
        "bin_ms": options.trace_bin_ms,
        "counts": np.asarray(total).tolist(),
        "detector_counts": np.asarray(t.counts).T.tolist(),
        "on_threshold": threshold,
        "on_fraction": float(np.mean(np.asarray(total) > threshold)) if len(total) else None,
    }
    return result, lifetime, flid, period_ps


def format_result(result: dict[str, Any]) -> str:
    """The text ``labctl analyze`` prints."""
    lines = [f"file        {result['file']}", f"duration    {result['duration_s']:.3f} s"]
    for det, rate in result["rates_cps"].items():
        lines.append(f"detector {det:>2}  {result['photons'][det]:>10,d} photons  {rate:>12,.1f} counts/s")
    g2 = result["g2"]
    if g2["g2_zero"] is not None:
        lines.append(f"g2(0)       {g2['g2_zero']:.4f} ± {g2['g2_zero_err']:.4f}  (centre / mean side peak, "
                     f"detectors {g2['detectors'][0]} x {g2['detectors'][1]})")
    else:
        lines.append("g2(0)       - (no laser period in the file, or no side-peak pairs)")
    lifetime = result.get("lifetime")
    if lifetime is not None:
        fit = lifetime["fit"]
        if fit.get("error"):
            lines.append(f"lifetime    fit failed: {fit['error']}")
        else:
            taus = ", ".join("- ns" if t is None else f"{t:.2f} ± {e:.2f} ns" if e is not None else f"{t:.2f} ns"
                             for t, e in zip(fit["tau_ns"], fit["tau_err_ns"]))
            fractions = ", ".join("-" if f is None else f"{f:.3f}" for f in fit["fractions"])  # None: not finite
            lines.append(f"lifetime    {fit['model']}: {taus}  (amplitude fractions {fractions})")
    else:
        lines.append("lifetime    - (no nanotimes in the file)")
    trace = result["trace"]
    if trace["on_fraction"] is not None:
        lines.append(f"ON fraction {trace['on_fraction']:.3f}  (> {trace['on_threshold']:g} counts per {trace['bin_ms']:g} ms bin)")
    return "\n".join(lines)


PLOT_NAMES = ("g2.png", "trace.png", "lifetime.png", "flid.png")
"""The files ``write_plots`` makes in its folder."""


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
    edges = np.asarray(g2["lag_edges_ps"]) * 1e-3
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.stairs(g2["counts"], edges)
    ax.set(xlabel="lag t_B - t_A (ns)", ylabel="pairs per bin",
           title=f"g(2)(0) = {g2['g2_zero']:.3f} ± {g2['g2_zero_err']:.3f}" if g2["g2_zero"] is not None else "g(2)")
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
               title=(f"{fit['model']} fit: " + ", ".join(f"{t:.1f} ns" for t in fit["tau_ns"])) if fit["tau_ns"] else "decay")
        save(fig, "lifetime.png")
        flid = result["flid"]
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.pcolormesh(flid["lifetime_edges_ns"], flid["intensity_edges"], np.asarray(flid["counts"]), cmap="viridis")
        ax.set(xlabel="mean lifetime (ns)", ylabel=f"counts per {trace['bin_ms']:g} ms", title="FLID")
        save(fig, "flid.png")
    return written


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def result_json(result: dict[str, Any]) -> str:
    """The ``--json`` text of a result."""
    return json.dumps(result, allow_nan=False)


def dump_json(result: dict[str, Any], path: str | Path) -> None:
    Path(path).write_text(result_json(result))


def parse_detectors(values: Sequence[int] | None) -> tuple[int, int] | None:
    if values is None:
        return None
    if len(values) != 2 or values[0] == values[1]:
        raise ConfigError("--detectors", list(values), "must be two different detector ids A B")
    return int(values[0]), int(values[1])

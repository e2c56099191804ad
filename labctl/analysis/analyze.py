"""``labctl analyze``: the live accumulators and fits over a Photon-HDF5 file, in chunks.

One pass over the file with bounded memory (``chunk_photons`` photons at a
time), any valid Photon-HDF5 file (nanotimes optional: without them the
lifetime, fit and FLID are left out; one detector: no g(2)).  T3 files, whose
timestamps are laser-sync ticks, are read with photon time = sync time +
nanotime.  What the data cannot tell is said, not guessed: the g(2) zero-delay
peak's position (``labctl.analysis.g2_comb``), the period's and duration's
sources, the photons each view leaves out (``warnings``).  The JSON written by
``--json`` is a public contract (README, "labctl analyze").
"""

from __future__ import annotations

import importlib
import itertools
import json
import math
import queue
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from labctl.analysis import FlidAccumulator, G2Accumulator, IntensityTrace, LifetimeAccumulator
from labctl.analysis.analyze_parts import (
    duration_choice,
    g2_result,
    lifetime_bin_ps,
    lifetime_result,
    on_threshold_from_trace,
    period_from_first_block,
    t3_photon_times,
)
from labctl.analysis.fit_process import FitProcess, fit_histograms
from labctl.analysis.report import format_result, write_plots
from labctl.blocks import PhotonBlock
from labctl.errors import ConfigError
from labctl.analysis._kernels import channel_counts
from labctl.storage import PhotonHDF5Reader

__all__ = ["AnalyzeOptions", "analyze_file", "check_options", "format_result", "write_plots", "dump_json", "parse_detectors"]

PAPER_ON_THRESHOLD_PER_100MS = 400
"""The paper's ON selection: more than 400 counts per 100 ms (both SPADs)."""

MAX_HISTOGRAM_BINS = 10_000_000
"""Most bins of one g(2) histogram or one intensity trace (80 MB of int64 counts each)."""


@dataclass(frozen=True)
class AnalyzeOptions:
    """Options of ``labctl analyze`` (units in the names)."""

    detectors: tuple[int, ...] | None = None  # one (no g2) or two (A, B)
    g2_bin_ps: int = 1000
    g2_range_ps: int = 3_500_000
    lifetime_bin_ps: int = 100
    trace_bin_ms: float = 10.0
    fit: str = "mono"
    on_threshold: float | None = None
    g2_delay_ps: int | None = None  # lag = t_B - t_A - delay; None: find the zero-delay peak
    laser_period_ps: int | None = None  # overrides the file's / the sync stream's / the comb's period
    per_detector_fits: bool = False  # also fit each detector's decay on its own
    chunk_photons: int = 1 << 20  # 13 MB of photons: the kernels work in cache (4x larger measured 15 % slower)

    def threshold_counts(self) -> float:
        """ON threshold in counts per trace bin: ``on_threshold``, else the paper's 400 per 100 ms, scaled
        (``analyze_file``'s default derives it from the trace instead when the trace is bimodal)."""
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


def prefetched(items: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """``items``, produced on a thread of its own up to ``depth`` ahead, in order.

    Reading the file (h5py) and the T3 sort are calls that mostly release the GIL:
    on a thread they run beside the main thread's Python (loading the numba kernels,
    importing the fit) instead of after it.  An exception of the producer is raised
    here at its place in the sequence; leaving early stops the producer.
    """
    slots: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    leaving = threading.Event()

    def put(kind: str, item: Any) -> bool:
        while not leaving.is_set():
            try:
                slots.put((kind, item), timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put("item", item):
                    return
            put("end", None)
        except BaseException as exc:  # noqa: BLE001 - raised again in the consumer's thread
            put("error", exc)

    thread = threading.Thread(target=produce, name="analyze reader", daemon=True)
    thread.start()
    try:
        while True:
            kind, item = slots.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        leaving.set()
        thread.join()


def check_options(options: AnalyzeOptions) -> None:
    """Refuse options no file could satisfy, before any file is read: unknown fit, non-finite or
    non-positive values, a g(2) of more than ``MAX_HISTOGRAM_BINS`` bins.

    Raises:
        ConfigError: names the option, its value and what is allowed (with the number of bins).
    """
    if options.fit not in ("mono", "bi"):
        raise ConfigError("--fit", options.fit, "must be one of 'mono', 'bi'")
    if options.laser_period_ps is not None and not options.laser_period_ps > 0:
        raise ConfigError("--laser-period-ps", options.laser_period_ps, "must be a period > 0 (ps)")
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


def analyze_file(path: str | Path, options: AnalyzeOptions = AnalyzeOptions(), *,
                 fit_process: FitProcess | None = None) -> dict[str, Any]:
    """Run g(2), lifetime (+ fit), intensity trace and FLID over ``path``; return the JSON-ready result.

    ``fit_process``: a worker process, started by the caller as early as it can (``FitProcess()``),
    that fits the decays: scipy's imports (~0.5 s of GIL-holding imports, measured) then run on the
    other core while this process imports numba and reads the file.  The result is the same; a
    worker that fails leaves the fits to this process; the caller closes it.  None (default): the
    fit code is imported on a thread here, which is better where it stays loaded for many files
    (a batch).
    """
    check_options(options)
    warnings = check_file_options(path, options)
    fit_module = _BackgroundImport("labctl.analysis.fit") if fit_process is None else None
    try:
        result, acc = _accumulate(path, options, fit_module)
    finally:
        if fit_module is not None:
            fit_module.join()
    if acc["lifetime"] is not None:
        result["lifetime"], result["flid"] = lifetime_result(
            acc["lifetime"], acc["flid"], acc["period_ps"], options, acc["outside_period"], result["warnings"],
            fitter=fit_histograms if fit_process is None else fit_process.fit)
        result["lifetime"]["bin_width_ps"] = acc["lifetime"].bin_width_ps
        result["lifetime"]["bin_width_source"] = acc["bin_source"]
    result["warnings"] = warnings + result["warnings"]
    return result


def check_file_options(path: str | Path, options: AnalyzeOptions) -> list[str]:
    """Refuse a trace of more than ``MAX_HISTOGRAM_BINS`` bins over ``path``'s time span; return the
    file's warnings (``PhotonHDF5Reader.warnings``: unequal photon datasets, truncation).

    Raises:
        ConfigError: names the option, its value and the number of bins it would make.
    """
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


def _accumulate(path: str | Path, options: AnalyzeOptions, fit_module: _BackgroundImport | None
                ) -> tuple[dict[str, Any], dict[str, Any]]:
    """One pass over the file: (result with rates, g2 and trace; the lifetime/FLID accumulators and counts);
    ``fit_module`` (if any) is started after the first block."""
    warnings: list[str] = []
    with PhotonHDF5Reader(path) as reader:
        ids = reader.detector_ids
        detectors = tuple(options.detectors) if options.detectors else tuple(ids[:2])
        if not detectors:
            raise ConfigError("--detectors", list(ids), f"{path} has no detectors with photons")
        for det in detectors:
            if det not in ids:
                raise ConfigError("--detectors", list(detectors), f"must be detectors of {path}: {list(ids)}")
        blocks = reader.iter_blocks(options.chunk_photons)
        first_block = next(blocks, None)
        nanotime_unit_s = reader.nanotimes_unit_s
        period_ps, period_source, t3 = period_from_first_block(
            options.laser_period_ps, reader.laser_repetition_rate_hz, first_block, nanotime_unit_s is not None,
            reader.timestamps_unit_s * 1e12, reader.is_labctl_file)
        has_nanotimes = nanotime_unit_s is not None and period_ps is not None
        if nanotime_unit_s is not None and period_ps is None:
            warnings.append("lifetime: the file has nanotimes but no laser period (none in the file, none found "
                            "in the sync stream): lifetime, fit and FLID left out; give --laser-period-ps")
        g2 = None
        views: list[Any] = []  # each fed on a thread of its own: their kernels release the GIL
        if len(detectors) == 2:
            g2 = G2Accumulator(detectors[0], detectors[1], bin_width_ps=options.g2_bin_ps,
                               range_ps=options.g2_range_ps, period_ps=period_ps or 0,
                               delay_ps=options.g2_delay_ps or 0)
            views.append(g2)
        lifetime = flid = trace = None
        if has_nanotimes:  # the FLID bins the photons by time anyway: the trace comes from its bins
            bin_ps, bin_source = lifetime_bin_ps(options.lifetime_bin_ps, nanotime_unit_s)
            lifetime = LifetimeAccumulator(list(detectors), bin_width_ps=bin_ps, period_ps=period_ps)
            flid = FlidAccumulator(list(detectors), bin_ms=options.trace_bin_ms, nanotime_offset_ps=0)
            views += [lifetime, flid]
        else:
            trace = IntensityTrace(list(detectors), bin_ms=options.trace_bin_ms)
            views.append(trace)
        stream: Any = itertools.chain([first_block] if first_block is not None else [], blocks)
        if t3:
            stream = t3_photon_times(stream)
        stream = prefetched(stream)
        wanted = np.zeros(256, bool)
        wanted[list(detectors)] = True
        outside = np.zeros(len(detectors), np.int64)  # nanotime >= period, per detector
        threads: list[_OnThread] = []
        try:
            threads = [_OnThread(view) for view in views]
            first_ps = last_ps = None
            counts = {int(d): 0 for d in detectors}
            n_other = 0
            for block in stream:
                if not len(block):
                    continue
                first_ps = int(block.timestamps[0]) if first_ps is None else first_ps
                last_ps = int(block.timestamps[-1])
                per_det = channel_counts(block.detectors)  # numba: 4x np.bincount's speed on uint8
                n_keep = int(per_det[wanted].sum())
                if n_keep < len(block):  # other detectors in the file: leave them out (a pass only then)
                    n_other += len(block) - n_keep
                    keep = wanted[block.detectors]
                    block = PhotonBlock(block.timestamps[keep], block.detectors[keep], block.nanotimes[keep])
                    if not len(block):
                        continue
                for d in detectors:
                    counts[int(d)] += int(per_det[d])
                if has_nanotimes:
                    over = block.detectors[block.nanotimes >= period_ps]
                    if over.size:
                        outside += np.bincount(over, minlength=256)[list(detectors)]
                for thread in threads:
                    thread.update(block)
                if fit_module is not None:  # after the first block: the kernels are loaded, the loop is mostly GIL-free
                    fit_module.start()
            for thread in threads:
                thread.close()
        finally:
            for thread in threads:
                thread.stop()
        for view in views:
            view.finalize()
        duration_s, duration_source = duration_choice(reader.acquisition_duration_s, first_ps, last_ps, warnings)

    result: dict[str, Any] = {
        "file": str(path),
        "duration_s": duration_s,
        "duration_source": duration_source,
        "rates_cps": {str(d): (n / duration_s if duration_s else 0.0) for d, n in counts.items()},
        "photons": {str(d): n for d, n in counts.items()},
        "detectors": [int(d) for d in detectors],
        "photon_time": "sync timestamp + nanotime (T3 file: timestamps in laser-sync ticks)" if t3 else "timestamp",
        "left_out": {"other_detectors": n_other},
        "warnings": warnings,
    }
    if g2 is not None:
        result["g2"] = g2_result(g2.snapshot(), options, period_ps, period_source, warnings)
    else:
        result["g2"] = None
        result["g2_note"] = (f"one detector ({detectors[0]}): g(2) needs two (HBT); lifetime, trace and FLID "
                             "are of this detector alone")
    t = trace.snapshot() if trace is not None else flid.trace_snapshot()
    total = np.asarray(t.total[: t.n_complete_bins] if t.n_complete_bins else t.total)
    if options.on_threshold is not None:
        threshold, source = float(options.on_threshold), "given (--on-threshold)"
    else:
        threshold, source = on_threshold_from_trace(total, options.threshold_counts())
    result["trace"] = {
        "bin_ms": options.trace_bin_ms,
        "counts": total.tolist(),
        "detector_counts": np.asarray(t.counts).T.tolist(),
        "on_threshold": threshold,
        "on_threshold_source": source,
        "on_fraction": float(np.mean(total > threshold)) if len(total) else None,
    }
    acc = {"lifetime": lifetime, "flid": flid, "period_ps": period_ps, "bin_source": bin_source if has_nanotimes else None,
           "outside_period": {int(d): int(n) for d, n in zip(detectors, outside)}}
    return result, acc


PLOT_NAMES = ("g2.png", "trace.png", "lifetime.png", "flid.png")
"""The files ``write_plots`` makes in its folder."""


def result_json(result: dict[str, Any]) -> str:
    """The ``--json`` text of a result."""
    return json.dumps(result, allow_nan=False)


def dump_json(result: dict[str, Any], path: str | Path) -> None:
    Path(path).write_text(result_json(result))


def parse_detectors(values: Sequence[int] | None) -> tuple[int, ...] | None:
    """``--detectors``: one id A (lifetime, trace, FLID; no g2) or two different ids A B."""
    if values is None:
        return None
    if len(values) not in (1, 2) or len(set(values)) != len(values):
        raise ConfigError("--detectors", list(values), "must be one detector id A, or two different ids A B")
    return tuple(int(v) for v in values)

"""The commands that read files: ``info``, ``analyze``, ``report``, ``import``, ``repair``."""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from labctl.errors import LabctlError

if TYPE_CHECKING:
    from labctl.analysis.fit_process import FitProcess


_INPUT_ERRORS = (OSError, ValueError, KeyError, RuntimeError, TypeError, IndexError, MemoryError, ArithmeticError)
"""What h5py and numpy raise on a file damaged in a way no check foresaw."""


def _one_line_on_damage(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A command reading ``args.file`` (or ``args.files``): an unforeseen error from a damaged file is one line, exit 2
    (labctl's own errors are left to ``main``; the traceback goes to the debug log)."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except LabctlError:
            raise
        except _INPUT_ERRORS as exc:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            files = getattr(args, "files", None) or [args.file]
            where = files[0] if len(files) == 1 else f"{len(files)} files"
            print(f"labctl {args.command}: {where}: {text}", file=sys.stderr)
            logging.getLogger("labctl.cli").debug("labctl %s %s", args.command, files, exc_info=True)
            return 2

    return run


@_one_line_on_damage
def cmd_info(args: argparse.Namespace) -> int:
    from labctl.storage import describe_file

    print(describe_file(args.file))
    return 0


@_one_line_on_damage
def cmd_analyze(args: argparse.Namespace) -> int:
    if len(args.files) != 1:
        return _analyze(args, None)
    from labctl.analysis.fit_process import fit_process_if_useful
    from labctl.analysis.numba_start import start_numba_without_scipy_blas

    fits = fit_process_if_useful()  # first thing: the worker imports scipy while this process imports numba, reads
    try:
        start_numba_without_scipy_blas()  # before any thread of the analysis: labctl's kernels need no BLAS
        return _analyze(args, fits)
    finally:
        if fits is not None:
            fits.close()


def _analyze(args: argparse.Namespace, fits: FitProcess | None) -> int:
    """``labctl analyze``; one file's decays fitted by ``fits`` (a ``FitProcess``; None: in this process)."""
    from labctl.analysis.analyze import (AnalyzeOptions, PLOT_NAMES, analyze_file, format_result, parse_detectors,
                                result_json, write_plots)
    from labctl.storage.outputs import check_output_file, check_output_folder, write_text_atomic

    inputs = [("FILE", path) for path in args.files]
    if len(args.files) == 1 and args.json is not None:  # checked before the (long) analysis; never onto the input
        check_output_file("--json", args.json, inputs=inputs)
    if args.plots is not None:
        check_output_folder("--plots", args.plots, inputs=inputs, file_names=PLOT_NAMES)
    options = AnalyzeOptions(
        detectors=parse_detectors(args.detectors), g2_bin_ps=args.g2_bin_ps, g2_range_ps=args.g2_range_ps,
        lifetime_bin_ps=args.lifetime_bin_ps, trace_bin_ms=args.trace_bin_ms, fit=args.fit,
        on_threshold=args.on_threshold, g2_delay_ps=args.g2_delay_ps, laser_period_ps=args.laser_period_ps,
        per_detector_fits=args.per_detector_fits,
    )
    if len(args.files) > 1:
        return 2 if _refuse_repeated("analyze", args.files) else _analyze_batch(args, options)
    if args.scheduler is not None or args.workers is not None:
        print("labctl analyze: one file runs here, as a single run: --scheduler/--workers not used "
              "(they apply to several files)", file=sys.stderr)
    try:
        result = analyze_file(args.files[0], options, fit_process=fits)
    except ValueError as exc:  # bad binning arguments from the accumulators
        print(f"labctl analyze: {exc}", file=sys.stderr)
        return 2
    for warning in result.get("warnings", []):
        print(f"labctl analyze: warning: {warning}", file=sys.stderr)
    print(format_result(result))
    if args.json is not None:
        write_text_atomic(args.json, result_json(result))
    if args.plots is not None:
        for path in write_plots(result, args.plots):
            print(f"plot        {path}")
    return 0


def _refuse_repeated(command: str, files: list[Path]) -> bool:
    """One line and True if a file is given twice (its results would be made twice, under two names)."""
    seen: dict[Path, Path] = {}
    for path in files:
        key = path.resolve()
        if key in seen:
            print(f"labctl {command}: FILE = {path}: given twice (also as {seen[key]}); give each file once",
                  file=sys.stderr)
            return True
        seen[key] = path
    return False


def cmd_report(args: argparse.Namespace) -> int:
    from labctl.analysis.fig4 import ReportOptions, parse_regimes, report_file, write_report
    from labctl.storage.outputs import check_output_folder

    if _refuse_repeated("report", args.files):
        return 2

    regimes = parse_regimes(args.regimes) if args.regimes is not None else None
    options = ReportOptions(bin_ms=args.bin_ms, on_threshold=args.on_threshold, regimes_ns=regimes)
    missing = [str(f) for f in args.files if not f.is_file()]
    if missing:
        print(f"labctl report: FILE = {missing[0]}: no such file", file=sys.stderr)
        return 2
    check_output_folder("--out", args.out, inputs=[("FILE", f) for f in args.files],
                        file_names=("report.json", "report.html"))
    if len(args.files) == 1:
        try:
            result = report_file(args.files[0], options)
        except (OSError, ValueError) as exc:  # not an HDF5 file; bad binning (ConfigError: in main)
            if isinstance(exc, LabctlError):
                raise
            print(f"labctl report: {args.files[0]}: {exc}", file=sys.stderr)
            return 2
        write_report(result, args.out)
        print(f"report      {args.out / 'report.html'}")
        return 0
    try:
        from labctl.analysis.batch import run_reports  # type: ignore[import-not-found]
    except ImportError:
        print(f"labctl report: {len(args.files)} files: several files need labctl.analysis.batch (the Dask batch), which "
              "is not installed here; give one FILE", file=sys.stderr)
        return 2
    run_reports(list(args.files), args.out, options, scheduler=None)
    print(f"reports     {args.out}")
    return 0


def _analyze_batch(args: argparse.Namespace, options: object) -> int:
    """Several files: one Dask task per file; a line per file, the summary's paths; exit 1 if any failed."""
    from labctl.analysis.batch import run_batch

    if args.json is None:
        print("labctl analyze: several files need --json DIR (a folder: one JSON per file + summary.csv/.parquet)",
              file=sys.stderr)
        return 2
    if args.plots is not None and args.plots.exists() and not args.plots.is_dir():
        print(f"labctl analyze: --plots {args.plots}: with several files must name a folder (it is a file)",
              file=sys.stderr)
        return 2
    if args.workers is not None and args.workers < 1:
        print(f"labctl analyze: --workers {args.workers}: must be >= 1", file=sys.stderr)
        return 2
    table = run_batch("analyze", args.files, args.json, options, scheduler=args.scheduler,
                      n_workers=args.workers, plots_dir=args.plots, quiet=not args.verbose)
    for row in table.to_dict("records"):
        if row["error"] is not None:
            print(f"failed      {row['file']}: {row['error']}")
            continue
        g2 = "-" if row.get("g2_zero") is None or row["g2_zero"] != row["g2_zero"] else f"{row['g2_zero']:.3f}"
        tau = "-" if row.get("tau_ns") is None or row["tau_ns"] != row["tau_ns"] else f"{row['tau_ns']:.2f} ns"
        print(f"file        {row['file']}: {row['photons']} photons, g2(0) {g2}, tau {tau}, "
              f"ON {row['on_fraction']:.2f} -> {row['output']}")
    print(f"summary     {args.json / 'summary.csv'}, {args.json / 'summary.parquet'}")
    return 1 if table["error"].notna().any() else 0


def cmd_import(args: argparse.Namespace) -> int:
    from labctl.formats.common import FormatError
    from labctl.formats.importer import import_files
    from labctl.storage.outputs import check_output_file

    check_output_file("--out", args.out, inputs=[("IN", path) for path in args.inputs], overwrite=args.overwrite,
                      make_folders=True)
    try:
        result = import_files(list(args.inputs), args.out, fmt=args.format, sync_channel=args.sync_channel,
                              overwrite=args.overwrite)
    except FormatError as exc:
        print(f"labctl import: {exc}", file=sys.stderr)
        return 2
    per = ", ".join(f"ch{d} {n}" for d, n in result.counts.items()) or "none"
    print(f"format      {result.format_name}")
    print(f"photons     {result.photons} ({per})")
    sync = "none (no nanotimes)" if result.sync_channel is None else f"channel {result.sync_channel}"
    print(f"sync        {'in the records (T3: nanotimes from dtime)' if result.t3 else sync}")
    print(f"markers     {result.markers}")
    if result.overflow_records is not None:
        print(f"overflows   {result.overflow_records} records (not photons)")
    print(f"duration    {result.duration_s:.3f} s")
    for note in result.notes:
        print(f"note        {note}")
    print(f"file        {result.out}")
    return 0


@_one_line_on_damage
def cmd_repair(args: argparse.Namespace) -> int:
    from labctl.storage.repair import default_repair_path, format_report, repair_file

    out = args.out if args.out is not None else default_repair_path(args.file)
    report = repair_file(args.file, out, overwrite=args.overwrite)
    print(format_report(report))
    return 0

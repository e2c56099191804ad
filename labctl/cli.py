"""The ``labctl`` command line.

Commands (their options are a public contract, see README):

* ``labctl acquire --duration SECONDS --out FILE [--config FILE] [--seed N]``:
  record the station's photon stream to a Photon-HDF5 file, with a progress
  bar and a closing summary (rates per channel, photons written, losses, file size).
* ``labctl info FILE``: what a Photon-HDF5 file holds.
* ``labctl analyze FILE... [--detectors A [B]] [--g2-bin-ps N] [--g2-range-ps N]
  [--g2-delay-ps N] [--laser-period-ps N] [--lifetime-bin-ps N] [--trace-bin-ms X]
  [--fit mono|bi] [--per-detector-fits] [--on-threshold N] [--json OUT] [--plots DIR]
  [--scheduler ADDRESS] [--workers N]``: g(2), lifetime fit, blinking trace and FLID;
  several files: one Dask task per file (``labctl.batch``), ``--json`` a folder.
* ``labctl import IN... --out FILE.h5 [--format ptu|pt3|pt2|ht3|ht2|qutag|sstt]
  [--sync-channel N] [--overwrite]``: another lab's time-tag file -> Photon-HDF5.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from pathlib import Path
from typing import Sequence

from labctl import __version__
from labctl.errors import LabctlError
from labctl.formats.import_sources import FORMATS


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--duration {text!r}: must be a number of seconds > 0") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"--duration {text!r}: must be a number of seconds > 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labctl", description="Single-QD microscope control and acquisition.")
    parser.add_argument("--version", action="version", version=f"labctl {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log engine messages to stderr")
    commands = parser.add_subparsers(dest="command", required=True)

    acquire = commands.add_parser("acquire", help="record a run to a Photon-HDF5 file")
    acquire.add_argument("--duration", type=_positive_seconds, required=True, help="seconds of tagger time to record")
    acquire.add_argument("--out", type=Path, required=True, help="Photon-HDF5 file to write (must not exist)")
    acquire.add_argument("--config", type=Path, default=None, help="station YAML file (default: the built-in simulated microscope)")
    acquire.add_argument("--seed", type=int, default=None, help="seed of the simulated scene (overrides the station file)")
    acquire.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    acquire.add_argument("--no-progress", action="store_true", help="no progress bar")

    imp = commands.add_parser("import", help="convert PicoQuant, quTAG or SSTT time-tag files to Photon-HDF5")
    imp.add_argument("inputs", type=Path, nargs="+", metavar="IN", help="the recording (SSTT: info and/or .cN files)")
    imp.add_argument("--out", type=Path, required=True, help="Photon-HDF5 file to write")
    imp.add_argument("--format", choices=FORMATS, default=None,
                     help="input format (default: detected from the file)")
    imp.add_argument("--sync-channel", type=int, default=None, metavar="N",
                     help="T2 channel that carries the laser sync: photons get nanotimes from it")
    imp.add_argument("--overwrite", action="store_true", help="replace --out if it exists")

    info = commands.add_parser("info", help="print what a Photon-HDF5 file holds")
    info.add_argument("file", type=Path)

    analyze = commands.add_parser("analyze", help="g(2), lifetime fit, blinking trace and FLID of a Photon-HDF5 file")
    analyze.add_argument("files", type=Path, nargs="+", metavar="FILE",
                         help="Photon-HDF5 file(s); several: one Dask task per file, --json names a folder")
    analyze.add_argument("--detectors", type=int, nargs="+", metavar="A [B]",
                         help="detector ids; lag = t_B - t_A - delay; one id: lifetime, trace and FLID only (no g2)")
    analyze.add_argument("--g2-bin-ps", type=int, default=1000, help="g(2) bin width (ps)")
    analyze.add_argument("--g2-range-ps", type=int, default=3_500_000, help="g(2) lags from -range to +range (ps)")
    analyze.add_argument("--g2-delay-ps", type=int, default=None,
                         help="cable delay of B after A (ps): lag = t_B - t_A - N (default: find the zero-delay peak)")
    analyze.add_argument("--laser-period-ps", type=int, default=None,
                         help="laser pulse period (ps; default: from the file, the sync stream or the g2 comb)")
    analyze.add_argument("--lifetime-bin-ps", type=int, default=100, help="TCSPC bin width (ps)")
    analyze.add_argument("--trace-bin-ms", type=float, default=10.0, help="intensity-trace and FLID bin (ms)")
    analyze.add_argument("--fit", choices=("mono", "bi"), default="mono", help="decay model")
    analyze.add_argument("--per-detector-fits", action="store_true",
                         help="also fit each detector's decay on its own (JSON lifetime.detector_fits)")
    analyze.add_argument("--on-threshold", type=float, default=None,
                         help="ON threshold in counts per trace bin (default: 400 per 100 ms, scaled)")
    analyze.add_argument("--json", type=Path, default=None,
                         help="write the results as JSON (several files: a folder, FILE stem.json each + summary.csv/.parquet)")
    analyze.add_argument("--plots", type=Path, default=None,
                         help="write PNG figures into this folder (several files: a subfolder per file)")
    analyze.add_argument("--scheduler", default=None, metavar="ADDRESS",
                         help="several files: Dask scheduler address (default: a local cluster of processes)")
    analyze.add_argument("--workers", type=int, default=None, metavar="N",
                         help="several files: worker processes of the local cluster (default: min(files, CPUs))")

    gui = commands.add_parser("gui", help="the lab window: live views, recording (needs the 'gui' extra)")
    gui.add_argument("--config", type=Path, default=None, help="station YAML file (default: the built-in simulated microscope)")
    gui.add_argument("--screenshot", type=Path, default=None, help="start live, save a PNG of the window after --after seconds, exit")
    gui.add_argument("--after", type=_positive_seconds, default=3.0, help="seconds before the --screenshot (default 3)")
    return parser


def cmd_acquire(args: argparse.Namespace) -> int:
    from labctl.engine import AcquisitionEngine
    from labctl.station import Station, StationConfig
    from labctl.summary import format_progress, format_summary

    if args.out.exists() and not args.overwrite:
        print(f"labctl acquire: --out {args.out} already exists; choose another name or pass --overwrite", file=sys.stderr)
        return 2
    if args.out.exists():
        args.out.unlink()
    config = StationConfig.load(args.config).with_seed(args.seed)
    show_progress = not args.no_progress
    with Station(config) as station:
        from labctl.analysis import live_set

        live = live_set()
        engine = AcquisitionEngine(station, args.out, sinks=live, description=f"labctl acquire --duration {args.duration}")
        engine.start(args.duration)
        done = threading.Event()

        def progress() -> None:
            tty = sys.stderr.isatty()
            while not done.wait(0.25 if tty else 2.0):
                line = format_progress(engine.status(), args.duration, station.channels)
                print(("\r" + line) if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)

        ticker = threading.Thread(target=progress, daemon=True)
        if show_progress:
            ticker.start()
        try:
            summary = engine.wait()
        except KeyboardInterrupt:
            engine.stop("interrupted")
            summary = engine.wait()
        finally:
            done.set()
            if show_progress:
                ticker.join()
                print(file=sys.stderr)
    print(format_summary(summary, config.channels, origin_ps=summary.start_ps))
    print(format_live(live))
    if summary.losses:
        return 3
    return 0 if summary.clean else 1


def format_live(live: list) -> str:
    """The live views' numbers at the end of a run (g2(0), mean delay, trace)."""
    g2, lifetime, trace = live[0].snapshot(), live[1].snapshot(), live[2].snapshot()
    lines = []
    if g2.g2_zero is not None:
        lines.append(f"g2(0) live       {g2.g2_zero:.4f} ± {g2.g2_zero_err:.4f}")
    summed = lifetime.summed
    if summed.sum():
        centres = 0.5 * (lifetime.bin_edges_ps[:-1] + lifetime.bin_edges_ps[1:])
        lines.append(f"mean delay live  {float((summed * centres).sum() / summed.sum()) * 1e-3:.2f} ns after the laser pulse")
    if trace.n_complete_bins:
        total = trace.total[: trace.n_complete_bins]
        lines.append(f"trace live       {total.mean():.1f} counts per {trace.bin_ms:g} ms bin (max {total.max()})")
    return "\n".join(lines)


def cmd_info(args: argparse.Namespace) -> int:
    from labctl.storage import describe_file

    print(describe_file(args.file))
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from labctl.analyze import AnalyzeOptions, analyze_file, dump_json, format_result, parse_detectors, write_plots

    options = AnalyzeOptions(
        detectors=parse_detectors(args.detectors), g2_bin_ps=args.g2_bin_ps, g2_range_ps=args.g2_range_ps,
        lifetime_bin_ps=args.lifetime_bin_ps, trace_bin_ms=args.trace_bin_ms, fit=args.fit,
        on_threshold=args.on_threshold, g2_delay_ps=args.g2_delay_ps, laser_period_ps=args.laser_period_ps,
        per_detector_fits=args.per_detector_fits,
    )
    if len(args.files) > 1:
        return _analyze_batch(args, options)
    if args.scheduler is not None or args.workers is not None:
        print("labctl analyze: one file runs here, as a single run: --scheduler/--workers not used "
              "(they apply to several files)", file=sys.stderr)
    try:
        result = analyze_file(args.files[0], options)
    except ValueError as exc:  # bad binning arguments from the accumulators
        print(f"labctl analyze: {exc}", file=sys.stderr)
        return 2
    print(format_result(result))
    if args.json is not None:
        dump_json(result, args.json)
    if args.plots is not None:
        for path in write_plots(result, args.plots):
            print(f"plot        {path}")
    return 0


def _analyze_batch(args: argparse.Namespace, options: object) -> int:
    """Several files: one Dask task per file; a line per file, the summary's paths; exit 1 if any failed."""
    from labctl.batch import run_batch

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


def cmd_gui(args: argparse.Namespace) -> int:
    try:  # Qt only here: importing labctl.cli must not import PyQt6
        from gui.main_window import run_app
    except ImportError as exc:
        print(f"labctl gui: {exc}; install the GUI with: pip install 'labctl[gui]'", file=sys.stderr)
        return 2
    return run_app(args.config, screenshot=args.screenshot, after_s=args.after)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "acquire":
            return cmd_acquire(args)
        if args.command == "analyze":
            return cmd_analyze(args)
        if args.command == "gui":
            return cmd_gui(args)
        if args.command == "import":
            return cmd_import(args)
        return cmd_info(args)
    except LabctlError as exc:
        print(f"labctl {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"labctl {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

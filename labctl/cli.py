"""The ``labctl`` command line.

Commands (their options are a public contract, see README):

* ``labctl acquire --duration SECONDS --out FILE [--config FILE] [--seed N]``:
  record the station's photon stream to a Photon-HDF5 file, with a progress
  bar and a closing summary (rates per channel, photons written, losses, file size).
  With ``--replay FILE [--speed X]`` the station's tagger serves a recorded or
  imported file instead (:mod:`labctl.replay`).
* ``labctl info FILE``: what a Photon-HDF5 file holds.
* ``labctl analyze FILE [--detectors A [B]] [--g2-bin-ps N] [--g2-range-ps N]
  [--g2-delay-ps N] [--laser-period-ps N] [--lifetime-bin-ps N] [--trace-bin-ms X]
  [--fit mono|bi] [--per-detector-fits] [--on-threshold N] [--json OUT] [--plots DIR]``:
  g(2), lifetime fit, blinking trace and FLID.
* ``labctl report FILE... --out DIR [--on-threshold N] [--bin-ms X] [--regimes LO-HI,LO-HI,...]``:
  the paper's single-QD analysis (Fig. 4): DIR/report.json, report.html and PNGs; several
  files go to ``labctl.batch.run_reports`` (one sub-folder per file).
* ``labctl import IN... --out FILE.h5 [--format ptu|pt3|pt2|ht3|ht2|qutag|sstt]
  [--sync-channel N] [--overwrite]``: another lab's time-tag file -> Photon-HDF5.
* ``labctl repair FILE [--out FILE] [--overwrite]``: a crashed or truncated file's
  readable photons in a clean, valid Photon-HDF5 file, with a record of what was lost.
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from labctl import __version__
from labctl.errors import ConfigError, LabctlError
from labctl.formats.import_sources import FORMATS
from labctl.signals import EndOnSignals, end_reason, signal_name

if TYPE_CHECKING:
    from labctl.outputs import Recording
    from labctl.replay import ReplayFile
    from labctl.run import RunSummary
    from labctl.station import StationConfig


def positive_number(option: str, what: str) -> Callable[[str], float]:
    """An argparse type: a finite number > 0 for ``option`` (``what`` names it in the message)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not value > 0 or value == float("inf"):
            raise argparse.ArgumentTypeError(f"{option} {text!r}: must be {what} > 0")
        return value

    return parse


_positive_seconds = positive_number("--duration", "a number of seconds")
_positive_speed = positive_number("--speed", "a number")


def station_config(args: argparse.Namespace, command: str) -> tuple[StationConfig, ReplayFile | None]:
    """The station config of ``acquire``/``gui`` (a replay station with ``--replay``) and the ReplayFile or None."""
    from labctl.station import StationConfig

    if args.replay is None:
        if args.speed is not None:
            raise ConfigError("--speed", args.speed, "only with --replay FILE")
        config = StationConfig.load(args.config)
        return (config.with_seed(args.seed) if command == "acquire" else config), None
    if getattr(args, "seed", None) is not None:
        raise ConfigError("--seed", args.seed, "only without --replay (a replay's photons come from the file)")
    from labctl.replay import overload_note, replay_station_config, scan_replay_file

    replay = scan_replay_file(args.replay)
    for note in replay.notes:
        print(f"labctl {command}: replay: {note}", file=sys.stderr)
    base = StationConfig.load(args.config) if args.config is not None else None
    speed = 1.0 if args.speed is None else args.speed
    config = replay_station_config(replay, speed, base)
    overload = overload_note(replay, config, speed)
    if overload:
        print(f"labctl {command}: replay: {overload}", file=sys.stderr)
    return config, replay


COMMANDS_GROUP = "labctl.commands"
"""Entry-point group of commands that live outside labctl's core (the GUI's ``labctl gui``): each
names a module with ``add_parser(commands) -> ArgumentParser`` and ``run(args) -> int``."""


def plugin_commands() -> list[Any]:
    """The modules of the entry-point group ``labctl.commands`` that load (a broken one is logged and left out)."""
    from importlib.metadata import entry_points

    modules = []
    for entry in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        try:
            modules.append(entry.load())
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not take the core commands down
            logging.getLogger("labctl.cli").warning("command %s (%s) not loaded: %s", entry.name, entry.value, exc)
    return modules


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
    acquire.add_argument("--replay", type=Path, default=None,
                         help="replay this Photon-HDF5 file through a virtual time tagger instead of the station's")
    acquire.add_argument("--speed", type=_positive_speed, default=None,
                         help="with --replay: device time runs this many times faster than wall time (default 1)")

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
    analyze.add_argument("file", type=Path)
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
    analyze.add_argument("--json", type=Path, default=None, help="write the results as JSON")
    analyze.add_argument("--plots", type=Path, default=None, help="write PNG figures into this folder")

    repair = commands.add_parser("repair", help="copy what a crashed or truncated file still holds into a clean file")
    repair.add_argument("file", type=Path)
    repair.add_argument("--out", type=Path, default=None, help="the clean file (default: FILE with .repaired.h5)")
    repair.add_argument("--overwrite", action="store_true", help="replace --out if it exists (never FILE itself)")

    report = commands.add_parser("report", help="the paper's single-QD analysis (Fig. 4): report.html + report.json")
    report.add_argument("files", type=Path, nargs="+", metavar="FILE")
    report.add_argument("--out", type=Path, required=True, help="folder for report.json, report.html and the PNGs")
    report.add_argument("--on-threshold", type=float, default=None,
                        help="ON threshold in counts per bin (default: from the trace's OFF/ON levels, else the "
                             "paper's 400 per 100 ms)")
    report.add_argument("--bin-ms", type=float, default=100.0, help="intensity/lifetime trace bin (ms)")
    report.add_argument("--regimes", type=str, default=None, metavar="LO-HI,LO-HI,...",
                        help="lifetime regimes (ns), shortest first (default: three equal ranges over the ON bins)")

    for command in plugin_commands():
        command.add_parser(commands).set_defaults(run=command.run)
    return parser


def cmd_acquire(args: argparse.Namespace) -> int:
    from labctl.outputs import Recording, check_output_file
    from labctl.summary import format_summary

    # Everything is checked before anything is touched; --overwrite replaces the old file only at the end.
    check_output_file("--out", args.out, inputs=[("--config", args.config), ("--replay", args.replay)],
                      overwrite=args.overwrite, make_folders=True)
    with EndOnSignals("labctl acquire") as signals:
        try:
            config, replay = station_config(args, "acquire")
            record = Recording(args.out)
            try:
                summary, live = _record(args, config, replay, record, signals)
            finally:
                record.commit()
        except KeyboardInterrupt as exc:  # before the run started: the station (if built) is closed, excitation safe
            signals.hold()
            print(f"labctl acquire: {signal_name(exc)} during set-up, before the run started: "
                  "nothing recorded, excitation in safe state", file=sys.stderr)
            return 1
        signals.hold()
        summary.file_path = str(record.commit())
        try:
            if summary.errors:  # one line on stderr; every error is in the summary and the run log
                print(f"labctl acquire: {summary.errors[0]}", file=sys.stderr)
            print(format_summary(summary, config.channels, origin_ps=summary.start_ps))
            print(format_live(live))
        except OSError:  # stdout gone (SIGHUP from a closed terminal): the file and its run_end say it all
            pass
    return exit_code(summary)


def exit_code(summary: RunSummary) -> int:
    """``labctl acquire``'s exit code: 0 clean, 1 not clean (with or without losses), 3 clean with losses."""
    if not summary.clean:
        return 1
    return 3 if summary.losses else 0


def _record(args: argparse.Namespace, config: StationConfig, replay: ReplayFile | None, record: Recording,
            signals: EndOnSignals) -> tuple[RunSummary, list]:
    """Build the station, record, return the summary; every end goes through the engine's one end path."""
    from labctl.analysis import live_set
    from labctl.engine import AcquisitionEngine
    from labctl.station import Station
    from labctl.summary import format_progress
    from labctl.warmup import warm_up

    show_progress = not args.no_progress
    live = live_set()
    speed = 1.0 if args.speed is None else args.speed
    replayed = "" if replay is None else f" --replay {replay.path} --speed {speed:g}"
    description = f"labctl acquire --duration {args.duration}{replayed}"
    # any exception other than a signal: leaving the engine's block ends the run through its end path
    with Station(config) as station, AcquisitionEngine(station, record.recording_path, sinks=live,
                                                       description=description) as engine:
        warm_up(station.channels)  # compiles now (interruptible), so the deferred start below is short
        done = threading.Event()

        def progress() -> None:
            tty = sys.stderr.isatty()
            while not done.wait(0.25 if tty else 2.0):
                line = format_progress(engine.status(), args.duration, station.channels)
                try:
                    print(("\r" + line) if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)
                except OSError:  # the terminal is gone (SIGHUP)
                    return

        ticker = threading.Thread(target=progress, daemon=True)
        try:
            with signals.deferred():  # a signal now is raised once the run has started, then ends it
                engine.start(args.duration)
            if replay is not None and replay.first_ps + args.duration * 1e12 > replay.last_ps:
                from labctl.replay import stop_at_file_end

                stop_at_file_end(engine, replay, speed)  # "replay finished"
            if show_progress:
                ticker.start()
            summary = engine.wait()
        except KeyboardInterrupt as exc:
            if not engine.started:
                raise
            engine.stop(end_reason(exc))
            summary = engine.wait()
        finally:
            signals.hold()  # the run is over: closing the station must not be cut short
            done.set()
            if ticker.is_alive():
                ticker.join()
                try:
                    print(file=sys.stderr)
                except OSError:
                    pass
    return summary, live


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


_INPUT_ERRORS = (OSError, ValueError, KeyError, RuntimeError, TypeError, IndexError, MemoryError, ArithmeticError)
"""What h5py and numpy raise on a file damaged in a way no check foresaw."""


def _one_line_on_damage(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A command reading ``args.file``: an unforeseen error from a damaged file is one line, exit 2
    (labctl's own errors are left to ``main``; the traceback goes to the debug log)."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except LabctlError:
            raise
        except _INPUT_ERRORS as exc:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            print(f"labctl {args.command}: {args.file}: {text}", file=sys.stderr)
            logging.getLogger("labctl.cli").debug("labctl %s %s", args.command, args.file, exc_info=True)
            return 2

    return run


@_one_line_on_damage
def cmd_info(args: argparse.Namespace) -> int:
    from labctl.storage import describe_file

    print(describe_file(args.file))
    return 0


@_one_line_on_damage
def cmd_analyze(args: argparse.Namespace) -> int:
    from labctl.analyze import (AnalyzeOptions, PLOT_NAMES, analyze_file, format_result, parse_detectors,
                                result_json, write_plots)
    from labctl.outputs import check_output_file, check_output_folder, write_text_atomic

    inputs = [("FILE", args.file)]
    if args.json is not None:  # outputs checked before the (long) analysis; never onto the input
        check_output_file("--json", args.json, inputs=inputs)
    if args.plots is not None:
        check_output_folder("--plots", args.plots, inputs=inputs, file_names=PLOT_NAMES)
    options = AnalyzeOptions(
        detectors=parse_detectors(args.detectors), g2_bin_ps=args.g2_bin_ps, g2_range_ps=args.g2_range_ps,
        lifetime_bin_ps=args.lifetime_bin_ps, trace_bin_ms=args.trace_bin_ms, fit=args.fit,
        on_threshold=args.on_threshold, g2_delay_ps=args.g2_delay_ps, laser_period_ps=args.laser_period_ps,
        per_detector_fits=args.per_detector_fits,
    )
    try:
        result = analyze_file(args.file, options)
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


def cmd_report(args: argparse.Namespace) -> int:
    from labctl.analysis.fig4 import ReportOptions, parse_regimes, report_file, write_report
    from labctl.outputs import check_output_folder

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
        from labctl.batch import run_reports  # type: ignore[import-not-found]
    except ImportError:
        print(f"labctl report: {len(args.files)} files: several files need labctl.batch (the Dask batch), which "
              "is not installed here; give one FILE", file=sys.stderr)
        return 2
    run_reports(list(args.files), args.out, options, scheduler=None)
    print(f"reports     {args.out}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from labctl.formats.common import FormatError
    from labctl.formats.importer import import_files
    from labctl.outputs import check_output_file

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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "acquire":
            return cmd_acquire(args)
        if args.command == "analyze":
            return cmd_analyze(args)
        if args.command == "report":
            return cmd_report(args)
        if hasattr(args, "run"):  # a command of the entry-point group labctl.commands (gui)
            return args.run(args)
        if args.command == "import":
            return cmd_import(args)
        if args.command == "repair":
            return cmd_repair(args)
        return cmd_info(args)
    except LabctlError as exc:
        print(f"labctl {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"labctl {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

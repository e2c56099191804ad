"""The ``labctl`` command line.

Commands (their options are a public contract, see README):

* ``labctl acquire --duration SECONDS --out FILE [--config FILE] [--seed N]``:
  record the station's photon stream to a Photon-HDF5 file, with a progress
  bar and a closing summary (rates per channel, photons written, losses, file size).
* ``labctl info FILE``: what a Photon-HDF5 file holds.
* ``labctl analyze FILE [--detectors A B] [--g2-bin-ps N] [--g2-range-ps N]
  [--lifetime-bin-ps N] [--trace-bin-ms X] [--fit mono|bi] [--on-threshold N]
  [--json OUT] [--plots DIR]``: g(2), lifetime fit, blinking trace and FLID.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from labctl import __version__
from labctl.errors import LabctlError
from labctl.signals import EndOnSignals, end_reason, signal_name

if TYPE_CHECKING:
    from labctl.blocks import ChannelMap
    from labctl.run import RunSummary


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

    info = commands.add_parser("info", help="print what a Photon-HDF5 file holds")
    info.add_argument("file", type=Path)

    analyze = commands.add_parser("analyze", help="g(2), lifetime fit, blinking trace and FLID of a Photon-HDF5 file")
    analyze.add_argument("file", type=Path)
    analyze.add_argument("--detectors", type=int, nargs=2, metavar=("A", "B"), help="detector ids; lag = t_B - t_A")
    analyze.add_argument("--g2-bin-ps", type=int, default=1000, help="g(2) bin width (ps)")
    analyze.add_argument("--g2-range-ps", type=int, default=3_500_000, help="g(2) lags from -range to +range (ps)")
    analyze.add_argument("--lifetime-bin-ps", type=int, default=100, help="TCSPC bin width (ps)")
    analyze.add_argument("--trace-bin-ms", type=float, default=10.0, help="intensity-trace and FLID bin (ms)")
    analyze.add_argument("--fit", choices=("mono", "bi"), default="mono", help="decay model")
    analyze.add_argument("--on-threshold", type=float, default=None,
                         help="ON threshold in counts per trace bin (default: 400 per 100 ms, scaled)")
    analyze.add_argument("--json", type=Path, default=None, help="write the results as JSON")
    analyze.add_argument("--plots", type=Path, default=None, help="write PNG figures into this folder")

    gui = commands.add_parser("gui", help="the lab window: live views, recording (needs the 'gui' extra)")
    gui.add_argument("--config", type=Path, default=None, help="station YAML file (default: the built-in simulated microscope)")
    gui.add_argument("--screenshot", type=Path, default=None, help="start live, save a PNG of the window after --after seconds, exit")
    gui.add_argument("--after", type=_positive_seconds, default=3.0, help="seconds before the --screenshot (default 3)")
    return parser


def cmd_acquire(args: argparse.Namespace) -> int:
    from labctl.summary import format_summary

    if args.out.exists() and not args.overwrite:
        print(f"labctl acquire: --out {args.out} already exists; choose another name or pass --overwrite", file=sys.stderr)
        return 2
    if args.out.exists():
        args.out.unlink()
    with EndOnSignals("labctl acquire") as signals:
        try:
            summary, channels, live = _record(args, signals)
        except KeyboardInterrupt as exc:  # before the run started: the station (if built) is closed, excitation safe
            signals.hold()
            print(f"labctl acquire: {signal_name(exc)} during set-up, before the run started: "
                  "nothing recorded, excitation in safe state", file=sys.stderr)
            return 1
        signals.hold()
        try:
            if summary.errors:  # one line on stderr; every error is in the summary and the run log
                print(f"labctl acquire: {summary.errors[0]}", file=sys.stderr)
            print(format_summary(summary, channels, origin_ps=summary.start_ps))
            print(format_live(live))
        except OSError:  # stdout gone (SIGHUP from a closed terminal): the file and its run_end say it all
            pass
    return exit_code(summary)


def exit_code(summary: RunSummary) -> int:
    """``labctl acquire``'s exit code: 0 clean, 1 not clean (with or without losses), 3 clean with losses."""
    if not summary.clean:
        return 1
    return 3 if summary.losses else 0


def _record(args: argparse.Namespace, signals: EndOnSignals) -> tuple[RunSummary, ChannelMap, list]:
    """Build the station, record, return the summary; every end goes through the engine's one end path."""
    from labctl.analysis import live_set
    from labctl.engine import AcquisitionEngine
    from labctl.station import Station, StationConfig
    from labctl.summary import format_progress
    from labctl.warmup import warm_up

    config = StationConfig.load(args.config).with_seed(args.seed)
    show_progress = not args.no_progress
    live = live_set()
    description = f"labctl acquire --duration {args.duration}"
    # any exception other than a signal: leaving the engine's block ends the run through its end path
    with Station(config) as station, AcquisitionEngine(station, args.out, sinks=live, description=description) as engine:
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
    return summary, config.channels, live


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
        on_threshold=args.on_threshold,
    )
    try:
        result = analyze_file(args.file, options)
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
        return cmd_info(args)
    except LabctlError as exc:
        print(f"labctl {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"labctl {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

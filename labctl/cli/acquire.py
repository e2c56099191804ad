"""``labctl acquire``: record a run of the station (or a replay) to a Photon-HDF5 file."""

from __future__ import annotations

import argparse
import sys
import threading
from typing import TYPE_CHECKING

from labctl.cli.common import station_config
from labctl.signals import EndOnSignals, end_reason, signal_name

if TYPE_CHECKING:
    from labctl.storage.outputs import Recording
    from labctl.station.replay import ReplayFile
    from labctl.run import RunSummary
    from labctl.station.station import StationConfig


def cmd_acquire(args: argparse.Namespace) -> int:
    from labctl.storage.outputs import Recording, check_output_file
    from labctl.cli.summary import format_summary

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
            for warning in summary.safe_state_warnings:  # e.g. the laser on its own clock still emits
                print(f"labctl acquire: WARNING: {warning}", file=sys.stderr)
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
    from labctl.acquisition.engine import AcquisitionEngine
    from labctl.station.station import Station
    from labctl.cli.summary import format_progress
    from labctl.acquisition.warmup import warm_up

    show_progress = not args.no_progress
    live = live_set()
    speed = 1.0 if args.speed is None else args.speed
    replayed = "" if replay is None else f" --replay {replay.path} --speed {speed:g}"
    description = f"labctl acquire --duration {args.duration}{replayed}"
    # any exception other than a signal: leaving the engine's block ends the run through its end path
    with Station(config) as station, \
            AcquisitionEngine(station, record.recording_path, sinks=live, description=description) as engine:
        warm_up(station.channels)  # kernels loaded now (or numpy's, on the first run after an install)
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
                from labctl.station.replay import stop_at_file_end

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

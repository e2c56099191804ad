"""The ``labctl`` command line.

Commands (their options are a public contract, see README):

* ``labctl acquire --duration SECONDS --out FILE [--config FILE] [--seed N]``:
  record the station's photon stream to a Photon-HDF5 file, with a progress
  bar and a closing summary (rates per channel, photons written, losses, file size).
* ``labctl info FILE``: what a Photon-HDF5 file holds.
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
        engine = AcquisitionEngine(station, args.out, description=f"labctl acquire --duration {args.duration}")
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
    if summary.losses:
        return 3
    return 0 if summary.clean else 1


def cmd_info(args: argparse.Namespace) -> int:
    from labctl.storage import describe_file

    print(describe_file(args.file))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "acquire":
            return cmd_acquire(args)
        return cmd_info(args)
    except LabctlError as exc:
        print(f"labctl {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"labctl {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

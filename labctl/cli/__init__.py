"""The ``labctl`` command line.

Commands (their options are a public contract, see README):

* ``labctl acquire --duration SECONDS --out FILE [--config FILE] [--seed N]``:
  record the station's photon stream to a Photon-HDF5 file, with a progress
  bar and a closing summary (rates per channel, photons written, losses, file size).
  With ``--replay FILE [--speed X]`` the station's tagger serves a recorded or
  imported file instead (:mod:`labctl.station.replay`).
* ``labctl info FILE``: what a Photon-HDF5 file holds.
* ``labctl analyze FILE... [--detectors A [B]] [--g2-bin-ps N] [--g2-range-ps N]
  [--g2-delay-ps N] [--laser-period-ps N] [--lifetime-bin-ps N] [--trace-bin-ms X]
  [--fit mono|bi] [--per-detector-fits] [--on-threshold N] [--json OUT] [--plots DIR]
  [--scheduler ADDRESS] [--workers N]``: g(2), lifetime fit, blinking trace and FLID;
  several files: one Dask task per file (``labctl.analysis.batch``), ``--json`` a folder.
* ``labctl report FILE... --out DIR [--on-threshold N] [--bin-ms X] [--regimes LO-HI,LO-HI,...]``:
  the paper's single-QD analysis (Fig. 4): DIR/report.json, report.html and PNGs; several
  files go to ``labctl.analysis.batch.run_reports`` (one sub-folder per file).
* ``labctl import IN... --out FILE.h5 [--format ptu|pt3|pt2|ht3|ht2|qutag|sstt]
  [--sync-channel N] [--overwrite]``: another lab's time-tag file -> Photon-HDF5.
* ``labctl repair FILE [--out FILE] [--overwrite]``: a crashed or truncated file's
  readable photons in a clean, valid Photon-HDF5 file, with a record of what was lost.
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from pathlib import Path
from typing import Any, Sequence

from labctl import __version__
from labctl.cli.acquire import cmd_acquire
from labctl.cli.common import _positive_seconds, _positive_speed
from labctl.cli.files import cmd_analyze, cmd_import, cmd_info, cmd_repair, cmd_report
from labctl.errors import LabctlError
from labctl.formats.import_sources import FORMATS


COMMANDS_GROUP = "labctl.commands"
"""Entry-point group of commands that live outside labctl's core (the GUI's ``labctl gui``): each
names a module with ``add_parser(commands) -> ArgumentParser`` and ``run(args) -> int``."""


def plugin_commands() -> list[Any]:
    """The modules of the entry-point group ``labctl.commands`` that load (a broken one is logged and left out)."""
    from labctl.station.entry_point_cache import entry_points

    modules = []
    for entry in sorted(entry_points(COMMANDS_GROUP), key=lambda e: e.name):
        try:
            modules.append(entry.load())
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not take the core commands down
            logging.getLogger("labctl.cli").warning("command %s (%s) not loaded: %s", entry.name, entry.value, exc)
    return modules


CORE_COMMANDS = ("acquire", "import", "info", "analyze", "repair", "report")
"""labctl's own commands: running one of them needs no entry-point scan for the others."""


def build_parser(plugins: bool = True) -> argparse.ArgumentParser:
    """The command line's parser; ``plugins=False`` leaves out the ``labctl.commands`` entry points
    (reading every installed package's metadata, ~30 ms: not needed to run a core command)."""
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

    for command in plugin_commands() if plugins else ():
        command.add_parser(commands).set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``labctl`` command; its exit code.  ``argv`` None: this process's command line
    (``sys.argv``), the process ends after it: its objects are frozen out of the cyclic
    collector (``gc.freeze``), so that the interpreter's exit does not walk them (~0.3 s)."""
    try:
        return _run(argv)
    finally:
        if argv is None:
            gc.freeze()


def _run(argv: Sequence[str] | None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    command = next((w for w in words if not w.startswith("-")), None)  # the top level's options take no value
    args = build_parser(plugins=command not in CORE_COMMANDS).parse_args(argv)
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


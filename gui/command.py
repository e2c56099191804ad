"""``labctl gui``: the lab window's command, registered into labctl's command line.

labctl's core never names the GUI: ``labctl.cli`` loads every command of the
entry-point group ``labctl.commands`` (this one is declared in pyproject.toml),
so the only arrow between them points from ``gui`` to ``labctl``.  Nothing here
imports Qt until the command runs: ``labctl --help`` stays fast and Qt-free.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from labctl.cli.common import positive_number, station_config

NAME = "gui"
"""The sub-command's name on the command line."""


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add ``gui`` and its options to labctl's sub-command parsers (``commands``)."""
    gui = commands.add_parser(NAME, help="the lab window: live views, recording (needs the 'gui' extra)")
    gui.add_argument("--config", type=Path, default=None, help="station YAML file (default: the built-in simulated microscope)")
    gui.add_argument("--screenshot", type=Path, default=None, help="start live, save a PNG of the window after --after seconds, exit")
    gui.add_argument("--after", type=positive_number("--after", "a number of seconds"), default=3.0,
                     help="seconds before the --screenshot (default 3)")
    gui.add_argument("--replay", type=Path, default=None, help="live views of this Photon-HDF5 file, replayed")
    gui.add_argument("--speed", type=positive_number("--speed", "a number"), default=None,
                     help="with --replay: replay speed (default 1)")
    return gui


def run(args: argparse.Namespace) -> int:
    """Open the window on the station (or the replay); the exit code of the window."""
    try:  # Qt only here
        from gui.main_window import run_app
    except ImportError as exc:
        print(f"labctl gui: {exc}; install the GUI with: pip install 'labctl[gui]'", file=sys.stderr)
        return 2
    config, _ = station_config(args, NAME)
    return run_app(config, screenshot=args.screenshot, after_s=args.after)

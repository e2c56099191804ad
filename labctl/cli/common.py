"""What the command line's modules share: argparse types, the station (or replay) config of a command."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Callable

from labctl.errors import ConfigError

if TYPE_CHECKING:
    from labctl.station.replay import ReplayFile
    from labctl.station.station import StationConfig


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
    from labctl.station.station import StationConfig

    if args.replay is None:
        if args.speed is not None:
            raise ConfigError("--speed", args.speed, "only with --replay FILE")
        config = StationConfig.load(args.config)
        return (config.with_seed(args.seed) if command == "acquire" else config), None
    if getattr(args, "seed", None) is not None:
        raise ConfigError("--seed", args.seed, "only without --replay (a replay's photons come from the file)")
    from labctl.station.replay import overload_note, replay_station_config, scan_replay_file

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

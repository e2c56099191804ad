"""Generator outputs a station file wires to the microscope: laser trigger, camera frame clock, SPAD gate.

Each is a reference ``{instrument: <role>, channel: <n>}`` to one output of another
instrument of the station (the function generator):

* ``instruments.laser.trigger_output``: the laser's external trigger input (optional; the
  key may instead name a ``TriggerOutput`` class, see :mod:`labctl.station.station`);
* ``instruments.camera.frame_clock``: the camera's trigger, each edge also a frame-marker tag;
  default ``{instrument: function_generator, channel: 2}``;
* ``safety.spad_gate``: the gate inputs of the SPADs (MPD PDM): output on = SPADs live, off =
  SPADs off (no counts, dark counts included).  Optional.

``channel`` must be one of the instrument's outputs (its driver's ``output_channels``, e.g.
1, 2), and no output may carry two signals.  Everything is checked before anything is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from labctl.errors import ConfigError
from labctl.station.validation import check_keys, expect_mapping

DEFAULT_FRAME_CLOCK = {"instrument": "function_generator", "channel": 2}
"""The frame clock of a station file that names none (the microscope's wiring: generator ch2)."""

SIGNALS = {
    "laser_trigger": ("instruments.laser.trigger_output", "trigger_output"),
    "frame_clock": ("instruments.camera.frame_clock", "frame_clock"),
    "spad_gate": ("safety.spad_gate", "trigger_output"),
}
"""Signal -> (key path in the station file, the method of the instrument's driver that gives the output)."""


@dataclass(frozen=True)
class OutputRef:
    """One output of an instrument of the station, and the station-file key that named it."""

    key_path: str
    instrument: str
    channel: int


def output_references(data: Mapping[str, Any], source: str) -> dict[str, OutputRef]:
    """The checked output references of a parsed station file, by signal (see :data:`SIGNALS`).

    Checks the form (keys ``instrument`` and ``channel``, an integer channel, another instrument
    of this station); :func:`check_output_channels` checks the channels against the drivers.
    The frame clock is listed only with a camera (its default if the file names none); a camera
    without one is refused.
    """
    instruments = data["instruments"]
    found: dict[str, OutputRef] = {}
    trigger = instruments["laser"].get("trigger_output") if "laser" in instruments else None
    if isinstance(trigger, Mapping):
        found["laser_trigger"] = _reference(trigger, SIGNALS["laser_trigger"][0], "laser", instruments, source)
    for role, spec in instruments.items():
        if isinstance(spec.get("trigger_output"), Mapping) and role != "laser":
            raise ConfigError(f"instruments.{role}.trigger_output", spec["trigger_output"],
                              "only the laser takes a trigger output (instruments.laser.trigger_output)", source)
        if "frame_clock" in spec and role != "camera":
            raise ConfigError(f"instruments.{role}.frame_clock", spec["frame_clock"],
                              "only the camera has a frame clock (instruments.camera.frame_clock)", source)
    if "camera" in instruments:
        spec = instruments["camera"]
        if "frame_clock" not in spec and DEFAULT_FRAME_CLOCK["instrument"] not in instruments:
            raise ConfigError("instruments.camera.frame_clock", None, "is required with a camera: the generator output that "
                              "triggers its frames (default function_generator ch2, but this station has no "
                              "function_generator)", source)
        given = spec.get("frame_clock", DEFAULT_FRAME_CLOCK)
        found["frame_clock"] = _reference(given, SIGNALS["frame_clock"][0], "camera", instruments, source)
    safety = expect_mapping(data.get("safety"), "safety", source)
    check_keys(safety, ["spad_gate"], "safety", source)
    if safety.get("spad_gate") is not None:
        found["spad_gate"] = _reference(safety["spad_gate"], SIGNALS["spad_gate"][0], "", instruments, source)
    return found


def check_output_channels(refs: Mapping[str, OutputRef], drivers: Mapping[str, type], source: str) -> None:
    """Each reference names an output its instrument's driver has, and each output carries one signal.

    Args:
        refs: from :func:`output_references`.
        drivers: role -> resolved driver class.

    Raises:
        ConfigError: e.g. ``instruments.camera.frame_clock.channel = 3: must be one of 1, 2 (the
            outputs of Keysight33500B)``.
    """
    used: dict[tuple[str, int], str] = {}
    for signal, ref in refs.items():
        driver = drivers[ref.instrument]
        method = SIGNALS[signal][1]
        if not callable(getattr(driver, method, None)):
            raise ConfigError(f"{ref.key_path}.instrument", ref.instrument,
                              f"its driver {driver.__name__} has no such outputs (no {method} method)", source)
        channels = tuple(getattr(driver, "output_channels", ()))
        if isinstance(ref.channel, bool) or not isinstance(ref.channel, int) or ref.channel not in channels:
            raise ConfigError(f"{ref.key_path}.channel", ref.channel,
                              f"must be one of {', '.join(map(str, channels))} (the outputs of {driver.__name__})", source)
        other = used.setdefault((ref.instrument, ref.channel), ref.key_path)
        if other != ref.key_path:
            raise ConfigError(f"{ref.key_path}.channel", ref.channel,
                              f"{ref.instrument} ch{ref.channel} is already {other}; each signal needs its own output", source)


def _reference(ref: Any, path: str, owner: str, instruments: Mapping[str, Any], source: str) -> OutputRef:
    """``{instrument: function_generator, channel: 1}``: an output of another instrument of the station."""
    ref = expect_mapping(ref, path, source)
    check_keys(ref, ["instrument", "channel"], path, source)
    target = ref.get("instrument")
    if not isinstance(target, str) or target not in instruments or target == owner:
        raise ConfigError(f"{path}.instrument", target, "must name another instrument of this station: " + ", ".join(instruments), source)
    if "channel" not in ref:
        raise ConfigError(f"{path}.channel", None, "is required (an output number of the instrument, e.g. 1)", source)
    return OutputRef(path, target, ref["channel"])  # checked against the driver's outputs by check_output_channels

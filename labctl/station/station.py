"""Station: a YAML file that names every instrument (real or simulated) with its settings.

The station builds instruments from dotted class paths, as QCoDeS's Station does,
so labctl never imports ``drivers`` or ``sim_backends`` by name.  Everything is
validated before anything is applied: unknown keys, wrong types and
out-of-range values raise :class:`labctl.errors.ConfigError` naming the file,
the key path, the value and what is allowed, and no instrument setting is changed.

File layout (see README "Station file")::

    station: {name: ..., description: ...}
    channels: {laser_sync: 0, spad_a: 1, spad_b: 2, frame_marker: 3}
    safety: {spad_gate: {instrument: function_generator, channel: 1}}   # optional (labctl.station.outputs)
    scene: {...}          # the shared simulated scene (only if a sim library is used)
    engine: {poll_interval_ms: 50, ...}
    instruments:
      tagger: {driver: drivers.qutag.QuTAG, library: sim_backends.qutag_sim.SimTDCBase,
               library_options: {...}, options: {...}, settings: {...}}
      laser:  {driver: ..., trigger_output: {instrument: function_generator, channel: 1}, settings: {...}}
              # or trigger_output: a TriggerOutput class (e.g. the replay's), built without arguments
      spad_a: {driver: drivers.spad.SPAD, settings: {...}}
      spad_b: {...}
      camera: {driver: ..., frame_clock: {instrument: function_generator, channel: 2}, ...}
      shutter: {driver: ..., ...}   # optional: closed in the safe state
"""

from __future__ import annotations

import atexit
import copy
import importlib
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, NamedTuple

from labctl.blocks import ChannelMap
from labctl.station.engine_settings import ENGINE_SCHEMA, EngineSettings
from labctl.errors import ConfigError
from labctl.interfaces import (Camera, FrameClock, FunctionGenerator, PhotonDetector, PulsedLaser, Shutter, Spectrograph,
                               TimeTagger, TriggerOutput)
from labctl.station.safe_state import SafeStateReport, make_safe
from labctl.station.settings import apply_settings, validate_settings
from labctl.station.classes import (check_class_implements, check_driver_class, check_instance, check_library_class, check_options,
                                    construct, resolve_class, takes_scene)
from labctl.station.outputs import SIGNALS, OutputRef, check_output_channels, output_references
from labctl.station.validation import Number, Text, check_keys, check_section, expect_mapping
from labctl.station.watchdog import InstrumentHung
from labctl.station.yaml_loading import MAX_DOCUMENT_BYTES, parse_station_text

log = logging.getLogger(__name__)

ROLES: dict[str, type | None] = {
    "tagger": TimeTagger,
    "laser": PulsedLaser,
    "spad_a": PhotonDetector,
    "spad_b": PhotonDetector,
    "camera": Camera,
    "spectrograph": Spectrograph,
    "function_generator": FunctionGenerator,
    "shutter": Shutter,
}
"""Instrument roles a station file may name, with the interface each must satisfy.

They are built in this order, except that the function generator comes first when
another instrument's ``trigger_output`` refers to it.
"""

REQUIRED_ROLES = ("tagger", "laser")
TOP_LEVEL_KEYS = ("station", "channels", "safety", "scene", "engine", "instruments")
INSTRUMENT_KEYS = ("driver", "library", "library_options", "trigger_output", "frame_clock", "options", "settings")
CHANNEL_SCHEMA = {
    "laser_sync": Number(0, 255, integer=True),
    "spad_a": Number(0, 255, integer=True),
    "spad_b": Number(0, 255, integer=True),
    "frame_marker": Number(0, 255, integer=True),
}
DEFAULT_STATION = "default.yaml"
SCENE_CLASS = "sim_backends.scene.Scene"
SCENE_VALIDATOR = "sim_backends.scene_config.validate_scene_config"
SEED_CHECK = Number(0, 2**63 - 1, integer=True)
SUPPLIED_BY_STATION = ("name", "library", "trigger_output", "tagger_channel", "scene")
"""Driver arguments the station fills itself; a station file's ``options`` may not set them."""


class InstrumentClasses(NamedTuple):
    """The checked classes of one instrument of a station file (nothing built)."""

    driver: type
    library: type | None
    trigger_output: type | None


def resolve_instrument(role: str, spec: Mapping[str, Any], instruments: Mapping[str, Any], source: str) -> InstrumentClasses:
    """Resolve and check the classes of ``instruments.<role>`` and its options, calling nothing.

    See :mod:`labctl.station.classes` for the rules (allowed packages, kinds, option types).
    """
    path = f"instruments.{role}"
    interface = ROLES[role]
    driver = resolve_class(spec.get("driver"), f"{path}.driver", source,
                           f"a driver class implementing {interface.__name__ if interface else 'an instrument'}")
    check_driver_class(driver, interface, f"{path}.driver", spec["driver"], source)
    options = expect_mapping(spec.get("options"), f"{path}.options", source)
    check_options(driver, options, f"{path}.options", source, supplied=SUPPLIED_BY_STATION)
    library = None
    if spec.get("library") is not None:
        library = resolve_class(spec["library"], f"{path}.library", source, f"a vendor library class for {driver.__name__}")
        check_library_class(library, driver, f"{path}.library", spec["library"], source)
        check_options(library, expect_mapping(spec.get("library_options"), f"{path}.library_options", source),
                      f"{path}.library_options", source, supplied=("scene",))
    elif spec.get("library_options"):
        raise ConfigError(f"{path}.library_options", spec["library_options"], "needs a library: key (a vendor library class)", source)
    trigger = spec.get("trigger_output")
    trigger_cls = None
    if trigger is not None and not isinstance(trigger, Mapping):  # a reference is checked in labctl.station.outputs
        trigger_cls = resolve_class(trigger, f"{path}.trigger_output", source, "a TriggerOutput class")
        check_class_implements(trigger_cls, TriggerOutput, f"{path}.trigger_output", trigger, source)
        check_options(trigger_cls, {}, f"{path}.trigger_output", source)
    return InstrumentClasses(driver, library, trigger_cls)


def validate_scene(data: Mapping[str, Any], source: str) -> tuple[dict[str, Any], int]:
    """Check the ``scene:`` section with the simulated scene's own rules; return (config, seed)."""
    scene_cfg = dict(expect_mapping(data.get("scene"), "scene", source))
    seed = SEED_CHECK.check(scene_cfg.pop("seed", 0), "scene.seed", source)
    module_name, _, name = SCENE_VALIDATOR.rpartition(".")
    validate = getattr(importlib.import_module(module_name), name)
    try:
        validate(scene_cfg)
    except ConfigError as exc:
        raise ConfigError(exc.key_path, exc.value, exc.allowed, source) from None
    return scene_cfg, int(seed)


@dataclass
class StationConfig:
    """A parsed and structurally validated station file (nothing built yet)."""

    data: dict[str, Any]
    source: str

    @classmethod
    def load(cls, path: str | Path | None = None) -> "StationConfig":
        """Read a station YAML file; ``None`` = the built-in simulated microscope.

        The file is read as data (:func:`labctl.station.yaml_loading.parse_station_text`: UTF-8,
        at most 1 MB, no aliases, no duplicate keys), then checked by :meth:`from_dict`.
        """
        if path is None:
            text = resources.files("labctl.stations").joinpath(DEFAULT_STATION).read_bytes()
            source = f"<built-in {DEFAULT_STATION}>"
            return cls.from_dict(parse_station_text(text, source), source=source)
        path = Path(path)
        try:
            with path.open("rb") as stream:
                raw = stream.read(MAX_DOCUMENT_BYTES + 1)
        except OSError as exc:
            raise ConfigError("station file", str(path), f"cannot be read ({exc.strerror or type(exc).__name__})") from exc
        return cls.from_dict(parse_station_text(raw, str(path)), source=str(path))

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> "StationConfig":
        """Check a parsed station file completely, building nothing; raise ConfigError on the first problem."""
        data = copy.deepcopy(dict(expect_mapping(data, "<top level>", source)))
        check_keys(data, TOP_LEVEL_KEYS, "", source)
        check_section(data.get("station"), {"name": Text(), "description": Text()}, "station", source)
        channels = check_section(data.get("channels"), CHANNEL_SCHEMA, "channels", source)
        for key in ("laser_sync", "spad_a", "spad_b"):
            if key not in channels:
                raise ConfigError(f"channels.{key}", None, "is required (a tagger channel number 0..255)", source)
        used: dict[int, str] = {}
        for key, ch in channels.items():
            if ch in used:
                raise ConfigError(f"channels.{key}", ch, f"already used by channels.{used[ch]}; each signal needs its own input", source)
            used[ch] = key
        check_section(data.get("engine"), ENGINE_SCHEMA, "engine", source)
        instruments = expect_mapping(data.get("instruments"), "instruments", source)
        check_keys(instruments, list(ROLES), "instruments", source)
        for role in REQUIRED_ROLES:
            if role not in instruments:
                raise ConfigError(f"instruments.{role}", None, "is required", source)
        for role, spec in instruments.items():
            spec = expect_mapping(spec, f"instruments.{role}", source)
            check_keys(spec, INSTRUMENT_KEYS, f"instruments.{role}", source)
            if "driver" not in spec:
                raise ConfigError(f"instruments.{role}.driver", None, "is required (a dotted class path)", source)
            for key in ("library_options", "options", "settings"):
                expect_mapping(spec.get(key), f"instruments.{role}.{key}", source)
        outputs = output_references(data, source)
        drivers = {role: resolve_instrument(role, spec, instruments, source).driver for role, spec in instruments.items()}
        check_output_channels(outputs, drivers, source)
        config = cls(data, source)
        if config.uses_scene:
            validate_scene(data, source)
        return config

    @property
    def channels(self) -> ChannelMap:
        return ChannelMap(**self.data["channels"])

    @property
    def engine(self) -> EngineSettings:
        return EngineSettings.from_mapping(self.data.get("engine"), self.source)

    def with_seed(self, seed: int | None) -> "StationConfig":
        """A copy whose simulated scene uses ``seed`` (unchanged if None)."""
        if seed is None:
            return self
        data = copy.deepcopy(self.data)
        data.setdefault("scene", {})
        data["scene"] = dict(data["scene"] or {}, seed=int(seed))
        return StationConfig(data, self.source)

    @property
    def uses_scene(self) -> bool:
        """True if a class of the station runs on the simulated scene: a vendor library, or a driver taking ``scene``."""
        instruments = self.data["instruments"]
        return any(spec.get("library") or takes_scene(resolve_instrument(role, spec, instruments, self.source).driver)
                   for role, spec in instruments.items())

    @property
    def outputs(self) -> dict[str, OutputRef]:
        """The generator outputs the station wires (laser trigger, frame clock, SPAD gate), by signal."""
        return output_references(self.data, self.source)

    def build_order(self) -> list[str]:
        """Roles in the order to build them: instruments referred to by a trigger_output first."""
        instruments = self.data["instruments"]
        first = [spec["trigger_output"]["instrument"] for spec in instruments.values()
                 if isinstance(spec.get("trigger_output"), Mapping)]
        return [r for r in ROLES if r in instruments and r in first] + [r for r in ROLES if r in instruments and r not in first]


def import_dotted(dotted: str, key_path: str, source: str) -> Any:
    """Import the class ``package.module.Name`` from an allowed package (see :mod:`labctl.station.classes`)."""
    return resolve_class(dotted, key_path, source, "a class")


class Station:
    """The built instruments of a station file, with a safe state for the excitation.

    Build with ``Station(StationConfig.load(path))``; use as a context manager or
    call :meth:`close`.  The excitation is put in its safe state at close and,
    as a last resort, at interpreter exit.
    """

    def __init__(self, config: StationConfig) -> None:
        self.config = config
        self.scene: Any = None
        self.instruments: dict[str, Any] = {}
        self.frame_clock: FrameClock | None = None
        """The camera's frame clock (``instruments.camera.frame_clock``), None without a camera."""
        self.spad_gate: TriggerOutput | None = None
        """The SPADs' gate (``safety.spad_gate``): output off = SPADs off; None if the station has none."""
        self.last_safe_state = SafeStateReport()
        """What the latest :meth:`safe_state` did (actions, warnings)."""
        self.hung: dict[str, InstrumentHung] = {}
        """Instruments (by role) with a call that never returned (the engine's watchdog): not called again, not closed."""
        self._call_timeout_s = config.engine.watchdog_s
        self._closed = False
        try:
            self._build()
        except BaseException:  # a bad setting, or a signal (Ctrl-C, SIGTERM) during the build
            self.safe_state()  # a setting applied before the failure may have switched the excitation on
            self._close_instruments()
            raise
        atexit.register(self.safe_state)

    # -- building -----------------------------------------------------------------------
    def _build(self) -> None:
        data, source = self.config.data, self.config.source
        instruments = data["instruments"]
        # The same checks as StationConfig.from_dict (a config may be built from data directly).
        classes = {role: resolve_instrument(role, instruments[role], instruments, source) for role in self.config.build_order()}
        if self.config.uses_scene:
            scene_cfg, seed = validate_scene(data, source)
            scene_cls = resolve_class(SCENE_CLASS, "scene", source, "the simulated scene class")
            try:
                self.scene = scene_cls(scene_cfg, wiring=self.config.channels, seed=seed)
            except ConfigError as exc:
                raise ConfigError(exc.key_path, exc.value, exc.allowed, source) from None
        pending: list[tuple[str, Any, dict[str, Any]]] = []
        for role in self.config.build_order():
            spec = instruments[role]
            instrument = self._build_one(role, spec, classes[role])
            self.instruments[role] = instrument
            settings = dict(spec.get("settings") or {})
            validate_settings(instrument, settings, f"instruments.{role}.settings", source)
            pending.append((role, instrument, settings))
        for signal, ref in self.config.outputs.items():  # the frame clock and the SPAD gate
            if signal != "laser_trigger":
                setattr(self, signal, getattr(self.instruments[ref.instrument], SIGNALS[signal][1])(ref.channel))
        # Only once every instrument's settings are valid is anything applied.
        for role, instrument, settings in pending:
            apply_settings(instrument, settings, f"instruments.{role}.settings", source)
        self.safe_state()  # nothing is excited until an acquisition asks for it

    def _build_one(self, role: str, spec: Mapping[str, Any], classes: InstrumentClasses) -> Any:
        source = self.config.source
        path = f"instruments.{role}"
        given: dict[str, Any] = {"name": _free_name(role)}
        if classes.library is not None:
            given["library"] = construct(classes.library, dict(spec.get("library_options") or {}),
                                         f"{path}.library_options", source, scene=self.scene)
        trigger = spec.get("trigger_output")
        if isinstance(trigger, Mapping):  # a channel of another instrument, already built
            given["trigger_output"] = self.instruments[trigger["instrument"]].trigger_output(int(trigger["channel"]))
        elif classes.trigger_output is not None:
            given["trigger_output"] = construct(classes.trigger_output, {}, f"{path}.trigger_output", source)
        if role in ("spad_a", "spad_b"):
            given["tagger_channel"] = getattr(self.config.channels, role)
        instrument = construct(classes.driver, dict(spec.get("options") or {}), f"{path}.options", source, given=given,
                               scene=self.scene)
        check_instance(instrument, ROLES[role], f"{path}.driver", spec["driver"], source)
        return instrument

    # -- use ------------------------------------------------------------------------------
    @property
    def tagger(self) -> TimeTagger:
        return self.instruments["tagger"]

    @property
    def laser(self) -> PulsedLaser:
        return self.instruments["laser"]

    @property
    def detectors(self) -> list[PhotonDetector]:
        return [self.instruments[r] for r in ("spad_a", "spad_b") if r in self.instruments]

    @property
    def channels(self) -> ChannelMap:
        return self.config.channels

    @property
    def seed(self) -> int | None:
        scene = self.config.data.get("scene") or {}
        return int(scene.get("seed", 0)) if self.scene is not None else None

    def configure(self, role: str, settings: Mapping[str, Any]) -> None:
        """Change settings of one instrument at run time: all are validated first, then all applied.

        Raises ConfigError (naming ``instruments.<role>.settings.<key>``, the value and what
        is allowed) and changes nothing if any one is invalid.
        """
        if not isinstance(role, str) or role not in self.instruments:
            raise ConfigError("instruments", role, "no such instrument; the station has: " + ", ".join(self.instruments), "runtime")
        instrument = self.instruments[role]
        settings = expect_mapping(settings, f"instruments.{role}.settings", "runtime")
        validate_settings(instrument, settings, f"instruments.{role}.settings", "runtime")
        apply_settings(instrument, settings, f"instruments.{role}.settings", "runtime")

    def snapshot(self) -> dict[str, Any]:
        """Every instrument's QCoDeS snapshot plus the station config, for the data file."""
        return {
            "config": self.config.data,
            "source": self.config.source,
            "instruments": {role: inst.snapshot(update=False) for role, inst in self.instruments.items()},
        }

    def safe_state(self) -> bool:
        """Put the excitation in its safe state by every means the station has (:mod:`labctl.station.safe_state`:
        laser trigger off, SPAD gate off, shutter closed); never raises (errors are logged), never waits
        longer than ``engine.watchdog_s`` per call.  What it did is in :attr:`last_safe_state`.

        Returns:
            True if every safe-state call returned; with the laser on its internal clock and neither
            gate nor shutter, that is not a safe state: :attr:`last_safe_state` warns so.
        """
        self.last_safe_state = make_safe(self, self._call_timeout_s)
        return self.last_safe_state.done

    def excitation_state(self) -> str:
        """The excitation as read back from the instruments: ``"on"``, ``"off"`` (external trigger:
        the generator's output), ``"internal"`` (the laser's own clock: software cannot tell or
        switch it), or ``"unknown (<error>)"``."""
        laser = self.instruments.get("laser")
        if laser is None:
            return "off"
        try:
            if laser.trigger_source() != "external":
                return "internal"
            return "on" if laser.excitation_enabled() else "off"
        except Exception as exc:  # noqa: BLE001 - a reading, not an action
            return f"unknown ({exc})"

    def close(self) -> None:
        if self._closed:
            return
        self.safe_state()
        self._close_instruments()
        self._closed = True
        atexit.unregister(self.safe_state)

    def _close_instruments(self) -> None:
        hung = set(self.hung)
        for role in list(hung):  # a hung laser call may be its trigger instrument's
            trigger = self.config.data["instruments"].get(role, {}).get("trigger_output")
            if isinstance(trigger, Mapping):
                hung.add(trigger["instrument"])
        for role in reversed(list(self.instruments)):
            if role in hung:
                log.warning("%s not closed: a call to it hung (%s)", role, self.hung.get(role, "its trigger output's instrument"))
                continue
            try:
                self.instruments[role].close()
            except Exception:  # noqa: BLE001
                log.exception("closing %s failed", role)
        self.instruments.clear()

    def __enter__(self) -> "Station":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _free_name(role: str) -> str:
    """The role as instrument name, or role_2, role_3... if another station in this process holds it."""
    from qcodes.instrument import Instrument

    name, n = role, 1
    while Instrument.exist(name):
        n += 1
        name = f"{role}_{n}"
    return name

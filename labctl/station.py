"""Station: a YAML file that names every instrument (real or simulated) with its settings.

The station builds instruments from dotted class paths, as QCoDeS's Station does,
so labctl never imports ``drivers`` or ``sim_backends`` by name.  Everything is
validated before anything is applied: unknown keys, wrong types and
out-of-range values raise :class:`labctl.errors.ConfigError` naming the file,
the key path, the value and what is allowed, and no instrument setting is changed.

File layout (see README "Station file")::

    station: {name: ..., description: ...}
    channels: {laser_sync: 0, spad_a: 1, spad_b: 2, frame_marker: 3}
    scene: {...}          # the shared simulated scene (only if a sim library is used)
    engine: {poll_interval_ms: 50, ...}
    instruments:
      tagger: {driver: drivers.qutag.QuTAG, library: sim_backends.qutag_sim.SimTDCBase,
               library_options: {...}, options: {...}, settings: {...}}
      laser:  {driver: ..., trigger_output: {instrument: function_generator, channel: 1}, settings: {...}}
              # or trigger_output: sim_backends.trigger_sim.SimTriggerOutput (a class built with the scene)
      spad_a: {driver: drivers.spad.SPAD, settings: {...}}
      spad_b: {...}
"""

from __future__ import annotations

import atexit
import copy
import importlib
import inspect
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import yaml

from labctl.blocks import ChannelMap
from labctl.engine_settings import ENGINE_SCHEMA, EngineSettings
from labctl.errors import ConfigError
from labctl.interfaces import Camera, FunctionGenerator, PhotonDetector, PulsedLaser, Spectrograph, TimeTagger
from labctl.settings import apply_settings, validate_settings
from labctl.validation import Number, Text, check_keys, check_section, expect_mapping
from labctl.watchdog import InstrumentHung, call_with_timeout

log = logging.getLogger(__name__)

ROLES: dict[str, type | None] = {
    "tagger": TimeTagger,
    "laser": PulsedLaser,
    "spad_a": PhotonDetector,
    "spad_b": PhotonDetector,
    "camera": Camera,
    "spectrograph": Spectrograph,
    "function_generator": FunctionGenerator,
}
"""Instrument roles a station file may name, with the interface each must satisfy.

They are built in this order, except that the function generator comes first when
another instrument's ``trigger_output`` refers to it.
"""

REQUIRED_ROLES = ("tagger", "laser")
TOP_LEVEL_KEYS = ("station", "channels", "scene", "engine", "instruments")
INSTRUMENT_KEYS = ("driver", "library", "library_options", "trigger_output", "options", "settings")
CHANNEL_SCHEMA = {
    "laser_sync": Number(0, 255, integer=True),
    "spad_a": Number(0, 255, integer=True),
    "spad_b": Number(0, 255, integer=True),
    "frame_marker": Number(0, 255, integer=True),
}
DEFAULT_STATION = "default.yaml"


@dataclass
class StationConfig:
    """A parsed and structurally validated station file (nothing built yet)."""

    data: dict[str, Any]
    source: str

    @classmethod
    def load(cls, path: str | Path | None = None) -> "StationConfig":
        """Read a station YAML file; ``None`` = the built-in simulated microscope."""
        if path is None:
            text = resources.files("labctl.stations").joinpath(DEFAULT_STATION).read_text()
            return cls.from_dict(yaml.safe_load(text), source=f"<built-in {DEFAULT_STATION}>")
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError("station file", str(path), f"cannot be read ({exc.strerror})") from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError("station file", str(path), f"is not valid YAML: {exc}") from exc
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> "StationConfig":
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
            trigger = spec.get("trigger_output")
            if isinstance(trigger, Mapping):
                _check_trigger_reference(trigger, f"instruments.{role}.trigger_output", instruments, source)
            for key in ("driver", "library", "trigger_output"):
                if key == "trigger_output" and isinstance(trigger, Mapping):
                    continue
                if spec.get(key) is not None:
                    import_dotted(Text().check(spec[key], f"instruments.{role}.{key}", source), f"instruments.{role}.{key}", source)
            for key in ("library_options", "options", "settings"):
                expect_mapping(spec.get(key), f"instruments.{role}.{key}", source)
        return cls(data, source)

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
        return any(
            spec.get("library") or isinstance(spec.get("trigger_output"), str)
            for spec in self.data["instruments"].values()
        )

    def build_order(self) -> list[str]:
        """Roles in the order to build them: instruments referred to by a trigger_output first."""
        instruments = self.data["instruments"]
        first = [spec["trigger_output"]["instrument"] for spec in instruments.values()
                 if isinstance(spec.get("trigger_output"), Mapping)]
        return [r for r in ROLES if r in instruments and r in first] + [r for r in ROLES if r in instruments and r not in first]


def _check_trigger_reference(ref: Mapping[str, Any], path: str, instruments: Mapping[str, Any], source: str) -> None:
    """``{instrument: function_generator, channel: 1}``: a channel of another instrument of the station."""
    check_keys(ref, ["instrument", "channel"], path, source)
    target = ref.get("instrument")
    if target not in instruments or target == path.split(".")[1]:
        raise ConfigError(f"{path}.instrument", target, "must name another instrument of this station: " + ", ".join(instruments), source)
    Number(1, 16, integer=True).check(ref.get("channel"), f"{path}.channel", source)


def import_dotted(dotted: str, key_path: str, source: str) -> Any:
    """Import ``package.module.Name``; a clear ConfigError if it cannot be found."""
    module_name, _, attr = dotted.rpartition(".")
    if not module_name:
        raise ConfigError(key_path, dotted, "must be a dotted path like package.module.ClassName", source)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(key_path, dotted, f"module {module_name!r} cannot be imported ({exc})", source) from exc
    try:
        return getattr(module, attr)
    except AttributeError as exc:
        raise ConfigError(key_path, dotted, f"module {module_name!r} has no {attr!r}", source) from exc


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
        self.hung: dict[str, InstrumentHung] = {}
        """Instruments (by role) with a call that never returned (the engine's watchdog): not called again, not closed."""
        self._call_timeout_s = config.engine.watchdog_s
        self._closed = False
        try:
            self._build()
        except BaseException:
            self._close_instruments()
            raise
        atexit.register(self.safe_state)

    # -- building -----------------------------------------------------------------------
    def _build(self) -> None:
        data, source = self.config.data, self.config.source
        if self.config.uses_scene:
            scene_cls = import_dotted("sim_backends.scene.Scene", "scene", source)
            scene_cfg = dict(expect_mapping(data.get("scene"), "scene", source))
            seed = scene_cfg.pop("seed", 0)
            Number(0, 2**63 - 1, integer=True).check(seed, "scene.seed", source)
            try:
                self.scene = scene_cls(scene_cfg, wiring=self.config.channels, seed=int(seed))
            except ConfigError as exc:
                raise ConfigError(exc.key_path, exc.value, exc.allowed, source) from None
        pending: list[tuple[str, Any, dict[str, Any]]] = []
        for role in self.config.build_order():
            spec = data["instruments"][role]
            instrument = self._build_one(role, spec)
            self.instruments[role] = instrument
            settings = dict(spec.get("settings") or {})
            validate_settings(instrument, settings, f"instruments.{role}.settings", source)
            pending.append((role, instrument, settings))
        # Only once every instrument's settings are valid is anything applied.
        for role, instrument, settings in pending:
            apply_settings(instrument, settings)
        self.safe_state()  # nothing is excited until an acquisition asks for it

    def _build_one(self, role: str, spec: Mapping[str, Any]) -> Any:
        source = self.config.source
        driver_cls = import_dotted(spec["driver"], f"instruments.{role}.driver", source)
        kwargs: dict[str, Any] = dict(spec.get("options") or {})
        if spec.get("library"):
            lib_cls = import_dotted(spec["library"], f"instruments.{role}.library", source)
            kwargs["library"] = _construct(lib_cls, dict(spec.get("library_options") or {}), self.scene, f"instruments.{role}.library_options", source)
        trigger = spec.get("trigger_output")
        if isinstance(trigger, Mapping):  # a channel of another instrument, already built
            kwargs["trigger_output"] = self.instruments[trigger["instrument"]].trigger_output(int(trigger["channel"]))
        elif trigger:
            out_cls = import_dotted(trigger, f"instruments.{role}.trigger_output", source)
            kwargs["trigger_output"] = _construct(out_cls, {}, self.scene, f"instruments.{role}.trigger_output", source)
        if role in ("spad_a", "spad_b"):
            kwargs["tagger_channel"] = getattr(self.config.channels, role)
        instrument = _construct(driver_cls, kwargs, None, f"instruments.{role}.options", source, name=_free_name(role))
        interface = ROLES[role]
        if interface is not None and not isinstance(instrument, interface):
            missing = [m for m in dir(interface) if not m.startswith("_") and not hasattr(instrument, m)]
            instrument.close()
            raise ConfigError(f"instruments.{role}.driver", spec["driver"], f"does not implement {interface.__name__} (missing {', '.join(missing)})", source)
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
        if role not in self.instruments:
            raise ConfigError("instruments", role, "no such instrument; the station has: " + ", ".join(self.instruments))
        instrument = self.instruments[role]
        validate_settings(instrument, settings, f"instruments.{role}.settings", "runtime")
        apply_settings(instrument, settings)

    def snapshot(self) -> dict[str, Any]:
        """Every instrument's QCoDeS snapshot plus the station config, for the data file."""
        return {
            "config": self.config.data,
            "source": self.config.source,
            "instruments": {role: inst.snapshot(update=False) for role, inst in self.instruments.items()},
        }

    def safe_state(self) -> bool:
        """Put the excitation in its safe state; never raises (errors are logged), never waits longer than
        ``engine.watchdog_s`` (a hung instrument: a critical message asks to switch the laser off by hand).

        Returns:
            True if the laser reported its safe state.
        """
        laser = self.instruments.get("laser")
        if laser is None:
            return True
        # The safe state must be attempted, even on a hung instrument, and must not mask the caller's error.
        done, error = call_with_timeout(laser.disable_excitation, self._call_timeout_s, "laser disable_excitation")
        if done:
            return True
        if isinstance(error, InstrumentHung):
            self.hung.setdefault("laser", error)
            log.critical("the excitation could not be put in its safe state: %s; switch the laser off by hand", error)
        else:
            log.error("could not put the laser in its safe state: %s: %s", type(error).__name__, error)
            log.debug("safe state failure", exc_info=error)
        return False

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


def _construct(cls: type, kwargs: dict[str, Any], scene: Any, key_path: str, source: str, **extra: Any) -> Any:
    """Call ``cls`` with ``kwargs`` (+ ``scene`` if it takes one); unknown options are config errors."""
    params = inspect.signature(cls).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if scene is not None and "scene" in params:
        kwargs = {"scene": scene, **kwargs}
    for key in kwargs:
        if key not in params and not takes_any:
            allowed = [n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY or p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
            raise ConfigError(f"{key_path}.{key}", kwargs[key], f"unknown option of {cls.__name__}; allowed: {', '.join(allowed)}", source)
    try:
        return cls(**extra, **kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{key_path}.{exc.key_path}" if not exc.key_path.startswith(key_path) else exc.key_path, exc.value, exc.allowed, source) from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(key_path, kwargs, f"rejected by {cls.__name__}: {exc}", source) from exc

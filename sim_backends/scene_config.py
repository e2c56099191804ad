"""Defaults and validation of the simulated scene's configuration (the ``scene:`` station section).

Every physical number of the scene is a key here.  Numbers come from Vonk et al.,
Nat. Commun. 16 (2025) (Fig. 4 and Methods) unless the comment says *assumed*.
``validate_scene_config`` checks a whole user config before anything is built, and
raises ``ConfigError`` naming the full key path (``scene.spads.a.dead_time_ns``), the
value and what is allowed.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from labctl.errors import ConfigError

ROOT = "scene"

_SPAD_DEFAULTS: dict[str, Any] = {
    "detection_efficiency": 0.35,  # MPD PDM class at ~600 nm
    "dark_cps": 25.0,  # paper: < 5 Hz; DESIGN range < 5 .. ~100 Hz
    "dead_time_ns": 77.0,  # assumed (MPD PDM datasheet class)
    "jitter_fwhm_ps": 40.0,  # Gaussian timing jitter
    "afterpulse_probability": 0.005,  # per detection
    "afterpulse_mean_delay_ns": 200.0,  # afterpulse at dead time + Exp(mean)
    "delay_ps": 2000,  # cable delay added to every detection on this SPAD
}

DEFAULTS: dict[str, Any] = {
    "segment_ms": 10.0,  # internal generation segment (tagger time); settings change at boundaries
    "laser": {
        "enabled": True,  # excitation on at start
        "repetition_rate_hz": 1.0e6,  # paper: 1 MHz
        "sync_delay_ps": 0,  # sync tag = pulse time + this
        "mean_excitations_per_pulse": 0.3,  # n-bar; DESIGN: typically 0.05-1
        "background_cps": 50.0,  # scattered-laser photons/s reaching the HBT input, at pulse times
    },
    "emitter": {
        "kind": "single_qd",
        "quantum_yield_on": 0.95,  # paper: PLQY 95 %
        "band_edge": {"lifetime_ns": 35.0, "peak_ev": 2.064, "fwhm_mev": 51.0},  # Fig. 4f
        "trap": {"lifetime_ns": 57.5, "peak_ev": 2.030, "fwhm_mev": 60.0},  # Fig. 4g,h (57-58 ns)
        "biexciton_quantum_yield": 0.07,  # assumed (DESIGN: ~5-10 %)
        "biexciton_lifetime_ns": 5.0,  # assumed
        "p_trap": {
            "mode": "fluctuating",  # paper: P_trap fluctuates 0 .. 65 % on the second scale
            "value": 0.0,  # mode fixed
            "levels": [0.0, 0.65],  # mode two_level: alternating levels
            "dwell_s": 1.0,  # mode two_level: fixed dwell per level
            "max": 0.65,  # mode fluctuating: levels uniform in [0, max]
            "timescale_s": 1.0,  # mode fluctuating: mean exponential dwell
        },
        "blinking": {
            "enabled": True,
            "exponent_on": 1.5,  # assumed power-law exponent of ON dwell times
            "exponent_off": 1.5,  # assumed
            "min_dwell_ms": 1.0,
            "max_dwell_s": 10.0,
            "off_quantum_yield": 0.05,  # dim OFF (grey) state
            "off_lifetime_ns": 2.0,  # assumed
        },
        "poissonian": {"rate_cps": 2.0e5, "pulsed": False},  # photons/s at the HBT input
    },
    # 0.08 gives ~6.9 kcps summed over both SPADs for the default QD in the ON state
    # (1e6 pulses/s x 0.26 excited x 0.95 QY x 0.08 x 0.35): ~690 counts per 100 ms,
    # above the paper's ON threshold of 400 per 100 ms.
    "collection_efficiency": 0.08,
    "spads": {"a": dict(_SPAD_DEFAULTS), "b": dict(_SPAD_DEFAULTS)},
    # Function generator ch2: clocks the camera frames and marks them in the tag stream
    # (channel ``wiring.frame_marker``).  Changes at run time: Scene.set_frame_clock.
    "frame_clock": {"enabled": False, "rate_hz": 10.0},
    # Fraction of the emitted QD photons that reach the spectrograph's detector plane
    # (objective, 50:50 split to the spectral arm, slit, grating); *assumed*.  0.12 gives
    # ~2900 photons per 100 ms frame for the default QD in the ON state
    # (1e6 pulses/s x 0.26 excited x 0.95 QY x 0.1 s x 0.12).
    "spectrometer_collection_efficiency": 0.12,
}

EMITTER_KINDS = ("single_qd", "poissonian", "none")
P_TRAP_MODES = ("fixed", "two_level", "fluctuating")
REPETITION_RATE_RANGE_HZ = (1.0e3, 8.0e7)
FRAME_CLOCK_RATE_RANGE_HZ = (1.0e-3, 1.0e5)


@dataclass(frozen=True)
class _Number:
    """A numeric leaf: bounds (``None`` = open ended), whether they are exclusive, unit, int-only."""

    lo: float | None = None
    hi: float | None = None
    lo_exclusive: bool = False
    unit: str = ""
    integer: bool = False

    def allowed(self) -> str:
        what = "an integer" if self.integer else "a number"
        lo_op = ">" if self.lo_exclusive else ">="
        if self.lo is not None and self.hi is not None and not self.lo_exclusive:
            text = f"{what} between {_fmt(self.lo)} and {_fmt(self.hi)}"
        elif self.lo is not None and self.hi is not None:
            text = f"{what} {lo_op} {_fmt(self.lo)} and <= {_fmt(self.hi)}"
        elif self.lo is not None:
            text = f"{what} {lo_op} {_fmt(self.lo)}"
        else:
            text = what
        return f"{text} ({self.unit})" if self.unit else text

    def check(self, path: str, value: Any) -> float | int:
        ok_type = isinstance(value, int) or (isinstance(value, float) and not self.integer)
        if isinstance(value, float) and self.integer and math.isfinite(value) and value.is_integer():
            ok_type, value = True, int(value)
        if isinstance(value, bool) or not ok_type or not math.isfinite(value):
            hint = ""
            if isinstance(value, str) and _parses_as_float(value):
                hint = " (YAML reads exponent notation without a sign, e.g. 1e6 or 1.0e6, as text: write 1.0e+6 or 1000000)"
            raise ConfigError(path, value, self.allowed() + hint)
        too_low = self.lo is not None and (value <= self.lo if self.lo_exclusive else value < self.lo)
        too_high = self.hi is not None and value > self.hi
        if too_low or too_high:
            raise ConfigError(path, value, self.allowed())
        return value


@dataclass(frozen=True)
class _Bool:
    def check(self, path: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise ConfigError(path, value, "true or false")
        return value


@dataclass(frozen=True)
class _Choice:
    options: tuple[str, ...]

    def check(self, path: str, value: Any) -> str:
        if not isinstance(value, str) or value not in self.options:
            raise ConfigError(path, value, "one of: " + ", ".join(self.options))
        return value


@dataclass(frozen=True)
class _Pair:
    """Two numbers, each checked by ``item``."""

    item: _Number

    def check(self, path: str, value: Any) -> list[float]:
        allowed = f"a list of two numbers, each {self.item.allowed()}"
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise ConfigError(path, value, allowed)
        for i, v in enumerate(value):
            try:
                self.item.check(f"{path}[{i}]", v)
            except ConfigError:
                raise ConfigError(path, value, allowed) from None
        return [float(v) for v in value]


_PROBABILITY = _Number(0.0, 1.0)
_LIFETIME_NS = _Number(0.0, 1.0e6, lo_exclusive=True, unit="ns")

_SPAD_SCHEMA: dict[str, Any] = {
    "detection_efficiency": _PROBABILITY,
    "dark_cps": _Number(0.0, 1.0e5, unit="counts/s"),
    "dead_time_ns": _Number(0.0, 1.0e6, unit="ns"),
    "jitter_fwhm_ps": _Number(0.0, 1.0e5, unit="ps"),
    "afterpulse_probability": _Number(0.0, 0.5),
    "afterpulse_mean_delay_ns": _LIFETIME_NS,
    "delay_ps": _Number(0, 1.0e7, unit="ps", integer=True),
}

_BAND_SCHEMA: dict[str, Any] = {
    "lifetime_ns": _LIFETIME_NS,
    "peak_ev": _Number(0.0, 10.0, lo_exclusive=True, unit="eV"),
    "fwhm_mev": _Number(0.0, 1.0e4, lo_exclusive=True, unit="meV"),
}

SCHEMA: dict[str, Any] = {
    "segment_ms": _Number(0.1, 1000.0, unit="ms"),
    "laser": {
        "enabled": _Bool(),
        "repetition_rate_hz": _Number(*REPETITION_RATE_RANGE_HZ, unit="Hz"),
        "sync_delay_ps": _Number(0, 1.0e7, unit="ps", integer=True),
        "mean_excitations_per_pulse": _Number(0.0, 10.0),
        "background_cps": _Number(0.0, 1.0e7, unit="photons/s"),
    },
    "emitter": {
        "kind": _Choice(EMITTER_KINDS),
        "quantum_yield_on": _PROBABILITY,
        "band_edge": _BAND_SCHEMA,
        "trap": _BAND_SCHEMA,
        "biexciton_quantum_yield": _PROBABILITY,
        "biexciton_lifetime_ns": _LIFETIME_NS,
        "p_trap": {
            "mode": _Choice(P_TRAP_MODES),
            "value": _PROBABILITY,
            "levels": _Pair(_PROBABILITY),
            "dwell_s": _Number(1.0e-3, 1.0e4, unit="s"),
            "max": _PROBABILITY,
            "timescale_s": _Number(1.0e-3, 1.0e4, unit="s"),
        },
        "blinking": {
            "enabled": _Bool(),
            "exponent_on": _Number(0.0, 10.0, lo_exclusive=True),
            "exponent_off": _Number(0.0, 10.0, lo_exclusive=True),
            "min_dwell_ms": _Number(0.01, 1.0e6, unit="ms"),
            "max_dwell_s": _Number(1.0e-5, 1.0e4, unit="s"),
            "off_quantum_yield": _PROBABILITY,
            "off_lifetime_ns": _LIFETIME_NS,
        },
        "poissonian": {
            "rate_cps": _Number(0.0, 5.0e7, unit="photons/s"),
            "pulsed": _Bool(),
        },
    },
    "collection_efficiency": _PROBABILITY,
    "spads": {"a": _SPAD_SCHEMA, "b": _SPAD_SCHEMA},
    "frame_clock": {
        "enabled": _Bool(),
        "rate_hz": _Number(*FRAME_CLOCK_RATE_RANGE_HZ, unit="Hz"),
    },
    "spectrometer_collection_efficiency": _PROBABILITY,
}


def default_scene_config() -> dict[str, Any]:
    """A fresh deep copy of the full default scene config."""
    return copy.deepcopy(DEFAULTS)


def validate_scene_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """Merge ``config`` over the defaults and check every key; return the full config.

    Raises:
        ConfigError: unknown key, wrong type or out-of-range value, with the key path
            from ``scene.``.  Nothing is returned (so nothing can be built) on error.
    """
    merged = _validate_tree(SCHEMA, DEFAULTS, {} if config is None else config, ROOT)
    blink = merged["emitter"]["blinking"]
    if blink["max_dwell_s"] * 1e3 <= blink["min_dwell_ms"]:
        raise ConfigError(
            f"{ROOT}.emitter.blinking.max_dwell_s",
            blink["max_dwell_s"],
            f"a number > min_dwell_ms / 1000 = {_fmt(blink['min_dwell_ms'] / 1e3)} (s)",
        )
    return merged


def check_repetition_rate_hz(value: Any) -> float:
    """Validate a laser repetition rate (Hz) as the config does; return it as float."""
    return float(SCHEMA["laser"]["repetition_rate_hz"].check(f"{ROOT}.laser.repetition_rate_hz", value))


def check_frame_clock_rate_hz(value: Any) -> float:
    """Validate a frame-clock rate (Hz) as the config does; return it as float."""
    return float(SCHEMA["frame_clock"]["rate_hz"].check(f"{ROOT}.frame_clock.rate_hz", value))


def _validate_tree(schema: Mapping[str, Any], defaults: Mapping[str, Any], user: Any, path: str) -> dict[str, Any]:
    if not isinstance(user, Mapping):
        raise ConfigError(path, user, "a mapping with keys: " + ", ".join(schema))
    for key in user:
        if key not in schema:
            raise ConfigError(f"{path}.{key}", user[key], "one of: " + ", ".join(schema))
    out: dict[str, Any] = {}
    for key, spec in schema.items():
        sub_path = f"{path}.{key}"
        if isinstance(spec, dict):
            sub = user.get(key)
            out[key] = _validate_tree(spec, defaults[key], {} if sub is None else sub, sub_path)
        elif key in user:
            out[key] = spec.check(sub_path, user[key])
        else:
            out[key] = copy.deepcopy(defaults[key])
    return out


def _fmt(x: float) -> str:
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
        return f"{x:.0e}".replace("e+0", "e").replace("e-0", "e-").replace("e+", "e")
    return f"{x:g}"


def _parses_as_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True

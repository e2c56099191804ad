"""Defaults and validation of the simulated scene's configuration (the ``scene:`` station section).

Every physical number of the scene is a key here.  Numbers come from Vonk et al.,
Nat. Commun. 16 (2025) (Fig. 4 and Methods) unless the comment says *assumed*.
``validate_scene_config`` checks a whole user config before anything is built (and
``check_wiring`` the tagger channels the scene writes), and raises ``ConfigError``
naming the full key path (``scene.spads.a.dead_time_ns``), the value and what is allowed.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np

from labctl.blocks import ChannelMap
from labctl.errors import ConfigError
from labctl.station.validation import Choice, Flag, Number, NumberList, Pair, check_section, format_number

ROOT = "scene"

_SPAD_DEFAULTS: dict[str, Any] = {
    "detection_efficiency": 0.35,  # assumed (MPD PDM datasheet class at ~600 nm)
    "dark_cps": 25.0,  # paper: < 5 Hz; DESIGN range < 5 .. ~100 Hz
    "dead_time_ns": 77.0,  # assumed (MPD PDM datasheet class)
    "jitter_fwhm_ps": 40.0,  # assumed: Gaussian timing jitter
    "afterpulse_probability": 0.005,  # assumed, per detection
    "afterpulse_mean_delay_ns": 200.0,  # assumed: afterpulse at dead time + Exp(mean)
    "delay_ps": 2000,  # assumed: cable delay added to every detection on this SPAD
}

DEFAULTS: dict[str, Any] = {
    "segment_ms": 10.0,  # internal generation segment (tagger time); settings change at boundaries
    "laser": {
        "enabled": True,  # excitation on at start
        "repetition_rate_hz": 1.0e6,  # paper: 1 MHz
        "sync_delay_ps": 0,  # sync tag = pulse time + this
        "mean_excitations_per_pulse": 0.3,  # n-bar; DESIGN: typically 0.05-1
        "background_cps": 50.0,  # assumed: scattered-laser photons/s reaching the HBT input, at pulse times
    },
    "emitter": {
        "kind": "single_qd",
        "quantum_yield_on": 0.95,  # paper: PLQY 95 %
        "band_edge": {"lifetime_ns": 35.0, "peak_ev": 2.064, "fwhm_mev": 51.0},  # paper, Fig. 4f
        "trap": {"lifetime_ns": 57.5, "peak_ev": 2.030, "fwhm_mev": 60.0},  # paper, Fig. 4g,h (57-58 ns)
        "biexciton_quantum_yield": 0.07,  # assumed (DESIGN: ~5-10 %)
        "biexciton_lifetime_ns": 0.147,  # paper, Fig. 1c: Auger recombination of the biexciton in ~147 ps
        "p_trap": {
            "mode": "fluctuating",  # paper (Fig. 4): P_trap fluctuates 0 .. 65 % on the second scale
            "value": 0.0,  # mode fixed
            "levels": [0.0, 0.65],  # mode two_level: alternating levels
            "cycle_levels": [0.0, 0.3, 0.6],  # mode cycle: these levels in turn, each for dwell_s (known truth)
            "dwell_s": 1.0,  # modes two_level and cycle: fixed dwell per level
            "max": 0.65,  # mode fluctuating: levels uniform in [0, max] (uniform: assumed)
            "timescale_s": 1.0,  # mode fluctuating: mean exponential dwell (exponential: assumed)
        },
        "blinking": {
            "enabled": True,
            "exponent_on": 1.5,  # assumed power-law exponent of ON dwell times
            "exponent_off": 1.5,  # assumed
            "min_dwell_ms": 1.0,  # assumed
            "max_dwell_s": 10.0,  # assumed
            "off_quantum_yield": 0.05,  # assumed: dim OFF (grey) state
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
P_TRAP_MODES = ("fixed", "two_level", "cycle", "fluctuating")
REPETITION_RATE_RANGE_HZ = (1.0e3, 8.0e7)
FRAME_CLOCK_RATE_RANGE_HZ = (1.0e-3, 1.0e5)


_PROBABILITY = Number(0.0, 1.0)
_LIFETIME_NS = Number(0.0, 1.0e6, unit="ns", exclusive_minimum=True)

_SPAD_SCHEMA: dict[str, Any] = {
    "detection_efficiency": _PROBABILITY,
    "dark_cps": Number(0.0, 1.0e5, unit="counts/s"),
    "dead_time_ns": Number(0.0, 1.0e6, unit="ns"),
    "jitter_fwhm_ps": Number(0.0, 1.0e5, unit="ps"),
    "afterpulse_probability": Number(0.0, 0.5),
    "afterpulse_mean_delay_ns": _LIFETIME_NS,
    "delay_ps": Number(0, 1.0e7, integer=True, unit="ps"),
}

_BAND_SCHEMA: dict[str, Any] = {
    "lifetime_ns": _LIFETIME_NS,
    "peak_ev": Number(0.0, 10.0, unit="eV", exclusive_minimum=True),
    "fwhm_mev": Number(0.0, 1.0e4, unit="meV", exclusive_minimum=True),
}

SCHEMA: dict[str, Any] = {
    "segment_ms": Number(0.1, 1000.0, unit="ms"),
    "laser": {
        "enabled": Flag(),
        "repetition_rate_hz": Number(*REPETITION_RATE_RANGE_HZ, unit="Hz"),
        "sync_delay_ps": Number(0, 1.0e7, integer=True, unit="ps"),
        "mean_excitations_per_pulse": Number(0.0, 10.0),
        "background_cps": Number(0.0, 1.0e7, unit="photons/s"),
    },
    "emitter": {
        "kind": Choice(EMITTER_KINDS),
        "quantum_yield_on": _PROBABILITY,
        "band_edge": _BAND_SCHEMA,
        "trap": _BAND_SCHEMA,
        "biexciton_quantum_yield": _PROBABILITY,
        "biexciton_lifetime_ns": _LIFETIME_NS,
        "p_trap": {
            "mode": Choice(P_TRAP_MODES),
            "value": _PROBABILITY,
            "levels": Pair(_PROBABILITY),
            "cycle_levels": NumberList(_PROBABILITY, 1, 16),
            "dwell_s": Number(1.0e-3, 1.0e4, unit="s"),
            "max": _PROBABILITY,
            "timescale_s": Number(1.0e-3, 1.0e4, unit="s"),
        },
        "blinking": {
            "enabled": Flag(),
            "exponent_on": Number(0.0, 10.0, exclusive_minimum=True),
            "exponent_off": Number(0.0, 10.0, exclusive_minimum=True),
            "min_dwell_ms": Number(0.01, 1.0e6, unit="ms"),
            "max_dwell_s": Number(1.0e-5, 1.0e4, unit="s"),
            "off_quantum_yield": _PROBABILITY,
            "off_lifetime_ns": _LIFETIME_NS,
        },
        "poissonian": {
            "rate_cps": Number(0.0, 5.0e7, unit="photons/s"),
            "pulsed": Flag(),
        },
    },
    "collection_efficiency": _PROBABILITY,
    "spads": {"a": _SPAD_SCHEMA, "b": _SPAD_SCHEMA},
    "frame_clock": {
        "enabled": Flag(),
        "rate_hz": Number(*FRAME_CLOCK_RATE_RANGE_HZ, unit="Hz"),
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
    merged = _merge_over(DEFAULTS, check_section(config, SCHEMA, ROOT, ""))
    blink = merged["emitter"]["blinking"]
    if blink["max_dwell_s"] * 1e3 <= blink["min_dwell_ms"]:
        raise ConfigError(
            f"{ROOT}.emitter.blinking.max_dwell_s",
            blink["max_dwell_s"],
            f"must be a number > min_dwell_ms / 1000 = {format_number(blink['min_dwell_ms'] / 1e3)} (s)",
        )
    return merged


def check_repetition_rate_hz(value: Any) -> float:
    """Validate a laser repetition rate (Hz) as the config does; return it as float."""
    return float(SCHEMA["laser"]["repetition_rate_hz"].check(value, f"{ROOT}.laser.repetition_rate_hz", ""))


def check_frame_clock_rate_hz(value: Any) -> float:
    """Validate a frame-clock rate (Hz) as the config does; return it as float."""
    return float(SCHEMA["frame_clock"]["rate_hz"].check(value, f"{ROOT}.frame_clock.rate_hz", ""))


def check_wiring(wiring: ChannelMap) -> None:
    """Refuse a wiring that is no ``ChannelMap``, names a channel outside 0..255 or uses one twice."""
    if not isinstance(wiring, ChannelMap):
        raise ConfigError("wiring", wiring, "must be a labctl.blocks.ChannelMap")
    used = {"laser_sync": wiring.laser_sync, "spad_a": wiring.spad_a, "spad_b": wiring.spad_b}
    if wiring.frame_marker is not None:
        used["frame_marker"] = wiring.frame_marker
    for name, ch in used.items():
        if isinstance(ch, bool) or not isinstance(ch, (int, np.integer)) or not 0 <= ch <= 255:
            raise ConfigError(f"wiring.{name}", ch, "must be a tagger channel number between 0 and 255")
    if len(set(used.values())) != len(used):
        raise ConfigError("wiring", wiring.as_dict(), "must use distinct channels for " + ", ".join(used))


def _merge_over(defaults: Mapping[str, Any], checked: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``defaults`` with the checked user values put in, section by section."""
    out = copy.deepcopy(dict(defaults))
    for key, value in checked.items():
        out[key] = _merge_over(defaults[key], value) if isinstance(defaults[key], dict) else value
    return out

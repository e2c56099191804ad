"""Applying station-file settings to QCoDeS instruments: validate all, then set all.

Settings are a nested mapping: a key names a parameter of the instrument, or a
submodule (channel) whose own mapping names its parameters, e.g.
``{"sync_divider": 1, "ch1": {"threshold_v": 0.5}}``.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

from labctl.errors import ConfigError
from labctl.validation import expect_mapping, format_number


def _walk(instrument: Any, settings: Mapping[str, Any], path: str, source: str) -> Iterator[tuple[Any, Any, str]]:
    """Yield (parameter, value, key path) for every leaf; unknown keys raise ConfigError."""
    parameters = getattr(instrument, "parameters", {})
    submodules = getattr(instrument, "submodules", {})
    for key, value in expect_mapping(settings, path, source).items():
        key_path = f"{path}.{key}"
        known = isinstance(key, str)
        if known and key in submodules:
            if not isinstance(value, Mapping):
                raise ConfigError(key_path, value, f"must be a mapping of {key}'s settings to values", source)
            yield from _walk(submodules[key], value, key_path, source)
        elif known and key in parameters and parameters[key].settable:
            yield parameters[key], value, key_path
        else:
            settable = sorted(n for n, p in parameters.items() if p.settable)
            allowed = settable + sorted(f"{n}.<setting>" for n in submodules)
            raise ConfigError(key_path, value, "unknown setting; allowed: " + ", ".join(allowed), source)


def describe_allowed(parameter: Any) -> str:
    """What values a parameter takes, in words, with its unit."""
    vals = parameter.vals
    unit = f" ({parameter.unit})" if getattr(parameter, "unit", "") else ""
    if vals is None:
        return "any value"
    valid = getattr(vals, "valid_values", None)
    name = type(vals).__name__
    note = getattr(vals, "limit_note", "")
    note = f" ({note})" if note else ""
    if name in ("Numbers", "Ints") and valid is not None and len(valid) == 2:
        kind = "an integer" if name == "Ints" else "a number"
        return f"{kind} between {format_number(valid[0])} and {format_number(valid[1])}{unit}{note}"
    if name == "Enum":
        return "one of " + ", ".join(repr(v) for v in sorted(valid, key=str)) + unit
    if name == "Bool":
        return "true or false"
    return repr(vals) + unit


def validate_settings(instrument: Any, settings: Mapping[str, Any], path: str, source: str) -> None:
    """Check every setting against its parameter's validator without sending anything."""
    for parameter, value, key_path in _walk(instrument, settings, path, source):
        name = type(parameter.vals).__name__ if parameter.vals is not None else ""
        if isinstance(value, bool) and name in ("Numbers", "Ints"):
            raise ConfigError(key_path, value, f"must be {describe_allowed(parameter)}", source)
        try:
            parameter.validate(value)
        except (TypeError, ValueError, ArithmeticError):
            raise ConfigError(key_path, value, f"must be {describe_allowed(parameter)}", source) from None


def apply_settings(instrument: Any, settings: Mapping[str, Any]) -> None:
    """Set every (already validated) setting on the instrument, in file order."""
    for parameter, value, _ in _walk(instrument, settings, "", ""):
        parameter.set(value)

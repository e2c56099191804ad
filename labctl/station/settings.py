"""Applying station-file settings to QCoDeS instruments: validate all, then set all.

Settings are a nested mapping: a key names a parameter of the instrument, or a
submodule (channel) whose own mapping names its parameters, e.g.
``{"sync_divider": 1, "ch1": {"threshold_v": 0.5}}``.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

from labctl.errors import ConfigError, InstrumentError, LabctlError, short_repr, short_text
from labctl.station.validation import expect_mapping, format_number, key_path as join_key


def _walk(instrument: Any, settings: Mapping[str, Any], path: str, source: str) -> Iterator[tuple[Any, Any, str]]:
    """Yield (parameter, value, key path) for every leaf; unknown keys raise ConfigError."""
    parameters = getattr(instrument, "parameters", {})
    submodules = getattr(instrument, "submodules", {})
    for key, value in expect_mapping(settings, path, source).items():
        key_path = join_key(path, key)
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


def apply_settings(instrument: Any, settings: Mapping[str, Any], path: str = "", source: str = "") -> None:
    """Set every (already validated) setting on the instrument, in file order.

    A value the instrument still refuses when it is set (a limit that depends on another
    setting, e.g. a generator's ``low_v`` below its ``high_v``, or the simulated scene's
    own range) raises :class:`ConfigError` naming the key path; an instrument that fails
    raises :class:`InstrumentError`.  Settings before it stay applied.
    """
    for parameter, value, key_path in _walk(instrument, settings, path, source):
        try:
            parameter.set(value)
        except ConfigError as exc:
            raise ConfigError(key_path, value, f"refused when applied: {exc.key_path} {exc.allowed}", source) from None
        except LabctlError:
            raise
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise ConfigError(key_path, value, f"refused when applied: {_first_arg(exc)}", source) from exc
        except Exception as exc:  # noqa: BLE001 - any instrument failure becomes one clear line
            raise InstrumentError(f"{key_path} = {short_repr(value)}: the instrument failed while it was set: "
                                  f"{type(exc).__name__}: {short_text(_first_arg(exc), 160)}") from exc


def _first_arg(exc: BaseException) -> str:
    """The exception's own message, without the context QCoDeS appends to ``args``."""
    text = str(exc.args[0]) if exc.args else type(exc).__name__
    return " ".join(text.split())

"""Small schema checks for station-file sections, with errors that name key, value and what is allowed."""

from __future__ import annotations

import numbers
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from labctl.errors import ConfigError


def format_number(value: float | None) -> str:
    """Integers as integers (1000000, not 1e+06); other numbers compactly."""
    if value is None:
        return ""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:g}"


@dataclass(frozen=True)
class Number:
    """A real number (bool excluded) in [minimum, maximum], optionally an integer.

    ``exclusive_minimum=True`` makes the lower bound strict (``> minimum``), e.g. for a
    lifetime that must be positive.
    """

    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False
    unit: str = ""
    exclusive_minimum: bool = False

    def allowed(self) -> str:
        kind = "an integer" if self.integer else "a number"
        unit = f" ({self.unit})" if self.unit else ""
        low, high = format_number(self.minimum), format_number(self.maximum)
        above = ">" if self.exclusive_minimum else ">="
        if self.minimum is not None and self.maximum is not None and not self.exclusive_minimum:
            return f"{kind} between {low} and {high}{unit}"
        if self.minimum is not None and self.maximum is not None:
            return f"{kind} {above} {low} and <= {high}{unit}"
        if self.minimum is not None:
            return f"{kind} {above} {low}{unit}"
        if self.maximum is not None:
            return f"{kind} <= {high}{unit}"
        return f"{kind}{unit}"

    def check(self, value: Any, path: str, source: str) -> float | int:
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if ok and self.integer:  # (an int may be too large for a float: no float() here)
            ok = isinstance(value, numbers.Integral) or float(value).is_integer()
        if ok and self.minimum is not None:
            ok = value > self.minimum if self.exclusive_minimum else value >= self.minimum
        if ok and self.maximum is not None:
            ok = value <= self.maximum
        if not ok:
            raise ConfigError(path, value, f"must be {self.allowed()}{_yaml_text_hint(value)}", source)
        return int(value) if self.integer else float(value)


@dataclass(frozen=True)
class Pair:
    """A list of exactly two numbers, each checked by ``item`` (e.g. two probability levels)."""

    item: Number

    def allowed(self) -> str:
        return f"a list of two numbers, each {self.item.allowed()}"

    def check(self, value: Any, path: str, source: str) -> list[float | int]:
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise ConfigError(path, value, f"must be {self.allowed()}", source)
        try:
            return [self.item.check(v, f"{path}[{i}]", source) for i, v in enumerate(value)]
        except ConfigError:
            raise ConfigError(path, value, f"must be {self.allowed()}", source) from None


@dataclass(frozen=True)
class NumberList:
    """A list of ``min_len`` to ``max_len`` numbers, each checked by ``item`` (e.g. P_trap levels)."""

    item: Number
    min_len: int = 1
    max_len: int = 16

    def allowed(self) -> str:
        return f"a list of {self.min_len} to {self.max_len} numbers, each {self.item.allowed()}"

    def check(self, value: Any, path: str, source: str) -> list[float | int]:
        if not isinstance(value, (list, tuple)) or not self.min_len <= len(value) <= self.max_len:
            raise ConfigError(path, value, f"must be {self.allowed()}", source)
        try:
            return [self.item.check(v, f"{path}[{i}]", source) for i, v in enumerate(value)]
        except ConfigError:
            raise ConfigError(path, value, f"must be {self.allowed()}", source) from None


def _yaml_text_hint(value: Any) -> str:
    """A hint for numbers that YAML read as text (``1e6`` without a sign is a string in YAML 1.1)."""
    if not isinstance(value, str):
        return ""
    try:
        float(value)
    except ValueError:
        return ""
    return " (YAML reads exponent notation without a sign, e.g. 1e6 or 1.0e6, as text: write 1.0e+6 or 1000000)"


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of values."""

    choices: tuple[Any, ...]

    def allowed(self) -> str:
        return "one of " + ", ".join(repr(c) for c in self.choices)

    def check(self, value: Any, path: str, source: str) -> Any:
        if isinstance(value, bool) and not any(isinstance(c, bool) for c in self.choices):
            raise ConfigError(path, value, f"must be {self.allowed()}", source)
        if value not in self.choices:
            raise ConfigError(path, value, f"must be {self.allowed()}", source)
        return value


@dataclass(frozen=True)
class Text:
    """A string (e.g. a dotted class path or a name)."""

    def allowed(self) -> str:
        return "a string"

    def check(self, value: Any, path: str, source: str) -> str:
        if not isinstance(value, str):
            raise ConfigError(path, value, "must be a string", source)
        return value


@dataclass(frozen=True)
class Flag:
    """true or false."""

    def allowed(self) -> str:
        return "true or false"

    def check(self, value: Any, path: str, source: str) -> bool:
        if not isinstance(value, bool):
            raise ConfigError(path, value, "must be true or false", source)
        return value


def expect_mapping(value: Any, path: str, source: str) -> Mapping[str, Any]:
    """Return ``value`` if it is a mapping, else raise naming the path."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(path, value, "must be a mapping of keys to values", source)
    return value


_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_+-][A-Za-z0-9_+-]*$")


def key_path(path: str, key: Any) -> str:
    """``path.key``; a key that is not a plain word (empty, spaces, dots, not a string) is shown as its repr."""
    text = key if isinstance(key, str) and _PLAIN_KEY.match(key) else repr(key)
    return f"{path}.{text}" if path else text


def check_keys(data: Mapping[str, Any], allowed: Sequence[str], path: str, source: str) -> None:
    """Raise on the first key of ``data`` that is not in ``allowed``."""
    for key in data:
        if key not in allowed:
            raise ConfigError(
                key_path(path, key),
                data[key],
                "unknown key; allowed: " + ", ".join(sorted(allowed)),
                source,
            )


Check = Number | Pair | Choice | Text | Flag
Schema = Mapping[str, "Check | Schema"]


def check_section(data: Any, schema: Schema, path: str, source: str) -> dict[str, Any]:
    """Validate a section against ``schema``; return the checked values (missing keys omitted).

    A value of ``schema`` that is itself a mapping is a sub-section, checked the same way
    under ``path.key`` (a missing or ``None`` sub-section counts as empty).
    """
    mapping = expect_mapping(data, path, source)
    check_keys(mapping, list(schema), path, source)
    checked: dict[str, Any] = {}
    for key, value in mapping.items():
        spec = schema[key]
        if isinstance(spec, Mapping):
            checked[key] = check_section(value, spec, f"{path}.{key}", source)
        else:
            checked[key] = spec.check(value, f"{path}.{key}", source)
    return checked

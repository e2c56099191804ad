"""Instrument parameters as plain data for panels (value, unit, what is allowed).

:func:`describe_instrument` walks an instrument's QCoDeS parameters in the station
process; the :class:`ParameterInfo` records cross the process boundary to the GUI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class ParameterInfo:
    """One instrument parameter as a panel shows it (plain data: crosses processes).

    Attributes:
        path: settings key path within the instrument, e.g. ``"ch1.threshold_v"``.
        label: human name (the QCoDeS label).
        unit: unit text (``"ps"``, ``"Hz"``...; empty if none).
        kind: ``"number"``, ``"integer"``, ``"choice"``, ``"bool"`` or ``"text"`` (a panel types
            what the user enters by it; the child's validator has the last word).
        settable: False for read-only values (temperatures, serial numbers...).
        value: the last known value.
        allowed: what values are allowed, in words (the station's error text).
        choices: the allowed values for ``kind == "choice"``.
        minimum: lower limit for numbers (None if open).
        maximum: upper limit for numbers (None if open).
        doc: the parameter's docstring, for a tooltip.
    """

    path: str
    label: str
    unit: str
    kind: str
    settable: bool
    value: Any
    allowed: str = ""
    choices: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    doc: str = ""



def describe_instrument(instrument: Any) -> list[ParameterInfo]:
    """Every parameter of ``instrument`` and its submodules, as :class:`ParameterInfo`."""
    from labctl.station.settings import describe_allowed

    infos: list[ParameterInfo] = []

    def walk(node: Any, prefix: str) -> None:
        for name, parameter in getattr(node, "parameters", {}).items():
            if name == "IDN":
                continue
            vals = parameter.vals
            vals_name = type(vals).__name__ if vals is not None else ""
            valid = getattr(vals, "valid_values", None)
            kind, choices, low, high = "text", (), None, None
            if vals_name in ("Numbers", "Ints"):
                kind = "integer" if vals_name == "Ints" else "number"
                low, high = getattr(vals, "_min_value", None), getattr(vals, "_max_value", None)
                low = None if low is None or abs(low) == float("inf") else float(low)
                high = None if high is None or abs(high) == float("inf") else float(high)
            elif vals_name == "Enum" and valid is not None:
                kind, choices = "choice", tuple(sorted(valid, key=str))
            elif vals_name == "Bool":
                kind = "bool"
            elif getattr(vals, "is_numeric", False):  # a driver's own numeric validator (EM gain guard...)
                kind = "number"
            try:
                value = parameter.get_latest()
            except Exception as exc:  # noqa: BLE001 - shown as the value
                value = f"<{type(exc).__name__}: {exc}>"
            infos.append(ParameterInfo(
                path=prefix + name, label=str(parameter.label), unit=str(parameter.unit or ""), kind=kind,
                settable=bool(parameter.settable), value=_plain(value),
                allowed=describe_allowed(parameter) if parameter.settable else "", choices=choices,
                minimum=low, maximum=high, doc=(parameter.__doc__ or "").strip().split("\n")[0],
            ))
        for sub_name, sub in getattr(node, "submodules", {}).items():
            walk(sub, f"{prefix}{sub_name}.")

    walk(instrument, "")
    return infos


def _plain(value: Any) -> Any:
    """A value that pickles cheaply and shows well (numpy scalars -> Python)."""
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", 1) == 0:
        return item()
    return value


def _nest(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``{"ch1.threshold_v": 0.5}`` -> ``{"ch1": {"threshold_v": 0.5}}`` (station settings shape)."""
    nested: dict[str, Any] = {}
    for path, value in settings.items():
        node = nested
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested

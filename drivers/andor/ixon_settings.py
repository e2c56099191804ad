"""Validators and the refusal error of the iXon driver's settings (nothing here talks to the camera)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from qcodes.validators import Ints, Validator

from drivers.andor.atmcd import LIMITS
from drivers.errors import DriverError


class CameraSettingError(DriverError, ValueError):
    """A camera setting was refused by the driver before anything was sent."""


class PositiveNumber(Validator[float]):
    """A finite number > 0 and <= ``max_value`` (in ``unit``)."""

    is_numeric = True

    def __init__(self, max_value: float, unit: str) -> None:
        self._max = float(max_value)
        self._unit = unit
        self._valid_values = (min(1.0, self._max),)

    def validate(self, value: float, context: str = "") -> None:
        ok_type = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
        if not (ok_type and math.isfinite(value) and 0 < value <= self._max):
            raise ValueError(f"{value!r} is invalid: must be > 0 and <= {self._max:g} ({self._unit}); {context}")

    def __repr__(self) -> str:
        return f"a number > 0 and <= {self._max:g}"


class EmGain(Validator[int]):
    """EM gain in ``[low, 1000]``; above 300 only while ``advanced()`` is true (sensor damage risk)."""

    is_numeric = True

    def __init__(self, low: int, advanced: Callable[[], bool]) -> None:
        self._low = int(low)
        self._advanced = advanced
        self._valid_values = (self._low, LIMITS["em_gain_safe_max"])

    def validate(self, value: int, context: str = "") -> None:
        safe, top = LIMITS["em_gain_safe_max"], LIMITS["em_gain_max_advanced"]
        Ints(self._low, top).validate(value, context)
        if value > safe and not self._advanced():
            raise ValueError(
                f"em_gain = {value}: above {safe} needs em_advanced = True, set explicitly first. "
                f"EM gains above {safe} can permanently damage the sensor under strong light, and the "
                f"manual advises against more than {top} and against more gain than needed to beat "
                f"the read noise; nothing was sent to the camera; {context}"
            )

    def __repr__(self) -> str:
        return (
            f"an integer between {self._low} and {LIMITS['em_gain_safe_max']} "
            f"(up to {LIMITS['em_gain_max_advanced']} with em_advanced = True)"
        )

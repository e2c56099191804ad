"""The simulated iXon's thermoelectric cooler: sensor temperature and SDK2 temperature status.

The sensor temperature ramps linearly (``EmccdModel.thermal_rate_c_per_s``, fast in
the sim) towards the set point (cooler on; not below ``coldest_in_air_c``) or ambient
(off), on a wall clock.  ``status()`` gives the SDK2 code ``GetTemperature`` returns:
OFF, NOT_REACHED while ramping (or for ever if the set point is below what air
cooling reaches), NOT_STABILIZED for ``stabilize_s`` after reaching it, then
STABILIZED; DRIFT after ``perturb`` moved a stabilised sensor off its set point.
The state is physical: it survives the library's Initialize/ShutDown.
Dark current follows this temperature (``EmccdModel.dark_e_per_px_s``): frames exposed
during the ramp (e.g. the first run right after a station switched the cooler on) have
genuinely more dark charge; ``andor_camera`` evaluates it over each frame's exposure window.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from sim_backends.emccd_frames import EmccdModel

TEMP_OFF, TEMP_NOT_STABILIZED, TEMP_STABILIZED, TEMP_NOT_REACHED, TEMP_DRIFT = 20034, 20035, 20036, 20037, 20040


class SensorCooler:
    """Temperature of the sensor under the cooler, brought up to date on every call.

    Args:
        model: the camera head's thermal numbers.
        clock: wall clock in s.
    """

    def __init__(self, model: EmccdModel, clock: Callable[[], float]) -> None:
        self._model = model
        self._clock = clock
        self.temperature_c = model.ambient_c
        self.cooler_on = False
        self.setpoint_c = 20
        self._t_thermal = clock()
        self._reached_at: float | None = None
        self._drifting = False

    def update(self) -> float:
        """Ramp the temperature up to now; return it (degC)."""
        now = self._clock()
        dt = max(0.0, now - self._t_thermal)
        self._t_thermal = now
        target = self._target_c()
        gap = target - self.temperature_c
        if gap == 0.0:
            return self.temperature_c
        step = self._model.thermal_rate_c_per_s * dt
        if abs(gap) <= step:
            self.temperature_c = target
            if self.cooler_on:
                self._reached_at = now - (dt - abs(gap) / self._model.thermal_rate_c_per_s)
                self._drifting = False
        else:
            self.temperature_c += math.copysign(step, gap)
        return self.temperature_c

    def set_setpoint(self, temperature_c: int) -> None:
        """New set point (degC); regulation restarts."""
        self.update()
        self.setpoint_c = int(temperature_c)
        self._restart_regulation()

    def switch_on(self) -> None:
        """Cooler on (no change if it already is)."""
        self.update()
        if not self.cooler_on:
            self.cooler_on = True
            self._restart_regulation()

    def switch_off(self) -> None:
        """Cooler off: the sensor warms towards ambient."""
        self.update()
        self.cooler_on = False
        self._restart_regulation()

    def perturb(self, delta_c: float) -> None:
        """Move the temperature by ``delta_c`` now (a stabilised cooler then reports DRIFT)."""
        self.update()
        if self.status() == TEMP_STABILIZED:
            self._drifting = True
        self.temperature_c += float(delta_c)
        self._reached_at = None

    def status(self) -> int:
        """The SDK2 temperature status code (``DRV_TEMP_*``) as of the last update."""
        if not self.cooler_on:
            return TEMP_OFF
        if self._drifting:
            return TEMP_DRIFT
        if self._target_c() != self.setpoint_c or self._reached_at is None:
            return TEMP_NOT_REACHED
        if self._clock() - self._reached_at < self._model.stabilize_s:
            return TEMP_NOT_STABILIZED
        return TEMP_STABILIZED

    def _target_c(self) -> float:
        if not self.cooler_on:
            return self._model.ambient_c
        return max(float(self.setpoint_c), self._model.coldest_in_air_c)

    def _restart_regulation(self) -> None:
        self._drifting = False
        self._reached_at = self._clock() if self.cooler_on and self.temperature_c == self._target_c() else None

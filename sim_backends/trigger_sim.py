"""Simulated function-generator channel that triggers the simulated laser in the shared scene."""

from __future__ import annotations

from typing import Any


class SimTriggerOutput:
    """A trigger output (labctl.interfaces.TriggerOutput) wired to the scene's laser.

    Switching it on makes the scene's laser pulse (sync tags and emitter photons
    appear); its frequency is the scene's repetition rate.
    """

    def __init__(self, scene: Any) -> None:
        self._scene = scene

    def set_frequency_hz(self, frequency_hz: float) -> None:
        self._scene.set_repetition_rate_hz(float(frequency_hz))

    def frequency_hz(self) -> float:
        return float(self._scene.repetition_rate_hz())

    def set_enabled(self, enabled: bool) -> None:
        self._scene.set_excitation(bool(enabled))

    def enabled(self) -> bool:
        return bool(self._scene.excitation_enabled())

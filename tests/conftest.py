"""Shared fixtures: stations on the simulated microscope, built and closed per test."""

from __future__ import annotations

import copy
from typing import Any, Callable

import pytest

from labctl.station.station import Station, StationConfig


def sim_config(time_scale: float = 4.0, seed: int = 1, scene: dict | None = None,
               engine: dict | None = None, tagger_settings: dict | None = None,
               library_options: dict | None = None, spad_limit_cps: float = 5e6,
               camera_options: dict | None = None) -> StationConfig:
    """The built-in simulated station with test overrides (faster-than-real-time clock by default).

    ``camera_options``: library_options of the simulated camera (e.g. ``{"drop_frame_indices": [5]}``).
    """
    data: dict[str, Any] = copy.deepcopy(StationConfig.load().data)
    data["scene"] = {"seed": seed, **(scene or {"emitter": {"kind": "single_qd"}})}
    data["engine"] = {**data.get("engine", {}), "poll_interval_ms": 20, **(engine or {})}
    tagger = data["instruments"]["tagger"]
    tagger["library_options"] = {"time_scale": time_scale, **(library_options or {})}
    tagger["settings"] = {**tagger.get("settings", {}), **(tagger_settings or {})}
    if camera_options and "camera" in data["instruments"]:
        camera = data["instruments"]["camera"]
        camera["library_options"] = {**(camera.get("library_options") or {}), **camera_options}
    for role in ("spad_a", "spad_b"):
        data["instruments"][role]["settings"]["max_count_rate_cps"] = spad_limit_cps
    return StationConfig.from_dict(data, source="<test station>")


@pytest.fixture
def make_station() -> Callable[..., Station]:
    """Build stations from sim_config(**overrides); all are closed after the test."""
    built: list[Station] = []

    def factory(**overrides: Any) -> Station:
        station = Station(sim_config(**overrides))
        built.append(station)
        return station

    yield factory
    for station in built:
        station.close()

"""Shared fixtures: stations on the simulated microscope, built and closed per test."""

from __future__ import annotations

import copy
import os
from typing import Any, Callable

import pytest

# The tests run the production numba kernels (compiled at first use if numba's cache is empty), never
# the first-run numpy ones unless a test asks (labctl.analysis.kernel_backend.chosen, or a subprocess
# without this variable); and no test process starts a background compiler.
os.environ.setdefault("LABCTL_KERNELS", "numba")

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


def gui_screenshot(tmp_path, station_data: dict, after_s: float) -> tuple[Any, Any]:
    """Run ``labctl gui --screenshot`` (offscreen) on a station file made of ``station_data``;
    return the finished process and the image it wrote (a ``QImage``, null if none)."""
    import os
    import subprocess
    import sys

    import yaml
    from PyQt6 import QtGui

    station = tmp_path / "station.yaml"
    station.write_text(yaml.safe_dump(station_data))
    png = tmp_path / "screenshot.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "labctl.cli", "gui", "--config", str(station), "--screenshot",
                           str(png), "--after", str(after_s)], env=env, capture_output=True, text=True, timeout=180,
                          cwd=tmp_path)
    return proc, QtGui.QImage(str(png))

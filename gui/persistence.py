"""What the window remembers between sessions (QSettings): layout, panel settings, record folder.

Panel settings are kept per station file (a hash of its source) and applied again at
the next start through the station's own validation.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from PyQt6 import QtCore, QtWidgets


class WindowSettings:
    """The window's persisted state.

    Args:
        settings_path: an INI file (default: the user's QSettings for ``labctl``); tests give a temporary file.
        station_source: the station file's source, which keys the panel settings.
    """

    def __init__(self, settings_path: str | Path | None, station_source: str) -> None:
        if settings_path is not None:
            self.qsettings = QtCore.QSettings(str(settings_path), QtCore.QSettings.Format.IniFormat)
        else:
            self.qsettings = QtCore.QSettings("labctl", "labctl-gui")
        self.station_key = "station_" + hashlib.sha1(station_source.encode()).hexdigest()[:12]

    def restore_layout(self, window: QtWidgets.QMainWindow) -> None:
        geometry = self.qsettings.value("window/geometry")
        state = self.qsettings.value("window/state")
        if isinstance(geometry, QtCore.QByteArray):
            window.restoreGeometry(geometry)
        if isinstance(state, QtCore.QByteArray):
            window.restoreState(state)

    def save_layout(self, window: QtWidgets.QMainWindow) -> None:
        self.qsettings.setValue("window/geometry", window.saveGeometry())
        self.qsettings.setValue("window/state", window.saveState())
        self.qsettings.sync()

    def saved_settings(self, role: str) -> dict[str, Any]:
        """Settings changed in ``role``'s panel in earlier sessions ({path: value})."""
        text = self.qsettings.value(f"{self.station_key}/{role}", "")
        try:
            return dict(json.loads(text)) if text else {}
        except (TypeError, ValueError):
            return {}

    def remember(self, role: str, changes: dict[str, Any] | None) -> None:
        """Add ``changes`` to the saved settings of ``role`` (None: forget them all)."""
        saved = {} if changes is None else {**self.saved_settings(role), **changes}
        self.qsettings.setValue(f"{self.station_key}/{role}", json.dumps(saved) if saved else "")
        self.qsettings.sync()

    @property
    def record_folder(self) -> str:
        return str(self.qsettings.value("record/folder", "") or "")

    @record_folder.setter
    def record_folder(self, folder: str) -> None:
        self.qsettings.setValue("record/folder", folder)

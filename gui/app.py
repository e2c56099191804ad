"""``labctl gui``: the application around the main window, and its ``--screenshot`` run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from PyQt6 import QtCore, QtWidgets

from gui.main_window import MainWindow
from labctl.station.station import StationConfig


def run_app(config_path: str | Path | StationConfig | None = None, screenshot: str | Path | None = None,
            after_s: float = 3.0) -> int:
    """The ``labctl gui`` entry point: show the window; with ``screenshot``, run live for
    ``after_s`` seconds, save an image of the window and exit (non-zero if anything failed).

    ``config_path``: a station file, or an already built config (e.g. a replay station)."""
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["labctl gui"])
    config = config_path if isinstance(config_path, StationConfig) else StationConfig.load(config_path)
    window = MainWindow(config, restore_layout=screenshot is None)
    window.show()
    if screenshot is None:
        return app.exec()
    result = {"code": 0}

    def fail(message: str) -> None:
        print(f"labctl gui: {message}", file=sys.stderr)
        result["code"] = 1
        window.close()
        app.quit()

    def grab() -> None:
        window.refresh()  # the newest poll, every view
        if not window.grab().save(str(screenshot)):
            fail(f"could not write {screenshot}")
            return
        window.stop_engine()

    def ended(summary: Any) -> None:
        if not summary.clean:  # the image shows the fault (the last views, the message)
            window.refresh()
            window.grab().save(str(screenshot))
            fail(window.message_label.text().replace("\u200b", ""))
            return
        window.close()
        app.quit()

    def failed(_: str) -> None:
        """The station could not be built or its process is gone: the image shows it.  Runs after
        the window's own slot (connected first), so the message line names the instrument."""
        window.refresh()
        window.grab().save(str(screenshot))
        fail(window.message_label.text().replace("\u200b", ""))

    window.link.opened.connect(lambda _: QtCore.QTimer.singleShot(0, window.start_live))
    window.link.failed.connect(failed)
    window.link.run_ended.connect(ended)
    started = {"done": False}

    def check_started() -> None:
        if window.state == "live" and not started["done"]:
            started["done"] = True
            QtCore.QTimer.singleShot(int(after_s * 1000), grab)

    watcher = QtCore.QTimer(window)
    watcher.timeout.connect(check_started)
    watcher.start(50)
    QtCore.QTimer.singleShot(int((after_s + 120) * 1000), lambda: fail("timed out"))
    app.exec()
    return result["code"]

"""Screenshots of the lab window for the README: live, after a rate change, during a recording, on a fault.

Run: ``python docs/screenshots.py [folder]`` (default ``docs/``).  Uses the platform Qt
finds (``QT_QPA_PLATFORM=offscreen`` without a display; under Xvfb: ``xvfb-run python
docs/screenshots.py``).  Each image is taken at a scripted point of a run on the
built-in simulated microscope (tagger clock 1x; the fault: the tagger gone from the
bus after 12 s of tagger time).
"""

from __future__ import annotations

import copy
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PyQt6 import QtCore, QtWidgets  # noqa: E402

from gui.main_window import MainWindow  # noqa: E402
from labctl.station.station import StationConfig  # noqa: E402


def wait(app: QtWidgets.QApplication, condition, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the window did not get there in time")
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.01)


def settle(app: QtWidgets.QApplication, seconds: float) -> None:
    wait(app, lambda end=time.monotonic() + seconds: time.monotonic() > end, seconds + 1)


def shoot(window: MainWindow, path: Path) -> None:
    window.refresh()
    window.refresh()
    if not window.grab().save(str(path)):
        raise OSError(f"could not write {path}")
    print(f"wrote {path}", flush=True)


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["screenshots"])
    with tempfile.TemporaryDirectory() as tmp:
        window = MainWindow(StationConfig.load(), settings_path=Path(tmp) / "shots.ini", restore_layout=False)
        window.show()
        wait(app, lambda: window.state == "idle", 120)
        window.start_live()
        wait(app, lambda: window.state == "live" and "τ =" in window.views.decay_value.toPlainText(), 60)
        settle(app, 4)
        shoot(window, folder / "labctl-gui-live.png")
        field = window.panels["laser"].fields["external_rate_hz"]
        field.setText("2000000")
        field.editingFinished.emit()
        wait(app, lambda: (window.last_poll or {}).get("run_number", 0) >= 2 and window.state == "live", 60)
        wait(app, lambda: "τ =" in window.views.decay_value.toPlainText(), 60)
        settle(app, 4)
        shoot(window, folder / "labctl-gui-rate-change.png")
        window.record_panel.set_folder(tmp)
        window.record_panel.notes_edit.setPlainText("QD 7, 2 MHz")
        window.start_recording()
        wait(app, lambda: window.state == "recording" and window.last_status.get("photons_written", 0) > 0
             and window.last_status.get("elapsed_s", 0) > 6 and "τ =" in window.views.decay_value.toPlainText(), 60)
        shoot(window, folder / "labctl-gui-recording.png")
        window.stop_engine()
        wait(app, lambda: window.state == "live", 60)
        window.close()

        data = copy.deepcopy(StationConfig.load().data)
        tagger = data["instruments"]["tagger"]
        tagger["library_options"] = {**(tagger.get("library_options") or {}),
                                     "faults": [{"after_s": 12.0, "function": "TDC_getLastTimestamps", "code": 2}]}
        window = MainWindow(StationConfig.from_dict(data, source="<faulting station>"),
                            settings_path=Path(tmp) / "fault.ini", restore_layout=False)
        window.show()
        wait(app, lambda: window.state == "idle", 120)
        window.start_live()
        wait(app, lambda: window.last_summary is not None, 90)
        settle(app, 1)
        shoot(window, folder / "labctl-gui-fault.png")
        window.close()


if __name__ == "__main__":
    main()

"""Screenshots of the lab window for the README, at the end of a scripted run: live, after a
rate change, during a recording, on a fault.

Run under a display server (the images in ``docs/screenshots/`` were taken under Xvfb)::

    xvfb-run -a -s "-screen 0 1920x1200x24" python docs/screenshots.py [folder]

(default folder ``docs/screenshots/``; Debian needs ``xvfb libxcb-cursor0
libxcb-icccm4 libxcb-keysyms1`` for Qt's xcb platform).  ``QT_QPA_PLATFORM=offscreen``
works too; the script prints the Qt platform it ran on.  The run is on the built-in
simulated microscope at tagger clock 1x:

1. ``live.png``: 10 s of live view at 1 MHz, once the first fit is shown (the time
   tagger's panel open at its input checkboxes);
2. ``rate_change.png``: the excitation's repetition rate set to 2 MHz in its panel,
   6 s into the restarted live run;
3. ``recording.png``: recording ``qd_0001.h5`` with notes, the spectrum as the mean of
   10 frames, 6 s in (the spectrograph's panel open at its grating list);
4. ``fault.png``: a second station whose tagger leaves the bus after 12 s of tagger
   time (the simulated library's scheduled fault), 1 s after the fault.
"""

from __future__ import annotations

import copy
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PyQt6 import QtCore, QtGui, QtWidgets  # noqa: E402

from gui.main_window import MainWindow  # noqa: E402
from labctl.station.station import StationConfig  # noqa: E402

NAMES = ("live", "rate_change", "recording", "fault")
"""The images written, ``<name>.png``."""


def wait(app: QtWidgets.QApplication, condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the window did not get there in {timeout_s:g} s: {what}")
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.01)


def settle(app: QtWidgets.QApplication, seconds: float) -> None:
    wait(app, lambda end=time.monotonic() + seconds: time.monotonic() > end, seconds + 1, "settle")


def shoot(app: QtWidgets.QApplication, window: MainWindow, path: Path) -> None:
    window.refresh()  # the newest poll, every view
    app.processEvents()
    if not window.grab().save(str(path)):
        raise OSError(f"could not write {path}")
    print(f"wrote {path}: {window.state_label.text()}; {window.rate_label.text()}", flush=True)


def open_window(app: QtWidgets.QApplication, config: StationConfig, settings: Path) -> MainWindow:
    window = MainWindow(config, settings_path=settings, restore_layout=False)
    window.show()
    wait(app, lambda: window.state == "idle", 180, "station open")
    return window


def show_panel(app: QtWidgets.QApplication, window: MainWindow, title: str, path: str) -> None:
    """Open the instrument panel ``title`` and scroll it to the field of ``path``."""
    tabs = window.instruments.instrument_tabs
    index = next(i for i in range(tabs.count()) if tabs.itemText(i) == title)
    tabs.setCurrentIndex(index)
    app.processEvents()
    panel = window.panels[next(role for role, p in window.panels.items() if tabs.widget(index).widget() is p)]
    field = panel.fields.get(path) or panel.read_only[path]
    tabs.widget(index).ensureWidgetVisible(field, 0, 40)
    app.processEvents()


def fitted(window: MainWindow) -> bool:
    return "τ =" in window.views.decay_value.toPlainText()


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["screenshots"])
    print(f"Qt platform: {QtGui.QGuiApplication.platformName()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        window = open_window(app, StationConfig.load(), Path(tmp) / "shots.ini")
        window.start_live()
        wait(app, lambda: window.state == "live" and window.last_status.get("elapsed_s", 0) > 10 and fitted(window),
             90, "10 s live with a fit")
        show_panel(app, window, "Time tagger", "enabled_channels")
        shoot(app, window, folder / "live.png")

        show_panel(app, window, "Excitation", "external_rate_hz")
        field = window.panels["laser"].fields["external_rate_hz"]
        field.setText("2000000")
        field.editingFinished.emit()
        wait(app, lambda: (window.last_poll or {}).get("restarts", 0) >= 1 and window.state == "live", 60, "restart")
        wait(app, lambda: window.last_status.get("elapsed_s", 0) > 6 and fitted(window), 90, "6 s at 2 MHz")
        shoot(app, window, folder / "rate_change.png")

        window.record_panel.set_folder(tmp)
        window.record_panel.notes_edit.setPlainText("QD 7, 2 MHz, 4 K")
        window.spectrum_box.average_spin.setValue(10)
        window.start_recording()
        wait(app, lambda: window.state == "recording" and window.last_status.get("elapsed_s", 0) > 6
             and window.last_status.get("photons_written", 0) > 0 and fitted(window), 90, "6 s recording")
        show_panel(app, window, "Spectrograph", "grating")
        shoot(app, window, folder / "recording.png")
        window.stop_engine()
        wait(app, lambda: window.state == "live", 60, "back to live")
        window.close()

        data = copy.deepcopy(StationConfig.load().data)
        tagger = data["instruments"]["tagger"]
        tagger["library_options"] = {**(tagger.get("library_options") or {}),
                                     "faults": [{"after_s": 12.0, "function": "TDC_getLastTimestamps", "code": 2}]}
        window = open_window(app, StationConfig.from_dict(data, source="<faulting station>"), Path(tmp) / "fault.ini")
        window.start_live()
        wait(app, lambda: window.last_summary is not None, 120, "the fault")
        settle(app, 1)
        shoot(app, window, folder / "fault.png")
        window.close()


if __name__ == "__main__":
    main()

"""The lab's main window: instrument panels, live views, recording, status bar.

Presentation only.  The station is built once in a child process
(:class:`~labctl.station_process.StationProcess`) and every round trip to it
runs on the :class:`~gui.link.StationLink` worker thread.  A QTimer on the GUI
thread (50 Hz) draws the latest poll (25 Hz: status, accumulator snapshots, the
live fit, monitors) with one ``setData`` / ``setImage`` per view, half of the
views on one tick and the rest on the next (STYLE.md, "Live plots").  Window layout and the settings changed in the panels persist
(QSettings) and are applied again, through the station's validation, at the
next start.
"""

from __future__ import annotations

import collections
import hashlib
import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from PyQt6 import QtCore, QtGui, QtWidgets

from gui.link import StationLink
from gui.panels import ROLE_TITLES, InstrumentPanel
from gui.views import LiveViews
from labctl.analyze import PAPER_ON_THRESHOLD_PER_100MS
from labctl.errors import ConfigError
from labctl.station import StationConfig

LIVE_SINKS: list[tuple[str, dict]] = [
    ("labctl.analysis.G2Accumulator", {}),
    ("labctl.analysis.LifetimeAccumulator", {}),
    ("labctl.analysis.IntensityTrace", {}),
    ("labctl.analysis.FlidAccumulator", {}),
    ("labctl.analysis.spectrum_live.LiveSpectrum", {"history": 100}),  # 10 s at 10 frames/s, as the trace
]
SINK_NAMES = ("g2", "lifetime", "trace", "flid", "spectrum")
RATE_WINDOW_S = 1.0  # count rates are averaged over at least this much tagger time
FRAME_LOG_LENGTH = 20_000  # frames kept for the latency benchmark

EXCITATION_STYLES = {
    "on": ("EXCITATION ON", "background: #d9534f; color: white; font-weight: bold; padding: 6px"),
    "off": ("excitation off", "background: #5cb85c; color: white; font-weight: bold; padding: 6px"),
    "internal": ("INTERNAL CLOCK: switch on the laser's front panel",
                 "background: #f0ad4e; color: black; font-weight: bold; padding: 6px"),
}


def format_rate(rate_cps: float) -> str:
    """A count rate for the status bar: kcps from 1 kcps on, else cps."""
    return f"{rate_cps / 1e3:,.1f} kcps" if rate_cps >= 1000 else f"{rate_cps:,.0f} cps"


def settings_key_path(error: BaseException, role: str) -> str | None:
    """The parameter path (``"ch1.threshold_v"``) an error names, if it names one of ``role``."""
    prefix = f"instruments.{role}.settings."
    text = error.key_path if isinstance(error, ConfigError) else str(error)
    start = text.find(prefix)
    if start < 0:
        return None
    return text[start + len(prefix):].split(" ")[0].split(":")[0] or None


class MainWindow(QtWidgets.QMainWindow):
    """The lab window on one station.

    Args:
        config: the station (default: the built-in simulated microscope).
        settings_path: an INI file for the persisted layout and settings (default:
            the user's QSettings for ``labctl``); tests give a temporary file.
        refresh_hz: timer rate (Hz); each poll (25 Hz) is drawn in two halves on consecutive ticks.
        restore_layout: False keeps the default layout (screenshots for documentation).
    """

    def __init__(self, config: StationConfig | None = None, settings_path: str | Path | None = None,
                 refresh_hz: float = 50.0, restore_layout: bool = True) -> None:
        super().__init__()
        self.config = config if config is not None else StationConfig.load()
        if settings_path is not None:
            self.qsettings = QtCore.QSettings(str(settings_path), QtCore.QSettings.Format.IniFormat)
        else:
            self.qsettings = QtCore.QSettings("labctl", "labctl-gui")
        self._station_key = "station_" + hashlib.sha1(self.config.source.encode()).hexdigest()[:12]
        self.state = "connecting"
        self.recording_path: Path | None = None
        self.pending_record: Path | None = None
        self.last_poll: dict[str, Any] | None = None
        self.last_status: dict[str, Any] = {}
        self.last_snapshots: dict[str, Any] = {}
        self.last_summary: Any = None
        self.panels: dict[str, InstrumentPanel] = {}
        self.frames_drawn = 0
        self.frame_log: collections.deque = collections.deque(maxlen=FRAME_LOG_LENGTH)
        self._drawn_poll_time = -1.0
        self._second_half: dict[str, Any] | None = None  # a poll whose second half of views is still to draw
        self._first_half_s = 0.0  # time the first half of that poll took (s)
        self._size_checked_s = -1e9  # when the recording's file size was last read (time.monotonic)
        self._rate_ref: tuple[float, dict[int, int]] | None = None
        self._rates: dict[int, float] = {}
        self._spad_limits: dict[str, float] = {}
        self.setWindowTitle(f"labctl — {self.config.source}")
        self._build()
        if restore_layout:
            self._restore_layout()
        self.link = StationLink(self.config, SINK_NAMES)
        self.link.opened.connect(self._on_opened)
        self.link.failed.connect(self._on_failed)
        self.link.run_ended.connect(self._on_run_ended)
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(int(round(1000.0 / refresh_hz)))
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        self.link.start()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        self.views = LiveViews(PAPER_ON_THRESHOLD_PER_100MS)
        self.setCentralWidget(self.views)

        acquisition = QtWidgets.QWidget()
        acq_layout = QtWidgets.QVBoxLayout(acquisition)
        live_box = QtWidgets.QGroupBox("Live")
        live_layout = QtWidgets.QHBoxLayout(live_box)
        self.start_button = QtWidgets.QPushButton("Start")
        self.stop_button = QtWidgets.QPushButton("Stop")
        self.start_button.clicked.connect(self.start_live)
        self.stop_button.clicked.connect(self.stop_engine)
        live_layout.addWidget(self.start_button)
        live_layout.addWidget(self.stop_button)
        acq_layout.addWidget(live_box)

        record_box = QtWidgets.QGroupBox("Record")
        record_layout = QtWidgets.QFormLayout(record_box)
        self.file_edit = QtWidgets.QLineEdit(self._default_file_name())
        self.record_button = QtWidgets.QPushButton("Start recording")
        self.record_button.clicked.connect(self._toggle_record)
        self.elapsed_label = QtWidgets.QLabel("–")
        self.size_label = QtWidgets.QLabel("–")
        self.written_label = QtWidgets.QLabel("–")
        record_layout.addRow("File", self.file_edit)
        record_layout.addRow(self.record_button)
        record_layout.addRow("Elapsed", self.elapsed_label)
        record_layout.addRow("File size", self.size_label)
        record_layout.addRow("Photons written", self.written_label)
        acq_layout.addWidget(record_box)

        self.message_label = QtWidgets.QLabel("")
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        acq_layout.addWidget(self.message_label)
        acq_layout.addStretch(1)
        self.acquisition_dock = self._dock("Acquisition", acquisition, QtCore.Qt.DockWidgetArea.LeftDockWidgetArea)

        self.excitation_label = QtWidgets.QLabel("excitation: connecting…")
        self.excitation_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.instrument_tabs = QtWidgets.QToolBox()
        instruments = QtWidgets.QWidget()
        inst_layout = QtWidgets.QVBoxLayout(instruments)
        inst_layout.addWidget(self.excitation_label)
        inst_layout.addWidget(self.instrument_tabs, 1)
        self.instruments_dock = self._dock("Instruments", instruments, QtCore.Qt.DockWidgetArea.LeftDockWidgetArea)

        self.state_label = QtWidgets.QLabel("connecting…")
        self.rate_label = QtWidgets.QLabel("")
        self.temperature_label = QtWidgets.QLabel("")
        self.loss_label = QtWidgets.QLabel("")
        bar = self.statusBar()
        bar.addWidget(self.state_label)
        bar.addWidget(self.rate_label, 1)
        bar.addPermanentWidget(self.temperature_label)
        bar.addPermanentWidget(self.loss_label)
        self.resize(1600, 1000)
        self.resizeDocks([self.acquisition_dock, self.instruments_dock], [300, 700], QtCore.Qt.Orientation.Vertical)
        self.resizeDocks([self.instruments_dock], [360], QtCore.Qt.Orientation.Horizontal)
        self._update_buttons()

    def _dock(self, title: str, widget: QtWidgets.QWidget, area: QtCore.Qt.DockWidgetArea) -> QtWidgets.QDockWidget:
        dock = QtWidgets.QDockWidget(title, self)
        dock.setObjectName(f"dock_{title.lower()}")  # saveState needs names
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _default_file_name(self) -> str:
        folder = str(self.qsettings.value("record/folder", "") or "")
        name = datetime.now().strftime("run_%Y%m%d_%H%M%S.h5")
        return str(Path(folder) / name) if folder else name

    # ------------------------------------------------------------------ persistence
    def _restore_layout(self) -> None:
        geometry = self.qsettings.value("window/geometry")
        state = self.qsettings.value("window/state")
        if isinstance(geometry, QtCore.QByteArray):
            self.restoreGeometry(geometry)
        if isinstance(state, QtCore.QByteArray):
            self.restoreState(state)

    def _save_layout(self) -> None:
        self.qsettings.setValue("window/geometry", self.saveGeometry())
        self.qsettings.setValue("window/state", self.saveState())
        self.qsettings.sync()

    def saved_settings(self, role: str) -> dict[str, Any]:
        """Settings changed in ``role``'s panel in earlier sessions ({path: value})."""
        text = self.qsettings.value(f"{self._station_key}/{role}", "")
        try:
            return dict(json.loads(text)) if text else {}
        except (TypeError, ValueError):
            return {}

    def _remember(self, role: str, changes: dict[str, Any] | None) -> None:
        """Add ``changes`` to the saved settings of ``role`` (None: forget them all)."""
        saved = {} if changes is None else {**self.saved_settings(role), **changes}
        self.qsettings.setValue(f"{self._station_key}/{role}", json.dumps(saved) if saved else "")
        self.qsettings.sync()

    # ------------------------------------------------------------------ station events
    def _on_opened(self, described: dict[str, list[Any]]) -> None:
        for role, title in ROLE_TITLES.items():
            if role not in described:
                continue
            panel = InstrumentPanel(role, described[role])
            panel.change_requested.connect(self.change_setting)
            self._add_header(role, panel, described[role])
            self.panels[role] = panel
            scroll = QtWidgets.QScrollArea()
            scroll.setWidgetResizable(True)
            scroll.setWidget(panel)
            self.instrument_tabs.addItem(scroll, title)
        self.state = "idle"
        self.state_label.setText("idle")
        self._update_buttons()
        for role in self.panels:
            saved = self.saved_settings(role)
            if saved:
                self.link.call("configure", role, saved,
                               on_ok=lambda infos, r=role: self.panels[r].set_values(infos),
                               on_error=lambda exc, r=role: self._saved_refused(r, exc))

    def _add_header(self, role: str, panel: InstrumentPanel, infos: list[Any]) -> None:
        if role == "laser":
            row = QtWidgets.QHBoxLayout()
            on, off = QtWidgets.QPushButton("Excitation on"), QtWidgets.QPushButton("Excitation off")
            on.clicked.connect(lambda: self.set_excitation(True))
            off.clicked.connect(lambda: self.set_excitation(False))
            row.addWidget(on)
            row.addWidget(off)
            panel.header.addLayout(row)
        elif role in ("spad_a", "spad_b"):
            bar = QtWidgets.QProgressBar()
            bar.setRange(0, 1000)
            bar.setFormat("–")
            panel.rate_bar = bar  # type: ignore[attr-defined]
            panel.header.addWidget(QtWidgets.QLabel("count rate / protection limit"))
            panel.header.addWidget(bar)

    def _saved_refused(self, role: str, exc: BaseException) -> None:
        self._remember(role, None)
        self.show_error(f"saved {ROLE_TITLES.get(role, role)} settings were refused and forgotten: {exc}")

    def _on_failed(self, message: str) -> None:
        self.state = "failed"
        self.state_label.setText("no station")
        self.show_error(message)
        self._update_buttons()

    def _on_run_ended(self, summary: Any) -> None:
        self.last_summary = summary
        was_recording = self.recording_path is not None
        if was_recording:
            self.written_label.setText(f"{summary.photons_written:,}")
            self.elapsed_label.setText(f"{summary.duration_s:.1f} s")
            if summary.file_size_bytes:
                self.size_label.setText(f"{summary.file_size_bytes / 2**20:,.1f} MiB")
        problems = list(summary.errors)
        if not summary.clean:
            problems.insert(0, f"run ended: {summary.end_reason}")
        if summary.losses:
            problems.append(f"{len(summary.losses)} loss record(s)")
        if problems:
            self.show_error("; ".join(problems))
        elif was_recording:
            self.show_message(f"recorded {summary.photons_written:,} photons to {summary.file_path}")
        self.state = "idle"
        self.recording_path = None
        self.state_label.setText(f"idle (last run: {summary.end_reason})")
        for panel in self.panels.values():
            panel.set_editable(True)
        pending, self.pending_record = self.pending_record, None
        self._update_buttons()
        if pending is not None:
            self._start(pending)

    # ------------------------------------------------------------------ commands
    def start_live(self) -> None:
        """Run the station without a file (live views only)."""
        if self.state == "idle":
            self._start(None)

    def start_recording(self, path: str | Path | None = None) -> bool:
        """Record to ``path`` (default: the file field); a live run is ended first.  False if refused."""
        path = Path(path if path is not None else self.file_edit.text().strip())
        if not path.name:
            self.show_error("Record: give a file name")
            return False
        if path.exists():
            self.show_error(f"Record: {path} already exists; choose another name")
            return False
        if self.state not in ("idle", "live"):
            self.show_error(f"Record: not possible while {self.state}")
            return False
        self.file_edit.setText(str(path))
        self.qsettings.setValue("record/folder", str(path.parent) if str(path.parent) != "." else "")
        if self.state == "live":
            self.pending_record = path
            self.stop_engine()
        else:
            self._start(path)
        return True

    def _start(self, out_path: Path | None) -> None:
        self.message_label.setText("")
        self.message_label.setStyleSheet("")
        self.state = "starting"
        self.recording_path = out_path
        self.views.reset()
        self._rate_ref, self._rates = None, {}
        self.state_label.setText("starting…")
        self._update_buttons()
        if out_path is not None:
            for panel in self.panels.values():
                panel.set_editable(False, "settings are locked while recording (the file records one set)")
        self.link.call("start_run", str(out_path) if out_path is not None else None, sinks=LIVE_SINKS,
                       description="labctl gui" if out_path is not None else "",
                       on_ok=lambda _: self._started(out_path), on_error=self._start_failed)

    def _started(self, out_path: Path | None) -> None:
        self.link.running = True
        self.state = "recording" if out_path is not None else "live"
        self.state_label.setText(self.state)
        self._update_buttons()

    def _start_failed(self, exc: BaseException) -> None:
        self.state = "idle"
        self.recording_path = None
        for panel in self.panels.values():
            panel.set_editable(True)
        self.show_error(f"Start failed: {exc}")
        self._update_buttons()

    def stop_engine(self) -> None:
        """Ask the run to end; returns at once (the child closes the file; ``run_ended`` follows)."""
        if self.state not in ("live", "recording"):
            return
        self.state = "stopping"
        self.state_label.setText("stopping… (closing the file)" if self.recording_path else "stopping…")
        self._update_buttons()
        self.link.call("stop_run", "stopped")

    def set_excitation(self, on: bool) -> None:
        """Switch the excitation on or to its safe state (the indicator follows the instrument)."""
        self.link.call("set_excitation", on, on_ok=self._show_monitors)

    def change_setting(self, role: str, path: str, value: Any) -> None:
        """A panel asks for ``role.path = value``: the station validates, then applies or refuses."""
        panel = self.panels[role]

        def applied(infos: list[Any]) -> None:
            panel.set_values(infos)
            self._remember(role, {path: value})
            self.show_message(f"{ROLE_TITLES.get(role, role)}: {path} = {value!r}")

        def refused(exc: BaseException) -> None:
            panel.show_error(settings_key_path(exc, role) or path, str(exc))
            self.show_error(str(exc))

        self.link.call("configure", role, {path: value}, on_ok=applied, on_error=refused)

    def _toggle_record(self) -> None:
        if self.state == "recording":
            self.stop_engine()
        else:
            self.start_recording()

    def _update_buttons(self) -> None:
        ready = self.state == "idle"
        self.start_button.setEnabled(ready)
        self.stop_button.setEnabled(self.state in ("live", "recording"))
        self.record_button.setText("Stop recording" if self.state == "recording" else "Start recording")
        self.record_button.setEnabled(self.state in ("idle", "live", "recording"))
        self.file_edit.setEnabled(self.state in ("idle", "live"))

    def show_error(self, text: str) -> None:
        self.message_label.setStyleSheet("color: red")
        self.message_label.setText(text)
        self.statusBar().showMessage(text, 10_000)

    def show_message(self, text: str) -> None:
        self.message_label.setStyleSheet("")
        self.message_label.setText(text)

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802 - Qt's name
        self.timer.stop()
        self._save_layout()
        self.link.close()  # ends any run (the child closes its file), excitation safe, instruments closed
        super().closeEvent(event)

    # ------------------------------------------------------------------ refresh
    def refresh(self) -> None:
        """One tick: the newest poll's status and first half of the views; the next tick its
        second half (each view is redrawn once per poll, with one setData/setImage)."""
        started_s = time.monotonic()
        if self._second_half is not None:  # finish the poll drawn on the previous tick
            poll, self._second_half = self._second_half, None
            self.views.show(poll["snapshots"], half=1)
            self.frames_drawn += 1
            status, done_s = poll["status"], time.monotonic()
            # (time spent drawing both halves, draw end, poll received, newest tag read by the engine,
            #  its tagger time ps)
            self.frame_log.append((self._first_half_s + done_s - started_s, done_s, poll["received_s"],
                                   status.get("read_monotonic_s"), status.get("last_tag_ps")))
            return
        poll = self.link.latest()
        if poll is None or poll["received_s"] == self._drawn_poll_time:
            return
        self._drawn_poll_time = poll["received_s"]
        self.last_poll = poll
        self._show_monitors(poll["monitors"])
        if not self.link.running or self.state not in ("live", "recording", "stopping"):
            return
        status = poll["status"]
        self.last_status = status
        self._show_status(status)
        snaps = poll["snapshots"]
        if any(s is not None for s in snaps.values()):
            self.last_snapshots = snaps
            self.views.show(snaps, poll.get("fit"), half=0)
            self._second_half = poll
            self._first_half_s = time.monotonic() - started_s

    def _show_monitors(self, monitors: dict[str, Any]) -> None:
        state = str(monitors.get("excitation", "unknown"))
        text, style = EXCITATION_STYLES.get(state, (f"excitation {state}", "background: #f0ad4e; padding: 6px"))
        self.excitation_label.setText(text)
        self.excitation_label.setStyleSheet(style)
        if "camera_temperature_c" in monitors:
            self.temperature_label.setText(
                f"camera {monitors['camera_temperature_c']} °C ({monitors.get('camera_temperature_state', '?')})")
            camera = self.panels.get("camera")
            if camera is not None:
                for path, key in (("temperature_c", "camera_temperature_c"), ("temperature_state", "camera_temperature_state")):
                    if path in camera.read_only and key in monitors:
                        camera.read_only[path].setText(str(monitors[key]))

    def _show_status(self, status: dict[str, Any]) -> None:
        elapsed = float(status.get("elapsed_s", 0.0))
        counts = {int(k): int(v) for k, v in status.get("counts", {}).items()}
        if self._rate_ref is None:
            self._rate_ref = (elapsed, counts)
        elif elapsed - self._rate_ref[0] >= RATE_WINDOW_S:
            t0, c0 = self._rate_ref
            self._rates = {ch: (n - c0.get(ch, 0)) / (elapsed - t0) for ch, n in counts.items()}
            self._rate_ref = (elapsed, counts)
        names = {v: k for k, v in self.config.data["channels"].items() if v is not None}
        self.rate_label.setText("   ".join(
            f"{names.get(ch, f'ch{ch}')}: {format_rate(rate)}" for ch, rate in sorted(self._rates.items())))
        self._show_spad_rates(names)
        losses = int(status.get("losses", 0))
        self.loss_label.setText(f"losses: {losses}")
        self.loss_label.setStyleSheet("color: red; font-weight: bold" if losses else "")
        if self.recording_path is not None:
            self.elapsed_label.setText(f"{elapsed:.1f} s")
            self.written_label.setText(f"{int(status.get('photons_written', 0)):,}")
            now = time.monotonic()
            if now - self._size_checked_s >= 1.0:  # a stat() per second, not per frame
                self._size_checked_s = now
                try:
                    self.size_label.setText(f"{self.recording_path.stat().st_size / 2**20:,.1f} MiB")
                except OSError:
                    pass
        errors = status.get("errors") or []
        if errors:
            self.show_error("; ".join(str(e) for e in errors))

    def _show_spad_rates(self, names: dict[int, str]) -> None:
        channel_of = {name: ch for ch, name in names.items()}
        for role in ("spad_a", "spad_b"):
            panel = self.panels.get(role)
            if panel is None or role not in channel_of:
                continue
            limit = float(panel.infos["max_count_rate_cps"].value) if "max_count_rate_cps" in panel.infos else 0.0
            rate = self._rates.get(channel_of[role], 0.0)
            bar = panel.rate_bar  # type: ignore[attr-defined]
            if limit > 0:
                bar.setValue(int(min(1000, 1000 * rate / limit)))
                bar.setFormat(f"{rate / 1e3:,.1f} kcps of {limit / 1e3:,.0f} kcps ({100 * rate / limit:.1f} %)")


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
        window.refresh()
        window.refresh()  # both halves of the views
        if not window.grab().save(str(screenshot)):
            fail(f"could not write {screenshot}")
            return
        window.stop_engine()

    def ended(summary: Any) -> None:
        if not summary.clean:
            fail(window.message_label.text())
            return
        window.close()
        app.quit()

    window.link.opened.connect(lambda _: QtCore.QTimer.singleShot(0, window.start_live))
    window.link.failed.connect(fail)
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

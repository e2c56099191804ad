"""The main window's widgets: the live views, the Acquisition dock (Live box with the spectrum
row, Record box, message line, Reconnect) and the Instruments dock, wired to the window's
commands; the status bar.  Presentation only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PyQt6 import QtCore, QtWidgets

from gui.instruments_box import InstrumentsBox
from gui.live_box import LiveBox
from gui.record_panel import RecordPanel
from gui.spectrum_box import SpectrumBox
from gui.status_bar import MessageLine, StatusLine
from gui.views import LiveViews

if TYPE_CHECKING:
    from gui.main_window import MainWindow


def build_window(window: "MainWindow") -> None:
    """Create the window's widgets as its attributes and connect them to its commands."""
    window.views = LiveViews(None)  # ON threshold: automatic until set
    window.setCentralWidget(window.views)

    acquisition = QtWidgets.QWidget()
    acq_layout = QtWidgets.QVBoxLayout(acquisition)
    window.live_box = lb = LiveBox()
    window.start_button, window.stop_button, window.follow_box = lb.start_button, lb.stop_button, lb.follow_box
    window.start_button.clicked.connect(window.start_live)
    window.stop_button.clicked.connect(window.stop_engine)
    lb.clear_button.clicked.connect(window.clear_views)
    lb.bins_changed.connect(window.clear_views)
    window.follow_box.toggled.connect(window.views.set_follow)
    window.views.follow_changed.connect(window.follow_box.setChecked)
    lb.threshold_spin.valueChanged.connect(lambda _: window.views.set_threshold(lb.threshold_per_100ms()))
    window.views.threshold_changed.connect(lambda value: lb.threshold_spin.setValue(round(value)))
    window.spectrum_box = SpectrumBox()
    window.spectrum_box.changed.connect(lambda: window.views.set_spectrum_view(
        window.spectrum_box.frames(), window.spectrum_box.autoscale()))
    lb.layout().addWidget(QtWidgets.QLabel("spectrum"), 5, 0)  # a row of the Live box
    lb.layout().addWidget(window.spectrum_box, 5, 1, 1, 2)
    acq_layout.addWidget(lb)

    window.record_panel = RecordPanel(window.persisted.record_folder)
    rp = window.record_panel
    window.file_edit, window.record_button = rp.file_edit, rp.record_button
    window.elapsed_label, window.size_label, window.written_label = rp.elapsed_label, rp.size_label, rp.written_label
    window.record_button.clicked.connect(window._toggle_record)
    acq_layout.addWidget(window.record_panel)

    window.message_line = MessageLine()
    window.message_label = window.message_line.label
    acq_layout.addWidget(window.message_line, 1)
    window.reconnect_button = QtWidgets.QPushButton("Reconnect")
    window.reconnect_button.setToolTip("close the station and open it again (every instrument connected "
                                     "anew), then back to live; the views keep the last data meanwhile")
    window.reconnect_button.clicked.connect(window.reconnect)
    window.reconnect_button.hide()
    acq_layout.addWidget(window.reconnect_button)
    window.acquisition_dock = _dock(window, "Acquisition", acquisition, QtCore.Qt.DockWidgetArea.LeftDockWidgetArea)

    names = {ch: name for name, ch in window.config.data["channels"].items() if ch is not None}
    window.instruments = InstrumentsBox(names)
    window.panels = window.instruments.panels
    window.excitation_label = window.instruments.excitation_label
    window.instruments.change_requested.connect(window.change_setting)
    window.instruments.excitation_requested.connect(window.set_excitation)
    window.instruments_dock = _dock(window, "Instruments", window.instruments, QtCore.Qt.DockWidgetArea.LeftDockWidgetArea)

    window.status_line = StatusLine(window.statusBar(), names)
    sl = window.status_line
    window.state_label, window.rate_label, window.progress_bar = sl.state_label, sl.rate_label, sl.progress_bar
    window.temperature_label, window.loss_label = sl.temperature_label, sl.loss_label
    window.resize(1600, 1000)
    window.resizeDocks([window.acquisition_dock, window.instruments_dock], [300, 700], QtCore.Qt.Orientation.Vertical)
    window.resizeDocks([window.instruments_dock], [360], QtCore.Qt.Orientation.Horizontal)
    window._update_buttons()


def _dock(window: "MainWindow", title: str, widget: QtWidgets.QWidget,
          area: QtCore.Qt.DockWidgetArea) -> QtWidgets.QDockWidget:
    dock = QtWidgets.QDockWidget(title, window)
    dock.setObjectName(f"dock_{title.lower()}")  # saveState needs names
    dock.setWidget(widget)
    window.addDockWidget(area, dock)
    return dock

"""The Instruments dock: the excitation indicator and one panel per instrument.

Presentation only: the panels ask for changes (``change_requested``), the
excitation buttons ask for the excitation (``excitation_requested``); the window
sends both to the station process.  Monitors (excitation state, camera
temperature) and the SPAD count rates against their protection limit are drawn here.
"""

from __future__ import annotations

from typing import Any, Mapping

from PyQt6 import QtCore, QtWidgets

from gui.messages import ROLE_TITLES
from gui.panels import InstrumentPanel
from gui.status_bar import set_style

EXCITATION_STYLES = {
    "on": ("EXCITATION ON", "background: #d9534f; color: white; font-weight: bold; padding: 6px"),
    "off": ("excitation off", "background: #5cb85c; color: white; font-weight: bold; padding: 6px"),
    "internal": ("INTERNAL CLOCK: switch on the laser's front panel",
                 "background: #f0ad4e; color: black; font-weight: bold; padding: 6px"),
}


NEAR_LIMIT_FRACTION = 0.8
"""A SPAD's rate readout turns amber from this fraction of its protection limit (red above it)."""
RATE_STYLES = {
    "ok": "font-size: 18pt; font-weight: bold; padding: 2px",
    "near": "font-size: 18pt; font-weight: bold; padding: 2px; background: #f0ad4e; color: black",
    "over": "font-size: 18pt; font-weight: bold; padding: 2px; background: #d9534f; color: white",
}


def rate_level(rate_cps: float, limit_cps: float) -> str:
    """``"ok"``, ``"near"`` (from NEAR_LIMIT_FRACTION of the limit) or ``"over"`` (above it)."""
    if limit_cps <= 0:
        return "ok"
    if rate_cps > limit_cps:
        return "over"
    return "near" if rate_cps >= NEAR_LIMIT_FRACTION * limit_cps else "ok"


class InstrumentsBox(QtWidgets.QWidget):
    """The excitation indicator over a tool box of instrument panels.

    Args:
        channel_names: the station's role of each tagger input (``{0: "laser_sync", ...}``).
    """

    change_requested = QtCore.pyqtSignal(str, str, object)  # role, path, value
    excitation_requested = QtCore.pyqtSignal(bool)

    def __init__(self, channel_names: Mapping[int, str] | None = None,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.channel_names = dict(channel_names or {})  # the station's role of each tagger input
        self.panels: dict[str, InstrumentPanel] = {}
        self.excitation_buttons: tuple[QtWidgets.QPushButton, ...] = ()
        self.excitation_label = QtWidgets.QLabel("excitation: connecting…")
        self.excitation_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.excitation_label.setWordWrap(True)
        self.instrument_tabs = QtWidgets.QToolBox()
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.excitation_label)
        layout.addWidget(self.instrument_tabs, 1)

    def add_panels(self, described: Mapping[str, list[Any]]) -> None:
        """One panel per instrument described (``{role: [ParameterInfo]}``), in ROLE_TITLES order."""
        for role, title in ROLE_TITLES.items():
            if role not in described:
                continue
            panel = InstrumentPanel(role, described[role], channel_names=self.channel_names)
            panel.change_requested.connect(self.change_requested)
            self._add_header(role, panel)
            self.panels[role] = panel
            scroll = QtWidgets.QScrollArea()
            scroll.setWidgetResizable(True)
            scroll.setWidget(panel)
            self.instrument_tabs.addItem(scroll, title)

    def _add_header(self, role: str, panel: InstrumentPanel) -> None:
        if role == "laser":
            row = QtWidgets.QHBoxLayout()
            on, off = QtWidgets.QPushButton("Excitation on"), QtWidgets.QPushButton("Excitation off")
            on.clicked.connect(lambda: self.excitation_requested.emit(True))
            off.clicked.connect(lambda: self.excitation_requested.emit(False))
            self.excitation_buttons = (on, off)
            row.addWidget(on)
            row.addWidget(off)
            panel.header.addLayout(row)
        elif role in ("spad_a", "spad_b"):
            bar = QtWidgets.QProgressBar()
            bar.setRange(0, 1000)
            bar.setFormat("–")
            readout = QtWidgets.QLabel("– kcps")
            readout.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
            readout.setStyleSheet(RATE_STYLES["ok"])
            panel.rate_bar, panel.rate_readout = bar, readout  # type: ignore[attr-defined]
            panel.header.addWidget(readout)
            panel.header.addWidget(QtWidgets.QLabel("count rate / protection limit"))
            panel.header.addWidget(bar)

    def show_described(self, described: Mapping[str, list[Any]]) -> None:
        """Every panel shows the instrument's values (a re-read after a change or a run start)."""
        for role, infos in described.items():
            if role in self.panels:
                self.panels[role].set_values(infos, only_changed=True)

    def set_recording(self, recording: bool) -> None:
        """Lock the excitation buttons while a recording runs (the run switches the excitation)."""
        for button in self.excitation_buttons:
            button.setEnabled(not recording)
            button.setToolTip("locked while recording (the run switches the excitation)" if recording else "")

    def show_monitors(self, monitors: Mapping[str, Any]) -> None:
        state = str(monitors.get("excitation", "unknown"))
        text, style = EXCITATION_STYLES.get(state, (f"excitation {state}", "background: #f0ad4e; padding: 6px"))
        self.excitation_label.setText(text)
        set_style(self.excitation_label, style)
        camera = self.panels.get("camera")
        if camera is not None:
            for path, key in (("temperature_c", "camera_temperature_c"), ("temperature_state", "camera_temperature_state")):
                if path in camera.read_only and key in monitors:
                    camera.read_only[path].setText(str(monitors[key]))

    def show_spad_rates(self, rates_cps: Mapping[int, float], channel_names: Mapping[int, str]) -> None:
        """Each SPAD's count rate (cps) against its protection limit."""
        channel_of = {name: ch for ch, name in channel_names.items()}
        for role in ("spad_a", "spad_b"):
            panel = self.panels.get(role)
            if panel is None or role not in channel_of:
                continue
            limit = float(panel.infos["max_count_rate_cps"].value) if "max_count_rate_cps" in panel.infos else 0.0
            rate = rates_cps.get(channel_of[role], 0.0)
            bar, readout = panel.rate_bar, panel.rate_readout  # type: ignore[attr-defined]
            readout.setText(f"{rate / 1e3:,.1f} kcps")
            set_style(readout, RATE_STYLES[rate_level(rate, limit)])
            if limit > 0:
                bar.setValue(int(min(1000, 1000 * rate / limit)))
                bar.setFormat(f"{rate / 1e3:,.1f} kcps of {limit / 1e3:,.0f} kcps ({100 * rate / limit:.1f} %)")

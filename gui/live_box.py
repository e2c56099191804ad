"""The Live box: start/stop, and what the views do (follow, pause, clear, ON threshold).

Presentation only: Pause stops redrawing (the instruments, the run and the status
bar go on); Clear asks the station to start the live run again (every accumulator
from zero, the same settings); the ON threshold goes to the views, which compute
the ON fraction with :mod:`labctl.analysis.views`.
"""

from __future__ import annotations

from PyQt6 import QtWidgets

from labctl.analyze import PAPER_ON_THRESHOLD_PER_100MS


class LiveBox(QtWidgets.QGroupBox):
    """Buttons of a live run and of the views."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Live", parent)
        layout = QtWidgets.QGridLayout(self)
        self.start_button = QtWidgets.QPushButton("Start")
        self.stop_button = QtWidgets.QPushButton("Stop")
        self.pause_button = QtWidgets.QPushButton("Pause")
        self.pause_button.setCheckable(True)
        self.pause_button.setToolTip("freeze the views; the instruments and the run go on")
        self.clear_button = QtWidgets.QPushButton("Clear")
        self.clear_button.setToolTip("start the live views from zero (the live run restarts with the same settings)")
        self.follow_box = QtWidgets.QCheckBox("Follow")
        self.follow_box.setChecked(True)
        self.follow_box.setToolTip("axes follow the live data; a mouse zoom or pan in a view unticks it")
        self.threshold_spin = QtWidgets.QDoubleSpinBox()
        self.threshold_spin.setRange(0.0, 1e7)
        self.threshold_spin.setDecimals(0)
        self.threshold_spin.setSuffix(" per 100 ms")
        self.threshold_spin.setSpecialValueText("automatic")
        self.threshold_spin.setToolTip(
            "ON threshold of the intensity trace (counts per 100 ms); automatic: midway between the "
            f"data's OFF and ON levels, or the paper's {PAPER_ON_THRESHOLD_PER_100MS} per 100 ms; "
            "or drag the red line in the trace")
        layout.addWidget(self.start_button, 0, 0)
        layout.addWidget(self.stop_button, 0, 1)
        layout.addWidget(self.pause_button, 0, 2)
        layout.addWidget(self.clear_button, 1, 0)
        layout.addWidget(self.follow_box, 1, 1, 1, 2)
        layout.addWidget(QtWidgets.QLabel("ON threshold"), 2, 0)
        layout.addWidget(self.threshold_spin, 2, 1, 1, 2)

    def threshold_per_100ms(self) -> float | None:
        """The ON threshold typed (counts per 100 ms); None: automatic."""
        value = float(self.threshold_spin.value())
        return value if value > 0 else None

"""The Live box: start/stop, and what the views do (follow, pause, clear, ON threshold).

Presentation only: Pause stops redrawing (the instruments, the run and the status
bar go on); Clear asks the station to start the live run again (every accumulator
from zero, the same settings); the ON threshold goes to the views, which compute
the ON fraction with :mod:`labctl.analysis.views`.
"""

from __future__ import annotations

from typing import Sequence

from PyQt6 import QtCore, QtWidgets

from labctl.analysis.analyze import PAPER_ON_THRESHOLD_PER_100MS


class LiveBox(QtWidgets.QGroupBox):
    """Buttons of a live run and of the views; ``bins_changed`` when a bin width was edited."""

    bins_changed = QtCore.pyqtSignal()

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
        self.g2_bin_spin = self._spin(" ns", 0.1, 100.0, 1.0, 1, "g(2) lag bin width (ns)")
        self.trace_bin_spin = self._spin(" ms", 1.0, 1000.0, 10.0, 0, "trace and FLID bin width (ms)")
        layout.addWidget(QtWidgets.QLabel("g(2) bin"), 3, 0)
        layout.addWidget(self.g2_bin_spin, 3, 1, 1, 2)
        layout.addWidget(QtWidgets.QLabel("trace bin"), 4, 0)
        layout.addWidget(self.trace_bin_spin, 4, 1, 1, 2)

    def _spin(self, suffix: str, low: float, high: float, value: float, decimals: int,
              tip: str) -> QtWidgets.QDoubleSpinBox:
        spin = QtWidgets.QDoubleSpinBox()
        spin.setRange(low, high)
        spin.setDecimals(decimals)
        spin.setValue(value)
        spin.setSuffix(suffix)
        spin.setToolTip(tip + "; a change starts the live views again")
        spin.setKeyboardTracking(False)  # valueChanged once the number is typed, not per key
        spin.valueChanged.connect(lambda _: self.bins_changed.emit())
        return spin

    def sink_specs(self, base: Sequence[tuple[str, dict]]) -> list[tuple[str, dict]]:
        """``base`` (the window's live sinks) with the bin widths of this box."""
        g2_bin_ps = int(round(self.g2_bin_spin.value() * 1e3))
        trace_bin_ms = float(self.trace_bin_spin.value())
        specs = []
        for path, kwargs in base:
            name = path.rpartition(".")[2]
            if name == "G2Accumulator":
                kwargs = {**kwargs, "bin_width_ps": g2_bin_ps}
            elif name in ("IntensityTrace", "FlidAccumulator"):
                kwargs = {**kwargs, "bin_ms": trace_bin_ms}
            specs.append((path, dict(kwargs)))
        return specs

    def threshold_per_100ms(self) -> float | None:
        """The ON threshold typed (counts per 100 ms); None: automatic."""
        value = float(self.threshold_spin.value())
        return value if value > 0 else None

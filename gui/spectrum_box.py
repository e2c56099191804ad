"""The spectrum controls (a row of the Live box): frame averaging and autoscale of the spectrum view.

Presentation only: the spectrum view shows the running mean of the last N camera
frames (taken from the live waterfall, whose rows are the frames as delivered; lost
frames are left out) and, with autoscale on, its y range follows the part of the line
inside the visible wavelength range (a zoom on the line scales to it), in steps
(:func:`gui.view_ranges.steady_span`: kept while the line stays inside and fills half of it).
"""

from __future__ import annotations

import numpy as np
from PyQt6 import QtCore, QtWidgets

def running_mean(waterfall: np.ndarray, frames: int) -> tuple[np.ndarray | None, int]:
    """The mean of the last ``frames`` delivered spectra of a waterfall (rows oldest first; NaN rows:
    frames lost or not yet delivered), float64, and how many were averaged (None, 0: none yet)."""
    if waterfall.ndim != 2 or waterfall.shape[0] == 0:
        return None, 0
    delivered = np.flatnonzero(np.isfinite(waterfall).all(axis=1))
    if delivered.size == 0:
        return None, 0
    rows = delivered[-max(int(frames), 1):]
    return waterfall[rows].astype(np.float64).mean(axis=0), int(rows.size)


def visible_extent(x: np.ndarray, y: np.ndarray, x_low: float, x_high: float) -> tuple[float, float] | None:
    """The smallest and largest finite y of the points whose x lies in ``[x_low, x_high]``;
    None if none does."""
    inside = (x >= x_low) & (x <= x_high) & np.isfinite(y)
    if not inside.any():
        return None
    return float(y[inside].min()), float(y[inside].max())


class SpectrumBox(QtWidgets.QWidget):
    """Averaging (N frames, running mean) and autoscale of the spectrum view; ``changed`` on an edit."""

    changed = QtCore.pyqtSignal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.average_spin = QtWidgets.QSpinBox()
        self.average_spin.setRange(1, 100)
        self.average_spin.setValue(1)
        self.average_spin.setPrefix("mean of ")
        self.average_spin.setSuffix(" frames")
        self.average_spin.setSpecialValueText("latest frame")
        self.average_spin.setToolTip("the spectrum view shows the running mean of the last N frames "
                                     "(1: the latest frame); lost frames are left out")
        self.autoscale_box = QtWidgets.QCheckBox("Autoscale")
        self.autoscale_box.setChecked(True)
        self.autoscale_box.setToolTip("the y axis follows the line inside the visible wavelength range")
        layout.addWidget(self.average_spin, 1)
        layout.addWidget(self.autoscale_box)
        self.average_spin.valueChanged.connect(lambda _: self.changed.emit())
        self.autoscale_box.toggled.connect(lambda _: self.changed.emit())

    def frames(self) -> int:
        """Frames averaged (1: the latest only)."""
        return int(self.average_spin.value())

    def autoscale(self) -> bool:
        return self.autoscale_box.isChecked()

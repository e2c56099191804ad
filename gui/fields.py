"""Panel fields that say more than a bare number: the spectrograph's gratings by their
lines/mm and blaze, the tagger's input mask as one checkbox per input named by the
station's role for it, and read-only values in read-only fields.

Presentation only: a field shows the instrument's value (``set_value``) and says what
the user chose (``chosen``, with the value to send); the station validates it as any
other panel value (:meth:`labctl.station.station.Station.configure`).
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from PyQt6 import QtCore, QtWidgets

CHANNEL_TITLES = {"laser_sync": "laser sync", "spad_a": "SPAD A", "spad_b": "SPAD B", "frame_marker": "frame clock"}
"""The station's channel roles (``channels:`` in the station file) in words."""

READ_ONLY_STYLE = "QLineEdit { background: palette(window); border: 1px solid palette(mid); }"


def blaze_text(blaze: Any) -> str:
    """The blaze as the SDK's text gives it, with a space before its unit (``"500nm"`` -> ``"500 nm"``;
    a bare number is taken as nm)."""
    text = str(blaze).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return f"{text} nm"
    return re.sub(r"(\d)\s*(nm|um|µm)$", r"\1 \2", text)


def grating_text(number: int, info: Mapping[str, Any]) -> str:
    """One grating for people: ``"1: 150 lines/mm, blaze 500 nm"`` (from ``GetGratingInfo``)."""
    return f"{number}: {float(info['lines_per_mm']):g} lines/mm, blaze {blaze_text(info.get('blaze', '?'))}"


def channel_title(number: int, channel_names: Mapping[int, str]) -> str:
    """A tagger input's checkbox text: its number and the station's role for it (``"1: SPAD A"``)."""
    name = channel_names.get(number)
    if name is None:
        return f"{number}: not wired"
    return f"{number}: {CHANNEL_TITLES.get(name, name.replace('_', ' '))}"


class GratingField(QtWidgets.QComboBox):
    """The spectrograph's gratings, each as its lines/mm and blaze; the value is the 1-based number.

    Args:
        gratings: ``{number: {"lines_per_mm": ..., "blaze": ...}}`` (the driver's ``grating_info``).
    """

    chosen = QtCore.pyqtSignal(object)

    def __init__(self, gratings: Mapping[Any, Mapping[str, Any]], parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        for number in sorted(gratings, key=int):
            self.addItem(grating_text(int(number), gratings[number]), int(number))
        self.activated.connect(lambda index: self.chosen.emit(self.itemData(index)))

    def set_value(self, value: Any) -> None:
        self.setCurrentIndex(max(0, self.findData(int(value))) if isinstance(value, (int, float)) else 0)


class ChannelMaskField(QtWidgets.QWidget):
    """One checkbox per tagger input (bit N = input N), named by the station's role for it.

    Args:
        inputs: number of inputs (bits of the mask).
        channel_names: role by input number (``{0: "laser_sync", 1: "spad_a", ...}``).
    """

    chosen = QtCore.pyqtSignal(object)

    def __init__(self, inputs: int, channel_names: Mapping[int, str], parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.boxes: list[QtWidgets.QCheckBox] = []
        for number in range(inputs):
            box = QtWidgets.QCheckBox(channel_title(number, channel_names))
            box.clicked.connect(lambda _checked: self.chosen.emit(self.value()))
            layout.addWidget(box)
            self.boxes.append(box)

    def value(self) -> int:
        """The mask the boxes show (bit N set: input N streamed)."""
        return sum(1 << n for n, box in enumerate(self.boxes) if box.isChecked())

    def set_value(self, value: Any) -> None:
        mask = int(value) if isinstance(value, (int, float)) else 0
        for n, box in enumerate(self.boxes):
            box.setChecked(bool(mask >> n & 1))


class ReadOnlyField(QtWidgets.QLineEdit):
    """A value read from the instrument: selectable, not editable."""

    def __init__(self, text: str, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setReadOnly(True)
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.ClickFocus)
        self.setStyleSheet(READ_ONLY_STYLE)
        self.setToolTip("read from the instrument (read-only)")
        self.setCursorPosition(0)

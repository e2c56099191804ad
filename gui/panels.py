"""Instrument panels: one form per instrument, built from its parameters.

Presentation only.  A panel shows what
:func:`labctl.processes.station_process.describe_instrument` reports (value, unit, what
is allowed) and asks for a change with ``change_requested(role, path, value)``;
the window sends it to the station process, whose validation is the station's
own (:meth:`labctl.station.station.Station.configure`).  A refused value is shown in red
under its field, with the station's message, and the field goes back to the
instrument's value.  The error stays until the field holds a valid value again (an
applied change, or the user confirming the instrument's value) or a run starts.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from PyQt6 import QtCore, QtWidgets

from gui.fields import ChannelMaskField, GratingField, ReadOnlyField, channel_title
from gui.messages import ROLE_TITLES, breakable

__all__ = ["ROLE_TITLES", "InstrumentPanel", "format_value", "parse_value"]


SHOWN_BY_ANOTHER_FIELD = {"spectrograph": ("grating_info",)}
"""Read-only parameters that another field already says (the grating list gives each grating's info)."""


def parse_value(text: str, kind: str) -> Any:
    """What the user typed, as the value to send: numbers as int when integral text, else float.

    The station's validator decides whether it is allowed; text that is no number is
    sent as it is, so that the refusal names the value the user typed.
    """
    text = text.strip()
    if kind in ("number", "integer"):
        try:
            return int(text)
        except ValueError:
            try:
                return float(text)
            except ValueError:
                return text
    return text


UNIT_WORDS = {"degC": "°C", "um": "µm", "deg": "°", "ohm": "Ω", "counts/s": "counts per s"}
"""Units as drivers spell them (ASCII) and as a label shows them."""


def field_label(info: Any) -> str:
    """A field's label for people: the parameter's own label (QCoDeS ``label``; its name with
    spaces when the driver gave none) and its unit."""
    name = info.path.rpartition(".")[2]
    text = info.label if info.label and info.label != name else name.replace("_", " ")
    for suffix in ("_hz", "_ps", "_ns", "_s", "_v", "_nm", "_um", "_mm", "_c", "_cps", "_percent", "_vpp", "_deg"):
        if info.unit and name.endswith(suffix) and text.endswith(suffix.replace("_", " ")):
            text = text[: -len(suffix)]  # the unit follows in brackets
            break
    unit = UNIT_WORDS.get(info.unit, info.unit)
    return text + (f" ({unit})" if unit else "")


def group_title(role: str, group: str, channel_names: Mapping[int, str]) -> str:
    """A group of parameters for people: a tagger input with its role (``"ch1"`` -> ``"Input 1: SPAD A"``),
    a generator channel (``"ch2"`` -> ``"Channel 2"``); other groups as they are named."""
    match = re.fullmatch(r"ch(\d+)", group)
    if match is None:
        return group.replace("_", " ")
    if role == "tagger":
        return "Input " + channel_title(int(match.group(1)), channel_names)
    return f"Channel {match.group(1)}"


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - values without a plain truth (arrays): treat as changed
        return False


def format_value(value: Any) -> str:
    """A value as a field shows it."""
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)


class InstrumentPanel(QtWidgets.QWidget):
    """A form of an instrument's parameters; edits become ``change_requested`` signals.

    Read-only parameters (no ``set_cmd``) are shown in read-only fields; the spectrograph's
    grating is a list of its gratings (lines/mm, blaze) and the tagger's input mask one
    checkbox per input, named by the station's role for it (:mod:`gui.fields`).

    Args:
        role: the station role (``"camera"``...).
        infos: its parameters (:class:`labctl.processes.station_process.ParameterInfo`).
        channel_names: the station's role of each tagger input (``{0: "laser_sync", ...}``).
    """

    change_requested = QtCore.pyqtSignal(str, str, object)

    def __init__(self, role: str, infos: Sequence[Any], parent: QtWidgets.QWidget | None = None,
                 channel_names: Mapping[int, str] | None = None) -> None:
        super().__init__(parent)
        self.role = role
        self.channel_names = dict(channel_names or {})
        self.fields: dict[str, QtWidgets.QWidget] = {}
        self.errors: dict[str, QtWidgets.QLabel] = {}
        self.read_only: dict[str, QtWidgets.QLineEdit] = {}
        self.infos = {info.path: info for info in infos}
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.header = QtWidgets.QVBoxLayout()
        layout.addLayout(self.header)
        forms: dict[str, QtWidgets.QFormLayout] = {}
        shown_elsewhere = SHOWN_BY_ANOTHER_FIELD.get(role, ())
        for info in infos:
            if info.path in shown_elsewhere:
                continue
            group, _, _ = info.path.rpartition(".")
            if group not in forms:
                title = group_title(role, group, self.channel_names)
                box = QtWidgets.QGroupBox(title) if group else QtWidgets.QWidget()
                forms[group] = QtWidgets.QFormLayout(box)
                forms[group].setContentsMargins(2, 2, 2, 2)
                # a field too wide beside its label goes under it (no horizontal scrollbar in the dock)
                forms[group].setRowWrapPolicy(QtWidgets.QFormLayout.RowWrapPolicy.WrapLongRows)
                layout.addWidget(box)
            label = field_label(info)
            if not info.settable:
                self.read_only[info.path] = ReadOnlyField(format_value(info.value))
                forms[group].addRow(label, self.read_only[info.path])
                continue
            field = self._make_field(info)
            field.setToolTip(f"{info.doc}\nallowed: {info.allowed}".strip())
            error = QtWidgets.QLabel("")
            error.setStyleSheet("color: red")
            error.setWordWrap(True)
            error.hide()
            self.fields[info.path], self.errors[info.path] = field, error
            column = QtWidgets.QVBoxLayout()
            column.setSpacing(0)
            column.addWidget(field)
            column.addWidget(error)
            forms[group].addRow(label, column)
        layout.addStretch(1)

    def _make_field(self, info: Any) -> QtWidgets.QWidget:
        special: Any = None
        gratings = self.infos.get("grating_info")
        if self.role == "spectrograph" and info.path == "grating" and gratings is not None \
                and isinstance(gratings.value, dict):
            special = GratingField(gratings.value)
        elif self.role == "tagger" and info.path == "enabled_channels" and info.maximum is not None:
            special = ChannelMaskField(int(info.maximum).bit_length(), self.channel_names)
        if special is not None:
            special.set_value(info.value)
            special.chosen.connect(lambda value, p=info.path: self.change_requested.emit(self.role, p, value))
            return special
        if info.kind in ("choice", "bool"):
            combo = QtWidgets.QComboBox()
            choices = info.choices if info.kind == "choice" else (False, True)
            for choice in choices:
                combo.addItem(str(choice), choice)
            combo.setCurrentIndex(max(0, combo.findData(info.value)))
            combo.activated.connect(lambda index, p=info.path, c=combo: self.change_requested.emit(self.role, p, c.itemData(index)))
            return combo
        edit = QtWidgets.QLineEdit(format_value(info.value))
        edit.editingFinished.connect(lambda p=info.path, e=edit, k=info.kind: self._edited(p, e, k))
        return edit

    def _edited(self, path: str, edit: QtWidgets.QLineEdit, kind: str) -> None:
        if edit.text().strip() == format_value(self.infos[path].value):
            self.clear_error(path)  # the instrument's (valid) value confirmed, or focus left without a change
            return
        self.change_requested.emit(self.role, path, parse_value(edit.text(), kind))

    def set_values(self, infos: Sequence[Any], only_changed: bool = False) -> None:
        """Show the instrument's values (after a change, a refusal or a re-read); error lines stay.
        ``only_changed``: leave fields whose value did not change alone (a re-read: no relayout)."""
        for info in infos:
            if only_changed and info.path in self.infos and _same(self.infos[info.path].value, info.value):
                continue
            self.infos[info.path] = info
            field = self.fields.get(info.path)
            if isinstance(field, (GratingField, ChannelMaskField)):
                field.set_value(info.value)
            elif isinstance(field, QtWidgets.QComboBox):
                field.setCurrentIndex(max(0, field.findData(info.value)))
            elif isinstance(field, QtWidgets.QLineEdit):
                field.setText(format_value(info.value))
            elif info.path in self.read_only:
                self.read_only[info.path].setText(format_value(info.value))
                self.read_only[info.path].setCursorPosition(0)  # a long value shows its start

    def clear_error(self, path: str) -> None:
        """Hide the error line of ``path`` (its field holds a valid value again)."""
        if path in self.errors:
            self.errors[path].hide()
            self.errors[path].setText("")

    def clear_errors(self) -> None:
        """Hide every error line (a run starts with the instrument's values, all valid)."""
        for path in self.errors:
            self.clear_error(path)

    def show_error(self, path: str, message: str) -> None:
        """Show a refusal under the field and put the field back to the instrument's value."""
        if path not in self.errors:
            return
        self.set_values([self.infos[path]])
        self.errors[path].setText(breakable(message))
        self.errors[path].show()

    def set_editable(self, editable: bool, reason: str = "") -> None:
        """Lock the fields (while recording) with the reason as tooltip."""
        for path, field in self.fields.items():
            field.setEnabled(editable)
            if not editable:
                field.setToolTip(reason)
            else:
                info = self.infos[path]
                field.setToolTip(f"{info.doc}\nallowed: {info.allowed}".strip())

"""The Record box: folder and auto-numbered file name, notes, auto-stop, progress of the recording.

Presentation only: the window starts and stops the run; this box says where the
file goes (``qd_0001.h5``, ``qd_0002.h5``... in a chosen folder, or a name typed
by hand), what notes go into it (``/user/labctl/notes``) and when the run should
stop by itself (tagger time, or photons written).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Mapping

from PyQt6 import QtWidgets

NAME_PATTERN = re.compile(r"^(?P<stem>.*?)(?P<number>\d+)\.h5$")
DEFAULT_STEM = "qd_"


def next_free_name(folder: Path, stem: str = DEFAULT_STEM, digits: int = 4) -> Path:
    """``folder/<stem>NNNN.h5`` with NNNN one above the highest such file there (0001 if none)."""
    highest = 0
    if folder.is_dir():
        for entry in folder.glob(f"{stem}*.h5"):
            match = NAME_PATTERN.match(entry.name)
            if match is not None and match.group("stem") == stem:
                highest = max(highest, int(match.group("number")))
    return folder / f"{stem}{highest + 1:0{digits}d}.h5"


def following_name(path: Path) -> Path:
    """The next free numbered name after ``path`` (``qd_0007.h5`` -> ``qd_0008.h5``, or the
    first free one above); ``name.h5`` without a number -> ``name_0001.h5``."""
    match = NAME_PATTERN.match(path.name)
    stem = match.group("stem") if match is not None else path.stem + "_"
    return next_free_name(path.parent, stem)


class RecordPanel(QtWidgets.QGroupBox):
    """The Record box.

    Args:
        folder: the folder of the first file (``""``: the working folder).
    """

    def __init__(self, folder: str = "", parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Record", parent)
        layout = QtWidgets.QFormLayout(self)
        self.folder_edit = QtWidgets.QLineEdit(folder)
        self.folder_edit.setPlaceholderText("working folder")
        self.browse_button = QtWidgets.QPushButton("Browse…")
        self.browse_button.clicked.connect(self._browse)
        folder_row = QtWidgets.QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(self.browse_button)
        self.file_edit = QtWidgets.QLineEdit(next_free_name(Path(folder or ".")).name)
        self.file_edit.setToolTip("file name in the folder (numbered names advance after each recording)")
        self.duration_spin = QtWidgets.QDoubleSpinBox()
        self.duration_spin.setRange(0.0, 1e6)
        self.duration_spin.setDecimals(1)
        self.duration_spin.setSuffix(" s")
        self.duration_spin.setSpecialValueText("until stopped")
        self.duration_spin.setToolTip("stop after this much tagger time (s); 0: until stopped")
        self.photons_spin = QtWidgets.QSpinBox()
        self.photons_spin.setRange(0, 2_000_000_000)
        self.photons_spin.setSingleStep(100_000)
        self.photons_spin.setSpecialValueText("no photon limit")
        self.photons_spin.setToolTip("stop once this many photons are written; 0: no limit")
        self.notes_edit = QtWidgets.QPlainTextEdit()
        self.notes_edit.setPlaceholderText("sample, QD, power… (saved in the file: /user/labctl/notes)")
        self.notes_edit.setMaximumHeight(60)
        self.record_button = QtWidgets.QPushButton("Start recording")
        self.elapsed_label = QtWidgets.QLabel("–")
        self.size_label = QtWidgets.QLabel("–")
        self.written_label = QtWidgets.QLabel("–")
        layout.addRow("Folder", folder_row)
        layout.addRow("File", self.file_edit)
        layout.addRow("Stop after", self._row(self.duration_spin, QtWidgets.QLabel("or"), self.photons_spin))
        layout.addRow("Notes", self.notes_edit)
        layout.addRow(self.record_button)
        self.elapsed_label.setToolTip("tagger time recorded")
        self.size_label.setToolTip("size of the file")
        self.written_label.setToolTip("photons written to the file")
        layout.addRow("Recorded", self._row(self.elapsed_label, self.size_label, self.written_label,
                                            QtWidgets.QLabel("photons")))
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Preferred, QtWidgets.QSizePolicy.Policy.Fixed)
        self._size_checked_s = -1e9  # when the file size was last read (time.monotonic)

    @staticmethod
    def _row(*widgets: QtWidgets.QWidget) -> QtWidgets.QHBoxLayout:
        row = QtWidgets.QHBoxLayout()
        for widget in widgets:
            row.addWidget(widget)
        return row

    def _browse(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Folder for recordings", self.folder_edit.text())
        if folder:
            self.set_folder(folder)

    def set_folder(self, folder: str | Path) -> None:
        """Record into ``folder``: the file name becomes the next free ``qd_NNNN.h5`` there."""
        self.folder_edit.setText(str(folder))
        self.file_edit.setText(next_free_name(Path(folder)).name)

    def path(self) -> Path:
        """The file the next recording goes to (the name as typed, in the folder unless absolute)."""
        name = Path(self.file_edit.text().strip())
        folder = self.folder_edit.text().strip()
        return name if name.is_absolute() or not folder else Path(folder) / name

    def show_path(self, path: Path) -> None:
        """Show ``path`` in the fields (folder and name)."""
        self.folder_edit.setText(str(path.parent) if str(path.parent) != "." else "")
        self.file_edit.setText(path.name)

    def advance(self) -> None:
        """After a recording: the next free numbered name."""
        self.file_edit.setText(following_name(self.path()).name)

    def duration_s(self) -> float | None:
        """Auto-stop after this much tagger time (s); None: until stopped."""
        value = float(self.duration_spin.value())
        return value if value > 0 else None

    def photon_limit(self) -> int | None:
        """Auto-stop once this many photons are written; None: no limit."""
        value = int(self.photons_spin.value())
        return value if value > 0 else None

    def notes(self) -> str:
        return self.notes_edit.toPlainText().strip()

    def set_editable(self, editable: bool) -> None:
        """Lock what describes the file while it is written."""
        for widget in (self.folder_edit, self.browse_button, self.file_edit, self.duration_spin,
                       self.photons_spin, self.notes_edit):
            widget.setEnabled(editable)

    def show_status(self, status: Mapping[str, Any], path: Path) -> None:
        """A recording's progress: elapsed tagger time, photons written, file size (read once a second)."""
        self.elapsed_label.setText(f"{float(status.get('elapsed_s', 0.0)):.1f} s")
        self.written_label.setText(f"{int(status.get('photons_written', 0)):,}")
        now = time.monotonic()
        if now - self._size_checked_s >= 1.0:  # a stat() per second, not per frame
            self._size_checked_s = now
            try:
                self.size_label.setText(f"{path.stat().st_size / 2**20:,.1f} MiB")
            except OSError:
                pass

    def show_summary(self, summary: Any) -> None:
        """A recording's end: its photons, duration and file size."""
        self.written_label.setText(f"{summary.photons_written:,}")
        self.elapsed_label.setText(f"{summary.duration_s:.1f} s")
        if summary.file_size_bytes:
            self.size_label.setText(f"{summary.file_size_bytes / 2**20:,.1f} MiB")

"""The window's status bar: state, start-up progress, count rates, camera temperature, losses.

Presentation only: the rates are the station process's (:class:`labctl.analysis.count_rates.CountRateMeter`).
Messages never go through ``QStatusBar.showMessage`` (which hides the count rates while
it shows); they have their own line in the acquisition dock.
"""

from __future__ import annotations

from typing import Any, Mapping

from PyQt6 import QtCore, QtWidgets

from gui.messages import breakable


def format_rate(rate_cps: float) -> str:
    """A count rate for the status bar: kcps from 1 kcps on, else cps."""
    return f"{rate_cps / 1e3:,.1f} kcps" if rate_cps >= 1000 else f"{rate_cps:,.0f} cps"


PREPARING_TEXT = "preparing (first run after install)"


def set_style(widget: QtWidgets.QWidget, style: str) -> None:
    """Set a widget's style sheet only if it differs (Qt re-polishes the widget on every call,
    and the count rates and losses are shown with every frame)."""
    if widget.styleSheet() != style:
        widget.setStyleSheet(style)


class StatusLine:
    """The widgets of the status bar and what they show.

    Args:
        bar: the window's status bar.
        channel_names: signal name by tagger channel (``{0: "laser_sync", ...}``).
    """

    def __init__(self, bar: QtWidgets.QStatusBar, channel_names: Mapping[int, str]) -> None:
        self.channel_names = dict(channel_names)
        self.state_label = QtWidgets.QLabel("connecting…")
        self.progress_bar = QtWidgets.QProgressBar()
        self.progress_bar.setMaximumWidth(160)
        self.progress_bar.hide()
        self.rate_label = QtWidgets.QLabel("")
        self.temperature_label = QtWidgets.QLabel("")
        self.loss_label = QtWidgets.QLabel("")
        bar.addWidget(self.state_label)
        bar.addWidget(self.progress_bar)
        bar.addWidget(self.rate_label, 1)
        bar.addPermanentWidget(self.temperature_label)
        bar.addPermanentWidget(self.loss_label)

    def show_preparing(self, done: int, total: int, what: str) -> None:
        """Start-up progress: the photon path's kernels (compiled on the first run after an install)."""
        self.progress_bar.setRange(0, total)
        self.progress_bar.setValue(done)
        self.progress_bar.show()
        self.state_label.setText(f"{PREPARING_TEXT}: photon kernels {done}/{total} ({what})")

    def done_preparing(self) -> None:
        self.progress_bar.hide()

    def show_rates(self, rates_cps: Mapping[Any, float]) -> None:
        """Rates (cps) by tagger channel; an empty mapping clears the line."""
        rates = {int(ch): float(rate) for ch, rate in rates_cps.items()}
        self.rate_label.setText("   ".join(
            f"{self.channel_names.get(ch, f'ch{ch}')}: {format_rate(rate)}" for ch, rate in sorted(rates.items())))

    def show_losses(self, losses: int) -> None:
        self.loss_label.setText(f"losses: {losses}")
        set_style(self.loss_label, "color: red; font-weight: bold" if losses else "")

    def show_temperature(self, monitors: Mapping[str, Any]) -> None:
        if "camera_temperature_c" in monitors:
            self.temperature_label.setText(
                f"camera {monitors['camera_temperature_c']} °C ({monitors.get('camera_temperature_state', '?')})")


class MessageLine(QtWidgets.QScrollArea):
    """The message line of the acquisition dock: wraps, scrolls when long (the boxes above keep
    their size), red for errors."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QtWidgets.QLabel("")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setAlignment(QtCore.Qt.AlignmentFlag.AlignTop)
        self.setWidgetResizable(True)
        self.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setWidget(self.label)
        self.setMinimumHeight(3 * self.fontMetrics().lineSpacing())

    def show_error(self, text: str) -> None:
        self.label.setStyleSheet("color: red")
        self.label.setText(breakable(text))

    def show_message(self, text: str) -> None:
        self.label.setStyleSheet("")
        self.label.setText(breakable(text))

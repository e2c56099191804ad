"""The lab's main window: live views of the engine running in its own process.

Presentation only.  The engine runs in an :class:`~labctl.engine_process.EngineProcess`
with the standard live accumulators built in the child; a QTimer on the GUI
thread (~20 Hz) takes ``status()`` and each sink's snapshot and calls
``setData`` / ``setImage`` once per view (STYLE.md, "Live plots").
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PyQt6 import QtCore, QtGui, QtWidgets

from labctl.analyze import PAPER_ON_THRESHOLD_PER_100MS
from labctl.engine_process import EngineProcess
from labctl.station import StationConfig

LIVE_SINKS: list[tuple[str, dict]] = [
    ("labctl.analysis.G2Accumulator", {}),
    ("labctl.analysis.LifetimeAccumulator", {}),
    ("labctl.analysis.IntensityTrace", {}),
    ("labctl.analysis.FlidAccumulator", {}),
]
SINK_NAMES = ("g2", "lifetime", "trace", "flid")
TRACE_BINS = 1000  # bins of the intensity trace shown
RATE_WINDOW_S = 1.0  # count rates are averaged over at least this much tagger time


def _grow_range(current: float | None, wanted: float) -> float | None:
    """New upper limit if ``wanted`` left the current range (grow by 1.5x, shrink when 4x too big)."""
    if wanted <= 0:
        return None
    if current is None or wanted > current or wanted < current / 4:
        return wanted * 1.5
    return None


class MainWindow(QtWidgets.QMainWindow):
    """Start/stop live view and recording; trace, g(2), decay and FLID views; status bar.

    Args:
        config: the station (default: the built-in simulated microscope).
        refresh_hz: view refresh rate.
    """

    def __init__(self, config: StationConfig | None = None, refresh_hz: float = 20.0) -> None:
        super().__init__()
        self.config = config if config is not None else StationConfig.load()
        self.engine: EngineProcess | None = None
        self.recording_path: Path | None = None
        self.last_status: dict[str, Any] = {}
        self.last_snapshots: dict[str, Any] = {}
        self.last_summary: Any = None
        self.frames_drawn = 0
        self._rate_ref: tuple[float, dict[int, int]] | None = None
        self._rates: dict[int, float] = {}
        self._y_top: dict[str, float] = {}
        self.setWindowTitle(f"labctl — {self.config.source}")
        self._build()
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(int(round(1000.0 / refresh_hz)))
        self.timer.timeout.connect(self.refresh)

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        pg.setConfigOptions(antialias=False, imageAxisOrder="row-major")
        central = QtWidgets.QWidget()
        layout = QtWidgets.QHBoxLayout(central)

        controls = QtWidgets.QVBoxLayout()
        live_box = QtWidgets.QGroupBox("Live")
        live_layout = QtWidgets.QHBoxLayout(live_box)
        self.start_button = QtWidgets.QPushButton("Start")
        self.stop_button = QtWidgets.QPushButton("Stop")
        self.start_button.clicked.connect(self.start_live)
        self.stop_button.clicked.connect(self.stop_engine)
        live_layout.addWidget(self.start_button)
        live_layout.addWidget(self.stop_button)
        controls.addWidget(live_box)

        record_box = QtWidgets.QGroupBox("Record")
        record_layout = QtWidgets.QFormLayout(record_box)
        self.file_edit = QtWidgets.QLineEdit(datetime.now().strftime("run_%Y%m%d_%H%M%S.h5"))
        self.record_button = QtWidgets.QPushButton("Start recording")
        self.record_button.clicked.connect(self._toggle_record)
        self.elapsed_label = QtWidgets.QLabel("–")
        self.written_label = QtWidgets.QLabel("–")
        record_layout.addRow("File", self.file_edit)
        record_layout.addRow(self.record_button)
        record_layout.addRow("Elapsed", self.elapsed_label)
        record_layout.addRow("Photons written", self.written_label)
        controls.addWidget(record_box)

        self.message_label = QtWidgets.QLabel("")
        self.message_label.setWordWrap(True)
        self.message_label.setMaximumWidth(260)
        controls.addWidget(self.message_label)
        controls.addStretch(1)
        layout.addLayout(controls)

        views = pg.GraphicsLayoutWidget()
        layout.addWidget(views, 1)
        self.trace_plot = views.addPlot(row=0, col=0, title="Intensity trace")
        self.trace_plot.setLabel("bottom", "time before now (s)")
        self.trace_plot.setLabel("left", "counts per bin")
        self.trace_plot.setClipToView(True)
        self.trace_plot.setDownsampling(auto=True, mode="peak")
        self.trace_curve = self.trace_plot.plot(pen=pg.mkPen("y"), skipFiniteCheck=True)
        self.threshold_line = pg.InfiniteLine(angle=0, pen=pg.mkPen("r", style=QtCore.Qt.PenStyle.DashLine))
        self.trace_plot.addItem(self.threshold_line)

        self.g2_plot = views.addPlot(row=0, col=1, title="g(2)")
        self.g2_plot.setLabel("bottom", "lag (ns)")
        self.g2_plot.setLabel("left", "pairs")
        self.g2_curve = self.g2_plot.plot(pen=pg.mkPen("c"), stepMode="center", skipFiniteCheck=True)

        self.decay_plot = views.addPlot(row=1, col=0, title="Decay")
        self.decay_plot.setLabel("bottom", "delay after laser pulse (ns)")
        self.decay_plot.setLabel("left", "photons")
        self.decay_plot.setLogMode(y=True)
        self.decay_curve = self.decay_plot.plot(pen=pg.mkPen("g"), connect="finite")

        self.flid_plot = views.addPlot(row=1, col=1, title="FLID")
        self.flid_plot.setLabel("bottom", "counts per bin")
        self.flid_plot.setLabel("left", "mean lifetime (ns)")
        self.flid_image = pg.ImageItem()
        self.flid_image.setColorMap(pg.colormap.get("viridis"))
        self.flid_plot.addItem(self.flid_image)

        for plot in (self.trace_plot, self.g2_plot, self.decay_plot, self.flid_plot):
            plot.disableAutoRange()
            plot.setMouseEnabled(x=False, y=False)
        self._ranges_set: set[str] = set()

        self.setCentralWidget(central)
        self.rate_label = QtWidgets.QLabel("")
        self.loss_label = QtWidgets.QLabel("")
        self.state_label = QtWidgets.QLabel("idle")
        bar = self.statusBar()
        bar.addWidget(self.state_label)
        bar.addWidget(self.rate_label, 1)
        bar.addPermanentWidget(self.loss_label)
        self.resize(1280, 800)
        self._update_buttons()

    # ------------------------------------------------------------------ engine control
    def start_live(self) -> None:
        """Run the station without a file (live view only)."""
        self._start(None)

    def start_recording(self, path: str | Path | None = None) -> bool:
        """Record to ``path`` (default: the file field); ends a live run first.  False if refused."""
        path = Path(path if path is not None else self.file_edit.text().strip())
        if not path.name:
            self.show_error("Record: give a file name")
            return False
        if path.exists():
            self.show_error(f"Record: {path} already exists; choose another name")
            return False
        self.file_edit.setText(str(path))
        return self._start(path)

    def _start(self, out_path: Path | None) -> bool:
        if self.engine is not None:
            self.stop_engine()
        self.message_label.setText("")
        self.message_label.setStyleSheet("")
        engine = EngineProcess(self.config, out_path, sinks=LIVE_SINKS,
                               description="labctl gui" if out_path is not None else "")
        try:
            engine.start()
        except Exception as exc:  # noqa: BLE001 - shown to the user as it is
            self.show_error(f"Start failed: {exc}")
            self._update_buttons()
            return False
        self.engine = engine
        self.recording_path = out_path
        self.last_snapshots = {}
        self.last_summary = None
        self._rate_ref = None
        self._rates = {}
        self.state_label.setText("recording" if out_path is not None else "live")
        self.timer.start()
        self._update_buttons()
        return True

    def stop_engine(self) -> None:
        """End the run (live or recording) and wait for the child to finish the file."""
        engine = self.engine
        if engine is None:
            return
        self.timer.stop()
        try:
            if engine.running:
                engine.stop("stopped")
            self._finish(engine.wait(timeout_s=30))
        except Exception as exc:  # noqa: BLE001
            self.show_error(f"Stop failed: {exc}")
            self.engine = None
            self._update_buttons()

    def _finish(self, summary: Any) -> None:
        """The run has ended: show how."""
        self.engine = None
        self.last_summary = summary
        if self.recording_path is not None:
            self.written_label.setText(f"{summary.photons_written:,}")
            self.elapsed_label.setText(f"{summary.duration_s:.1f} s")
        problems = list(summary.errors)
        if not summary.clean:
            problems.insert(0, f"run ended: {summary.end_reason}")
        if summary.losses:
            problems.append(f"{len(summary.losses)} loss record(s)")
        if problems:
            self.show_error("; ".join(problems))
        self.state_label.setText(f"done ({summary.end_reason})")
        self._update_buttons()

    def _toggle_record(self) -> None:
        if self.engine is not None and self.recording_path is not None:
            self.stop_engine()
        else:
            self.start_recording()

    def _update_buttons(self) -> None:
        running = self.engine is not None
        recording = running and self.recording_path is not None
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.record_button.setText("Stop recording" if recording else "Start recording")
        self.file_edit.setEnabled(not recording)

    def show_error(self, text: str) -> None:
        self.message_label.setStyleSheet("color: red")
        self.message_label.setText(text)
        self.statusBar().showMessage(text, 10_000)

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802 - Qt's name
        self.stop_engine()
        super().closeEvent(event)

    # ------------------------------------------------------------------ refresh
    def refresh(self) -> None:
        """One frame: status and snapshots from the child, one setData/setImage per view."""
        engine = self.engine
        if engine is None:
            return
        try:
            status = engine.status()
            if status.get("state") == "done":  # ended on its own (protection, error, duration)
                self.timer.stop()
                self._finish(engine.wait(timeout_s=30))
                return
            snaps = {name: engine.sink_snapshot(name) for name in SINK_NAMES}
        except Exception as exc:  # noqa: BLE001 - e.g. the child died
            self.timer.stop()
            self.engine = None
            self.show_error(f"Engine lost: {exc}")
            self._update_buttons()
            return
        self.last_status = status
        self.last_snapshots = snaps
        self._show_status(status)
        if snaps["trace"] is not None:
            self._show_trace(snaps["trace"])
        if snaps["g2"] is not None:
            self._show_g2(snaps["g2"])
        if snaps["lifetime"] is not None:
            self._show_decay(snaps["lifetime"])
        if snaps["flid"] is not None:
            self._show_flid(snaps["flid"])
        self.frames_drawn += 1

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
            f"{names.get(ch, f'ch{ch}')}: {rate / 1e3:,.1f} kcps" for ch, rate in sorted(self._rates.items())))
        losses = int(status.get("losses", 0))
        self.loss_label.setText(f"losses: {losses}")
        self.loss_label.setStyleSheet("color: red; font-weight: bold" if losses else "")
        if self.recording_path is not None:
            self.elapsed_label.setText(f"{elapsed:.1f} s")
            self.written_label.setText(f"{int(status.get('photons_written', 0)):,}")
        errors = status.get("errors") or []
        if errors:
            self.show_error("; ".join(str(e) for e in errors))

    def _set_y(self, key: str, plot: pg.PlotItem, top: float, log: bool = False) -> None:
        new = _grow_range(self._y_top.get(key), top)
        if new is not None:
            self._y_top[key] = new
            if log:
                plot.setYRange(0.0, np.log10(new), padding=0)
            else:
                plot.setYRange(0.0, new, padding=0)

    def _show_trace(self, snap: Any) -> None:
        total = snap.total[-TRACE_BINS:]
        bin_s = snap.bin_ps * 1e-12
        x = (np.arange(total.size) - total.size + 1) * bin_s
        self.trace_curve.setData(x, total.astype(np.float64), skipFiniteCheck=True)
        threshold = PAPER_ON_THRESHOLD_PER_100MS * snap.bin_ms / 100.0
        self.threshold_line.setValue(threshold)
        if "trace" not in self._ranges_set:
            self.trace_plot.setXRange(-TRACE_BINS * bin_s, 0.0, padding=0.01)
            self.trace_plot.setTitle(f"Intensity trace ({snap.bin_ms:g} ms bins; red: ON threshold)")
            self._ranges_set.add("trace")
        self._set_y("trace", self.trace_plot, max(float(total.max()) if total.size else 0.0, threshold))

    def _show_g2(self, snap: Any) -> None:
        edges_ns = snap.lag_edges_ps * 1e-3
        self.g2_curve.setData(edges_ns, snap.counts, stepMode="center", skipFiniteCheck=True)
        if "g2" not in self._ranges_set:
            self.g2_plot.setXRange(edges_ns[0], edges_ns[-1], padding=0)
            self._ranges_set.add("g2")
        self._set_y("g2", self.g2_plot, float(snap.counts.max()) if snap.counts.size else 0.0)
        if snap.g2_zero is not None:
            self.g2_plot.setTitle(f"g(2): g2(0) = {snap.g2_zero:.3f} ± {snap.g2_zero_err:.3f}")
        else:
            self.g2_plot.setTitle("g(2): g2(0) = –")

    def _show_decay(self, snap: Any) -> None:
        edges_ns = snap.bin_edges_ps * 1e-3
        centres = 0.5 * (edges_ns[:-1] + edges_ns[1:])
        summed = snap.summed.astype(np.float64)
        y = np.where(summed > 0, summed, np.nan)
        self.decay_curve.setData(centres, y, connect="finite")
        if "decay" not in self._ranges_set:
            self.decay_plot.setXRange(edges_ns[0], edges_ns[-1], padding=0)
            self._ranges_set.add("decay")
        self._set_y("decay", self.decay_plot, float(summed.max()) if summed.size else 0.0, log=True)

    def _show_flid(self, snap: Any) -> None:
        counts = snap.counts  # (intensity bins, lifetime bins): row-major image is (y rows, x columns)
        image = counts.T.astype(np.float32)
        top = float(image.max()) if image.size else 0.0
        self.flid_image.setImage(image, autoLevels=False, levels=(0.0, max(top, 1.0)))
        if "flid" not in self._ranges_set:
            ie, le = snap.intensity_edges, snap.lifetime_edges_ns
            rect = QtCore.QRectF(float(ie[0]), float(le[0]), float(ie[-1] - ie[0]), float(le[-1] - le[0]))
            self.flid_image.setRect(rect)
            self.flid_plot.setXRange(rect.left(), rect.right(), padding=0)
            self.flid_plot.setYRange(rect.top(), rect.bottom(), padding=0)
            self._ranges_set.add("flid")


def run_app(config_path: str | Path | None = None, screenshot: str | Path | None = None,
            after_s: float = 3.0) -> int:
    """The ``labctl gui`` entry point: show the window; with ``screenshot``, grab it after ``after_s`` and exit."""
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["labctl gui"])
    window = MainWindow(StationConfig.load(config_path))
    window.show()
    result = {"code": 0}
    if screenshot is not None:
        window.start_live()
        if window.engine is None:  # the start failed (shown in the window)
            print(f"labctl gui: {window.message_label.text()}", file=sys.stderr)
            return 1

        def grab() -> None:
            window.refresh()
            ok = window.grab().save(str(screenshot))
            window.stop_engine()
            summary = window.last_summary
            if not ok:
                print(f"labctl gui: could not write {screenshot}", file=sys.stderr)
                result["code"] = 1
            elif summary is None or not summary.clean:
                print(f"labctl gui: {window.message_label.text()}", file=sys.stderr)
                result["code"] = 1
            app.quit()

        QtCore.QTimer.singleShot(int(after_s * 1000), grab)
        app.exec()
        return result["code"]
    app.exec()
    window.stop_engine()
    return 0

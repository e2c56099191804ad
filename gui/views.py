"""The live views: one pyqtgraph item per view, updated with one setData/setImage per frame.

Presentation only: every number drawn comes from an accumulator snapshot (or the
live fit) computed in labctl.  Axis ranges are fixed once per run and only grown or shrunk
in steps (auto-range repainting the axes every frame halves the frame rate; STYLE.md).
Mouse zoom and pan are on: a zoom or pan by hand stops the views from following the
live range (``follow`` False, ``follow_changed`` tells the window) until ``set_follow(True)``.
"""

from __future__ import annotations

import math

from typing import Any

import numpy as np
import pyqtgraph as pg
from PyQt6 import QtCore, QtWidgets

from gui.spectrum_box import running_mean, visible_extent
from gui.view_ranges import grow_range, steady_span
from labctl.analysis.views import default_on_threshold, normalised_peak_areas, on_fraction

TRACE_BINS = 1000
"""Bins of the intensity trace shown (10 s at the default 10 ms bins)."""


class LiveViews(pg.GraphicsLayoutWidget):
    follow_changed = QtCore.pyqtSignal(bool)

    """Trace, g(2), decay, FLID, spectrum and waterfall in one graphics layout.

    The ON threshold on the trace is a dashed line: drag it, or :meth:`set_threshold`
    (None: taken from the data, or the paper's 400 per 100 ms; the overlay says which),
    with the ON fraction of the bins shown.

    Args:
        on_threshold_per_100ms: the ON/OFF threshold (counts per 100 ms); None: automatic.
    """

    threshold_changed = QtCore.pyqtSignal(float)  # dragged by hand (counts per 100 ms)

    def __init__(self, on_threshold_per_100ms: float | None = None) -> None:
        super().__init__()
        pg.setConfigOptions(antialias=False, imageAxisOrder="row-major")
        self.on_threshold_per_100ms = on_threshold_per_100ms
        self.on_fraction: float | None = None  # of the trace shown, above the threshold
        self._bin_ms = 10.0
        self.follow = True  # the axes follow the live data (False once the user zooms or pans)
        self._y_top: dict[str, float] = {}
        self._levels: dict[str, tuple[float, float]] = {}  # colour levels shown, per image (changed in steps)
        self._ranges_set: set[str] = set()
        self._spectrum_shown = (-1, -1)  # (frame index, frames lost) last drawn
        self._drawn: dict[str, Any] = {}  # per view, the snapshot object drawn last
        self.spectrum_frames = 1  # running mean of this many frames (1: the latest)
        self.spectrum_autoscale = True  # the y range follows the visible line

        self.trace_plot = self.addPlot(row=0, col=0, title="Intensity trace")
        self.trace_plot.setLabel("bottom", "time before now (s)")
        self.trace_plot.setLabel("left", "counts per bin")
        self.trace_plot.setClipToView(True)
        self.trace_plot.setDownsampling(auto=True, mode="peak")
        self.trace_curve = self.trace_plot.plot(pen=pg.mkPen("y"), skipFiniteCheck=True)
        self.threshold_line = pg.InfiniteLine(angle=0, movable=True, pen=pg.mkPen("r", style=QtCore.Qt.PenStyle.DashLine))
        self.threshold_line.sigPositionChangeFinished.connect(self._threshold_dragged)
        self.trace_plot.addItem(self.threshold_line)
        dashed = pg.mkPen("w", style=QtCore.Qt.PenStyle.DashLine)

        g2_area = self.addLayout(row=0, col=1)
        self.g2_plot = g2_area.addPlot(row=0, col=0, title="g(2)")
        self.g2_plot.setLabel("left", "pairs")
        self.g2_curve = self.g2_plot.plot(pen=pg.mkPen("c"), stepMode="center", skipFiniteCheck=True)
        self.g2_norm_plot = g2_area.addPlot(row=1, col=0)
        self.g2_norm_plot.setMaximumHeight(120)
        self.g2_norm_plot.setLabel("bottom", "lag t_B - t_A (ns)")
        self.g2_norm_plot.setLabel("left", "peak / side")
        self.g2_norm_plot.setXLink(self.g2_plot)
        self.g2_norm_plot.setYRange(0.0, 1.6, padding=0)
        self.g2_norm_plot.addItem(pg.InfiniteLine(pos=1.0, angle=0, pen=dashed))
        self.g2_norm_points = self.g2_norm_plot.plot(pen=None, symbol="o", symbolSize=7, symbolBrush="c")

        decay_area = self.addLayout(row=0, col=2)
        self.decay_plot = decay_area.addPlot(row=0, col=0, title="Decay (red: latest fit over the shaded range)")
        self.decay_plot.setLabel("left", "photons")
        self.decay_plot.setLogMode(y=True)
        self.fit_region = pg.LinearRegionItem(movable=False, brush=pg.mkBrush(255, 80, 80, 30), pen=pg.mkPen(None))
        self.decay_plot.addItem(self.fit_region)
        self.fit_region.hide()
        self.decay_curve = self.decay_plot.plot(pen=pg.mkPen("g"), connect="finite")
        self.fit_curve = self.decay_plot.plot(pen=pg.mkPen("r", width=2), connect="finite")
        self.residual_plot = decay_area.addPlot(row=1, col=0)
        self.residual_plot.setMaximumHeight(120)
        self.residual_plot.setLabel("bottom", "delay after laser pulse (ns)")
        self.residual_plot.setLabel("left", "residual (σ)")
        self.residual_plot.setXLink(self.decay_plot)
        self.residual_plot.setYRange(-5.0, 5.0, padding=0)
        self.residual_plot.addItem(pg.InfiniteLine(pos=0.0, angle=0, pen=dashed))
        self.residual_curve = self.residual_plot.plot(pen=pg.mkPen("r"), connect="finite")
        for curve in (self.fit_curve, self.residual_curve):
            # set once per fit (every few s) but repainted with the decay every frame: paint a cached pixmap
            curve.curve.setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self._fit_drawn: Any = None  # the fit whose curves are drawn (curves are set once per fit)

        self.flid_plot = self.addPlot(row=1, col=0, title="FLID")
        self.flid_plot.setLabel("bottom", "counts per bin")
        self.flid_plot.setLabel("left", "mean delay (ns)")
        self.flid_image = pg.ImageItem()
        self.flid_image.setColorMap(pg.colormap.get("viridis"))
        self.flid_plot.addItem(self.flid_image)
        self.flid_bar = pg.ColorBarItem(values=(0, 1), colorMap=pg.colormap.get("viridis"), interactive=False,
                                        label="trace bins", width=12)
        self.flid_bar.setImageItem(self.flid_image, insert_in=self.flid_plot)

        self.spectrum_plot = self.addPlot(row=1, col=1, title="Spectrum")
        self.spectrum_plot.setLabel("bottom", "wavelength (nm)")
        self.spectrum_plot.setLabel("left", "counts")
        self.spectrum_curve = self.spectrum_plot.plot(pen=pg.mkPen("m"), skipFiniteCheck=True)

        self.waterfall_plot = self.addPlot(row=1, col=2, title="Spectral time trace")
        self.waterfall_plot.setLabel("bottom", "wavelength (nm)")
        self.waterfall_plot.setLabel("left", "time before now (s)")
        self.waterfall_image = pg.ImageItem()
        self.waterfall_image.setColorMap(pg.colormap.get("inferno"))
        self.waterfall_plot.addItem(self.waterfall_image)
        self.waterfall_bar = pg.ColorBarItem(values=(0, 1), colorMap=pg.colormap.get("inferno"), interactive=False,
                                             label="counts per pixel", width=12)
        self.waterfall_bar.setImageItem(self.waterfall_image, insert_in=self.waterfall_plot)

        self.plots = (self.trace_plot, self.g2_plot, self.decay_plot, self.flid_plot,
                      self.spectrum_plot, self.waterfall_plot, self.g2_norm_plot, self.residual_plot)
        # Numbers that change every frame go in overlays, not titles: a title whose width
        # changes re-lays out the whole grid and repaints every plot.
        self.trace_value = self._overlay(self.trace_plot, "ON fraction –")
        self.g2_value = self._overlay(self.g2_plot, "g2(0) = –")
        self.decay_value = self._overlay(self.decay_plot, decay_title(None))
        self.spectrum_value = self._overlay(self.spectrum_plot, "")
        for plot in self.plots:
            plot.disableAutoRange()
            # an axis whose tick labels get narrower keeps its width (a new width re-lays out every plot)
            plot.getAxis("left").setStyle(autoReduceTextSpace=False)
            plot.getViewBox().sigRangeChangedManually.connect(lambda *_: self.set_follow(False))
        for plot in (self.decay_plot, self.spectrum_plot, self.residual_plot):
            # 10^3-10^4 points per curve: draw at most about one point pair per pixel column
            # (not the g(2): pyqtgraph's downsampling does not keep step-mode edges)
            plot.setClipToView(True)
            plot.setDownsampling(auto=True, mode="peak")

    @staticmethod
    def _set_text(item: pg.TextItem, text: str) -> None:
        """Set an overlay's text if it changed (setText repaints the item even with the same text)."""
        if item.toPlainText() != text:
            item.setText(text)

    @staticmethod
    def _overlay(plot: pg.PlotItem, text: str) -> pg.TextItem:
        """A text in the top-right corner of the plot's view box (pixel-anchored, no layout)."""
        item = pg.TextItem(text, color="w", anchor=(1, 0), fill=pg.mkBrush(0, 0, 0, 160))
        item.setParentItem(plot.getViewBox())
        plot.getViewBox().sigResized.connect(lambda vb, it=item: it.setPos(vb.width() - 4, 4))
        return item

    def reset(self) -> None:
        """A new run: axis ranges are set again from its first data."""
        self._y_top.clear()
        self._levels.clear()
        self._ranges_set.clear()
        self._spectrum_shown = (-1, -1)
        self._drawn.clear()
        self.fit_curve.setData([], [])
        self.residual_curve.setData([], [])
        self.fit_region.hide()
        self._fit_drawn = None

    def set_threshold(self, per_100ms: float | None) -> None:
        """The ON threshold (counts per 100 ms); None: from the data or the paper (automatic)."""
        self.on_threshold_per_100ms = per_100ms
        self._drawn.pop("trace", None)  # the ON fraction and the line follow at the next poll

    def _threshold_dragged(self) -> None:
        per_100ms = max(float(self.threshold_line.value()), 0.0) * 100.0 / self._bin_ms
        self.on_threshold_per_100ms = per_100ms
        self._drawn.pop("trace", None)
        self.threshold_changed.emit(per_100ms)

    def set_spectrum_view(self, frames: int, autoscale: bool) -> None:
        """Show the running mean of the last ``frames`` frames; ``autoscale``: the y range follows
        the line inside the visible wavelength range (redrawn from the next poll)."""
        self.spectrum_frames, self.spectrum_autoscale = max(int(frames), 1), bool(autoscale)
        self._spectrum_shown = (-1, -1)
        self._drawn.pop("spectrum", None)

    def set_follow(self, follow: bool) -> None:
        """Follow the live range (True: the ranges are set again from the next data) or keep
        the user's zoom (False)."""
        if follow == self.follow:
            return
        self.follow = follow
        if follow:
            self._y_top.clear()
            self._ranges_set.clear()
            self._spectrum_shown = (-1, -1)
            self._drawn.clear()
        self.follow_changed.emit(follow)

    # ------------------------------------------------------------------ drawing
    def show(self, snapshots: dict[str, Any], fit: Any = None) -> None:  # noqa: A003
        """Draw every view whose snapshot is present and not the one drawn before (one frame).

        The station link hands on a new snapshot object only when the view changed, so an
        unchanged view is not drawn again (nor its items touched), and Qt repaints only the
        plots that changed, once per frame (the window paces the frames).
        """
        drawn = False
        for name in ("trace", "g2", "lifetime", "flid", "spectrum"):
            snap = snapshots.get(name)
            if snap is None or (snap is self._drawn.get(name) and (name != "lifetime" or fit is self._fit_drawn)):
                continue
            self._drawn[name] = snap
            drawn = True
            if name == "lifetime":
                self.show_decay(snap, fit)
            else:
                getattr(self, self._DRAW[name])(snap)
        if drawn:
            # Apply changed axis ranges now: pyqtgraph defers them to the start of the paint, whose
            # region is already fixed, so every range change cost a second paint of its plot.
            self.scene().prepareForPaint()

    _DRAW = {"trace": "show_trace", "g2": "show_g2", "flid": "show_flid", "spectrum": "show_spectrum"}

    def _set_y(self, key: str, plot: pg.PlotItem, top: float, log: bool = False, bottom: float = 0.0) -> None:
        if not self.follow:
            return
        new = grow_range(self._y_top.get(key), top)
        if new is not None:
            self._y_top[key] = new
            plot.setYRange(bottom, np.log10(new) if log else new, padding=0)

    def _set_image(self, key: str, image_item: pg.ImageItem, bar: pg.ColorBarItem, image: np.ndarray,
                   low: float, high: float, floor: float | None = None) -> None:
        """Show ``image`` (data from ``low`` to ``high``); its colour levels and bar change only when
        the data leave them or fill less than half of them (:func:`gui.view_ranges.steady_span`)."""
        levels = steady_span(self._levels.get(key), low, high, floor)
        if levels is None:
            image_item.setImage(image, autoLevels=False)  # the levels shown stay
            return
        self._levels[key] = levels
        image_item.setImage(image, autoLevels=False, levels=levels)
        bar.setLevels(levels)

    def _once(self, key: str) -> bool:
        """True the first time ``key`` is asked in a run (to set fixed ranges and image rectangles)."""
        if key in self._ranges_set:
            return False
        self._ranges_set.add(key)
        return True

    def _range(self, plot: pg.PlotItem, axis: str, low: float, high: float, padding: float = 0.0) -> None:
        """Set an axis range unless the user has zoomed or panned (``follow`` False)."""
        if self.follow:
            (plot.setXRange if axis == "X" else plot.setYRange)(low, high, padding=padding)

    def show_trace(self, snap: Any) -> None:
        total = snap.total[-TRACE_BINS:]
        bin_s = snap.bin_ps * 1e-12
        x = (np.arange(total.size) - total.size + 1) * bin_s
        self.trace_curve.setData(x, total.astype(np.float64), skipFiniteCheck=True)
        self._bin_ms = float(snap.bin_ms)
        if self.on_threshold_per_100ms is not None:
            threshold, source = self.on_threshold_per_100ms * snap.bin_ms / 100.0, "set by hand"
        else:
            threshold, source = default_on_threshold(total, snap.bin_ms)
        if not self.threshold_line.moving:
            self.threshold_line.setValue(threshold)
        self.on_fraction = on_fraction(total, threshold)
        fraction = "–" if self.on_fraction is None else f"{100 * self.on_fraction:.1f} %"
        self._set_text(self.trace_value, f"ON {fraction}  (> {threshold:.1f} per {snap.bin_ms:g} ms; {source})")
        if self._once("trace"):
            self._range(self.trace_plot, 'X', -TRACE_BINS * bin_s, 0.0, padding=0.01)
            self.trace_plot.setTitle(f"Intensity trace ({snap.bin_ms:g} ms bins; red: ON threshold, drag to set)")
        self._set_y("trace", self.trace_plot, max(float(total.max()) if total.size else 0.0, threshold))

    def show_g2(self, snap: Any) -> None:
        edges_ns = snap.lag_edges_ps * 1e-3
        self.g2_curve.setData(edges_ns, snap.counts, stepMode="center", skipFiniteCheck=True)
        if self._once("g2"):
            self._range(self.g2_plot, 'X', edges_ns[0], edges_ns[-1], padding=0)
        self._set_y("g2", self.g2_plot, float(snap.counts.max()) if snap.counts.size else 0.0)
        lags_ns, ratios = normalised_peak_areas(snap)
        self.g2_norm_points.setData(lags_ns, ratios)
        if snap.g2_zero is not None:
            self._set_text(self.g2_value, f"g2(0) = {snap.g2_zero:.3f} ± {snap.g2_zero_err:.3f}")
        else:
            self._set_text(self.g2_value, "g2(0) = –")

    def show_decay(self, snap: Any, fit: Any = None) -> None:
        edges_ns = snap.bin_edges_ps * 1e-3
        centres = 0.5 * (edges_ns[:-1] + edges_ns[1:])
        summed = snap.summed.astype(np.float64)
        self.decay_curve.setData(centres, np.where(summed > 0, summed, np.nan), connect="finite")
        if self._once("decay"):
            self._range(self.decay_plot, 'X', edges_ns[0], edges_ns[-1], padding=0)
        self._set_y("decay", self.decay_plot, float(summed.max()) if summed.size else 0.0, log=True)
        self._set_text(self.decay_value, decay_title(fit))
        self._lift_fit_to_histogram(fit, float(summed.sum()))
        if fit is self._fit_drawn:  # curves are set once per fit (a new fit every few seconds)
            return
        self._fit_drawn = fit
        if fit is not None and fit.curve_counts.size:
            counts = fit.curve_counts
            self.fit_curve.setData(fit.curve_x_ns, np.where(counts > 0, counts, np.nan), connect="finite")
            residuals = getattr(fit, "residuals", np.empty(0))
            if residuals.size == fit.curve_x_ns.size:
                self.residual_curve.setData(fit.curve_x_ns, residuals, connect="finite")
            fit_range = getattr(fit, "fit_range_ns", None)
            if fit_range is not None:
                self.fit_region.setRegion(fit_range)
                self.fit_region.show()
        else:
            self.fit_curve.setData([], [])
            self.residual_curve.setData([], [])
            self.fit_region.hide()

    def _lift_fit_to_histogram(self, fit: Any, photons_now: float) -> None:
        """Draw the latest fit's shape at the height of the histogram shown now.

        A fit comes every few seconds, of the histogram as it was then (``fit.photons``);
        the histogram keeps growing, and a curve left at the fitted height would sink below
        it (5x, 6 s into a run).  The y axis is logarithmic, so the factor
        ``photons_now / fit.photons`` is a shift of the curve by its log10: no new curve data,
        the cached pixmap moves.  The residuals stay those of the fit.
        """
        fitted = getattr(fit, "photons", 0) if fit is not None else 0
        shift = math.log10(photons_now / fitted) if fitted > 0 and photons_now > 0 else 0.0
        if self.fit_curve.pos().y() != shift:
            self.fit_curve.setPos(0.0, shift)

    def show_flid(self, snap: Any) -> None:
        image = snap.counts.T.astype(np.float32)  # (lifetime rows, intensity columns)
        top = float(image.max()) if image.size else 0.0
        self._set_image("flid", self.flid_image, self.flid_bar, image, 0.0, top, floor=0.0)
        if self._once("flid"):
            ie, le = snap.intensity_edges, snap.lifetime_edges_ns
            rect = QtCore.QRectF(float(ie[0]), float(le[0]), float(ie[-1] - ie[0]), float(le[-1] - le[0]))
            self.flid_image.setRect(rect)
            self._range(self.flid_plot, 'X', rect.left(), rect.right(), padding=0)
            self._range(self.flid_plot, 'Y', rect.top(), rect.bottom(), padding=0)

    def show_spectrum(self, snap: Any) -> None:
        wavelength = snap.wavelength_nm
        if snap.latest is None or wavelength.size < 2:
            return
        shown = (snap.latest_index, snap.frames_skipped)
        if shown == self._spectrum_shown:  # no new frame since the last redraw (10 frames/s vs 25 redraws/s)
            return
        self._spectrum_shown = shown
        line, averaged = snap.latest, 1
        if self.spectrum_frames > 1:
            mean, averaged = running_mean(snap.waterfall, self.spectrum_frames)
            line, averaged = (mean, averaged) if mean is not None and mean.size == wavelength.size else (line, 1)
        self.spectrum_curve.setData(wavelength, line, skipFiniteCheck=True)
        waterfall = snap.waterfall
        finite = waterfall[np.isfinite(waterfall)]
        top = float(finite.max()) if finite.size else 1.0
        bottom = float(finite.min()) if finite.size else 0.0
        self._set_image("waterfall", self.waterfall_image, self.waterfall_bar, np.nan_to_num(waterfall, nan=bottom),
                        bottom, top)
        mean = f"\nmean of {averaged} frames" if averaged > 1 else ""
        self._set_text(self.spectrum_value, f"frame {snap.latest_index}; {snap.frames_skipped} lost{mean}")
        if self._once("spectrum"):
            low, high = float(wavelength.min()), float(wavelength.max())
            self._range(self.spectrum_plot, 'X', low, high, padding=0)
            rows = waterfall.shape[0]
            span_s = rows * snap.frame_period_s if snap.frame_period_s > 0 else float(rows)
            # row 0 is the oldest frame; the newest row sits at "0 s before now"
            self.waterfall_image.setRect(QtCore.QRectF(low, -span_s, high - low, span_s))
            self._range(self.waterfall_plot, 'X', low, high, padding=0)
            self._range(self.waterfall_plot, 'Y', -span_s, 0.0, padding=0)
        x_range, y_range = self.spectrum_plot.viewRange()
        extent = visible_extent(wavelength, line, *x_range) if self.spectrum_autoscale else None
        if extent is not None:  # the y range follows the visible line, in steps
            new = steady_span(tuple(y_range), *extent)
            if new is not None:
                self.spectrum_plot.setYRange(*new, padding=0)
        else:
            self._set_y("spectrum", self.spectrum_plot, float(np.max(line)), bottom=float(np.min(line)))


def decay_title(fit: Any) -> str:
    """The decay view's overlay: the latest fitted lifetime(s) with errors."""
    if fit is None:
        return "fit after 2000 photons"
    if not fit.tau_ns:
        return f"fit: {fit.message[:60]}"
    taus = ", ".join(f"{t:.2f} ± {e:.2f}" for t, e in zip(fit.tau_ns, fit.tau_err_ns))
    chi2 = getattr(fit, "reduced_chi2", None)
    quality = f", χ²/dof = {chi2:.2f}" if chi2 is not None else ""
    return f"τ = {taus} ns\n({fit.model} fit, {fit.photons:,} photons{quality})"

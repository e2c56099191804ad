"""The live spectrum view (issue 12, "Build"): the running mean of the last N frames and a
y axis that follows the visible line (pytest-qt, offscreen)."""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"

import pytest  # noqa: E402

pytest.importorskip("PyQt6.QtWidgets")
pytest.importorskip("pyqtgraph")
pytest.importorskip("pytestqt")

import numpy as np  # noqa: E402

from gui.main_window import MainWindow  # noqa: E402
from gui.view_ranges import KEEP_FILL  # noqa: E402
from tests.conftest import sim_config  # noqa: E402


def test_running_mean_of_the_last_delivered_frames() -> None:
    from gui.spectrum_box import running_mean, visible_extent

    waterfall = np.full((6, 3), np.nan, np.float32)
    waterfall[1] = [1, 2, 3]
    waterfall[2] = [3, 4, 5]
    waterfall[4] = [5, 6, 10]  # row 3 lost, row 5 not yet delivered
    mean, used = running_mean(waterfall, 2)
    assert used == 2 and mean.tolist() == [4.0, 5.0, 7.5]
    mean, used = running_mean(waterfall, 10)
    assert used == 3 and mean.tolist() == [3.0, 4.0, 6.0]
    assert running_mean(np.full((4, 3), np.nan, np.float32), 3) == (None, 0)
    x = np.array([500.0, 550.0, 600.0, 650.0])
    y = np.array([10.0, 20.0, 110.0, 5.0])
    assert visible_extent(x, y, 540.0, 610.0) == (20.0, 110.0)
    assert visible_extent(x, y, 700.0, 800.0) is None


def test_spectrum_shows_the_mean_of_n_frames_and_its_y_axis_follows_the_visible_line(qtbot, tmp_path) -> None:
    window = MainWindow(sim_config(time_scale=4.0), settings_path=tmp_path / "spectrum.ini")
    qtbot.addWidget(window)
    window.show()
    try:
        qtbot.waitUntil(lambda: window.state == "idle", timeout=60_000)
        views, box = window.views, window.spectrum_box
        box.average_spin.setValue(5)
        assert box.autoscale_box.isChecked()
        window.start_live()
        qtbot.waitUntil(lambda: window.state == "live" and window.last_snapshots.get("spectrum") is not None
                        and window.last_snapshots["spectrum"].frames_received >= 8, timeout=40_000)
        low, high = views.spectrum_plot.viewRange()[0]
        views.spectrum_plot.setXRange(low, low + 0.3 * (high - low), padding=0)  # a zoom beside the line
        frame = window.last_snapshots["spectrum"].latest_index
        qtbot.waitUntil(lambda: views._spectrum_shown[0] > frame + 1, timeout=20_000)
        window.live_box.pause_button.setChecked(True)
        qtbot.wait(100)  # the second half of the last poll is drawn
        snap = window.last_snapshots["spectrum"]
        assert views._spectrum_shown[0] == snap.latest_index
        delivered = snap.waterfall[np.isfinite(snap.waterfall).all(axis=1)]
        expected = delivered[-5:].astype(np.float64).mean(axis=0)
        x, y = views.spectrum_curve.xData, views.spectrum_curve.yData
        np.testing.assert_allclose(y, expected, rtol=1e-12)
        assert not np.allclose(y, snap.latest)  # not the latest frame alone
        assert "mean of 5 frames" in views.spectrum_value.toPlainText()
        x_low, x_high = views.spectrum_plot.viewRange()[0]
        inside = y[(x >= x_low) & (x <= x_high)]
        span = max(float(inside.max() - inside.min()), 1.0)
        y_low, y_high = views.spectrum_plot.viewRange()[1]
        # the y range holds the visible line and the line fills at least half of it (it follows in steps)
        assert y_low <= float(inside.min()) and float(inside.max()) <= y_high
        assert span >= KEEP_FILL * (y_high - y_low)
        window.stop_engine()
    finally:
        window.close()

"""The lab window on the simulated microscope (pytest-qt, offscreen; skipped without the GUI extras)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

os.environ["QT_QPA_PLATFORM"] = "offscreen"

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("PyQt6.QtWidgets")
pytest.importorskip("pyqtgraph")
pytest.importorskip("pytestqt")

from gui.main_window import MainWindow  # noqa: E402
from labctl.storage import PhotonHDF5Reader  # noqa: E402
from tests.conftest import sim_config  # noqa: E402


@pytest.fixture
def window(qtbot):
    win = MainWindow(sim_config(time_scale=4.0))
    qtbot.addWidget(win)
    win.show()
    yield win
    win.stop_engine()


def test_live_views_fill_and_stop(window, qtbot) -> None:
    window.start_live()
    assert window.engine is not None, window.message_label.text()
    qtbot.waitUntil(lambda: window.frames_drawn >= 5 and window.last_snapshots["g2"].counts.sum() > 0, timeout=15_000)
    qtbot.wait(2000)
    x, y = window.trace_curve.getData()
    assert x is not None and len(x) > 0 and y.sum() > 0
    assert window.last_snapshots["g2"].counts.sum() > 0
    gx, gy = window.g2_curve.getData()
    assert len(gy) > 0 and np.nansum(gy) > 0
    dx, dy = window.decay_curve.getData()
    assert len(dx) > 0 and np.nansum(dy) > 0
    assert window.flid_image.image is not None and window.flid_image.image.sum() > 0
    assert "g2(0) =" in window.g2_plot.titleLabel.text
    assert "kcps" in window.rate_label.text()
    window.stop_button.click()
    assert window.engine is None
    assert window.last_summary.clean, window.last_summary.end_reason
    assert window.start_button.isEnabled() and not window.stop_button.isEnabled()


def test_record_writes_a_valid_file(window, qtbot, tmp_path) -> None:
    out = tmp_path / "gui_run.h5"
    window.file_edit.setText(str(out))
    window.record_button.click()
    assert window.engine is not None and window.recording_path == out, window.message_label.text()
    qtbot.waitUntil(lambda: window.last_status.get("elapsed_s", 0) > 0, timeout=15_000)
    qtbot.wait(2000)
    assert int(window.written_label.text().replace(",", "")) > 0
    window.record_button.click()  # stop recording
    assert window.engine is None
    summary = window.last_summary
    assert summary.clean and summary.photons_written > 0
    assert int(window.written_label.text().replace(",", "")) == summary.photons_written
    with PhotonHDF5Reader(out) as reader:
        assert reader.num_photons == summary.photons_written
    # an existing file is refused, not overwritten
    window.file_edit.setText(str(out))
    window.record_button.click()
    assert window.engine is None and "already exists" in window.message_label.text()


def test_screenshot_cli(tmp_path) -> None:
    from PyQt6 import QtGui

    png = tmp_path / "out.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "labctl.cli", "gui", "--screenshot", str(png), "--after", "3"],
                          env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - started < 60
    image = QtGui.QImage(str(png))
    assert not image.isNull() and image.width() > 200
    ptr = image.convertToFormat(QtGui.QImage.Format.Format_Grayscale8)
    data = np.frombuffer(ptr.constBits().asstring(ptr.sizeInBytes()), np.uint8)
    assert data.var() > 100


def test_cli_import_loads_no_qt() -> None:
    code = "import sys, labctl.cli; assert not any(m.startswith('PyQt6') for m in sys.modules), 'PyQt6 imported'"
    subprocess.run([sys.executable, "-c", code], check=True)

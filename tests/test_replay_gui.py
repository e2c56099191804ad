"""labctl gui --replay: the lab window's live views on a replayed file (pytest-qt, offscreen)."""

from __future__ import annotations

import json
import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("PyQt6.QtWidgets")
pytest.importorskip("pyqtgraph")
pytest.importorskip("pytestqt")

from gui.main_window import MainWindow  # noqa: E402
from labctl.cli import main  # noqa: E402
from labctl.station.replay import replay_station_config, scan_replay_file  # noqa: E402
from tests.test_replay import write_imported_like  # noqa: E402


def test_gui_live_views_show_the_replayed_file_counts(qtbot, tmp_path) -> None:
    path = tmp_path / "src.h5"
    write_imported_like(path, period_ps=1e6, seconds=0.6, rate_cps=60_000, detectors=(1, 2), tau_ps=20_000)
    expected = tmp_path / "analyze.json"
    assert main(["analyze", str(path), "--json", str(expected)]) == 0
    expected = json.loads(expected.read_text())
    window = MainWindow(replay_station_config(scan_replay_file(path), speed=2.0), settings_path=tmp_path / "gui.ini")
    qtbot.addWidget(window)
    window.show()
    try:
        qtbot.waitUntil(lambda: window.state in ("idle", "failed"), timeout=30_000)
        assert window.state == "idle", window.message_label.text()
        window.start_live()
        qtbot.waitUntil(lambda: window.state == "live", timeout=15_000)
        total = sum(expected["lifetime"]["counts"])
        qtbot.waitUntil(lambda: window.last_snapshots.get("lifetime") is not None
                        and int(window.last_snapshots["lifetime"].summed.sum()) == total, timeout=20_000)
        g2, lifetime = window.last_snapshots["g2"], window.last_snapshots["lifetime"]
        # the live views' defaults are analyze's: the same bins, and the file's counts in them
        assert g2.lag_edges_ps.tolist() == expected["g2"]["lag_edges_ps"]
        assert g2.counts.tolist() == expected["g2"]["counts"] and g2.counts.sum() > 0
        assert lifetime.bin_edges_ps.tolist() == expected["lifetime"]["bin_edges_ps"]
        assert lifetime.counts.tolist() == expected["lifetime"]["detector_counts"]
        x, y = window.views.decay_curve.getData()
        assert x is not None and len(x) > 0 and np.nanmax(y) > 0
        window.stop_engine()
        qtbot.waitUntil(lambda: window.state == "idle", timeout=15_000)
        assert window.last_summary.clean and window.last_summary.losses == []
    finally:
        window.close()


def test_labctl_gui_replay_opens_the_window_on_a_replay_station(tmp_path, monkeypatch) -> None:
    import gui.main_window

    path = tmp_path / "src.h5"
    write_imported_like(path, period_ps=1e6, seconds=0.05, rate_cps=60_000, detectors=(0, 1))
    opened = {}
    monkeypatch.setattr(gui.main_window, "run_app", lambda config, **kw: opened.update(config=config, **kw) or 0)
    assert main(["gui", "--replay", str(path), "--speed", "3"]) == 0
    tagger = opened["config"].data["instruments"]["tagger"]
    assert tagger["library"] == "sim_backends.replay_tagger.ReplayTDCBase"
    assert tagger["library_options"]["time_scale"] == 3.0 and tagger["library_options"]["detectors"] == [0, 1]
    assert opened["config"].channels.spad_a == 0 and opened["screenshot"] is None

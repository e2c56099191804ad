"""Faults in the lab window (issue 12, "Build"): which instrument failed, a Reconnect that
opens the station again and returns to live, the last good views kept on screen, and the
``--screenshot`` image of a fault (pytest-qt, offscreen)."""

from __future__ import annotations

import copy
import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"

import pytest  # noqa: E402

pytest.importorskip("PyQt6.QtWidgets")
pytest.importorskip("pyqtgraph")
pytest.importorskip("pytestqt")

import numpy as np  # noqa: E402
from PyQt6 import QtWidgets  # noqa: E402

from gui.main_window import MainWindow  # noqa: E402
from labctl.station.station import StationConfig  # noqa: E402
from tests.conftest import gui_screenshot, sim_config  # noqa: E402

OPEN_TIMEOUT_MS = 60_000


def unbuildable_config() -> StationConfig:
    """The simulated station whose spectrograph stops answering while the station is built."""
    data = copy.deepcopy(sim_config(time_scale=4.0).data)
    spectrograph = data["instruments"]["spectrograph"]
    spectrograph["library_options"] = {**(spectrograph.get("library_options") or {}), "faults": [
        {"function": "ShamrockGetSerialNumber", "after_s": 0, "code": 20201}]}
    return StationConfig.from_dict(data, source="<unbuildable station>")


@pytest.fixture
def make_window(qtbot, tmp_path):
    windows: list[MainWindow] = []

    def factory(config: StationConfig) -> MainWindow:
        win = MainWindow(config, settings_path=tmp_path / "faults.ini")
        qtbot.addWidget(win)
        win.show()
        windows.append(win)
        qtbot.waitUntil(lambda: win.state in ("idle", "failed"), timeout=OPEN_TIMEOUT_MS)
        return win

    yield factory
    for win in windows:
        win.close()


def drawn(curve) -> np.ndarray:
    y = curve.yData
    return np.empty(0) if y is None else np.asarray(y)


def test_a_fault_keeps_the_views_and_reconnect_reopens_the_station_and_goes_live(make_window, qtbot) -> None:
    # tagger clock 1x: the reconnected station meets the same fault 3 s (wall) into its run,
    # time enough to see it live under load
    config = sim_config(time_scale=1.0, library_options={
        "faults": [{"after_s": 3.0, "function": "TDC_getLastTimestamps", "code": 2}]})
    window = make_window(config)
    assert window.state == "idle" and not window.reconnect_button.isVisible()
    window.start_live()
    qtbot.waitUntil(lambda: window.last_summary is not None, timeout=40_000)
    qtbot.wait(300)  # polls after the fault
    assert not window.last_summary.clean
    assert window.message_label.text().startswith("Time tagger failed")
    assert window.reconnect_button.isVisible() and window.reconnect_button.isEnabled()
    # the status bar keeps room for the rates (the fault's text is in the message line, once)
    assert window.state_label.text() == "idle (last run: fault, see the message line)"
    views, snaps = window.views, window.last_snapshots
    trace = drawn(views.trace_curve)
    assert trace.size > 0 and trace.sum() > 0  # the last good views stay on screen
    assert np.array_equal(trace, snaps["trace"].total[-trace.size:].astype(np.float64))
    assert drawn(views.g2_curve).sum() == snaps["g2"].counts.sum() > 0
    assert np.nansum(drawn(views.decay_curve)) == snaps["lifetime"].summed.sum() > 0
    old_link, frames = window.link, window.frames_drawn
    window.reconnect_button.click()
    assert window.state == "reconnecting" and not window.reconnect_button.isVisible()
    assert np.array_equal(drawn(views.trace_curve), trace)  # kept while the station opens again
    # live again, drawing the new station's run
    qtbot.waitUntil(lambda: window.link is not old_link and window.link.running and window.frames_drawn > frames + 2,
                    timeout=OPEN_TIMEOUT_MS)
    assert not old_link.process.is_open  # the old child was closed first
    assert len(window.panels) == 7 and window.instruments.instrument_tabs.count() == 7  # panels not doubled
    window.stop_engine()


def test_a_station_that_cannot_be_built_names_the_instrument_and_offers_reconnect(make_window) -> None:
    window = make_window(unbuildable_config())
    assert window.state == "failed"
    text = window.message_label.text().replace("\u200b", "")
    assert text.startswith("Spectrograph failed: ") and "SHAMROCK_COMMUNICATION_ERROR" in text, text
    assert window.reconnect_button.isVisible() and window.reconnect_button.isEnabled()
    assert not window.start_button.isEnabled()


def test_screenshot_of_a_station_that_cannot_be_built_is_written(tmp_path) -> None:
    proc, image = gui_screenshot(tmp_path, unbuildable_config().data, after_s=2)
    assert proc.returncode == 1
    assert "Spectrograph failed" in proc.stderr and "SHAMROCK_COMMUNICATION_ERROR" in proc.stderr, proc.stderr
    assert not image.isNull() and image.width() > 200


def test_a_station_process_lost_during_a_recording_unlocks_and_reconnects(make_window, qtbot, tmp_path) -> None:
    window = make_window(sim_config(time_scale=4.0))
    assert window.start_recording(tmp_path / "lost.h5")
    qtbot.waitUntil(lambda: window.state == "recording" and window.last_status.get("elapsed_s", 0) > 0.5,
                    timeout=30_000)
    assert not window.panels["laser"].fields["external_rate_hz"].isEnabled()
    window.link.process._process.kill()  # the child dies (a crash of the station process)
    qtbot.waitUntil(lambda: window.state == "failed", timeout=20_000)
    assert "lost the station process" in window.message_label.text().replace("\u200b", "")
    assert window.recording_path is None
    assert window.panels["laser"].fields["external_rate_hz"].isEnabled()  # not locked by a recording that is gone
    assert window.record_panel.file_edit.isEnabled() and window.reconnect_button.isVisible()
    window.reconnect_button.click()
    qtbot.waitUntil(lambda: window.state == "live" and window.link.running, timeout=OPEN_TIMEOUT_MS)
    assert window.panels["laser"].fields["external_rate_hz"].isEnabled()
    window.stop_engine()


def test_a_refused_excitation_switch_is_an_error_of_the_excitation_not_a_lost_station(make_window, qtbot) -> None:
    from labctl.errors import InstrumentError

    window = make_window(sim_config(time_scale=4.0))

    def refuse(on: bool) -> None:
        raise InstrumentError("function_generator: OUTP1 ON: VI_ERROR_TMO (-1073807339): timeout")

    window.link.process.set_excitation = refuse  # the worker thread calls the process's method
    next(b for b in window.findChildren(QtWidgets.QPushButton) if b.text() == "Excitation on").click()
    qtbot.waitUntil(lambda: "VI_ERROR_TMO" in window.message_label.text().replace("\u200b", ""), timeout=10_000)
    text = window.message_label.text().replace("\u200b", "")
    assert text.startswith("Excitation on failed: function_generator: OUTP1 ON"), text
    assert window.state == "idle" and window.start_button.isEnabled()  # the station is still there
    assert not window.reconnect_button.isVisible()

"""The lab window through an experiment night (issue 12): settings changes during live,
error texts, recording controls, the first start (pytest-qt, offscreen)."""

from __future__ import annotations

import os
import re

os.environ["QT_QPA_PLATFORM"] = "offscreen"

import pytest  # noqa: E402

pytest.importorskip("PyQt6.QtWidgets")
pytest.importorskip("pyqtgraph")
pytest.importorskip("pytestqt")

from PyQt6 import QtWidgets  # noqa: E402

from gui.main_window import MainWindow  # noqa: E402
from tests.conftest import gui_screenshot, sim_config  # noqa: E402

OPEN_TIMEOUT_MS = 60_000
RATE_RE = re.compile(r"laser_sync: ([\d,.]+) (k?cps)")


@pytest.fixture
def make_window(qtbot, tmp_path):
    windows: list[MainWindow] = []

    def factory(config=None, wait_open: bool = True) -> MainWindow:
        win = MainWindow(config or sim_config(time_scale=4.0), settings_path=tmp_path / "night.ini")
        qtbot.addWidget(win)
        win.show()
        windows.append(win)
        if wait_open:
            qtbot.waitUntil(lambda: win.state in ("idle", "failed"), timeout=OPEN_TIMEOUT_MS)
            assert win.state == "idle", win.message_label.text()
        return win

    yield factory
    for win in windows:
        win.close()


def laser_sync_cps(text: str) -> float | None:
    """The laser_sync rate the status bar shows (cps), None if it shows none."""
    match = RATE_RE.search(text)
    if match is None:
        return None
    value = float(match.group(1).replace(",", ""))
    return value * 1e3 if match.group(2) == "kcps" else value


def set_field(window: MainWindow, role: str, path: str, text: str) -> None:
    field = window.panels[role].fields[path]
    field.setText(text)
    field.editingFinished.emit()


def button(window: MainWindow, text: str) -> QtWidgets.QPushButton:
    return next(b for b in window.findChildren(QtWidgets.QPushButton) if b.text() == text)


def go_live(window: MainWindow, qtbot, elapsed_s: float = 0.0) -> None:
    window.start_live()
    qtbot.waitUntil(lambda: window.state == "live" and window.last_status.get("elapsed_s", 0) > elapsed_s
                    and laser_sync_cps(window.rate_label.text()) is not None, timeout=30_000)


def test_count_rates_follow_a_live_restart_without_freezing_or_going_negative(make_window, qtbot) -> None:
    """Finding 1: after a change that restarts the live run, the rates are the new run's."""
    window = make_window()
    go_live(window, qtbot, elapsed_s=6.0)
    before_cps = laser_sync_cps(window.rate_label.text())
    assert before_cps == pytest.approx(250e3, rel=0.15)  # 1 MHz / sync divider 4
    set_field(window, "laser", "external_rate_hz", "500000")
    seen: list[tuple[float, str]] = []

    def new_rate_shown() -> bool:
        poll = window.last_poll or {}
        if poll.get("restarts", 0) >= 1 and window.state == "live":
            seen.append((float(window.last_status.get("elapsed_s", 0.0)), window.rate_label.text()))
        return any(elapsed >= 3.0 for elapsed, _ in seen)

    qtbot.waitUntil(new_rate_shown, timeout=30_000)
    assert not any("-" in text for _, text in seen), [t for _, t in seen if "-" in t]
    # once the new run has had 1.5 s (tagger time), every rate shown is the new one (old frozen
    # values or a difference across the two runs would be off by 2x or negative)
    late = [laser_sync_cps(text) for elapsed, text in seen if elapsed >= 1.5]
    assert late and all(rate == pytest.approx(125e3, rel=0.15) for rate in late), late


def test_decay_axis_follows_a_repetition_rate_change_and_zoom_is_on(make_window, qtbot) -> None:
    """Finding 2: the decay's x axis covers the new period (500 kHz: 0-2000 ns)."""
    window = make_window()
    go_live(window, qtbot)
    qtbot.waitUntil(lambda: window.last_snapshots.get("lifetime") is not None, timeout=20_000)
    assert window.views.decay_plot.viewRange()[0][1] == pytest.approx(1000.0, rel=0.02)
    set_field(window, "laser", "external_rate_hz", "500000")
    qtbot.waitUntil(lambda: window.last_snapshots["lifetime"].period_ps == 2_000_000
                    and window.views.decay_curve.getData()[0] is not None
                    and window.views.decay_curve.getData()[0][-1] > 1500, timeout=30_000)
    qtbot.wait(200)
    assert window.views.decay_plot.viewRange()[0][1] == pytest.approx(2000.0, rel=0.02)
    assert window.views.decay_plot.getViewBox().state["mouseEnabled"] == [True, True]
    window.stop_engine()


def test_panels_reread_after_a_configure_and_at_run_start(make_window, qtbot) -> None:
    """Finding 3: the laser's rate sets the generator's ch1; the run switches ch1 on."""
    window = make_window()
    generator = window.panels["function_generator"]
    assert generator.fields["ch1.frequency_hz"].text() == "1000000"
    set_field(window, "laser", "external_rate_hz", "2000000")
    qtbot.waitUntil(lambda: "external_rate_hz" in window.message_label.text(), timeout=10_000)
    qtbot.waitUntil(lambda: generator.fields["ch1.frequency_hz"].text() == "2000000", timeout=10_000)
    output = generator.fields["ch1.output"]
    assert output.currentData() is False
    go_live(window, qtbot)
    qtbot.waitUntil(lambda: output.currentData() is True, timeout=10_000)
    window.stop_engine()
    qtbot.waitUntil(lambda: window.state in ("idle", "live") and output.currentData() is False, timeout=20_000)


def test_a_refused_value_wraps_names_the_instrument_and_clears(make_window, qtbot, tmp_path) -> None:
    """Finding 4 (field errors): no horizontal scrollbar, plain instrument name, the rates stay
    in the status bar, the error goes once the field is valid again or a recording starts."""
    window = make_window()
    laser = window.panels["laser"]
    go_live(window, qtbot)
    set_field(window, "laser", "external_rate_hz", "123456789012")
    error = laser.errors["external_rate_hz"]
    qtbot.waitUntil(lambda: error.isVisibleTo(laser), timeout=10_000)
    qtbot.wait(100)  # layouts settle
    scroll = laser.parentWidget().parentWidget()
    assert isinstance(scroll, QtWidgets.QScrollArea)
    assert not scroll.horizontalScrollBar().isVisible()
    off = button(window, "Excitation off")
    assert off.width() >= off.sizeHint().width()
    message = window.message_label.text().replace("\u200b", "")  # zero-width spaces: break points
    assert message.startswith("Excitation"), message
    assert "instruments.laser.settings" not in message and "123456789012" in message
    assert window.rate_label.isVisible() and window.statusBar().currentMessage() == ""
    set_field(window, "laser", "external_rate_hz", "1000000")  # valid again (the same value)
    qtbot.waitUntil(lambda: not error.isVisibleTo(laser), timeout=10_000)
    set_field(window, "laser", "external_rate_hz", "-5")
    qtbot.waitUntil(lambda: error.isVisibleTo(laser), timeout=10_000)
    assert window.start_recording(tmp_path / "night.h5")
    qtbot.waitUntil(lambda: window.state == "recording", timeout=30_000)
    assert not error.isVisibleTo(laser)  # a stale refusal is not shown through the recording
    window.stop_engine()


def test_a_fault_is_reported_once_in_plain_words_without_squashing_the_record_box(make_window, qtbot) -> None:
    """Finding 4 (faults): one message, naming the instrument; the Record box keeps its size."""
    config = sim_config(time_scale=4.0, library_options={
        "faults": [{"after_s": 4.0, "function": "TDC_getLastTimestamps", "code": 2}]})
    window = make_window(config)
    window.start_live()
    qtbot.waitUntil(lambda: window.last_summary is not None, timeout=40_000)
    qtbot.wait(200)
    text = window.message_label.text().replace("\u200b", "")  # zero-width spaces: break points
    assert text.count("TDC_getLastTimestamps") == 1, text
    assert "Time tagger" in text, text
    record_box = window.record_button.parentWidget()
    assert record_box.height() >= record_box.minimumSizeHint().height()
    assert window.rate_label.isVisible()


def test_excitation_locked_while_recording_and_back_to_live_after(make_window, qtbot, tmp_path) -> None:
    """Finding 5."""
    window = make_window()
    go_live(window, qtbot)
    assert window.start_recording(tmp_path / "night.h5")
    qtbot.waitUntil(lambda: window.state == "recording", timeout=30_000)
    assert not button(window, "Excitation on").isEnabled()
    assert not button(window, "Excitation off").isEnabled()
    qtbot.waitUntil(lambda: window.last_status.get("elapsed_s", 0) > 1.0, timeout=20_000)
    window.record_button.click()  # stop recording
    qtbot.waitUntil(lambda: window.last_summary is not None and window.state == "live", timeout=30_000)
    assert window.last_summary.clean and window.last_summary.file_path is not None
    assert button(window, "Excitation on").isEnabled() and button(window, "Excitation off").isEnabled()
    window.stop_engine()


def test_first_start_shows_preparing_with_progress(make_window, qtbot, monkeypatch) -> None:
    """Finding 6: while the photon kernels are made ready, the window says so, with progress."""
    import gui.link

    monkeypatch.setattr(gui.link, "SHOW_PREPARING_AFTER_S", 0.0, raising=False)
    window = make_window(wait_open=False)
    shown: list[tuple[str, int]] = []
    window.link.progress.connect(
        lambda *_: shown.append((window.state_label.text(), window.progress_bar.value())))
    qtbot.waitUntil(lambda: window.state == "idle", timeout=OPEN_TIMEOUT_MS)
    assert shown and all("preparing (first run after install)" in text for text, _ in shown), shown
    assert shown[-1][1] == window.progress_bar.maximum()
    assert not window.progress_bar.isVisible()


def test_recording_auto_stops_by_duration_with_notes_and_numbered_names(make_window, qtbot, tmp_path) -> None:
    """Recording controls: a chosen folder, qd_0001.h5 then qd_0002.h5, notes in the file,
    auto-stop after a tagger time, back to live."""
    import h5py

    window = make_window()
    folder = tmp_path / "night"
    folder.mkdir()
    window.record_panel.set_folder(folder)
    assert window.file_edit.text() == "qd_0001.h5"
    window.record_panel.duration_spin.setValue(2.0)
    window.record_panel.notes_edit.setPlainText("QD 7, 2 µW, 4 K")
    go_live(window, qtbot)
    window.record_button.click()
    qtbot.waitUntil(lambda: window.state == "recording", timeout=30_000)
    assert not window.record_panel.notes_edit.isEnabled()
    qtbot.waitUntil(lambda: window.last_summary is not None and window.last_summary.file_path is not None
                    and window.state == "live", timeout=40_000)
    summary = window.last_summary
    assert summary.clean and summary.duration_ps == pytest.approx(2e12, rel=0.05)
    with h5py.File(folder / "qd_0001.h5", "r") as f:
        assert f["/user/labctl/notes"][()].decode() == "QD 7, 2 µW, 4 K"
    assert window.file_edit.text() == "qd_0002.h5"
    window.stop_engine()


def test_recording_auto_stops_at_a_photon_count(make_window, qtbot, tmp_path) -> None:
    window = make_window()
    window.record_panel.set_folder(tmp_path)
    window.record_panel.photons_spin.setValue(50_000)
    assert window.start_recording()
    qtbot.waitUntil(lambda: window.last_summary is not None and window.last_summary.file_path is not None,
                    timeout=40_000)
    written = window.last_summary.photons_written
    assert 50_000 <= written < 50_000 + 200_000, written  # stops within a poll or two of the count
    assert window.last_summary.clean
    qtbot.waitUntil(lambda: window.state == "live", timeout=30_000)
    window.stop_engine()


def test_follow_is_unticked_by_a_mouse_zoom_and_returns_to_the_live_range(make_window, qtbot) -> None:
    window = make_window()
    go_live(window, qtbot)
    qtbot.waitUntil(lambda: window.last_snapshots.get("lifetime") is not None, timeout=20_000)
    box = window.views.decay_plot.getViewBox()
    box.scaleBy(x=0.25)  # what a mouse wheel does
    box.sigRangeChangedManually.emit(box.state["mouseEnabled"])
    assert not window.follow_box.isChecked()
    qtbot.wait(500)
    zoomed = window.views.decay_plot.viewRange()[0]
    assert zoomed[1] - zoomed[0] < 500.0  # the live redraws keep the zoom
    window.follow_box.setChecked(True)
    qtbot.waitUntil(lambda: window.views.decay_plot.viewRange()[0][1] == pytest.approx(1000.0, rel=0.02),
                    timeout=10_000)
    window.stop_engine()


def test_on_threshold_typed_or_dragged_sets_the_on_fraction(make_window, qtbot) -> None:
    import numpy as np

    window = make_window()
    views = window.views
    go_live(window, qtbot, elapsed_s=2.0)
    qtbot.waitUntil(lambda: views.on_fraction is not None, timeout=20_000)
    assert "data: midway" in views.trace_value.toPlainText() or "paper's 400" in views.trace_value.toPlainText()
    window.live_box.threshold_spin.setValue(1e6)  # typed: no bin is ON
    qtbot.waitUntil(lambda: views.on_fraction == 0.0, timeout=10_000)
    assert "ON 0.0 %" in views.trace_value.toPlainText() and "set by hand" in views.trace_value.toPlainText()
    bin_ms = window.last_snapshots["trace"].bin_ms
    views.threshold_line.setValue(3.0)  # dragged to 3 counts per bin
    views.threshold_line.sigPositionChangeFinished.emit(views.threshold_line)
    assert window.live_box.threshold_spin.value() == round(3.0 * 100 / bin_ms)
    qtbot.wait(300)
    counts = views.trace_curve.getData()[1]
    assert views.on_fraction == pytest.approx(float(np.mean(counts > views.threshold_line.value())), abs=1e-12)
    assert 0.0 < views.on_fraction < 1.0
    window.stop_engine()


def test_pause_keeps_the_run_going_and_clear_starts_the_views_again(make_window, qtbot) -> None:
    window = make_window()
    go_live(window, qtbot, elapsed_s=3.0)
    qtbot.waitUntil(lambda: window.last_snapshots.get("g2") is not None, timeout=20_000)
    window.live_box.pause_button.setChecked(True)
    qtbot.wait(100)
    frames, elapsed = window.frames_drawn, window.last_status["elapsed_s"]
    qtbot.waitUntil(lambda: window.last_status["elapsed_s"] > elapsed + 1.0, timeout=20_000)
    assert window.frames_drawn == frames and window.state == "live"  # frozen views, running instruments
    assert "kcps" in window.rate_label.text()
    window.live_box.pause_button.setChecked(False)
    qtbot.waitUntil(lambda: window.frames_drawn > frames, timeout=10_000)
    pairs_before = int(window.last_snapshots["g2"].counts.sum())
    run_before = window.last_poll["run_number"]
    window.live_box.clear_button.click()
    qtbot.waitUntil(lambda: window.last_poll["run_number"] == run_before + 1 and window.frames_drawn > frames
                    and window.last_snapshots["g2"] is not None, timeout=20_000)
    qtbot.wait(200)
    assert int(window.last_snapshots["g2"].counts.sum()) < pairs_before
    assert window.state == "live"
    window.stop_engine()


def test_normalised_g2_beside_raw_pairs_and_decay_residuals_with_chi2(make_window, qtbot) -> None:
    from labctl.analysis.views import normalised_peak_areas

    window = make_window()
    views = window.views
    go_live(window, qtbot)
    qtbot.waitUntil(lambda: "χ²/dof =" in views.decay_value.toPlainText()
                    and window.last_snapshots["g2"].g2_zero is not None, timeout=40_000)
    qtbot.wait(300)
    x, y = views.g2_norm_points.getData()
    lags, ratios = normalised_peak_areas(window.last_snapshots["g2"])
    assert x is not None and len(x) >= 3 and len(x) == len(lags)
    side = y[x != 0.0]
    assert side.mean() == pytest.approx(1.0, abs=1e-9)  # side peaks = 1 by construction
    assert y[x == 0.0][0] == pytest.approx(window.last_snapshots["g2"].g2_zero, rel=0.2)  # later snapshot
    rx, fx = views.residual_curve.xData, views.fit_curve.xData  # as given (getData: as drawn)
    assert rx is not None and len(rx) == len(fx) > 10
    assert views.fit_region.isVisible()
    low, high = views.fit_region.getRegion()
    assert low <= rx[0] and rx[-1] <= high
    window.stop_engine()


def test_spad_rate_readout_turns_amber_near_the_limit_and_images_have_colour_bars(make_window, qtbot) -> None:
    from gui.instruments_box import RATE_STYLES, rate_level
    from gui.view_ranges import KEEP_FILL

    assert [rate_level(r, 100.0) for r in (79.0, 80.0, 100.0, 101.0)] == ["ok", "near", "near", "over"]
    window = make_window()  # SPAD limit 5 Mcps
    readout = window.panels["spad_a"].rate_readout
    names = window.status_line.channel_names
    spad_a = next(ch for ch, name in names.items() if name == "spad_a")
    for rate, style in ((1e6, "ok"), (4.5e6, "near"), (5.5e6, "over")):
        window.instruments.show_spad_rates({spad_a: rate}, names)
        assert readout.styleSheet() == RATE_STYLES[style] and readout.text() == f"{rate / 1e3:,.1f} kcps"
    go_live(window, qtbot)
    qtbot.waitUntil(lambda: window.views.flid_image.image is not None, timeout=20_000)
    qtbot.wait(200)
    low, high = window.views.flid_bar.levels()
    top = float(window.views.flid_image.image.max())
    # the bar holds the image's counts, filled at least half (its levels change in steps, not every frame)
    assert low == 0.0 and top <= high and max(top, 1.0) >= KEEP_FILL * high
    assert readout.styleSheet() == RATE_STYLES["ok"]  # a few kcps of 5 Mcps
    window.stop_engine()


def test_g2_and_trace_bin_widths_restart_the_live_views(make_window, qtbot) -> None:
    import numpy as np

    window = make_window()
    go_live(window, qtbot)
    qtbot.waitUntil(lambda: window.last_snapshots.get("g2") is not None
                    and window.last_snapshots.get("trace") is not None, timeout=20_000)
    assert np.diff(window.last_snapshots["g2"].lag_edges_ps)[0] == 1000
    run_before = window.last_poll["run_number"]
    window.live_box.g2_bin_spin.setValue(2.5)
    window.live_box.trace_bin_spin.setValue(20.0)
    qtbot.waitUntil(lambda: window.last_poll["run_number"] >= run_before + 1
                    and window.last_snapshots["g2"] is not None
                    and np.diff(window.last_snapshots["g2"].lag_edges_ps)[0] == 2500
                    and window.last_snapshots["trace"].bin_ms == 20.0, timeout=30_000)
    assert window.state == "live"
    qtbot.waitUntil(lambda: "per 20 ms" in window.views.trace_value.toPlainText(), timeout=10_000)
    window.stop_engine()


def test_screenshot_of_a_faulting_station_is_written_and_names_the_fault(tmp_path) -> None:
    config = sim_config(time_scale=4.0, library_options={
        "faults": [{"after_s": 6.0, "function": "TDC_getLastTimestamps", "code": 2}]})
    proc, image = gui_screenshot(tmp_path, config.data, after_s=30)
    assert proc.returncode == 1
    assert "Time tagger failed" in proc.stderr and "TDC_getLastTimestamps" in proc.stderr, proc.stderr
    assert not image.isNull() and image.width() > 200

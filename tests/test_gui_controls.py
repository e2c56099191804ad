"""Instrument panels in words for people (issue 12, "Build"): the grating as its lines/mm and
blaze, the tagger's channel mask as checkboxes named by role, read-only values read-only
(pytest-qt, offscreen; the parameters are those the simulated station describes)."""

from __future__ import annotations

import os
from dataclasses import replace

os.environ["QT_QPA_PLATFORM"] = "offscreen"

import pytest  # noqa: E402

pytest.importorskip("PyQt6.QtWidgets")
pytest.importorskip("pytestqt")

from PyQt6 import QtWidgets  # noqa: E402

from labctl.station.parameter_info import describe_instrument  # noqa: E402
from labctl.station.station import Station  # noqa: E402
from tests.conftest import sim_config  # noqa: E402

CHANNEL_NAMES = {0: "laser_sync", 1: "spad_a", 2: "spad_b", 3: "frame_marker"}


@pytest.fixture(scope="module")
def described() -> dict:
    """What the station process sends the window: every instrument's parameters, by role."""
    config = sim_config()
    assert {ch: name for name, ch in config.data["channels"].items()} == CHANNEL_NAMES
    station = Station(config)
    try:
        return {role: describe_instrument(instrument) for role, instrument in station.instruments.items()}
    finally:
        station.close()


@pytest.fixture
def box(qtbot, described):
    from gui.instruments_box import InstrumentsBox

    widget = InstrumentsBox(CHANNEL_NAMES)
    qtbot.addWidget(widget)
    widget.add_panels(described)
    requests: list[tuple[str, str, object]] = []
    widget.change_requested.connect(lambda role, path, value: requests.append((role, path, value)))
    widget.requests = requests  # type: ignore[attr-defined]
    return widget


def info(described: dict, role: str, path: str):
    return next(i for i in described[role] if i.path == path)


def test_grating_is_a_list_of_its_lines_per_mm_and_blaze(box, described) -> None:
    from gui.fields import blaze_text

    assert [blaze_text(b) for b in ("500nm", "500", "1.2um", "Mirror")] == ["500 nm", "500 nm", "1.2 um", "Mirror"]
    panel = box.panels["spectrograph"]
    field = panel.fields["grating"]
    assert isinstance(field, QtWidgets.QComboBox)
    assert [field.itemText(i) for i in range(field.count())] == [
        "1: 150 lines/mm, blaze 500 nm", "2: 600 lines/mm, blaze 500 nm", "3: 1200 lines/mm, blaze 500 nm"]
    assert field.currentText().startswith("1: 150 lines/mm")  # the grating in force
    field.activated.emit(2)  # the user picks the 1200 l/mm grating
    assert box.requests == [("spectrograph", "grating", 3)]
    panel.set_values([replace(info(described, "spectrograph", "grating"), value=2)])
    assert field.currentText() == "2: 600 lines/mm, blaze 500 nm"
    assert "grating_info" not in panel.read_only  # the list says it; no raw dict beside it


def test_tagger_channel_mask_is_one_checkbox_per_input_named_by_role(box, described) -> None:
    panel = box.panels["tagger"]
    field = panel.fields["enabled_channels"]
    boxes = field.findChildren(QtWidgets.QCheckBox)
    assert [b.text() for b in boxes] == ["0: laser sync", "1: SPAD A", "2: SPAD B", "3: frame clock", "4: not wired"]
    assert all(b.isChecked() for b in boxes)  # mask 31 as built
    boxes[2].click()  # SPAD B off
    assert box.requests == [("tagger", "enabled_channels", 0b11011)]
    # the station refused (or not yet applied): the boxes show the instrument's mask again
    panel.show_error("enabled_channels", "27 refused: must be between 0 and 31")
    assert [b.isChecked() for b in boxes] == [True] * 5
    assert panel.errors["enabled_channels"].text().startswith("27 refused")
    panel.set_values([replace(info(described, "tagger", "enabled_channels"), value=0b00011)])
    assert [b.isChecked() for b in boxes] == [True, True, False, False, False]
    panel.set_editable(False, "locked")
    assert not any(b.isEnabled() for b in boxes)


def test_read_only_parameters_are_read_only_fields_and_settable_ones_editable(box, described, qtbot) -> None:
    from gui.panels import format_value

    for role, infos in described.items():
        panel = box.panels[role]
        for item in infos:
            if item.path == "grating_info":
                continue
            if item.settable:
                field = panel.fields[item.path]
                assert field.isEnabled() and not getattr(field, "isReadOnly", lambda: False)(), (role, item.path)
                continue
            field = panel.read_only.get(item.path)
            assert isinstance(field, QtWidgets.QLineEdit), (role, item.path)  # shown, as a field
            assert field.isReadOnly() and field.text() == format_value(item.value), (role, item.path)
    before = list(box.requests)
    field = box.panels["camera"].read_only["actual_exposure_s"]
    qtbot.keyClicks(field, "5")
    field.editingFinished.emit()
    assert box.requests == before and field.text() == format_value(info(described, "camera", "actual_exposure_s").value)


def test_panel_rows_are_labelled_in_words_with_units(box) -> None:
    """Labels from the parameters' own labels and units, never a snake_case name."""
    rows: dict[str, list[str]] = {}
    for role, panel in box.panels.items():
        for form in panel.findChildren(QtWidgets.QFormLayout):
            for row in range(form.rowCount()):
                item = form.itemAt(row, QtWidgets.QFormLayout.ItemRole.LabelRole)
                if item is not None and item.widget() is not None:
                    rows.setdefault(role, []).append(item.widget().text())
    assert set(rows) == set(box.panels)
    snake = [(role, text) for role, texts in rows.items() for text in texts if "_" in text]
    assert snake == []
    assert "Centre wavelength (nm)" in rows["spectrograph"] and "Grating" in rows["spectrograph"]
    assert "external rate (Hz)" in rows["laser"] and "Sensor temperature (°C)" in rows["camera"]
    assert "Slit width (µm)" in rows["spectrograph"] and "max count rate (counts per s)" in rows["spad_a"]
    assert "Enabled inputs (bit N = input N)" in rows["tagger"]
    groups = {role: [g.title() for g in panel.findChildren(QtWidgets.QGroupBox)] for role, panel in box.panels.items()}
    assert groups["tagger"] == ["Input 0: laser sync", "Input 1: SPAD A", "Input 2: SPAD B", "Input 3: frame clock",
                                "Input 4: not wired"]
    assert groups["function_generator"] == ["Channel 1", "Channel 2"]


def test_record_folder_browser_sets_the_folder_and_the_next_free_name(qtbot, tmp_path, monkeypatch) -> None:
    from gui.record_panel import RecordPanel

    panel = RecordPanel(str(tmp_path))
    qtbot.addWidget(panel)
    chosen = tmp_path / "night"
    chosen.mkdir()
    (chosen / "qd_0004.h5").touch()
    asked: list[str] = []

    def dialog(parent, title, start):
        asked.append(start)
        return str(chosen)

    monkeypatch.setattr(QtWidgets.QFileDialog, "getExistingDirectory", staticmethod(dialog))
    panel.browse_button.click()
    assert asked == [str(tmp_path)]  # the dialog opens in the current folder
    assert panel.folder_edit.text() == str(chosen) and panel.file_edit.text() == "qd_0005.h5"
    assert panel.path() == chosen / "qd_0005.h5"
    monkeypatch.setattr(QtWidgets.QFileDialog, "getExistingDirectory", staticmethod(lambda *a: ""))
    panel.browse_button.click()  # cancelled: nothing changes
    assert panel.path() == chosen / "qd_0005.h5"


def test_flid_and_waterfall_colour_bars_have_units_and_follow_the_image(qtbot) -> None:
    import numpy as np

    from gui.view_ranges import KEEP_FILL
    from gui.views import LiveViews
    from labctl.analysis.spectrum_live import SpectrumSnapshot

    views = LiveViews()
    qtbot.addWidget(views)
    for bar, unit in ((views.flid_bar, "trace bins"), (views.waterfall_bar, "counts per pixel")):
        axis = bar.getAxis("left")  # a vertical bar's label is drawn on its left
        assert axis.labelText == unit and axis.isVisible() and axis.label.isVisible()
    waterfall = np.full((4, 3), np.nan, np.float32)
    waterfall[1:] = [[100, 250, 120], [90, 300, 110], [95, 280, 105]]
    snap = SpectrumSnapshot(wavelength_nm=np.array([590.0, 600.0, 610.0]), latest=waterfall[-1].astype(np.float64),
                            latest_index=3, waterfall=waterfall, first_index=0, frame_period_s=0.1,
                            frames_received=3, frames_skipped=0)
    views.show_spectrum(snap)
    low, high = views.waterfall_bar.levels()
    assert low <= 90.0 and 300.0 <= high and 300.0 - 90.0 >= KEEP_FILL * (high - low)  # the data fill the bar
    assert views.waterfall_image.levels.tolist() == [low, high]  # image and bar agree
    assert views.waterfall_image.image.shape == (4, 3) and np.isfinite(views.waterfall_image.image).all()


def test_a_pan_by_hand_unticks_follow_in_every_view(qtbot) -> None:
    from gui.views import LiveViews

    views = LiveViews()
    qtbot.addWidget(views)
    seen: list[bool] = []
    views.follow_changed.connect(seen.append)
    for plot in views.plots:
        views.set_follow(True)
        box = plot.getViewBox()
        assert box.state["mouseEnabled"] == [True, True]
        box.translateBy(x=1.0)  # what a mouse drag does
        box.sigRangeChangedManually.emit(box.state["mouseEnabled"])
        assert views.follow is False
    assert seen == [False, True] * (len(views.plots) - 1) + [False]


def test_grating_list_and_input_checkboxes_fit_the_dock_without_a_horizontal_scrollbar(box, qtbot) -> None:
    box.resize(340, 900)  # the Instruments dock's default width (360) less its frame
    box.show()
    tabs = box.instrument_tabs
    for title in ("Spectrograph", "Time tagger", "Camera"):
        index = next(i for i in range(tabs.count()) if tabs.itemText(i) == title)
        tabs.setCurrentIndex(index)
        qtbot.wait(50)  # layouts settle
        scroll = tabs.widget(index)
        assert not scroll.horizontalScrollBar().isVisible(), title
    grating = box.panels["spectrograph"].fields["grating"]
    assert grating.width() >= grating.fontMetrics().horizontalAdvance(grating.currentText())  # shown whole

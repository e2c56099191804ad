"""The live views redraw a view when its version changes, and leave it alone otherwise."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

os.environ["QT_QPA_PLATFORM"] = "offscreen"
pytest.importorskip("PyQt6.QtWidgets")
pytest.importorskip("pyqtgraph")
pytest.importorskip("pytestqt")

from gui.views import LiveViews  # noqa: E402
from labctl.processes.live_wire import ViewReceiver, ViewSender  # noqa: E402
from tests.test_live_wire import live_sinks, photons, snapshots, with_frame  # noqa: E402

DRAWN_BY = {"trace": "show_trace", "g2": "show_g2", "lifetime": "show_decay", "flid": "show_flid",
            "spectrum": "show_spectrum"}
DRAWN_ITEMS = DRAWN_BY


def count_draws(views: LiveViews) -> dict[str, int]:
    """Count the draws of each view (wraps the views' ``show_*`` on the instance)."""
    counts = {name: 0 for name in DRAWN_BY}
    for name, method_name in DRAWN_BY.items():
        original = getattr(views, method_name)

        def counted(*args, _name=name, _original=original, **kwargs):
            counts[_name] += 1
            return _original(*args, **kwargs)

        setattr(views, method_name, counted)
    return counts


def test_a_view_redraws_when_its_version_changes_and_not_otherwise(qtbot) -> None:
    views = LiveViews()
    qtbot.addWidget(views)
    counts = count_draws(views)
    rng = np.random.default_rng(8)
    sinks, sender, receiver = live_sinks(), ViewSender(), ViewReceiver()

    def poll_and_show() -> set[str]:
        changed = receiver.apply(pickle.loads(pickle.dumps(sender.encode(snapshots(sinks), receiver.have()))))
        views.show(dict(receiver.views))
        return changed

    block = with_frame(photons(rng, 0, 20_000, 500_000_000_000), 0, rng)
    for sink in sinks.values():
        sink.update(block)
    assert poll_and_show() == set(DRAWN_ITEMS)
    assert counts == {name: 1 for name in DRAWN_ITEMS}

    assert poll_and_show() == set()  # nothing new: no view is drawn again
    assert counts == {name: 1 for name in DRAWN_ITEMS}

    block = photons(rng, 500_000_000_000, 20_000, 500_000_000_000)  # photons, no camera frame
    for sink in sinks.values():
        sink.update(block)
    assert poll_and_show() == set(DRAWN_ITEMS) - {"spectrum"}
    assert counts == {**{name: 2 for name in DRAWN_ITEMS}, "spectrum": 1}
    x, y = views.g2_curve.getData()
    np.testing.assert_array_equal(y, sinks["g2"].snapshot().counts)  # the newest pairs are on screen

    views.set_threshold(5.0)  # a new ON threshold: the trace is drawn again with the same data
    views.show(dict(receiver.views))
    assert counts == {**{name: 2 for name in DRAWN_ITEMS}, "trace": 3, "spectrum": 1}
    assert "set by hand" in views.trace_value.toPlainText()


@pytest.mark.parametrize(("station_ms", "live_ms"), [(50.0, 25.0), (20.0, 20.0)])
def test_a_live_run_reads_the_tagger_at_least_every_25_ms(station_ms: float, live_ms: float) -> None:
    """Each tagger read is a frame of the views: a live run (no file) from the window reads at
    most every 25 ms; a recording keeps the station's period."""
    import copy

    from gui.link import StationLink
    from labctl.station.station import StationConfig

    data = copy.deepcopy(StationConfig.load().data)
    data["engine"] = {**data.get("engine", {}), "poll_interval_ms": station_ms}
    link = StationLink(StationConfig.from_dict(data, "<test>"), ["g2"])  # not started: calls are only queued
    link.call("start_run", None, sinks=[])
    link.call("start_run", "run.h5", sinks=[])
    (_, _, live_args, live_kwargs), (_, _, record_args, record_kwargs) = link._queue.get(), link._queue.get()
    assert live_kwargs["settings"].poll_interval_ms == live_ms
    assert live_kwargs["settings"].watchdog_s == StationConfig.from_dict(data, "<test>").engine.watchdog_s
    assert "settings" not in record_kwargs

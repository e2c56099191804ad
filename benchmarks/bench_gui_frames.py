"""Live views: the GUI thread's CPU time per frame, on recorded polls (no station running meanwhile).

Run: ``python benchmarks/bench_gui_frames.py [polls] [time_scale]`` (offscreen; prints figures, not a test).

``bench_gui.py`` measures the whole window live, and its wall-clock figures move with
whatever else the machine runs.  This one first records ``polls`` polls of a live run
(the views as the window's link rebuilds them, default 150 at time scale 4, where every
view changes with every poll), closes the station, and then draws them one by one into
the live views (1240 x 960, the window's size for them), letting Qt finish each frame's
paints before the next.  It prints, per poll: the GUI thread's CPU time (drawing and
painting), the drawing alone, Qt's paints of the views (how many, and CPU time each),
and how often a view box was resized (a re-layout of the plots).  Run on a checkout whose
views still draw a poll in two halves (``LiveViews.show(..., half=)``, before the frame
pacer), it draws each poll as that window did: one half, Qt's work, the other half.
"""

from __future__ import annotations

import copy
import inspect
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.append(str(Path(__file__).resolve().parent.parent))  # after PYTHONPATH: another checkout can be measured

import numpy as np  # noqa: E402
import pyqtgraph as pg  # noqa: E402
from PyQt6 import QtWidgets  # noqa: E402

from paint_timing import time_paints  # noqa: E402  (this folder: the script's own)

WARM_UP_POLLS = 10
"""Polls drawn before measuring (the run's first frames lay out titles and axes)."""


def record(polls: int, time_scale: float) -> list[tuple[dict, object]]:
    """``polls`` polls of a live run: (views, live fit), as the window's link holds them."""
    from gui.link import POLL_WAIT_S, live_engine_settings
    from gui.main_window import LIVE_SINKS, SINK_NAMES
    from labctl.processes.live_wire import ViewReceiver
    from labctl.processes.station_process import StationProcess
    from labctl.station.station import StationConfig

    data = copy.deepcopy(StationConfig.load().data)
    data["instruments"]["tagger"]["library_options"]["time_scale"] = time_scale
    config = StationConfig.from_dict(data, "<bench station>")
    out: list[tuple[dict, object]] = []
    with StationProcess(config) as process:
        process.start_run(None, sinks=LIVE_SINKS, settings=live_engine_settings(config))
        receiver, fit, fit_number = ViewReceiver(), None, None
        while len(out) < polls:
            poll = process.poll(SINK_NAMES, fit_after=fit_number, views_have=receiver.have(), wait_s=POLL_WAIT_S)
            if not poll.get("fit_unchanged"):
                fit, fit_number = poll.get("fit"), poll.get("fit_number")
            receiver.apply(poll["views"])
            out.append(({name: receiver.views.get(name) for name in SINK_NAMES}, fit))
        process.stop_run()
    return out


def replay(app: QtWidgets.QApplication, recorded: list[tuple[dict, object]]) -> dict[str, float]:
    """Draw the recorded polls into the live views, one frame each; GUI thread CPU figures (ms)."""
    from gui.views import LiveViews

    views = LiveViews()
    views.resize(1240, 960)
    views.setVisible(True)
    paints: list[float] = []
    resizes = [0]
    resize_event = pg.ViewBox.resizeEvent
    restore_paints = time_paints(paints)

    def counted_resize(self, event):  # noqa: ANN001 - Qt's signature
        resizes[0] += 1
        return resize_event(self, event)

    pg.ViewBox.resizeEvent = counted_resize
    per_poll, drawing = [], []
    halves = "half" in inspect.signature(LiveViews.show).parameters  # the window before the frame pacer

    def settle() -> None:
        for _ in range(4):  # Qt's posted work for the frame: dirty items, then the paint
            app.processEvents()

    try:
        for number, (snaps, fit) in enumerate(recorded):
            if number == WARM_UP_POLLS:
                paints.clear()
                resizes[0] = 0
            started = time.thread_time()
            if halves:
                views.show(snaps, fit, half=0)
                drawn = time.thread_time()
                settle()
                second = time.thread_time()
                views.show(snaps, fit, half=1)
                drawn += time.thread_time() - second
            else:
                views.show(snaps, fit)
                drawn = time.thread_time()
            settle()
            if number >= WARM_UP_POLLS:
                per_poll.append(time.thread_time() - started)
                drawing.append(drawn - started)
    finally:
        restore_paints()
        pg.ViewBox.resizeEvent = resize_event
        views.close()
    cpu, draw, paint = (np.array(x) * 1e3 for x in (per_poll, drawing, paints))
    return {"polls": float(cpu.size), "cpu_ms_median": float(np.median(cpu)), "cpu_ms_p95": float(np.percentile(cpu, 95)),
            "cpu_ms_max": float(cpu.max()), "draw_ms_median": float(np.median(draw)),
            "paints_per_poll": paint.size / cpu.size, "paint_ms_median": float(np.median(paint)),
            "paint_ms_max": float(paint.max()), "viewbox_resizes": float(resizes[0])}


def main() -> None:
    polls = int(sys.argv[1]) if len(sys.argv) > 1 else 150
    time_scale = float(sys.argv[2]) if len(sys.argv) > 2 else 4.0
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["bench_gui_frames"])
    recorded = record(polls + WARM_UP_POLLS, time_scale)
    r = replay(app, recorded)
    print(f"live views ({'two halves per poll' if 'half' in inspect.signature(__import__('gui.views').views.LiveViews.show).parameters else 'one frame per poll'}), {r['polls']:.0f} recorded polls at time scale {time_scale:g}, offscreen: GUI thread CPU per poll "
          f"{r['cpu_ms_median']:.1f} ms median, {r['cpu_ms_p95']:.1f} ms p95, {r['cpu_ms_max']:.1f} ms longest "
          f"(drawing {r['draw_ms_median']:.1f} ms median); {r['paints_per_poll']:.2f} paints per poll, "
          f"{r['paint_ms_median']:.1f} ms median, {r['paint_ms_max']:.1f} ms longest; "
          f"{r['viewbox_resizes']:.0f} view box resizes; machine load average {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()

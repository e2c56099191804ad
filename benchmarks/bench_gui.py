"""Lab window: redraw rate, draw time, photon-to-screen latency and event-loop stalls.

Run: ``python benchmarks/bench_gui.py [seconds]`` (offscreen; prints figures, not a test).

For each tagger time scale (1 = the experiment's real 1 MHz rate, 4 = four times
faster) the window runs the simulated microscope live and logs every frame it draws:

* redraw rate: frames drawn per second of wall time (target >= 30), and how many of
  them show a new tagger read (a frame draws the newest poll handed on by the link,
  at most ``gui.frame_pacer.MAX_FRAME_HZ`` frames per second);
* draw time: time inside ``refresh`` for one frame (every changed view's
  ``setData``/``setImage``; Qt's painting comes after and shows in the event-loop gaps);
* latency, photon arrival to screen: the simulated tagger's clock runs with the
  wall clock (``time.monotonic``, shared by the processes), so the arrival time of
  the newest tag the engine had read is ``origin + t_tag / time_scale``.  The
  origin is estimated as the smallest ``read_time - t_tag / time_scale`` over the
  run (a tag cannot be read before it arrived; at 250 k syncs/s the newest tag
  of a read is microseconds old), and latency = end of the frame's draw - arrival.
  It includes the sinks' work on the block, the poll (which waits in the station
  for new data), the transfer, a wait for the next frame when the poll came sooner
  than one frame period after the last, and the drawing;
* payload: pickled bytes per poll (what crosses from the station process), by part,
  polled as the window's link does (views as changes since the version held);
* event loop: gaps between ticks of a 5 ms probe timer; "blocked by this process"
  counts a gap only as far as the GUI process used CPU in it (min(gap, process CPU
  time)), since a gap without CPU use is the OS running other work; "by its GUI
  thread" counts only the GUI thread's own CPU time (the link thread's work in a
  long gap of a loaded machine does not stop the event loop); and the GUI process's
  full (generation 2) garbage collections in the window, with the longest collection;
* CPU time (load-independent, unlike the wall-clock figures on a shared machine): the GUI
  thread's CPU time per second of wall time and per frame, and Qt's paints of the views
  (``paintEvent``): how many per second and the GUI thread's CPU time in each; polls handed
  on by the link per second (the frames' supply).
"""

from __future__ import annotations

import copy
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PyQt6 import QtCore, QtWidgets  # noqa: E402

from gui.main_window import MainWindow  # noqa: E402
from paint_timing import time_paints  # noqa: E402  (this folder: the script's own)
from labctl.station.station import StationConfig  # noqa: E402


def wait_for(app: QtWidgets.QApplication, condition, timeout_s: float) -> None:
    """Run the Qt event loop (as app.exec does) until ``condition()`` holds."""
    loop = QtCore.QEventLoop()
    deadline = time.monotonic() + timeout_s
    failed = []

    def check() -> None:
        if condition():
            loop.quit()
        elif time.monotonic() > deadline:
            failed.append(True)
            loop.quit()

    checker = QtCore.QTimer()
    checker.timeout.connect(check)
    checker.start(20)
    loop.exec()
    checker.stop()
    if failed:
        raise TimeoutError("the window did not reach the expected state")


PAINTS: list[float] = []  # GUI thread CPU time (s) of each paint of the live views


def count_paints() -> None:
    """Log the GUI thread's CPU time in each ``paintEvent`` of the live views (class-wide) into ``PAINTS``."""
    time_paints(PAINTS)


def run(app: QtWidgets.QApplication, time_scale: float, seconds: float) -> dict[str, float]:
    data = copy.deepcopy(StationConfig.load().data)
    data["instruments"]["tagger"]["library_options"]["time_scale"] = time_scale
    with tempfile.TemporaryDirectory() as tmp:
        window = MainWindow(StationConfig.from_dict(data, "<bench station>"), settings_path=Path(tmp) / "bench.ini",
                            restore_layout=False)
        window.show()
        wait_for(app, lambda: window.state == "idle", 60)
        window.start_live()
        wait_for(app, lambda: window.state == "live" and window.frames_drawn >= 10, 60)
        window.frame_log.clear()
        polls = [0]
        window.link.polled.connect(lambda: polls.__setitem__(0, polls[0] + 1))
        PAINTS.clear()
        ticks: list[float] = []
        collections: list[tuple[int, float]] = []  # (generation, ms) of the GUI process's garbage collections
        started_gc = [0.0]

        def on_gc(phase: str, info: dict) -> None:
            if phase == "start":
                started_gc[0] = time.perf_counter()
            else:
                collections.append((info["generation"], (time.perf_counter() - started_gc[0]) * 1e3))

        gc.callbacks.append(on_gc)
        probe = QtCore.QTimer()
        probe.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        probe.timeout.connect(lambda: ticks.append((time.monotonic(), time.process_time(), time.thread_time())))
        probe.start(5)
        started = time.monotonic()
        wait_for(app, lambda: time.monotonic() - started >= seconds, seconds + 10)
        probe.stop()
        paints = np.array(PAINTS, np.float64) * 1e3
        gc.callbacks.remove(on_gc)
        log = np.array([row for row in window.frame_log if row[3] is not None and row[4] is not None], np.float64)
        window.close()
    draw_s, draw_end, received, read, tag_ps = log.T
    tag_s = tag_ps * 1e-12 / time_scale
    origin = np.min(read - tag_s)
    latency_ms = (draw_end - (origin + tag_s)) * 1e3
    tick_wall, tick_cpu, tick_thread = np.array(ticks).T
    gaps = np.diff(tick_wall)
    new_data = np.count_nonzero(np.diff(read) != 0) + 1 if read.size else 0
    wall_s = tick_wall[-1] - tick_wall[0]
    gui_cpu_s = tick_thread[-1] - tick_thread[0]
    return {
        "fps": len(log) / seconds,
        "fps_new_data": new_data / seconds,
        "draw_ms_median": float(np.median(draw_s) * 1e3),
        "draw_ms_p95": float(np.percentile(draw_s, 95) * 1e3),
        "latency_ms_median": float(np.median(latency_ms)),
        "latency_ms_p95": float(np.percentile(latency_ms, 95)),
        "read_to_gui_ms_median": float(np.median(received - read) * 1e3),
        "max_loop_gap_ms": float(np.max(gaps) * 1e3),
        "loop_gap_ms_p99": float(np.percentile(gaps, 99) * 1e3),
        "loop_gaps_over_50ms": int(np.sum(gaps > 0.050)),
        "max_blocked_ms": float(np.max(np.minimum(gaps, np.diff(tick_cpu))) * 1e3),
        "max_thread_blocked_ms": float(np.max(np.minimum(gaps, np.diff(tick_thread))) * 1e3),
        "load_average": os.getloadavg()[0],
        "gen2_collections": sum(1 for g, _ in collections if g == 2),
        "longest_gc_ms": max((ms for _, ms in collections), default=0.0),
        "polls_per_s": polls[0] / seconds,
        "gui_cpu_per_s": gui_cpu_s / wall_s,
        "gui_cpu_ms_per_frame": gui_cpu_s * 1e3 / max(len(log), 1),
        "paints_per_s": paints.size / seconds,
        "paint_cpu_ms_median": float(np.median(paints)) if paints.size else 0.0,
        "paint_cpu_ms_max": float(np.max(paints)) if paints.size else 0.0,
    }


def payload_bytes(seconds: float) -> dict[str, float]:
    """Pickled bytes per poll of a live run (the GUI's sinks), by part, polled as the window's link does
    (views as changes since the versions held, waiting in the station for new data)."""
    import pickle

    from gui.link import POLL_WAIT_S, live_engine_settings
    from gui.main_window import LIVE_SINKS, SINK_NAMES
    from labctl.processes.live_wire import ViewReceiver
    from labctl.processes.station_process import StationProcess

    config = StationConfig.load()
    sizes: list[dict[str, int]] = []
    with StationProcess(config) as process:
        process.start_run(None, sinks=LIVE_SINKS, settings=live_engine_settings(config))
        receiver = ViewReceiver()
        fit_number = None
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            poll = process.poll(SINK_NAMES, fit_after=fit_number, views_have=receiver.have(), wait_s=POLL_WAIT_S)
            fit_number = poll.get("fit_number")
            receiver.apply(poll["views"])
            if poll["status"].get("elapsed_s", 0.0) > 3.0:  # after the first fit is due
                parts = {name: len(pickle.dumps(view)) for name, view in poll["views"].items()}
                parts["fit"] = len(pickle.dumps(poll.get("fit")))
                parts["total"] = len(pickle.dumps(poll))
                sizes.append(parts)
        process.stop_run()
    polls_per_s = len(sizes) / max(seconds - 3.0, 1e-9)
    out = {key: float(np.mean([s[key] for s in sizes])) for key in sizes[0]} if sizes else {}
    out["polls_per_s"] = polls_per_s
    return out


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["bench_gui"])
    count_paints()
    sizes = payload_bytes(seconds)
    polls_per_s = sizes.pop("polls_per_s", 0.0)
    print(f"bytes per poll (mean over a live run at 1 MHz, {polls_per_s:.1f} polls/s): "
          + ", ".join(f"{key} {value / 1e3:,.1f} kB" for key, value in sizes.items()), flush=True)
    print(f"lab window, offscreen, {seconds:g} s live per case (2 cores shared with the engine process)")
    for time_scale in (1.0, 4.0):
        r = run(app, time_scale, seconds)
        print(f"time scale {time_scale:g} (sync {time_scale:g} MHz): {r['fps']:.1f} frames/s (target 30, "
              f"ratio {r['fps'] / 30:.2f}), {r['fps_new_data']:.1f} of them with a new tagger read; draw {r['draw_ms_median']:.1f} ms median, {r['draw_ms_p95']:.1f} ms p95; "
              f"photon->screen {r['latency_ms_median']:.0f} ms median, {r['latency_ms_p95']:.0f} ms p95 "
              f"(engine read->GUI process {r['read_to_gui_ms_median']:.0f} ms); "
              f"event-loop gaps: longest {r['max_loop_gap_ms']:.1f} ms, p99 {r['loop_gap_ms_p99']:.1f} ms, "
              f"{r['loop_gaps_over_50ms']} over 50 ms; longest blocked by this process "
              f"{r['max_blocked_ms']:.1f} ms (limit 50), by its GUI thread {r['max_thread_blocked_ms']:.1f} ms; garbage collections: {r['gen2_collections']} full, longest "
              f"{r['longest_gc_ms']:.1f} ms; machine load average {r['load_average']:.2f}", flush=True)
        print(f"  CPU time: GUI thread {r['gui_cpu_per_s'] * 1e3:.0f} ms per s, {r['gui_cpu_ms_per_frame']:.1f} ms per frame; "
              f"{r['paints_per_s']:.1f} paints/s of the views, {r['paint_cpu_ms_median']:.1f} ms median, "
              f"{r['paint_cpu_ms_max']:.1f} ms longest; {r['polls_per_s']:.1f} polls/s handed on by the link", flush=True)


if __name__ == "__main__":
    main()

"""The lab's main window: instrument panels, live views, recording, status bar.

Presentation only.  The station is built once in a child process
(:class:`~labctl.processes.station_process.StationProcess`) and every round trip to it
runs on the :class:`~gui.link.StationLink` worker thread.  A new poll (status, changed views,
live fit, monitors) is drawn as one frame, one ``setData`` / ``setImage`` per changed view
(STYLE.md, "Live plots"), at most ``max_frame_hz`` frames per second on average
(:mod:`gui.frame_pacer`: at once if the frame budget allows, else once when it does, with the
newest poll), so Qt paints the window once per frame.  Window layout and the settings changed in the panels persist
(QSettings) and are applied again, through the station's validation, at the
next start.  After a setting change the station restarts a live run: the window
sees the new run number in the poll, starts the views' ranges again and re-reads
every panel (one setting can change another instrument: the laser's rate is the
function generator's ch1).  After a fault, Reconnect closes the station process and
opens a new one (:mod:`gui.reconnect`); the views keep their last data meanwhile.
The widgets are built in :mod:`gui.window_layout`.
"""

from __future__ import annotations

import collections
import gc
import threading
import time
from pathlib import Path
from typing import Any

from PyQt6 import QtGui, QtWidgets

from gui.frame_pacer import MAX_FRAME_HZ, FramePacer
from gui.link import StationLink
from gui.messages import ROLE_TITLES, field_error, run_problems, setting_error, settings_key_path, station_failure
from gui.panels import field_label
from gui.persistence import WindowSettings
from gui.reconnect import replace_station
from gui.status_bar import format_rate  # noqa: F401 - public here too
from gui.window_layout import build_window
from labctl.station.station import StationConfig

LIVE_SINKS: list[tuple[str, dict]] = [
    ("labctl.analysis.G2Accumulator", {}),
    ("labctl.analysis.LifetimeAccumulator", {}),
    ("labctl.analysis.IntensityTrace", {}),
    ("labctl.analysis.FlidAccumulator", {}),
    ("labctl.analysis.spectrum_live.LiveSpectrum", {"history": 100}),  # 10 s at 10 frames/s, as the trace
]
SINK_NAMES = ("g2", "lifetime", "trace", "flid", "spectrum")
FRAME_LOG_LENGTH = 20_000  # frames kept for the latency benchmark


class MainWindow(QtWidgets.QMainWindow):
    """The lab window on one station.

    Args:
        config: the station (default: the built-in simulated microscope).
        settings_path: an INI file for the persisted layout and settings (default:
            the user's QSettings for ``labctl``); tests give a temporary file.
        max_frame_hz: highest average redraw rate of the live views (frames/s); polls that come
            sooner wait for the next frame, which draws the newest.
        restore_layout: False keeps the default layout (screenshots for documentation).
    """

    def __init__(self, config: StationConfig | None = None, settings_path: str | Path | None = None,
                 max_frame_hz: float = MAX_FRAME_HZ, restore_layout: bool = True) -> None:
        super().__init__()
        self.config = config if config is not None else StationConfig.load()
        self.persisted = WindowSettings(settings_path, self.config.source)
        self.qsettings = self.persisted.qsettings
        self.state = "connecting"
        self.recording_path: Path | None = None
        self.pending_record: Path | None = None
        self.last_poll: dict[str, Any] | None = None
        self.last_status: dict[str, Any] = {}
        self.last_snapshots: dict[str, Any] = {}
        self.last_summary: Any = None
        self.frames_drawn = 0
        self.frame_log: collections.deque = collections.deque(maxlen=FRAME_LOG_LENGTH)
        self._drawn_poll_time = -1.0
        self._rates: dict[int, float] = {}
        self._run_number: int | None = None  # the station's run drawn (a live restart is a new run)
        self._resume_live = False  # back to live once the recording has ended
        self.setWindowTitle(f"labctl — {self.config.source}")
        build_window(self)
        if restore_layout:
            self.persisted.restore_layout(self)
        self._go_live_when_open = False  # a reconnect returns to live
        self._reconnecting: threading.Thread | None = None
        self.pacer = FramePacer(self.refresh, max_frame_hz, parent=self)
        self.link = self._make_link()
        self.link.start()

    def _make_link(self) -> StationLink:
        link = StationLink(self.config, SINK_NAMES)
        link.progress.connect(self.status_line.show_preparing)
        link.opened.connect(self._on_opened)
        link.failed.connect(self._on_failed)
        link.run_ended.connect(self._on_run_ended)
        link.polled.connect(self.pacer.request)
        return link

    # ------------------------------------------------------------------ station events
    def _on_opened(self, described: dict[str, list[Any]]) -> None:
        if self.panels:  # opened again (a reconnect): the same instruments
            self.instruments.show_described(described)
        else:
            self.instruments.add_panels(described)
        self.excitation_buttons = self.instruments.excitation_buttons
        self.status_line.done_preparing()
        freeze_built_objects()
        self.state = "idle"
        self.state_label.setText("idle")
        self._update_buttons()
        for role in self.panels:
            saved = self.persisted.saved_settings(role)
            if saved:
                self.link.call("configure", role, saved, on_ok=self._reread_panels,
                               on_error=lambda exc, r=role: self._saved_refused(r, exc))
        if self._go_live_when_open:
            self._go_live_when_open = False
            self._start(None)

    def _saved_refused(self, role: str, exc: BaseException) -> None:
        self.persisted.remember(role, None)
        self.show_error(f"saved {ROLE_TITLES.get(role, role)} settings were refused and forgotten: {exc}")

    def _on_failed(self, message: str) -> None:
        self.state = "failed"
        self.state_label.setText("no station")
        self.status_line.done_preparing()
        self._go_live_when_open = self._resume_live = False
        self.link.running, self.recording_path, self.pending_record = False, None, None  # no run goes on
        self._unlock()
        self.show_error(station_failure(message))
        self.reconnect_button.show()
        self._update_buttons()

    def _reread_panels(self, _: Any = None) -> None:
        """Ask every instrument's values again (after a configure, at a run's start)."""
        self.link.call("describe", on_ok=self.instruments.show_described, on_error=lambda exc: None)

    def _on_run_ended(self, summary: Any) -> None:
        self.last_summary = summary
        was_recording = self.recording_path is not None
        if was_recording:
            self.record_panel.show_summary(summary)
            self.record_panel.advance()
        problems = run_problems(summary)
        if problems:
            self.show_error(problems)
        if not summary.clean:
            self.reconnect_button.show()
        elif was_recording:
            self.show_message(f"recorded {summary.photons_written:,} photons to {summary.file_path}")
        self.state = "idle"
        self.recording_path = None
        self.state_label.setText(f"idle (last run: {summary.end_reason if summary.clean else 'fault, see the message line'})")
        self._unlock()
        pending, self.pending_record = self.pending_record, None
        self._update_buttons()
        self._reread_panels()  # the run's end switched outputs off
        if pending is not None:  # the live run ended for this recording
            self._start(pending)
            return
        resume, self._resume_live = self._resume_live and was_recording and summary.clean, False
        if resume:  # back to live after a recording (not after a fault)
            self._start(None)

    def reconnect(self) -> None:
        """After a fault: close the station process, open a new one on the same station and go
        back to live.  The views keep the last good data until the new run's first."""
        if self.state not in ("idle", "failed"):
            return
        self.state = "reconnecting"
        self.state_label.setText("reconnecting…")
        self.reconnect_button.hide()
        self._go_live_when_open = True
        old, self.link = self.link, self._make_link()
        self._reconnecting = replace_station(old, self.link)
        self._update_buttons()

    def _unlock(self) -> None:
        for panel in self.panels.values():
            panel.set_editable(True)
        self.record_panel.set_editable(True)

    # ------------------------------------------------------------------ commands
    def start_live(self) -> None:
        """Run the station without a file (live views only)."""
        if self.state == "idle":
            self._start(None)

    def start_recording(self, path: str | Path | None = None) -> bool:
        """Record to ``path`` (default: the Record box's folder and name); a live run is ended
        first, and live resumes once the recording has ended.  False if refused."""
        path = Path(path) if path is not None else self.record_panel.path()
        if not path.name:
            self.show_error("Record: give a file name")
            return False
        if path.exists():
            self.show_error(f"Record: {path} already exists; choose another name")
            return False
        if self.state not in ("idle", "live"):
            self.show_error(f"Record: not possible while {self.state}")
            return False
        self.record_panel.show_path(path)
        self.persisted.record_folder = str(path.parent) if str(path.parent) != "." else ""
        self._resume_live = True
        if self.state == "live":
            self.pending_record = path
            self.stop_engine()
        else:
            self._start(path)
        return True

    def _start(self, out_path: Path | None) -> None:
        self.message_line.show_message("")
        self.state = "starting"
        self.recording_path = out_path
        self.views.reset()
        self.last_status, self._rates = {}, {}  # nothing of the previous run counts for this one
        self.status_line.show_rates({})
        self.state_label.setText("starting…")
        for panel in self.panels.values():
            panel.clear_errors()  # refusals of earlier values are stale once a run starts
        self._update_buttons()
        kwargs: dict[str, Any] = {}
        if out_path is not None:
            for panel in self.panels.values():
                panel.set_editable(False, "settings are locked while recording (the file records one set)")
            self.record_panel.set_editable(False)
            kwargs = {"duration_s": self.record_panel.duration_s(), "notes": self.record_panel.notes()}
        self.link.call("start_run", str(out_path) if out_path is not None else None,
                       sinks=self.live_box.sink_specs(LIVE_SINKS),
                       description="labctl gui" if out_path is not None else "",
                       on_ok=lambda _: self._started(out_path), on_error=self._start_failed, **kwargs)

    def _started(self, out_path: Path | None) -> None:
        self.link.running = True
        self.reconnect_button.hide()
        self.state = "recording" if out_path is not None else "live"
        self.state_label.setText(self.state)
        self._update_buttons()
        self._reread_panels()  # the run switched outputs on (the generator's ch1 for the laser)

    def _start_failed(self, exc: BaseException) -> None:
        self.state = "idle"
        self.recording_path = None
        self._resume_live = False
        self._unlock()
        self.show_error(f"Start failed: {exc}")
        self._update_buttons()

    def stop_engine(self) -> None:
        """Ask the run to end; returns at once (the child closes the file; ``run_ended`` follows)."""
        if self.state not in ("live", "recording"):
            return
        self.state = "stopping"
        self.state_label.setText("stopping… (closing the file)" if self.recording_path else "stopping…")
        self._update_buttons()
        self.link.call("stop_run", "stopped")

    def clear_views(self) -> None:
        """Start the live views from zero: the station restarts the live run (same settings)."""
        if self.state == "live":
            self.link.call("clear_live", self.live_box.sink_specs(LIVE_SINKS),
                           on_error=lambda exc: self.show_error(f"Clear: {exc}"))

    def set_excitation(self, on: bool) -> None:
        """Switch the excitation on or to its safe state (the indicator follows the instrument)."""
        # an error here is the switch's (shown), not a lost station
        self.link.call("set_excitation", on, on_ok=self._show_monitors,
                       on_error=lambda exc: self.show_error(f"Excitation {'on' if on else 'off'} failed: {exc}"))

    def change_setting(self, role: str, path: str, value: Any) -> None:
        """A panel asks for ``role.path = value``: the station validates, then applies or refuses."""
        panel = self.panels[role]

        def applied(infos: list[Any]) -> None:
            panel.set_values(infos)
            panel.clear_error(path)
            self.persisted.remember(role, {path: value})
            self.show_message(f"{ROLE_TITLES.get(role, role)}: {path} = {value!r}")
            self._reread_panels()  # one setting can change another instrument's values

        def refused(exc: BaseException) -> None:
            key = settings_key_path(exc, role) or path
            panel.show_error(key, field_error(exc, role))
            info = panel.infos.get(key)
            self.show_error(setting_error(exc, role, field_label(info) if info is not None else key))

        self.link.call("configure", role, {path: value}, on_ok=applied, on_error=refused)

    def _toggle_record(self) -> None:
        if self.state == "recording":
            self.stop_engine()
        else:
            self.start_recording()

    def _update_buttons(self) -> None:
        ready = self.state == "idle"
        self.start_button.setEnabled(ready)
        self.live_box.clear_button.setEnabled(self.state == "live")
        self.stop_button.setEnabled(self.state in ("live", "recording"))
        self.record_button.setText("Stop recording" if self.state == "recording" else "Start recording")
        self.record_button.setEnabled(self.state in ("idle", "live", "recording"))
        self.reconnect_button.setEnabled(self.state in ("idle", "failed"))
        self.record_panel.set_editable(self.state in ("idle", "live", "failed", "connecting"))
        self.instruments.set_recording(self.recording_path is not None and self.state in ("starting", "recording", "stopping"))

    def show_error(self, text: str) -> None:
        """An error in the message line (red, wrapping); the status bar keeps its count rates."""
        self.message_line.show_error(text)

    def show_message(self, text: str) -> None:
        self.message_line.show_message(text)

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802 - Qt's name
        self.pacer.stop()
        self.persisted.save_layout(self)
        if self._reconnecting is not None:
            self._reconnecting.join(60.0)  # the new link has started (or the old one is still closing)
        self.link.close()  # ends any run (the child closes its file), excitation safe, instruments closed
        gc.unfreeze()  # the closed window's objects can be collected again
        super().closeEvent(event)

    # ------------------------------------------------------------------ refresh
    def refresh(self) -> None:
        """One frame: the newest poll not drawn yet (monitors, status, every view that changed, each
        with one setData/setImage); nothing if it was drawn.  The pacer calls it (or a screenshot)."""
        started_s = time.monotonic()
        poll = self.link.latest()
        if poll is None or poll["received_s"] == self._drawn_poll_time:
            return
        self._drawn_poll_time = poll["received_s"]
        self.last_poll = poll
        self._show_monitors(poll["monitors"])
        if not self.link.running or self.state not in ("live", "recording", "stopping"):
            return
        run_number = poll.get("run_number")
        if run_number != self._run_number:  # a new run (a live run restarted after a setting change)
            self._run_number = run_number
            self.views.reset()
            self._reread_panels()
        status = poll["status"]
        self.last_status = status
        self._show_status(status)
        snaps = poll["snapshots"]
        if self.live_box.pause_button.isChecked():
            return  # paused: the run and the status bar go on, the views keep what they show
        if any(s is not None for s in snaps.values()):
            self.last_snapshots = snaps
            self.views.show(snaps, poll.get("fit"))
            self.frames_drawn += 1
            done_s = time.monotonic()
            # (time spent drawing, draw end, poll received, newest tag read by the engine, its tagger time ps)
            self.frame_log.append((done_s - started_s, done_s, poll["received_s"],
                                   status.get("read_monotonic_s"), status.get("last_tag_ps")))

    def _show_monitors(self, monitors: dict[str, Any]) -> None:
        self.instruments.show_monitors(monitors)
        self.status_line.show_temperature(monitors)

    def _show_status(self, status: dict[str, Any]) -> None:
        self._rates = {int(ch): float(r) for ch, r in (self.last_poll or {}).get("rates_cps", {}).items()}
        self.status_line.show_rates(self._rates)
        self.instruments.show_spad_rates(self._rates, self.status_line.channel_names)
        self.status_line.show_losses(int(status.get("losses", 0)))
        if self.recording_path is not None:
            self.record_panel.show_status(status, self.recording_path)
        limit = self.record_panel.photon_limit()
        if (self.state == "recording" and limit is not None
                and int(status.get("photons_written", 0)) >= limit):
            self.stop_engine()  # the photon count asked for is written


def freeze_built_objects() -> None:
    """Leave every object built so far (Qt, pyqtgraph, numpy, the panels: about 130 000) out of later
    garbage collections (``gc.freeze``).  A full collection scanned them all, 60-70 ms with the GUI
    thread stopped, once every 10-30 s of a live run; now it scans only what was made since.
    (No collection first: that would be the same pause; garbage frozen here waits for the close.)
    ``closeEvent`` unfreezes them."""
    gc.freeze()


def run_app(config_path: str | Path | StationConfig | None = None, screenshot: str | Path | None = None,
            after_s: float = 3.0) -> int:
    """The ``labctl gui`` entry point (:func:`gui.app.run_app`)."""
    from gui.app import run_app as run

    return run(config_path, screenshot=screenshot, after_s=after_s)

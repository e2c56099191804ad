"""The window's only line to the station process: a worker thread that owns all IPC.

Every round trip to the child (commands and polls) happens on this worker thread,
never on the GUI thread, so a slow answer (a run closing its file, a live run
restarting after a setting change) never blocks the event loop.  Results come
back to the GUI thread as Qt signals (queued connections); the latest poll is
kept for the redraw timer to take, and ``polled`` tells the window at once.

Live views cross as changes (:mod:`labctl.processes.live_wire`): each poll names the version
of every view held here, the station sends only the views that changed since, and
a view's object in ``snapshots`` is a new one only when it changed (``changed``
names them), so the views redraw what changed and nothing else.  A poll in which no
view changed is handed on only every ``QUIET_PUBLISH_S`` (the status bar's rates).
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from typing import Any, Callable, Sequence

from PyQt6 import QtCore

from labctl.station.engine_settings import EngineSettings
from labctl.processes.live_wire import ViewReceiver
from labctl.station.station import StationConfig
from labctl.processes.station_process import StationProcess

_CLOSE = object()
SHOW_PREPARING_AFTER_S = 0.5
"""Start-up progress (the photon kernels made ready) is shown once it has taken this long (s)."""
RUN_POLL_HZ = 100.0
"""Highest poll rate during a run (Hz).  A poll during a run waits in the station (up to
``POLL_WAIT_S``) until every live view has taken a new block, so polls follow the data."""
POLL_WAIT_S = 0.08
"""Longest wait of a run's poll for new data in the station (s); commands wait at most this long."""
LIVE_READ_PERIOD_MS = 25.0
"""Tagger read period of a live run without a file (ms), if the station's is longer: every read
is a new frame of the views (40 frames/s)."""
QUIET_PUBLISH_S = 0.2
"""During a run, a poll without any changed view is handed on at most this often (s)."""


def live_engine_settings(config: StationConfig) -> EngineSettings:
    """The station's engine settings, with a tagger read period of at most ``LIVE_READ_PERIOD_MS``."""
    settings = config.engine
    return dataclasses.replace(settings, poll_interval_ms=min(settings.poll_interval_ms, LIVE_READ_PERIOD_MS))


class StationLink(QtCore.QObject):
    """Open a :class:`StationProcess`, run commands on it and poll it, all on one worker thread.

    Args:
        config: the station to build in the child.
        sink_names: sinks whose snapshots each poll asks for.
        poll_hz: poll rate during a run (Hz).
        idle_poll_hz: poll rate without a run (monitors only) (Hz).
    """

    opened = QtCore.pyqtSignal(object)  # {role: [ParameterInfo]}
    progress = QtCore.pyqtSignal(int, int, str)  # start-up: steps done, steps, what (kernels made ready)
    failed = QtCore.pyqtSignal(str)  # the station could not be built, or the child is gone
    reply = QtCore.pyqtSignal(int, bool, object)  # token, ok, result or exception
    run_ended = QtCore.pyqtSignal(object)  # RunSummary
    polled = QtCore.pyqtSignal()  # a new poll is in ``latest()``

    def __init__(self, config: StationConfig, sink_names: Sequence[str], poll_hz: float = RUN_POLL_HZ,
                 idle_poll_hz: float = 2.0) -> None:
        super().__init__()
        self.config = config
        self.process = StationProcess(config, preparing_after_s=SHOW_PREPARING_AFTER_S)
        self.sink_names = list(sink_names)
        self.run_period_s = 1.0 / poll_hz
        self.idle_period_s = 1.0 / idle_poll_hz
        self.running = False
        self._queue: queue.Queue = queue.Queue()
        self._callbacks: dict[int, tuple[Callable | None, Callable | None]] = {}
        self._token = 0
        self._latest: dict[str, Any] | None = None
        self._latest_lock = threading.Lock()
        self._fit: Any = None  # the latest live fit received, and its number
        self._fit_number: int | None = None
        self.views = ViewReceiver()  # the live views as of the versions received (worker thread)
        self._published_s = -1e9
        self._thread = threading.Thread(target=self._work, name="labctl-gui-link", daemon=True)
        self.reply.connect(self._on_reply)

    def start(self) -> None:
        """Build the station in its process (on the worker thread); ``opened`` or ``failed`` follows."""
        self._thread.start()

    def call(self, method: str, *args: Any, on_ok: Callable[[Any], None] | None = None,
             on_error: Callable[[BaseException], None] | None = None, **kwargs: Any) -> None:
        """Run ``StationProcess.<method>(*args, **kwargs)`` on the worker; the callbacks run on the
        GUI thread (without ``on_error``, an error is reported through ``failed``)."""
        if method == "start_run" and (args[0] if args else kwargs.get("out_path")) is None:
            kwargs.setdefault("settings", live_engine_settings(self.config))
        self._token += 1
        self._callbacks[self._token] = (on_ok, on_error)
        self._queue.put((self._token, method, args, kwargs))

    def latest(self) -> dict[str, Any] | None:
        """The newest poll result (with ``received_s``, its time.monotonic), or None."""
        with self._latest_lock:
            return self._latest

    def close(self, timeout_s: float = 60.0) -> None:
        """End any run, close the instruments and the child (waits up to ``timeout_s``)."""
        if self._thread.is_alive():
            self._queue.put(_CLOSE)
            self._thread.join(timeout_s)

    # ------------------------------------------------------------------ GUI thread
    def _on_reply(self, token: int, ok: bool, payload: Any) -> None:
        on_ok, on_error = self._callbacks.pop(token, (None, None))
        if ok and on_ok is not None:
            on_ok(payload)
        elif not ok:
            if on_error is not None:
                on_error(payload)
            else:
                self.failed.emit(f"{type(payload).__name__}: {payload}")

    # ------------------------------------------------------------------ worker thread
    def _work(self) -> None:
        try:
            self.process.open(progress=self.progress.emit)
            self.opened.emit(self.process.describe())
        except Exception as exc:  # noqa: BLE001 - shown in the window
            self.failed.emit(f"the station could not be built: {exc}")
            return
        next_poll = time.monotonic()
        try:
            while True:
                try:
                    item = self._queue.get(timeout=max(0.0, next_poll - time.monotonic()))
                except queue.Empty:
                    item = None
                if item is _CLOSE:
                    break
                if item is not None:
                    token, method, args, kwargs = item
                    try:
                        result = getattr(self.process, method)(*args, **kwargs)
                    except Exception as exc:  # noqa: BLE001 - handed to the caller's on_error
                        self.reply.emit(token, False, exc)
                    else:
                        self.reply.emit(token, True, result)
                now = time.monotonic()
                if now >= next_poll:
                    self._poll()
                    # a fixed rate (not "period after the last poll"), without catching up after a stall
                    next_poll = max(next_poll + (self.run_period_s if self.running else self.idle_period_s), now)
        except Exception as exc:  # noqa: BLE001 - e.g. the child died
            self.failed.emit(f"lost the station process: {exc}")
        finally:
            self.process.close()

    def _poll(self) -> None:
        running = self.running
        names = self.sink_names if running else ()
        result = self.process.poll(names, fit_after=self._fit_number, views_have=self.views.have(),
                                   wait_s=POLL_WAIT_S if running else 0.0)
        fit_changed = not result.get("fit_unchanged")
        if fit_changed:
            self._fit, self._fit_number = result.get("fit"), result.get("fit_number")
        else:  # the child sends a fit once; later polls carry it from here
            result["fit"] = self._fit
        changed = self.views.apply(result.get("views") or {})
        result["snapshots"] = {name: self.views.views.get(name) for name in names}
        result["changed"] = changed
        now = result["received_s"] = time.monotonic()
        if (running and not changed and not fit_changed and result["summary"] is None
                and now - self._published_s < QUIET_PUBLISH_S):
            return  # nothing new to draw
        self._published_s = now
        with self._latest_lock:
            self._latest = result
        self.polled.emit()
        if result["summary"] is not None:
            self.running = False
            self.run_ended.emit(result["summary"])

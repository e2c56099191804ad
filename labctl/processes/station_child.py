"""The station process's child side: the station, its runs and the command loop.

:class:`~labctl.processes.station_process.StationProcess` (the parent side) starts
:func:`child_main` in a process of its own and sends it commands; see that module
for what each command does.
"""

from __future__ import annotations

import logging
import pickle
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from labctl.analysis.count_rates import CountRateMeter
from labctl.station.engine_settings import EngineSettings
from labctl.errors import AcquisitionError
from labctl.processes.live_wire import ViewSender
from labctl.station.parameter_info import ParameterInfo, _nest, _plain, describe_instrument
from labctl.run import RunSummary
from labctl.signals import EndOnSignals, Interrupted
from labctl.station.station import StationConfig
from labctl.acquisition.warmup import start_warm_up_thread

log = logging.getLogger(__name__)

_POLL_S = 0.05
MONITOR_INTERVAL_S = 1.0
"""Slow readings (camera temperature) are refreshed at most this often."""
PREPARING_AFTER_S = 0.5
"""Warm-up progress is reported only once the warm-up has taken this long (s): a warm install
(kernels loaded from numba's cache in ~0.2 s) shows nothing."""


@dataclass
class RunRequest:
    """What a run is started with (kept so that a live run can be restarted after a change)."""

    out_path: str | None
    sink_specs: list[tuple[str, dict]]
    description: str = ""
    duration_s: float | None = None
    settings: EngineSettings | None = None
    restarts: int = field(default=0)
    notes: str = ""


# ------------------------------------------------------------------ child side
class _ChildStation:
    """The child's state: the station, the current engine, the live sinks."""

    def __init__(self, config: StationConfig) -> None:
        from labctl.station.station import Station

        self.station = Station(config)
        self.engine: Any = None
        self.sinks: dict[str, Any] = {}
        self.request: RunRequest | None = None
        self.summary_pending: RunSummary | None = None
        self._monitors: dict[str, Any] = {}
        self._monitor_time = -1e9
        self.run_number = 0  # runs started in this process (a live restart is a new run)
        self.rate_meter = CountRateMeter()
        self.fit_number = 0  # changes whenever the latest live fit does
        self._fit_sent: Any = None
        self._sent_keys: dict[str, Any] = {}  # per sink: what identifies the snapshot last sent
        self.view_sender = ViewSender()  # views sent as changes since the client's version
        self._written = threading.Condition()  # notified whenever a live sink has taken a block
        self._snapped: dict[str, tuple[int, Any]] = {}  # per sink: (blocks taken, its snapshot) last taken
        from labctl.analysis.live_fit import PeriodicDecayFit

        self.fitter = PeriodicDecayFit(in_worker_process=True)  # never delays a poll nor holds the engine's GIL

    # -- runs ------------------------------------------------------------------------
    def start_run(self, request: RunRequest) -> None:
        from labctl.acquisition.engine import AcquisitionEngine
        from labctl.station.station import import_dotted

        if self.engine is not None and self.engine.running:
            raise AcquisitionError("a run is already going; stop it before starting another")
        source = self.station.config.source
        sinks = [WatchedSink(import_dotted(path, f"sinks[{i}]", source)(**kwargs), self._written)
                 for i, (path, kwargs) in enumerate(request.sink_specs)]
        engine = AcquisitionEngine(self.station, request.out_path, sinks=sinks,
                                   settings=request.settings, description=request.description,
                                   notes=request.notes)
        engine.start(request.duration_s)
        self.engine, self.request, self.summary_pending = engine, request, None
        self.sinks = {s.name: s for s in sinks}
        self._snapped.clear()
        self.fitter.reset()
        self.run_number += 1
        self.rate_meter.reset()

    def stop_run(self, reason: str) -> None:
        if self.engine is not None and self.engine.running:
            self.engine.stop(reason)

    def finish_run(self) -> RunSummary | None:
        """Wait for the current run to end; its summary (None if there was no run)."""
        if self.engine is None:
            return None
        summary = self.engine.wait()
        self.engine = None
        return summary

    def configure(self, role: str, settings: Mapping[str, Any]) -> list[ParameterInfo]:
        nested = _nest(settings)
        running = self.engine is not None and self.engine.running
        if running and self.request is not None and self.request.out_path is not None:
            first = next(iter(settings), "")
            raise AcquisitionError(
                f"instruments.{role}.settings.{first}: cannot be changed while recording to "
                f"{self.request.out_path}; stop the recording first (the file records one set of settings)")
        from labctl.station.settings import validate_settings

        if role in self.station.instruments:  # refuse before touching the run
            validate_settings(self.station.instruments[role], nested, f"instruments.{role}.settings", "runtime")
        if running:
            self._restart("settings changed", lambda: self.station.configure(role, nested))
        else:
            self.station.configure(role, nested)
        return describe_instrument(self.station.instruments[role])

    def _restart(self, reason: str, between: Any = None) -> None:
        """End the running run, call ``between()`` (if given), start the same request again."""
        request = self.request
        assert request is not None
        self.engine.stop(reason)
        self.finish_run()
        try:
            if between is not None:
                between()
        finally:
            request.restarts += 1
            self.start_run(request)

    def clear_live(self, sink_specs: Sequence[tuple[str, dict]] | None = None) -> None:
        """Start a live run (no file) again from zero: every sink anew, the same settings
        (``sink_specs``: other sinks, e.g. other bin widths; built once first, so that a bad
        one is refused while the run goes on)."""
        if self.engine is None or not self.engine.running:
            raise AcquisitionError("clear: no live run is going")
        if self.request is not None and self.request.out_path is not None:
            raise AcquisitionError(f"clear: a recording to {self.request.out_path} is going; its views "
                                   "cannot be cleared without ending the file")
        if sink_specs is not None:
            from labctl.station.station import import_dotted

            specs = [(path, dict(kwargs)) for path, kwargs in sink_specs]
            source = self.station.config.source
            for i, (path, kwargs) in enumerate(specs):  # raises (ConfigError, ValueError) before any stop
                import_dotted(path, f"sinks[{i}]", source)(**kwargs)
            assert self.request is not None
            self.request.sink_specs = specs
        self._restart("cleared")

    # -- monitoring --------------------------------------------------------------------
    def monitors(self) -> dict[str, Any]:
        """Excitation state every call; the camera temperature at most every MONITOR_INTERVAL_S."""
        self._monitors["excitation"] = self.station.excitation_state()
        camera = self.station.instruments.get("camera")
        now = time.monotonic()
        if camera is not None and now - self._monitor_time >= MONITOR_INTERVAL_S:
            self._monitor_time = now
            try:
                self._monitors["camera_temperature_c"] = _plain(camera.temperature_c())
                self._monitors["camera_temperature_state"] = _plain(camera.temperature_state())
            except Exception as exc:  # noqa: BLE001
                self._monitors["camera_temperature_state"] = f"error: {exc}"
        return dict(self._monitors)

    def poll(self, names: Sequence[str], fit_after: int | None = None,
             views_have: Mapping[str, int | None] | None = None, wait_s: float = 0.0) -> dict[str, Any]:
        """See :meth:`labctl.processes.station_process.StationProcess.poll`; with ``fit_after`` (a caller that
        keeps what it received) an unchanged fit or spectrum is not sent again; with ``views_have``
        the snapshots go as changes (``views``), after waiting up to ``wait_s`` for every named
        live sink to have taken a new block."""
        engine = self.engine
        if views_have is not None and wait_s > 0 and engine is not None and engine.running:
            with self._written:
                self._written.wait_for(lambda: self._all_written(names), timeout=wait_s)
        status = engine.status() if engine is not None else {"state": "idle"}
        if engine is not None and status.get("state") == "done":
            self.summary_pending = self.finish_run()
        rates = self.rate_meter.update(status) if engine is not None else self.rate_meter.rates_cps
        if views_have is None:
            snapshots = {name: _live_snapshot(self.sinks.get(name)) for name in names}
        else:
            snapshots = {name: self._snapshot_if_written(name) for name in names}
        unchanged = []
        views = None if views_have is None else self.view_sender.encode(snapshots, views_have)
        for name, snap in (snapshots.items() if views is None else ()):  # camera frames 10/s, polls 25/s
            key = (self.run_number, snap.latest_index, snap.frames_skipped) if hasattr(snap, "latest_index") else None
            if key is not None and fit_after is not None and self._sent_keys.get(name) == key:
                snapshots[name] = None
                unchanged.append(name)
            self._sent_keys[name] = key
        fit = self.fitter.update(snapshots.get("lifetime")) if "lifetime" in snapshots else None
        if fit is not self._fit_sent:
            self._fit_sent, self.fit_number = fit, self.fit_number + 1
        fit_unchanged = fit_after is not None and fit_after == self.fit_number
        summary, self.summary_pending = self.summary_pending, None
        return {"status": status, "snapshots": snapshots if views is None else {}, "views": views,
                "monitors": self.monitors(), "summary": summary,
                "fit": None if fit_unchanged else fit, "fit_number": self.fit_number, "fit_unchanged": fit_unchanged,
                "unchanged": unchanged,
                "restarts": self.request.restarts if self.request is not None else 0,
                "run_number": self.run_number, "rates_cps": dict(rates)}

    def _all_written(self, names: Sequence[str]) -> bool:
        """Every named live sink has taken a block since its last snapshot (under ``_written``)."""
        return all(sink.blocks > self._snapped.get(name, (-1, None))[0]
                   for name in names if isinstance(sink := self.sinks.get(name), WatchedSink))

    def _snapshot_if_written(self, name: str) -> Any:
        """The sink's live snapshot; the one taken before (the same object) if no block came since."""
        sink = self.sinks.get(name)
        if not isinstance(sink, WatchedSink):
            return _live_snapshot(sink)
        blocks = sink.blocks  # read before the snapshot: a block written meanwhile is taken next time
        taken = self._snapped.get(name)
        if taken is not None and taken[0] == blocks:
            return taken[1]
        snapshot = _live_snapshot(sink)
        self._snapped[name] = (blocks, snapshot)
        return snapshot

    def close(self, reason: str = "stopped") -> None:
        if self.engine is not None:
            self.stop_run(reason)
            self.finish_run()
        self.fitter.close()
        self.station.close()


class WatchedSink:
    """A live sink whose blocks taken are counted and announced on ``written`` (a poll waits for them).

    Everything else (``name``, ``snapshot``, ``rolling_snapshot``, ...) is the sink's own."""

    def __init__(self, sink: Any, written: threading.Condition) -> None:
        self.sink = sink
        self.name = sink.name
        self.blocks = 0
        self._written = written

    def open(self, run: Any) -> None:
        self.sink.open(run)

    def write(self, block: Any) -> None:
        self.sink.write(block)
        with self._written:
            self.blocks += 1
            self._written.notify_all()

    def close(self, summary: Any) -> None:
        self.sink.close(summary)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sink, name)


def _live_snapshot(sink: Any) -> Any:
    """What crosses the process boundary for a live view: the bounded (rolling) snapshot if the
    sink has one, so that the message size does not grow with the run."""
    if sink is None:
        return None
    if hasattr(sink, "rolling_snapshot"):
        return sink.rolling_snapshot()
    return sink.snapshot() if hasattr(sink, "snapshot") else None


def child_main(conn: Any, config_data: dict, source: str, preparing_after_s: float = PREPARING_AFTER_S) -> None:
    """Child process: build the station (kernels warm up in parallel), then answer commands
    until told to close (or orphaned).

    SIGTERM or SIGHUP sent to the child itself end its run like the parent's stop would (reason
    ``interrupted: SIGTERM``), excitation safe; so does the parent going away (``interrupted:
    parent process gone``).  Ctrl-C is the parent's to handle.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; Ctrl-C reaches it and it sends stop
    config = StationConfig(config_data, source)
    send_lock = threading.Lock()

    def report(done: int, total: int, what: str) -> None:
        with send_lock:
            conn.send(("progress", (done, total, what)))

    with EndOnSignals("labctl station process", signals=(signal.SIGTERM, signal.SIGHUP)) as signals:
        warming = start_warm_up_thread(config.channels, report, preparing_after_s)
        try:
            child = _ChildStation(config)
        except BaseException as exc:  # noqa: BLE001 - reported to the parent as it is
            try:
                with send_lock:
                    conn.send(("error", _portable(exc)))
            except OSError:
                pass
            return
        reason = "stopped"
        try:
            warming.join()
            conn.send(("ok", None))
            reason = _serve(child, conn)
        except Interrupted as exc:
            reason = exc.end_reason
        finally:
            signals.hold()
            child.close(reason)


def _serve(child: _ChildStation, conn: Any) -> str:
    """Answer the parent's commands; returns the end reason of a run still going when it stops."""
    while True:
        try:
            if not conn.poll(_POLL_S):
                continue
            command, args = conn.recv()
        except (EOFError, OSError):  # parent gone: end the run safely
            return "interrupted: parent process gone"
        if command == "close":
            child.close()
            conn.send(("ok", None))
            return "stopped"
        try:
            result = _dispatch(child, command, args)
        except Exception as exc:  # noqa: BLE001 - the parent re-raises it
            conn.send(("error", _portable(exc)))
        else:
            conn.send(("ok", result))
def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else an AcquisitionError with its type and message."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 - exceptions of other libraries with custom constructors
        return AcquisitionError(f"{type(exc).__name__}: {exc}")
    return exc


def _dispatch(child: _ChildStation, command: str, args: tuple) -> Any:
    if command == "describe":
        return {role: describe_instrument(inst) for role, inst in child.station.instruments.items()}
    if command == "configure":
        return child.configure(*args)
    if command == "excitation":
        (on,) = args
        if on:
            child.station.laser.enable_excitation()
        else:
            child.station.safe_state()
        return child.monitors()
    if command == "start":
        child.start_run(*args)
        return None
    if command == "stop":
        child.stop_run(*args)
        return None
    if command == "clear":
        child.clear_live(*args)
        return None
    if command == "poll":
        return child.poll(*args)
    if command == "status":
        return child.engine.status() if child.engine is not None else {"state": "idle"}
    if command == "snapshot":
        return _live_snapshot(child.sinks.get(args[0]))
    if command == "summary":  # non-blocking: None while the run goes on
        if child.engine is not None and not child.engine.running:
            child.summary_pending = child.finish_run()
        summary, child.summary_pending = child.summary_pending, None
        return summary
    raise AcquisitionError(f"unknown command {command!r} for the station process")

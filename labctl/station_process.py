"""The station and its acquisition engine in a process of their own.

A thread in the GUI's process that holds the GIL freezes the window (DESIGN.md,
"Threads, processes and the GUI").  :class:`StationProcess` builds the station
once in a child process (instruments stay connected, the camera stays cold)
and runs any number of acquisitions there, one after the other.  Only commands,
parameter values and small snapshots cross the boundary, never the photon stream.

What the parent can do (each a method, each one round trip over a pipe):

* ``describe()``: every instrument's parameters (value, unit, what is allowed),
  for instrument panels;
* ``configure(role, settings)``: the station's own validation
  (:meth:`labctl.station.Station.configure`): all settings are checked before
  any is applied, a :class:`~labctl.errors.ConfigError` comes back unchanged.
  During a live run without a file the run is stopped, the settings applied
  and the run restarted with the same sinks; during a recording it is refused
  (the file's station snapshot must describe the whole run);
* ``set_excitation(on)``; ``start_run(...)``, ``stop_run()``, ``poll(...)``
  (status + count rates + sink snapshots + monitors in one trip), ``close()``.

While the child builds the station, a thread makes the photon path's numba
kernels ready (:func:`labctl.warmup.warm_up`): on the first start after an
install they compile (seconds) while the instruments connect, and
``open(progress=...)`` reports the steps.

If the parent goes away, the child ends the run, puts the excitation in its
safe state and closes the instruments.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import pickle
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from labctl.analysis.count_rates import CountRateMeter
from labctl.engine_settings import EngineSettings
from labctl.errors import AcquisitionError
from labctl.run import RunSummary
from labctl.parameter_info import ParameterInfo, _nest, _plain, describe_instrument  # noqa: F401 - public here too
from labctl.station import StationConfig
from labctl.warmup import start_warm_up_thread

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
        from labctl.station import Station

        self.station = Station(config)
        self.engine: Any = None
        self.sinks: dict[str, Any] = {}
        self.request: RunRequest | None = None
        self.summary_pending: RunSummary | None = None
        self._monitors: dict[str, Any] = {}
        self._monitor_time = -1e9
        self.run_number = 0  # runs started in this process (a live restart is a new run)
        self.rate_meter = CountRateMeter()
        from labctl.analysis.live_fit import PeriodicDecayFit

        self.fitter = PeriodicDecayFit(in_process=True)  # never delays a poll nor holds the engine's GIL

    # -- runs ------------------------------------------------------------------------
    def start_run(self, request: RunRequest) -> None:
        from labctl.engine import AcquisitionEngine
        from labctl.station import import_dotted

        if self.engine is not None and self.engine.running:
            raise AcquisitionError("a run is already going; stop it before starting another")
        source = self.station.config.source
        sinks = [import_dotted(path, f"sinks[{i}]", source)(**kwargs)
                 for i, (path, kwargs) in enumerate(request.sink_specs)]
        engine = AcquisitionEngine(self.station, request.out_path, sinks=sinks,
                                   settings=request.settings, description=request.description,
                                   notes=request.notes)
        engine.start(request.duration_s)
        self.engine, self.request, self.summary_pending = engine, request, None
        self.sinks = {s.name: s for s in sinks}
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
        from labctl.settings import validate_settings

        if role in self.station.instruments:  # refuse before touching the run
            validate_settings(self.station.instruments[role], nested, f"instruments.{role}.settings", "runtime")
        if running:
            request = self.request
            self.engine.stop("settings changed")
            self.finish_run()
            try:
                self.station.configure(role, nested)
            finally:
                assert request is not None
                request.restarts += 1
                self.start_run(request)
        else:
            self.station.configure(role, nested)
        return describe_instrument(self.station.instruments[role])

    # -- monitoring --------------------------------------------------------------------
    def monitors(self) -> dict[str, Any]:
        """Excitation state every call; the camera temperature at most every MONITOR_INTERVAL_S."""
        laser = self.station.laser
        try:
            external = laser.trigger_source() == "external"
            self._monitors["excitation"] = ("on" if laser.excitation_enabled() else "off") if external else "internal"
        except Exception as exc:  # noqa: BLE001
            self._monitors["excitation"] = f"unknown ({exc})"
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

    def poll(self, names: Sequence[str]) -> dict[str, Any]:
        engine = self.engine
        status = engine.status() if engine is not None else {"state": "idle"}
        if engine is not None and status.get("state") == "done":
            self.summary_pending = self.finish_run()
        rates = self.rate_meter.update(status) if engine is not None else self.rate_meter.rates_cps
        snapshots = {name: _live_snapshot(self.sinks.get(name)) for name in names}
        fit = self.fitter.update(snapshots.get("lifetime")) if "lifetime" in snapshots else None
        summary, self.summary_pending = self.summary_pending, None
        return {"status": status, "snapshots": snapshots, "monitors": self.monitors(), "summary": summary,
                "fit": fit, "restarts": self.request.restarts if self.request is not None else 0,
                "run_number": self.run_number, "rates_cps": dict(rates)}

    def close(self) -> None:
        if self.engine is not None:
            self.stop_run("stopped")
            self.finish_run()
        self.fitter.close()
        self.station.close()


def _live_snapshot(sink: Any) -> Any:
    """What crosses the process boundary for a live view: the bounded (rolling) snapshot if the
    sink has one, so that the message size does not grow with the run."""
    if sink is None:
        return None
    if hasattr(sink, "rolling_snapshot"):
        return sink.rolling_snapshot()
    return sink.snapshot() if hasattr(sink, "snapshot") else None


def _child_main(conn: Any, config_data: dict, source: str, preparing_after_s: float = PREPARING_AFTER_S) -> None:
    """Child process: build the station (kernels warm up in parallel), then answer commands
    until told to close (or orphaned)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; Ctrl-C reaches it and it sends stop
    config = StationConfig(config_data, source)
    send_lock = threading.Lock()

    def report(done: int, total: int, what: str) -> None:
        with send_lock:
            conn.send(("progress", (done, total, what)))

    warming = start_warm_up_thread(config.channels, report, preparing_after_s)
    try:
        child = _ChildStation(config)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent as it is
        with send_lock:
            conn.send(("error", _portable(exc)))
        return
    warming.join()
    conn.send(("ok", None))
    try:
        while True:
            try:
                if not conn.poll(_POLL_S):
                    continue
                command, args = conn.recv()
            except (EOFError, OSError):  # parent gone: end the run safely
                return
            if command == "close":
                child.close()
                conn.send(("ok", None))
                return
            try:
                result = _dispatch(child, command, args)
            except Exception as exc:  # noqa: BLE001 - the parent re-raises it
                conn.send(("error", _portable(exc)))
            else:
                conn.send(("ok", result))
    finally:
        child.close()


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


# ------------------------------------------------------------------ parent side
class StationProcess:
    """A station built in a child process; acquisitions run there on demand.

    Args:
        config: the station config (the child builds the instruments from it).
        preparing_after_s: warm-up progress is reported to ``open(progress=...)`` once the
            warm-up has taken this long (s).

    Every method is one round trip and is safe to call from any thread of the
    parent (calls are serialised).  Errors raised in the child (ConfigError,
    AcquisitionError, instrument errors) are raised again here, unchanged.
    """

    def __init__(self, config: StationConfig, preparing_after_s: float = PREPARING_AFTER_S) -> None:
        self.config = config
        self.preparing_after_s = float(preparing_after_s)
        self._process: Any = None
        self._conn: Any = None
        self._lock = threading.Lock()

    def open(self, progress: Callable[[int, int, str], None] | None = None) -> None:
        """Start the child and build the station there (raises what building raised).

        Args:
            progress: called with (steps done, steps, what) while the photon path's kernels
                are made ready (compiling them on the first start after an install takes seconds).
        """
        if self._process is not None:
            raise AcquisitionError("this StationProcess is already open")
        ctx = mp.get_context("spawn")
        self._conn, child_conn = ctx.Pipe()
        self._process = ctx.Process(target=_child_main, name="labctl-station",
                                    args=(child_conn, self.config.data, self.config.source, self.preparing_after_s))
        self._process.start()
        child_conn.close()
        kind, payload = self._conn.recv()
        while kind == "progress":
            if progress is not None:
                progress(*payload)
            kind, payload = self._conn.recv()
        if kind == "error":
            self._process.join()
            self._process = None
            raise payload

    @property
    def is_open(self) -> bool:
        return self._process is not None

    def _ask(self, command: str, *args: Any) -> Any:
        if self._process is None:
            raise AcquisitionError(f"{command}: the station process is not open")
        with self._lock:
            try:
                self._conn.send((command, args))
                kind, payload = self._conn.recv()
            except (EOFError, OSError, BrokenPipeError) as exc:
                raise AcquisitionError(f"{command}: the station process is gone ({exc})") from exc
        if kind == "error":
            raise payload
        return payload

    def describe(self) -> dict[str, list[ParameterInfo]]:
        """Every instrument's parameters, by role."""
        return self._ask("describe")

    def configure(self, role: str, settings: Mapping[str, Any]) -> list[ParameterInfo]:
        """Validate then apply ``settings`` (flat key paths like ``"ch1.threshold_v"`` or nested).

        Returns the instrument's parameters after the change.  Raises ConfigError and
        changes nothing if any value is invalid; AcquisitionError while recording.
        """
        flat = dict(_flatten(settings))
        return self._ask("configure", role, flat)

    def set_excitation(self, on: bool) -> dict[str, Any]:
        """Switch the excitation on or to its safe state; returns the monitors."""
        return self._ask("excitation", bool(on))

    def start_run(self, out_path: str | Path | None = None, *, sinks: Sequence[tuple[str, dict]] = (),
                  description: str = "", duration_s: float | None = None,
                  settings: EngineSettings | None = None, notes: str = "") -> None:
        """Start an acquisition (file ``out_path`` or none) with sinks built in the child;
        ``duration_s``: stop after this much tagger time (s); ``notes``: sample notes for the file."""
        request = RunRequest(str(out_path) if out_path is not None else None,
                             [(path, dict(kwargs)) for path, kwargs in sinks], description, duration_s, settings,
                             notes=notes)
        self._ask("start", request)

    def stop_run(self, reason: str = "stopped") -> None:
        """Ask the run to end (returns at once; the summary arrives through poll or summary)."""
        self._ask("stop", reason)

    def poll(self, sink_names: Sequence[str] = ()) -> dict[str, Any]:
        """One trip: ``status``, ``snapshots`` {name: snapshot}, ``monitors``, ``summary`` (the
        summary of a run that ended since the last poll, else None), ``fit`` (the latest
        :class:`~labctl.analysis.live_fit.LiveFit` of the ``lifetime`` sink, refitted every
        few seconds; None before), ``restarts``."""
        return self._ask("poll", list(sink_names))

    def status(self) -> dict[str, Any]:
        return self._ask("status")

    def sink_snapshot(self, name: str) -> Any:
        return self._ask("snapshot", name)

    def run_summary(self) -> RunSummary | None:
        """The ended run's summary once (None while it runs or if already taken)."""
        return self._ask("summary")

    def close(self, timeout_s: float = 60.0) -> bool:
        """End any run, put the excitation in its safe state, close the instruments, end the child.

        Returns True if the child exited by itself within ``timeout_s`` (s); False if it had
        to be terminated (its instruments were closed first; a process that will not exit
        is a bug worth a log line).
        """
        if self._process is None:
            return True
        try:
            self._ask("close")
        except AcquisitionError:
            pass
        self._process.join(timeout_s)
        exited = not self._process.is_alive()
        if not exited:
            log.error("the station process did not exit within %g s after closing; terminating it", timeout_s)
            self._process.terminate()
        self._process = None
        return exited

    def __enter__(self) -> "StationProcess":
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _flatten(settings: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for key, value in settings.items():
        if isinstance(value, Mapping):
            items.extend(_flatten(value, f"{prefix}{key}."))
        else:
            items.append((prefix + key, value))
    return items

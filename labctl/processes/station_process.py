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
  (:meth:`labctl.station.station.Station.configure`): all settings are checked before
  any is applied, a :class:`~labctl.errors.ConfigError` comes back unchanged.
  During a live run without a file the run is stopped, the settings applied
  and the run restarted with the same sinks; during a recording it is refused
  (the file's station snapshot must describe the whole run);
* ``set_excitation(on)``; ``start_run(...)``, ``stop_run()``, ``poll(...)``
  (status + count rates + sink snapshots + monitors in one trip), ``close()``.

While the child builds the station, a thread makes the photon path's numba
kernels ready (:func:`labctl.acquisition.warmup.warm_up`, loaded from numba's cache), and
``open(progress=...)`` reports the steps if that takes long.  On the first start after an
install the child runs the kernels' numpy versions while a background process compiles
numba's for the next start (:mod:`labctl.analysis.kernel_backend`).

If the parent goes away, the child ends the run, puts the excitation in its
safe state and closes the instruments.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import threading
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from labctl.station.engine_settings import EngineSettings
from labctl.errors import AcquisitionError
from labctl.station.parameter_info import ParameterInfo, describe_instrument  # noqa: F401 - public here too
from labctl.run import RunSummary
from labctl.station.station import StationConfig
from labctl.processes.station_child import MONITOR_INTERVAL_S, PREPARING_AFTER_S, RunRequest, child_main  # noqa: F401

log = logging.getLogger(__name__)


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
                are made ready (reported only if that takes longer than ``preparing_after_s``).
        """
        if self._process is not None:
            raise AcquisitionError("this StationProcess is already open")
        ctx = mp.get_context("spawn")
        self._conn, child_conn = ctx.Pipe()
        self._process = ctx.Process(target=child_main, name="labctl-station",
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

    def clear_live(self, sinks: Sequence[tuple[str, dict]] | None = None) -> None:
        """Start the live run (no file) again with the same settings: every sink from zero
        (a new ``run_number`` in the polls), or the ``sinks`` given instead (other bin widths;
        a sink that cannot be built is refused and the run goes on).  AcquisitionError without
        a live run or while recording."""
        self._ask("clear", None if sinks is None else [(path, dict(kwargs)) for path, kwargs in sinks])

    def poll(self, sink_names: Sequence[str] = (), fit_after: int | None = None,
             views_have: Mapping[str, int | None] | None = None, wait_s: float = 0.0) -> dict[str, Any]:
        """One trip: ``status``, ``snapshots`` {name: snapshot}, ``monitors``, ``summary`` (the
        summary of a run that ended since the last poll, else None), ``fit`` (the latest
        :class:`~labctl.analysis.live_fit.LiveFit` of the ``lifetime`` sink, refitted every
        few seconds; None before), ``restarts``, ``run_number`` (runs started by this
        process: a live restart is a new run) and ``rates_cps`` ({channel: counts per second of
        tagger time, over >= 1 s of the current run}).  With ``fit_after`` equal to the
        ``fit_number`` of the latest fit already received, ``fit`` is None and ``fit_unchanged``
        True: the fit's curves (10^4 points) cross only when a new fit exists; likewise a
        spectrum snapshot without a new camera frame is None and named in ``unchanged``
        (the caller keeps the one it has).

        With ``views_have`` ({sink name: version held, or None}, from a
        :class:`~labctl.processes.live_wire.ViewReceiver`), ``snapshots`` is empty and ``views`` carries,
        per sink, only what changed since the version held (:mod:`labctl.processes.live_wire`); the
        answer then waits up to ``wait_s`` (s) during a run for every named sink to have taken a
        new block (a poll returns as soon as there is something new to draw)."""
        return self._ask("poll", list(sink_names), fit_after,
                         None if views_have is None else dict(views_have), float(wait_s))

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

"""The acquisition engine in a process of its own, behind the same API.

A thread in the GUI's process that holds the GIL freezes the window (DESIGN.md,
"Threads, processes and the GUI").  :class:`EngineProcess` builds the station
and the :class:`~labctl.engine.AcquisitionEngine` in a child process; only
commands and small snapshots (status dicts, sink snapshots such as histograms)
cross the boundary, never the photon stream.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import threading
import time
from pathlib import Path
from typing import Any, Sequence

from labctl.engine_settings import EngineSettings
from labctl.errors import AcquisitionError
from labctl.run import RunSummary
from labctl.station import StationConfig, import_dotted

_POLL_S = 0.05


def _child_main(conn: Any, config_data: dict, source: str, out_path: str | None, settings: EngineSettings | None,
                description: str, sink_specs: list[tuple[str, dict]], duration_s: float | None) -> None:
    """Child process: build, run, answer commands until the parent says close (or goes away)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; Ctrl-C reaches it and it sends stop
    from labctl.engine import AcquisitionEngine
    from labctl.station import Station

    station = None
    try:
        station = Station(StationConfig(config_data, source))
        sinks = [import_dotted(path, f"sinks[{i}]", source)(**kwargs) for i, (path, kwargs) in enumerate(sink_specs)]
        engine = AcquisitionEngine(station, out_path, sinks=sinks, settings=settings, description=description)
        engine.start(duration_s)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent as it is
        conn.send(("error", exc))
        if station is not None:
            station.close()
        return
    conn.send(("started", None))
    by_name = {s.name: s for s in sinks}
    try:
        while True:
            try:
                if not conn.poll(_POLL_S):
                    continue
                command, arg = conn.recv()
            except (EOFError, OSError):  # parent gone: end the run safely
                engine.stop("interrupted")
                engine.wait()
                return
            if command == "stop":
                engine.stop(arg)
                conn.send(("ok", None))
            elif command == "status":
                conn.send(("status", engine.status()))
            elif command == "snapshot":
                sink = by_name.get(arg)
                conn.send(("snapshot", _live_snapshot(sink)))
            elif command == "summary":
                conn.send(("summary", engine.wait() if not engine.running else None))
            elif command == "close":
                if engine.running:
                    engine.stop("stopped")
                    engine.wait()
                conn.send(("ok", None))
                return
    finally:
        station.close()


def _live_snapshot(sink: Any) -> Any:
    """What crosses the process boundary for a live view: the bounded (rolling) snapshot if the
    sink has one, so that the message size does not grow with the run."""
    if sink is None:
        return None
    if hasattr(sink, "rolling_snapshot"):
        return sink.rolling_snapshot()
    return sink.snapshot() if hasattr(sink, "snapshot") else None


class EngineProcess:
    """Run an acquisition in a child process; same control API as AcquisitionEngine.

    Args:
        config: the station config (the child builds the instruments from it).
        out_path: Photon-HDF5 file to write (None = no file).
        settings: engine settings (default: the station file's).
        description: free text stored in the file.
        sinks: extra sinks to build in the child, as (dotted class path, kwargs);
            their ``snapshot()`` is available through :meth:`sink_snapshot`.
    """

    def __init__(self, config: StationConfig, out_path: str | Path | None = None, *,
                 settings: EngineSettings | None = None, description: str = "",
                 sinks: Sequence[tuple[str, dict]] = ()) -> None:
        self.config = config
        self.out_path = str(out_path) if out_path is not None else None
        self.settings = settings
        self.description = description
        self._sink_specs = [(path, dict(kwargs)) for path, kwargs in sinks]
        self._process: Any = None
        self._conn: Any = None
        self._lock = threading.Lock()
        self._summary: RunSummary | None = None

    def start(self, duration_s: float | None = None) -> None:
        """Start the child, build the station there and start recording."""
        if self._process is not None:
            raise AcquisitionError("this EngineProcess has already run; make a new one for the next run")
        ctx = mp.get_context("spawn")
        self._conn, child_conn = ctx.Pipe()
        self._process = ctx.Process(
            target=_child_main, name="labctl-engine",
            args=(child_conn, self.config.data, self.config.source, self.out_path, self.settings,
                  self.description, self._sink_specs, duration_s),
        )
        self._process.start()
        child_conn.close()
        kind, payload = self._conn.recv()
        if kind == "error":
            self._process.join()
            raise payload

    def _ask(self, command: str, arg: Any = None) -> Any:
        with self._lock:
            self._conn.send((command, arg))
            return self._conn.recv()[1]

    def stop(self, reason: str = "stopped") -> None:
        """Ask the run to end."""
        if self._process is not None and self._summary is None:
            self._ask("stop", reason)

    def status(self) -> dict[str, Any]:
        """The engine's status snapshot (small dict)."""
        if self._summary is not None:
            return {"state": "done", "end_reason": self._summary.end_reason}
        return self._ask("status")

    def sink_snapshot(self, name: str) -> Any:
        """``snapshot()`` of the named sink in the child (None if it has none)."""
        return self._ask("snapshot", name)

    def wait(self, timeout_s: float | None = None) -> RunSummary:
        """Block until the run has ended; return its summary and let the child exit."""
        if self._process is None:
            raise AcquisitionError("wait() before start(): nothing is running")
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while self._summary is None:
            summary = self._ask("summary")
            if summary is not None:
                self._summary = summary
                self._ask("close")
                self._process.join()
                break
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"the run did not end within {timeout_s} s")
            time.sleep(0.1)
        return self._summary

    def run(self, duration_s: float) -> RunSummary:
        self.start(duration_s)
        return self.wait()

    @property
    def running(self) -> bool:
        return self._process is not None and self._summary is None

    def __enter__(self) -> "EngineProcess":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self.running:
            self.stop("interrupted" if exc_type is KeyboardInterrupt else "stopped")
            self.wait()

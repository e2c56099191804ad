"""One acquisition in a process of its own, behind the AcquisitionEngine API.

:class:`EngineProcess` is a :class:`~labctl.processes.station_process.StationProcess`
used for a single run: ``start`` builds the station in a child process and
starts recording, ``wait`` returns the summary and closes the child.  Only
commands and small snapshots cross the boundary, never the photon stream.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

from labctl.station.engine_settings import EngineSettings
from labctl.errors import AcquisitionError
from labctl.run import RunSummary
from labctl.signals import end_reason
from labctl.station.station import StationConfig
from labctl.processes.station_process import StationProcess


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
        self._station: StationProcess | None = None
        self._summary: RunSummary | None = None

    def start(self, duration_s: float | None = None) -> None:
        """Start the child, build the station there and start recording."""
        if self._station is not None:
            raise AcquisitionError("this EngineProcess has already run; make a new one for the next run")
        self._station = StationProcess(self.config)
        self._station.open()
        try:
            self._station.start_run(self.out_path, sinks=self._sink_specs, description=self.description,
                                    duration_s=duration_s, settings=self.settings)
        except BaseException:
            self._station.close()
            raise

    def stop(self, reason: str = "stopped") -> None:
        """Ask the run to end."""
        if self._station is not None and self._summary is None:
            self._station.stop_run(reason)

    def status(self) -> dict[str, Any]:
        """The engine's status snapshot (small dict)."""
        if self._summary is not None:
            return {"state": "done", "end_reason": self._summary.end_reason}
        return self._require().status()

    def sink_snapshot(self, name: str) -> Any:
        """``snapshot()`` of the named sink in the child (None if it has none)."""
        return self._require().sink_snapshot(name)

    def wait(self, timeout_s: float | None = None) -> RunSummary:
        """Block until the run has ended; return its summary and let the child exit."""
        station = self._require()
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while self._summary is None:
            summary = station.run_summary()
            if summary is not None:
                self._summary = summary
                station.close()
                break
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"the run did not end within {timeout_s} s")
            time.sleep(0.1)
        return self._summary

    def run(self, duration_s: float) -> RunSummary:
        self.start(duration_s)
        return self.wait()

    def _require(self) -> StationProcess:
        if self._station is None:
            raise AcquisitionError("wait() before start(): nothing is running")
        return self._station

    @property
    def running(self) -> bool:
        return self._station is not None and self._summary is None

    def __enter__(self) -> "EngineProcess":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self.running:
            self.stop(end_reason(exc) if isinstance(exc, KeyboardInterrupt) else "stopped")
            self.wait()

"""Start-up of the lab window's station: first start after an install vs a warm one.

Run: ``python benchmarks/bench_start.py`` (prints figures, not a test).

"First run after install" is simulated with an empty numba cache (``NUMBA_CACHE_DIR``
pointing to a new temporary folder, set before the station process starts; the
child processes inherit it): every kernel compiles, as after ``pip install``.
Measured on the built-in simulated microscope, from ``StationProcess.open()`` to the
station ready, then to the first live data (``start_run`` and a poll with tagger time
elapsed > 0), in a cold and then a warm (same cache) start.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def one_start() -> tuple[float, float]:
    """(s to the station ready, s to the first live data) for one start."""
    from labctl.station.station import StationConfig
    from labctl.processes.station_process import StationProcess

    started = time.perf_counter()
    process = StationProcess(StationConfig.load())
    process.open()
    ready_s = time.perf_counter() - started
    try:
        process.start_run(None, sinks=[("labctl.analysis.LifetimeAccumulator", {})])
        while process.poll(["lifetime"])["status"].get("elapsed_s", 0.0) <= 0.0:
            time.sleep(0.02)
        live_s = time.perf_counter() - started
        process.stop_run()
    finally:
        process.close()
    return ready_s, live_s


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="labctl-numba-") as cache:
        os.environ["NUMBA_CACHE_DIR"] = cache
        for label in ("cold (empty numba cache: first run after install)", "warm (same cache)"):
            ready_s, live_s = one_start()
            print(f"{label}: station ready after {ready_s:.1f} s, first live data after {live_s:.1f} s; "
                  f"load average {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()

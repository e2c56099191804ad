"""Run every benchmark: ``python benchmarks/run_all.py`` (figures and ratios; not tests)."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["bench_scene.py", "bench_storage.py", "bench_engine.py", "bench_analysis.py", "bench_fit.py", "bench_spectral.py", "bench_report.py",
              "bench_import.py", "bench_gui.py", "bench_replay.py", "bench_batch.py"]

if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    for name in BENCHMARKS:
        print(f"=== {name} ===", flush=True)
        runpy.run_path(str(HERE / name), run_name="__main__")
        print(flush=True)

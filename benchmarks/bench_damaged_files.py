"""Damaged input files: how long a refusal takes, what SWMR metadata retries cost, what repair recovers.

``python benchmarks/bench_damaged_files.py`` prints:

1. the time of one failing metadata read in SWMR mode against ``metadata_read_attempts``
   (HDF5 sleeps between attempts, the delay doubling from 1 ns: the default of 100
   attempts is why ``labctl info`` used to hang on a truncated file), each in a child
   process killed after 30 s;
2. the time ``labctl info`` takes to refuse a file cut at 1024 bytes and at half;
3. ``labctl repair`` on the same file cut at several fractions: photons recovered, time.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

ATTEMPTS_PROBE = """
import os, sys, time, h5py
from labctl.storage.hdf5_open import set_metadata_read_attempts
fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
fapl.set_fclose_degree(h5py.h5f.CLOSE_WEAK)
set_metadata_read_attempts(fapl, int(sys.argv[2]))
t = time.monotonic()
try:
    f = h5py.File(h5py.h5f.open(os.fsencode(sys.argv[1]), h5py.h5f.ACC_RDONLY | h5py.h5f.ACC_SWMR_READ, fapl=fapl))
    list(f.keys())
except Exception:
    pass
print(time.monotonic() - t)
"""


def main() -> None:
    from labctl.cli import main as cli
    from tests.test_storage import make_blocks, write_file

    folder = Path(tempfile.mkdtemp(prefix="bench-damaged-"))
    src = folder / "run.h5"
    write_file(src, make_blocks([200_000, 200_000, 100_000], seed=1), chunk_photons=1 << 16)
    data = src.read_bytes()
    print(f"source: {len(data):,} bytes, 500,000 photons in chunks of 65,536")
    head = folder / "head.h5"
    head.write_bytes(data[:1024])

    print("SWMR metadata_read_attempts -> time of one failing metadata read (s)")
    for attempts in (1, 10, 20, 24, 27, 30, 33):
        try:
            out = subprocess.run([sys.executable, "-c", ATTEMPTS_PROBE, str(head), str(attempts)],
                                 capture_output=True, text=True, timeout=30, cwd=HERE.parent)
            print(f"  {attempts:3d}: {float(out.stdout.strip()):.4f}")
        except subprocess.TimeoutExpired:
            print(f"  {attempts:3d}: > 30 (killed)")

    for label, n in (("1024 bytes", 1024), ("half", len(data) // 2)):
        cut = folder / "cut.h5"
        cut.write_bytes(data[:n])
        t = time.perf_counter()
        with contextlib.redirect_stderr(io.StringIO()) as err:
            code = cli(["info", str(cut)])
        print(f"labctl info, file cut at {label}: exit {code} in {time.perf_counter() - t:.4f} s: "
              f"{err.getvalue().strip()[:90]}...")

    print("labctl repair: fraction kept -> photons recovered, time")
    for fraction in (0.25, 0.5, 0.75, 0.9, 1.0):
        cut = folder / f"cut{fraction}.h5"
        cut.write_bytes(data[:int(len(data) * fraction)])
        t = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
            code = cli(["repair", str(cut)])
        from labctl.storage.repair import default_repair_path

        out = default_repair_path(cut)
        recovered = "-"
        if out.exists():
            from labctl.storage import PhotonHDF5Reader

            with PhotonHDF5Reader(out) as r:
                recovered = f"{r.num_photons:,}"
        print(f"  {fraction:4.2f}: exit {code}, {recovered} photons, {time.perf_counter() - t:.3f} s "
              f"{err.getvalue().strip()[:80]}")


if __name__ == "__main__":
    main()

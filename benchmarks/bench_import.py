"""Speed of ``labctl import`` per PicoQuant format, in records per second.

    python benchmarks/bench_import.py [--records N] [--dir FOLDER]

For each layout (PT2, PT3, HT2, HT3 legacy files; a PTU HydraHarp V2 T2 file
with sync events, whose photons get nanotimes through PhotonConverter) a file
of about N records is written with ``tests/format_writers.py`` (photons,
markers and overflow records), then timed twice (best of 3 each):

* decode: ``PicoQuantSource.iter_chunks`` over the memory-mapped file (records -> arrays);
* import: ``import_files`` end to end (two passes, Photon-HDF5 written and finished).

Figures are records of the input file per second of wall time (page cache warm).
Memory: peak resident size (VmHWM, Linux) of a ``labctl import`` subprocess on the largest file
(``--memory-records``, default 32 M records = 128 MB), against the file size.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labctl.formats.importer import import_files  # noqa: E402
from labctl.formats.picoquant_legacy import open_legacy  # noqa: E402
from labctl.formats.picoquant_ptu import open_ptu  # noqa: E402
from tests import format_writers as W  # noqa: E402

REPEATS = 3


def _t2(rng: np.random.Generator, n: int, channels: list[int], mean_gap: int) -> W.Events:
    t = np.cumsum(rng.integers(1, 2 * mean_gap, n))
    kind = np.zeros(n, np.int64)
    kind[rng.choice(n, n // 1000, replace=False)] = 1
    ch = np.where(kind == 1, 1, rng.choice(channels, n))
    return W.Events(t, kind, ch)


def _t3(rng: np.random.Generator, n: int, channels: list[int], dtime_max: int) -> W.Events:
    ev = _t2(rng, n, channels, 40)
    ev.dtime = rng.integers(0, dtime_max, n)
    return ev


def _ht2_sync(rng: np.random.Generator, n: int) -> W.Events:
    period = 12_500
    syncs = np.arange(n // 2, dtype=np.int64) * period
    photons = np.sort(rng.integers(0, int(syncs[-1]), n - syncs.size))
    t = np.concatenate([syncs, photons])
    kind = np.concatenate([np.full(syncs.size, 2), np.zeros(photons.size, np.int64)])
    ch = np.concatenate([np.zeros(syncs.size, np.int64), rng.choice([0, 1], photons.size)])
    order = np.argsort(t, kind="stable")
    return W.Events(t[order], kind[order], ch[order])


def make_files(folder: Path, n: int) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    files = {
        "pt2": (W.pt_bytes(False, W.encode(_t2(rng, n, [0, 1], 200_000), "PT2", 210698240, False)), "a.pt2"),
        "pt3": (W.pt_bytes(True, W.encode(_t3(rng, n, [1, 2], 3000), "PT3", 65536, False), sync_rate_hz=80_000_000),
                "a.pt3"),
        "ht2": (W.ht_bytes(False, "2.0", W.encode(_t2(rng, n, [0, 1], 200_000), "HT2", 2**25, True)), "a.ht2"),
        "ht3": (W.ht_bytes(True, "2.0", W.encode(_t3(rng, n, [0, 1], 1500), "HT3", 1024, True),
                           sync_rate_hz=80_000_000), "a.ht3"),
        "ptu T2 + sync": (W.ptu_bytes(0x01010204, W.encode(_ht2_sync(rng, n), "HT2", 2**25, True), 1e-12), "s.ptu"),
    }
    out = {}
    for name, (data, fname) in files.items():
        (folder / fname).write_bytes(data)
        out[name] = folder / fname
    return out


def best(fn) -> float:
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2_000_000)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--memory-records", type=int, default=32_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tmp)
        print(f"{'format':<16}{'records':>12}{'decode rec/s':>16}{'import rec/s':>16}")
        for name, path in make_files(folder, args.records).items():
            src = open_ptu(path) if path.suffix == ".ptu" else open_legacy(path)
            n = src.n_records

            def decode() -> None:
                for _ in src.iter_chunks():
                    pass

            t_decode = best(decode)
            t_import = best(lambda: import_files([path], folder / "out.h5", overwrite=True))
            print(f"{name:<16}{n:>12,}{n / t_decode:>16,.0f}{n / t_import:>16,.0f}", flush=True)
        memory(folder, args.memory_records)


def memory(folder: Path, n: int) -> None:
    """Peak RSS of ``labctl import`` of an HT2 file of ``n`` records, in a fresh process."""
    rng = np.random.default_rng(1)
    path = folder / "big.ht2"
    with open(path, "wb") as fh:  # written in pieces (times continue across pieces, overflows included)
        head = W.ht_bytes(False, "2.0", np.empty(0, "<u4"), header_records=n)
        fh.write(head)
        offset, written = 0, 0
        while written < n:
            ev = _t2(rng, min(4_000_000, n - written), [0, 1], 20_000)
            ev.time = ev.time + offset
            rec = W.encode(ev, "HT2", 2**25, True, start_wraps=offset // 2**25)
            offset = int(ev.time[-1])
            fh.write(rec.tobytes())
            written += rec.size
    size_mb = os.path.getsize(path) / 2**20
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    code = ("import sys; from labctl.cli import main; rc = main(sys.argv[1:]); "
            "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])")
    proc = subprocess.run([sys.executable, "-c", code, "import", str(path), "--out", str(folder / "big.h5")],
                          check=True, env=env, capture_output=True, text=True)
    peak_mb = int(proc.stdout.strip().splitlines()[-1]) / 1024  # the child's own high-water mark (kB)
    print(f"memory: labctl import of a {size_mb:.0f} MB HT2 file ({n:,} records): peak RSS {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()

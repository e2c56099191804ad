"""Decoding speed of the quTAG and SSTT readers, in records per second.

    python benchmarks/bench_import_qt.py [--records N] [--dir FOLDER]

Writes (with numpy, from the published layouts) a quTAG BINARY file, a quTAG
COMPRESSED file and an SSTT v2 data set (pulses + two photon channels, with
overflow events) of N records each, then times ``read_qutag`` / ``read_sstt``
(best of 3, page cache warm) and prints records/s and MB/s of file read.  The
time includes everything the reader does: decode, unwrap, markers split,
ticks to ps and the stable time sort of the merged stream.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from labctl.formats.qutag import read_qutag
from labctl.formats.sstt import read_sstt

REPEATS = 3


def _stream(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n events at ~10 Mcps on channels 0-3, each channel sorted; channel 1 written 3 ns late."""
    rng = np.random.default_rng(seed)
    t = 10**17 + np.cumsum(rng.integers(1, 200_000, n), dtype=np.int64)
    ch = rng.integers(0, 4, n).astype(np.uint16)
    t_file = t + np.where(ch == 1, 3000, 0)  # a delayed channel: the merged stream steps back
    return t_file, ch


def write_binary(path: Path, n: int) -> int:
    t, ch = _stream(n)
    rec = np.empty(n, np.dtype([("t", "<u8"), ("ch", "<u2")]))
    rec["t"], rec["ch"] = t, ch
    header = b"\x87\xb3\x91\xfa" + np.uint32(40 + rec.nbytes).tobytes() + bytes(32)
    path.write_bytes(header + rec.tobytes())
    return n


def write_compressed(path: Path, n: int) -> int:
    t, ch = _stream(n)
    word = (t.astype(np.uint64) & np.uint64(2**37 - 1)) | (ch.astype(np.uint64) << np.uint64(37))
    body = word.view(np.uint8).reshape(n, 8)[:, :5].tobytes()
    path.write_bytes(b"\x87\xb3\x91\xfa" + np.uint32(40 + len(body)).tobytes() + bytes(32) + body)
    return n


def _sstt2_bytes(t: np.ndarray) -> bytes:
    """A v2 data file of sorted times t: an overflow event before each photon that needs one."""
    wraps = t >> 46
    need = np.diff(np.concatenate(([0], wraps))) > 0
    n_events = t.size + int(need.sum())
    words = np.zeros(n_events, np.uint64)
    pos = np.arange(t.size) + np.cumsum(need)
    words[pos] = (t & (2**46 - 1)).astype(np.uint64) << np.uint64(2)
    ovf_pos = pos[need] - 1
    step = np.diff(np.concatenate(([0], wraps)))[need]
    words[ovf_pos] = (step.astype(np.uint64) << np.uint64(2)) | np.uint64(1)
    return b"SSTT2\0" + b"\xff" * 12 + words.view(np.uint8).reshape(-1, 8)[:, :6].tobytes()


def write_sstt(info: Path, n: int) -> int:
    rng = np.random.default_rng(1)
    span = 2**49  # ~8 wraps of 2^46 ps
    counts = {0: n // 2, 1: n // 4, 2: n - n // 2 - n // 4}
    rows = []
    for ch, k in counts.items():
        t = np.sort(rng.integers(2**46, 2**46 + span, k)).astype(np.int64)
        data = _sstt2_bytes(t)
        info.with_name(f"{info.name}.c{ch}").write_bytes(data)
        rows.append(f'{ch}\t"{info.name}.c{ch}"\t{k}\t0\t{len(data)}\t1\t1\t1\t{int(ch == 0)}\t'
                    f"{int(ch != 0)}\t0\t\n")
    info.write_text("Simple Small Time Tagged (V2)\nEXPERIMENT_HEADER\n"
                    "Time_unit_seconds\tdevice_type\texperiment_start_timestamp_UTC\n"
                    "1.000000000000000e-12\tqutag\t2020-01-01T00:00:00\n\nCHANNEL_HEADER\n"
                    "ChannelID\tFilename\tNumPhotons\tNumOverflows\tFilesize\tHardwareSyncDivider\t"
                    "AdditionalSyncDivider\tTotalSyncDivider\tIsPulsesChannel\tHasPulsesChannel\t"
                    "CorrespondingPulsesChannel\n" + "".join(rows) + "\n")
    return n


def _best(fn: Callable[[], object]) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5_000_000)
    parser.add_argument("--dir", default=None, help="folder for the files (default: a temp folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        base = Path(folder)
        cases = [("quTAG BINARY", base / "b.bin", write_binary, lambda p: read_qutag(p)),
                 ("quTAG COMPRESSED", base / "c.qtc", write_compressed, lambda p: read_qutag(p)),
                 ("SSTT v2", base / "s.sstt", write_sstt, lambda p: read_sstt([p]))]
        print(f"{'format':18s} {'records':>10s} {'seconds':>8s} {'Mrecords/s':>11s} {'MB/s':>7s}")
        for name, path, write, read in cases:
            n = write(path, args.records)
            size = sum(f.stat().st_size for f in base.glob(path.name + "*"))
            seconds = _best(lambda: read(path))
            print(f"{name:18s} {n:10d} {seconds:8.3f} {n / seconds / 1e6:11.1f} "
                  f"{size / seconds / 1e6:7.0f}")


if __name__ == "__main__":
    main()

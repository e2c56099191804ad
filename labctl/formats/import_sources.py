"""Opening ``labctl import`` inputs: format detection, one source per recording, served in chunks.

A PicoQuant file is memory-mapped and decoded chunk by chunk (``PicoQuantSource``);
quTAG and SSTT decoders return whole-file records, which are served in slices.
A stream that is not in time order is sorted stably (``sort_t2``/``sort_t3``) with a note.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labctl.formats.common import FormatError, T2Records, T3Records

FORMATS = ("ptu", "pt3", "pt2", "ht3", "ht2", "qutag", "sstt")
"""``--format`` names."""


@dataclass
class ImportSource:
    """One input, opened: metadata plus ``chunks(n)`` that yields records ``n`` at a time."""

    files: list[str]
    format: str
    format_name: str
    t3: bool
    chunks: Callable[[int], Iterator[T2Records | T3Records]]
    header: dict[str, Any]
    notes: list[str]
    start_at_zero: bool  # PicoQuant: time 0 = measurement start; others: the first event
    stats: Callable[[], dict[str, Any]] = dict
    software: str = ""
    software_version: str = ""
    file_time: str = ""


# --- opening -----------------------------------------------------------------------
def detect_format(path: Path) -> str:
    """The ``--format`` name of a file from its first bytes (else its extension).

    Raises:
        FormatError: neither says which format it is.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
    except OSError as exc:
        raise FormatError(f"{path}: cannot be read ({exc.strerror})") from None
    if head.startswith(b"PQTTTR"):
        return "ptu"
    if head.startswith(b"PicoHarp") or head.startswith(b"HydraHarp"):
        from labctl.formats.picoquant_legacy import open_legacy

        return open_legacy(path).layout.lower()
    if head.startswith(bytes([0x87, 0xB3, 0x91, 0xFA])):
        return "qutag"
    if head.startswith(b"SSTT2\0") or head.startswith(b"Simple Small Time Tagged"):
        return "sstt"
    ext = path.suffix.lower().lstrip(".")
    if ext in ("ptu", "pt3", "pt2", "ht3", "ht2"):
        return ext
    if ext == "sstt" or (ext[:1] == "c" and ext[1:].isdigit()):
        return "sstt"
    raise FormatError(f"{path}: not a recognised time-tag file (first bytes {head[:8]!r}); "
                      f"name it with --format {{{','.join(FORMATS)}}}")


def open_source(paths: list[Path], fmt: str | None = None) -> ImportSource:
    """Open the inputs as one source (PicoQuant and quTAG: one file; SSTT: the info and/or .cN files).

    Raises:
        FormatError: unknown format, wrong file count, or a file its decoder refuses.
    """
    if not paths:
        raise FormatError("no input file given")
    for p in paths:
        if not p.is_file():
            raise FormatError(f"{p}: no such file")
    if fmt is None:
        kinds = {detect_format(p) for p in paths}
        if len(kinds) > 1:
            raise FormatError(f"{', '.join(map(str, paths))}: files of different formats ({', '.join(sorted(kinds))}); "
                              f"import one recording at a time")
        fmt = kinds.pop()
    if fmt not in FORMATS:
        raise FormatError(f"--format {fmt!r}: must be one of {', '.join(FORMATS)}")
    if fmt != "sstt" and len(paths) != 1:
        raise FormatError(f"--format {fmt}: takes one input file, got {len(paths)}; import each file on its own")
    if fmt in ("ptu", "pt3", "pt2", "ht3", "ht2"):
        return _picoquant_source(paths[0], fmt)
    try:  # quTAG and SSTT decoders live in their own modules, imported only when needed
        if fmt == "qutag":
            from labctl.formats.qutag import read_qutag

            return records_source([str(paths[0])], fmt, read_qutag(paths[0]))
        from labctl.formats.sstt import read_sstt
    except ImportError as exc:
        raise FormatError(f"--format {fmt}: this labctl has no {fmt} decoder ({exc})") from None
    return records_source([str(p) for p in paths], fmt, read_sstt(list(paths)))


def _picoquant_source(path: Path, fmt: str) -> ImportSource:
    if fmt == "ptu":
        from labctl.formats.picoquant_ptu import open_ptu

        src = open_ptu(path)
    else:
        from labctl.formats.picoquant_legacy import open_legacy

        src = open_legacy(path, fmt)
    return ImportSource(files=[src.path], format=fmt, format_name=src.format_name, t3=src.t3,
                        chunks=src.iter_chunks, header=src.header, notes=src.notes, start_at_zero=True,
                        stats=lambda: dict(src.stats), software=src.software,
                        software_version=src.software_version, file_time=src.file_time)


def records_source(files: list[str], fmt: str, rec: T2Records | T3Records) -> ImportSource:
    """A whole-file decoder's records, served in chunks (and sorted stably if they are not in time order)."""
    t3 = isinstance(rec, T3Records)
    if not t3:
        rec = sort_t2(rec)

    def chunks(n: int) -> Iterator[T2Records | T3Records]:
        size = len(rec.channels)
        for start in range(0, max(size, 1), n):
            part = _slice(rec, start, start + n)
            if start:  # markers once, with the first chunk
                _drop_markers(part)
            yield part

    return ImportSource(files=files, format=fmt, format_name=rec.format_name or fmt, t3=t3, chunks=chunks,
                        header=rec.header, notes=rec.notes, start_at_zero=False)


def sort_t2(rec: T2Records) -> T2Records:
    """``rec`` in time order: sorted stably (same-time events keep their file order), with a note."""
    ts = rec.timestamps_ps
    steps_back = int(np.count_nonzero(ts[1:] < ts[:-1])) if ts.size > 1 else 0
    if steps_back == 0:
        rec.sorted = True
        return rec
    order = np.argsort(ts, kind="stable")
    rec.timestamps_ps, rec.channels = ts[order], rec.channels[order]
    rec.sorted = True
    rec.notes.append(f"the event stream was not in time order ({steps_back} steps back in time): "
                     f"sorted stably by timestamp")
    if rec.marker_timestamps_ps.size > 1:
        m = np.argsort(rec.marker_timestamps_ps, kind="stable")
        rec.marker_timestamps_ps, rec.marker_channels = rec.marker_timestamps_ps[m], rec.marker_channels[m]
    return rec


def _slice(rec: T2Records | T3Records, a: int, b: int) -> T2Records | T3Records:
    if isinstance(rec, T3Records):
        return dataclasses.replace(rec, nsync=rec.nsync[a:b], dtime=rec.dtime[a:b], channels=rec.channels[a:b])
    return dataclasses.replace(rec, timestamps_ps=rec.timestamps_ps[a:b], channels=rec.channels[a:b])


def _drop_markers(rec: T2Records | T3Records) -> None:
    rec.marker_channels = rec.marker_channels[:0]
    if isinstance(rec, T3Records):
        rec.marker_nsync = rec.marker_nsync[:0]
    else:
        rec.marker_timestamps_ps = rec.marker_timestamps_ps[:0]


def concat_records(chunks: list[T2Records | T3Records]) -> T2Records | T3Records:
    first = chunks[0]
    cat = lambda name: np.concatenate([getattr(c, name) for c in chunks])  # noqa: E731
    if isinstance(first, T3Records):
        return dataclasses.replace(first, nsync=cat("nsync"), dtime=cat("dtime"), channels=cat("channels"),
                                   marker_nsync=cat("marker_nsync"), marker_channels=cat("marker_channels"))
    return dataclasses.replace(first, timestamps_ps=cat("timestamps_ps"), channels=cat("channels"),
                               marker_timestamps_ps=cat("marker_timestamps_ps"),
                               marker_channels=cat("marker_channels"))


def sort_t3(rec: T3Records) -> T3Records:
    """``rec`` with photons in macrotime order (stable), with a note if they were not."""
    macro = rec.macrotimes_ps()
    steps_back = int(np.count_nonzero(macro[1:] < macro[:-1])) if macro.size > 1 else 0
    if steps_back:
        order = np.argsort(macro, kind="stable")
        rec.nsync, rec.dtime, rec.channels = rec.nsync[order], rec.dtime[order], rec.channels[order]
        rec.notes.append(f"the photons were not in macrotime order ({steps_back} steps back in time): "
                         f"sorted stably by macrotime")
    return rec



def t3_memory_source(src: ImportSource, whole: T3Records) -> ImportSource:
    def chunks(n: int) -> Iterator[T3Records]:
        for start in range(0, max(len(whole.channels), 1), n):
            part = _slice(whole, start, start + n)
            if start:
                _drop_markers(part)
            yield part

    return ImportSource(files=src.files, format=src.format, format_name=src.format_name, t3=True, chunks=chunks,
                        header=src.header, notes=whole.notes, start_at_zero=True)

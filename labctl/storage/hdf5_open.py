"""Open an HDF5 input file without hanging on damage: checks before h5py, bounded SWMR retries.

Why this exists (measured, h5py 3.16 / HDF5 2.0): in SWMR-read mode HDF5 does
not compare the file's size with the end-of-file address in the superblock, and
when a metadata block fails its checksum (bytes missing after a truncation, or
flipped) it reads again, ``metadata_read_attempts`` times (default 100 with
SWMR), sleeping between attempts with a delay that doubles from 1 ns up to one
hour.  One damaged object then costs ~2^(attempts-1) ns: 30 attempts 1.08 s,
33 attempts 8.6 s, 36 attempts 68.7 s; the default 100 attempts is days — the
"hang" of ``labctl info`` on a truncated file.

So a file is opened like this:

1. Plain checks: it exists, is a regular file, is not empty, has an HDF5
   signature (at 0, 512, 1024, ...).
2. The superblock says whether a writer still has the file open (or crashed
   with it open).  If not, the file is complete: its size must reach the
   superblock's end-of-file address (else it is truncated: refused by name,
   with the way to ``labctl repair``), and it is opened without SWMR (every
   metadata read is tried once, so damage fails at once).
3. A file marked open for writing (a running or crashed writer) is opened
   SWMR, with ``SWMR_READ_ATTEMPTS`` metadata read attempts: a damaged object
   fails after at most ~2^(attempts-1) ns, while a live writer's concurrent
   metadata updates still get retried.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import math
import os
import struct
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np

from labctl.errors import DataFileError

SIGNATURE = b"\x89HDF\r\n\x1a\n"
SWMR_READ_ATTEMPTS = 24
"""Metadata read attempts for SWMR opens: a damaged object fails after 0.02 s of retries (measured:
``benchmarks/bench_damaged_files.py``), while a live writer's concurrent updates still get 24 tries."""

_FLAG_OPEN_FOR_WRITE = 0x01
_FLAG_SWMR_WRITE = 0x04


@dataclass(frozen=True)
class Superblock:
    """What ``labctl`` needs from an HDF5 superblock.

    Attributes:
        offset_bytes: where the signature was found (a user block comes before it).
        version: superblock version (0..3).
        base_address: file address 0 in bytes from the start of the file.
        stored_eof: end-of-file address recorded by the last writer (relative to ``base_address``).
        open_for_write: the file-consistency flags say a writer has it open (or crashed with it open);
            always False for versions 0 and 1, which do not record it.
    """

    offset_bytes: int
    version: int
    base_address: int
    stored_eof: int
    open_for_write: bool

    @property
    def end_bytes(self) -> int:
        """Size in bytes the file must have, as far as the superblock knows."""
        return self.base_address + self.stored_eof


def read_superblock(path: str) -> Superblock:
    """Check ``path`` is a non-empty regular file with an HDF5 superblock, and decode it.

    Raises:
        DataFileError: missing, a directory (or not a regular file), unreadable, empty,
            not HDF5, or the superblock is cut short / of an unknown version.
    """
    if not os.path.lexists(path):
        raise DataFileError(f"{path}: no such file")
    if os.path.isdir(path):
        raise DataFileError(f"{path}: is a directory, not a Photon-HDF5 file")
    if not os.path.isfile(path):
        raise DataFileError(f"{path}: not a regular file")
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            offset = 0
            while True:
                f.seek(offset)
                head = f.read(96)
                if head[:8] == SIGNATURE:
                    break
                offset = 512 if offset == 0 else 2 * offset
                if offset + 8 > size:
                    break
    except OSError as exc:
        raise DataFileError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    if size == 0:
        raise DataFileError(f"{path}: empty file (0 bytes), not a Photon-HDF5 file")
    if head[:8] != SIGNATURE:
        raise DataFileError(f"{path}: not an HDF5 file (no HDF5 signature in its {size:,} bytes)")
    return _decode_superblock(path, head, offset)


def _decode_superblock(path: str, head: bytes, offset: int) -> Superblock:
    version = head[8] if len(head) > 8 else -1
    try:
        if version in (0, 1):
            sizeof_offsets = head[13]
            fields = 24 + (4 if version == 1 else 0)  # after the fixed part: base, free-space, EOF, driver
            flags = 0
        elif version in (2, 3):
            sizeof_offsets = head[9]
            fields = 12
            flags = head[11]
        else:
            raise DataFileError(f"{path}: HDF5 superblock version {version}: unknown (0..3 are)")
        if sizeof_offsets not in (2, 4, 8):
            raise DataFileError(f"{path}: HDF5 superblock with {sizeof_offsets}-byte addresses: damaged (2, 4 or 8)")
        fmt = "<" + {2: "H", 4: "I", 8: "Q"}[sizeof_offsets]
        base = struct.unpack_from(fmt, head, fields)[0]
        eof_at = fields + 2 * sizeof_offsets  # base, then free-space (v0/1) or extension (v2/3) address
        stored_eof = struct.unpack_from(fmt, head, eof_at)[0]
    except (IndexError, struct.error):
        raise DataFileError(f"{path}: HDF5 superblock cut short ({len(head)} bytes after the signature): "
                            "the file is truncated or damaged") from None
    return Superblock(offset, version, base, stored_eof,
                      bool(flags & (_FLAG_OPEN_FOR_WRITE | _FLAG_SWMR_WRITE)))


def open_hdf5(path: str, *, swmr: bool) -> tuple[h5py.File, bool]:
    """Open ``path`` read-only the safe way (module docstring); return ``(file, opened_swmr)``.

    Args:
        path: absolute path of the file.
        swmr: allow a SWMR open of a file marked open for writing (a running or crashed writer).

    Raises:
        DataFileError: the file is missing, not HDF5, truncated, or HDF5 cannot open it.
        OSError: the file is marked open for writing and ``swmr`` is False.
    """
    sb = read_superblock(path)
    size = os.path.getsize(path)
    if not sb.open_for_write:
        if size < sb.end_bytes:
            raise DataFileError(
                f"{path}: truncated: {size:,} bytes of the {sb.end_bytes:,} its HDF5 superblock records "
                f"({100 * size / sb.end_bytes:.1f} %); `labctl repair {os.path.basename(path)}` recovers "
                "the photons still in it")
        return h5py_open(path, swmr=False), False
    if not swmr:
        raise OSError(f"{path}: marked as open for writing (a writer is running or crashed): "
                      "open it with swmr=True, or clear the mark with `h5clear -s --increment`")
    return h5py_open(path, swmr=True), True


def h5py_open(path: str, *, swmr: bool) -> h5py.File:
    try:
        if not swmr:
            return h5py.File(path, "r")
        fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
        fapl.set_fclose_degree(h5py.h5f.CLOSE_WEAK)  # as h5py.File: a writer in this process uses it too
        set_metadata_read_attempts(fapl, SWMR_READ_ATTEMPTS)
        fid = h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDONLY | h5py.h5f.ACC_SWMR_READ, fapl=fapl)
        return h5py.File(fid)
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        raise DataFileError(f"{path}: HDF5 cannot open it: {h5py_message(exc)}") from None


def shares_a_writer(f: h5py.File) -> bool:
    """Whether ``f`` shares its HDF5 file with a writer in this same process.

    HDF5 opens a file once per process: a SWMR reader's open of a file that this process
    writes returns the writer's read-write file, with one metadata cache for both.  Such a
    reader sees every write at once and must not ``refresh()``: a refresh evicts the
    object's metadata from the shared cache and reads it back from disk, where the writer
    has not put it yet (seen as "bad object header version number" or a missing attribute
    about once in 25 runs of ``test_follow_mode_also_works_with_the_writer_in_a_thread_of_the_same_process``).
    Its unflushed chunks are readable too, so no chunk counts as cut short.
    """
    return bool(f.id.get_intent() & h5py.h5f.ACC_RDWR)


def h5py_message(exc: BaseException) -> str:
    """The first line of an h5py/HDF5 error, without the C-level error stack."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


_LIBHDF5: Any = None


def _libhdf5() -> Any:
    """The HDF5 C library h5py uses (the copy bundled in h5py's wheel, else the system one)."""
    global _LIBHDF5
    if _LIBHDF5 is None:
        here = os.path.dirname(os.path.dirname(os.path.abspath(h5py.__file__)))
        candidates = sorted(glob.glob(os.path.join(here, "h5py.libs", "libhdf5-*.so*")))
        candidates += sorted(glob.glob(os.path.join(here, "h5py", ".dylibs", "libhdf5.*.dylib")))
        found = ctypes.util.find_library("hdf5")
        candidates += [found] if found else []
        for name in candidates:
            try:
                lib = ctypes.CDLL(name)
                lib.H5Pset_metadata_read_attempts.argtypes = [ctypes.c_int64, ctypes.c_uint]
                lib.H5Pset_metadata_read_attempts.restype = ctypes.c_int
            except (OSError, AttributeError):
                continue
            _LIBHDF5 = lib
            break
        else:
            _LIBHDF5 = False
    return _LIBHDF5


def set_metadata_read_attempts(fapl: h5py.h5p.PropFAID, attempts: int) -> None:
    """``H5Pset_metadata_read_attempts`` (h5py does not wrap it).

    Raises:
        DataFileError: the HDF5 library cannot be found: opening a damaged file SWMR could hang.
    """
    lib = _libhdf5()
    if not lib or lib.H5Pset_metadata_read_attempts(fapl.id, attempts) < 0:
        raise DataFileError("the HDF5 library's H5Pset_metadata_read_attempts is not reachable: labctl will not "
                            "open a file marked open for writing in SWMR mode (a damaged one would hang)")


def readable_length(ds: h5py.Dataset, file_size: int) -> int:
    """Leading elements of the 1-D dataset ``ds`` whose stored bytes all lie within ``file_size`` bytes.

    A chunk that is missing from the chunk index, or that reaches past the end of
    the file, ends the readable part (HDF5 would return fill values or zeros there).
    One call per chunk, not per element.
    """
    n = ds.shape[0]
    layout = ds.id.get_create_plist().get_layout()
    if layout == h5py.h5d.COMPACT or n == 0:
        return n
    if layout == h5py.h5d.CONTIGUOUS:
        offset = ds.id.get_offset()
        if offset is None:
            return 0
        return int(min(n, max(0, file_size - offset) // ds.dtype.itemsize))
    chunk = ds.chunks[0]
    inside: set[int] = set()

    def note(info: Any) -> None:
        if info.byte_offset is not None and info.byte_offset + info.size <= file_size:
            inside.add(info.chunk_offset[0] // chunk)

    # chunk_iter walks the index once; get_chunk_info(i) walks it up to i each time (20,000 chunks:
    # 0.02 s against 90 s, measured)
    if hasattr(ds.id, "chunk_iter"):
        ds.id.chunk_iter(note)
    else:
        for i in range(ds.id.get_num_chunks()):
            note(ds.id.get_chunk_info(i))
    k = 0
    while k * chunk < n and k in inside:
        k += 1
    return min(n, k * chunk)


def readable_photons(f: h5py.File, dataset: Any, opened_swmr: bool) -> int | None:
    """Photons whose bytes are all in the file, or None if that is every photon.

    Only a file opened SWMR (a writer crashed, or is running) can have its data cut
    short without the superblock noticing; a closed file passed the end-of-file check.
    ``dataset(path)`` returns the reader's handle of a photon dataset, or None.
    """
    if not opened_swmr:
        return None
    from labctl.storage import layout as L

    size = os.path.getsize(f.filename)
    lengths = [(ds.shape[0], readable_length(ds, size)) for ds in map(dataset, L.STREAM_PATHS) if ds is not None]
    if all(n == r for n, r in lengths):
        return None
    return min(r for _, r in lengths)


def lookup(f: h5py.File, path: str) -> Any:
    """``f[path]``, or None if it does not exist (``h5py``'s ``get`` also hides damage as None).

    Raises:
        DataFileError: the object (or a group on its path) is there but cannot be read.
    """
    try:
        return f[path]
    except KeyError as exc:
        message = str(exc)
        if "doesn't exist" in message or "does not exist" in message or "not found" in message:
            return None
        raise DataFileError(f"{f.filename}: damaged HDF5 file: {path}: {h5py_message(exc)}") from None
    except (OSError, RuntimeError, ValueError) as exc:
        raise DataFileError(f"{f.filename}: damaged HDF5 file: {path}: {h5py_message(exc)}") from None


def partial_chunk(ds: h5py.Dataset, start: int, file_size: int) -> tuple[int, int] | None:
    """The chunk of the 1-D-chunked, unfiltered ``ds`` that begins at row ``start`` and is cut by the
    end of the file: ``(byte offset in the file, whole rows of it inside the file)``, else None.

    Its rows inside the file can be read straight from the file's bytes (``repair``); HDF5
    itself would read the whole chunk and give zeros past the end of the file.
    """
    if not ds.chunks or ds.id.get_create_plist().get_nfilters() or start >= ds.shape[0]:
        return None
    try:
        info = ds.id.get_chunk_info_by_coord((start, *([0] * (ds.ndim - 1))))
    except (OSError, RuntimeError, ValueError, KeyError):
        return None
    if info.byte_offset is None or info.filter_mask:
        return None
    row_bytes = ds.dtype.itemsize * int(np.prod(ds.chunks[1:], dtype=np.int64))
    if ds.ndim > 1 and tuple(ds.chunks[1:]) != tuple(ds.shape[1:]):
        return None  # a row split over several chunks: not worth it
    rows = min(ds.shape[0] - start, ds.chunks[0], max(0, file_size - info.byte_offset) // row_bytes)
    return (info.byte_offset, int(rows)) if rows > 0 else None


def length_warnings(lengths: dict[str, int], readable: int | None, name: str) -> list[str]:
    """``PhotonHDF5Reader.warnings``: photon datasets of unequal ``lengths``; fewer ``readable`` photons."""
    out = []
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{p.rsplit('/', 1)[-1]} {n:,}" for p, n in lengths.items())
        out.append(f"photon datasets differ in length ({listed}): only the first {min(lengths.values()):,} "
                   "photons (the common length) are read")
    if readable is not None and readable < min(lengths.values()):
        out.append(f"the file is truncated: only the first {readable:,} of {min(lengths.values()):,} "
                   f"photons are in it; `labctl repair {name}` makes a clean copy")
    return out


def check_photon_datasets(f: h5py.File, path: str) -> None:
    """``/photon_data/timestamps`` (and detectors, nanotimes if there) must be 1-D integer datasets.

    Raises:
        DataFileError: names the dataset, its dtype and shape (or that it is absent / a group).
    """
    from labctl.storage import layout as L

    for name in L.STREAM_PATHS:
        obj = lookup(f, name)
        if obj is None and name == L.TIMESTAMPS:
            raise DataFileError(f"{path}: no {L.TIMESTAMPS} dataset: not a single-spot Photon-HDF5 file "
                                "(multispot /photon_dataN files are not supported)")
        if obj is not None and (not isinstance(obj, h5py.Dataset) or obj.ndim != 1 or obj.dtype.kind not in "iu"):
            what = f"dtype {obj.dtype}, shape {obj.shape}" if isinstance(obj, h5py.Dataset) else "a group"
            raise DataFileError(f"{path}: {name} ({what}): must be a 1-D integer dataset, one value per photon")


def positive_number(value: Any) -> float | None:
    """A stored scalar as a finite float > 0, else None (absent, not a number, inf, nan, <= 0)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) and x > 0 else None


CHUNK_CACHE_CHUNKS = 1.5
"""A growing dataset's chunk cache, in its own chunks: room for one chunk, never two."""


def open_caching_one_chunk(f: h5py.File, path: str) -> h5py.Dataset:
    """Dataset ``path`` opened with a chunk cache that holds one of its chunks (unchunked: as is).

    No other handle to the dataset may be open: HDF5 keeps the cache of the first open.
    """
    dataset = f[path]
    if dataset.chunks is None:
        return dataset
    chunk_bytes = int(np.prod(dataset.chunks)) * dataset.dtype.itemsize
    del dataset
    access = h5py.h5p.create(h5py.h5p.DATASET_ACCESS)
    access.set_chunk_cache(521, int(CHUNK_CACHE_CHUNKS * chunk_bytes), 0.75)  # HDF5's default slots and w0
    return h5py.Dataset(h5py.h5d.open(f.id, path.encode(), dapl=access))

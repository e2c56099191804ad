"""``labctl repair``: what a crashed or truncated Photon-HDF5 file still holds, in a clean file.

The source is opened SWMR (bounded retries, ``hdf5_open``): that reads a file
left open by a killed writer, and skips the end-of-file check that refuses a
truncated file.  Every object is copied on its own, so a damaged one is listed
as missing instead of stopping the repair.  Chunked datasets are copied up to
their first chunk that is missing from the chunk index or reaches past the end
of the file (``readable_length``): the photons recovered are exactly the first
photons of the original, in all three photon datasets alike.

The clean file gets ``/user/labctl/repair``, a group whose attributes record
what was recovered and what was lost (README, "labctl repair"), an end record
(``/user/labctl/run_end``; ``clean`` = 0 unless the source had a clean one and
nothing was lost), and ``/setup/detectors/counts`` and ``/acquisition_duration``
recomputed from the recovered photons.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from labctl.errors import DataFileError
from labctl.storage.outputs import check_output_file, replaced
from labctl.storage import layout as L
from labctl.storage.hdf5_open import h5py_open, h5py_message, partial_chunk, read_superblock, readable_length
from labctl.storage.repair_record import REPAIR

_COPY_ROWS = 1 << 20


def default_repair_path(path: str | os.PathLike[str]) -> Path:
    """``run.h5`` -> ``run.repaired.h5`` (beside the source)."""
    path = Path(path)
    return path.with_name(f"{path.stem}.repaired.h5")


def repair_file(src: str | os.PathLike[str], out: str | os.PathLike[str], *, overwrite: bool = False
                ) -> dict[str, Any]:
    """Copy the readable content of ``src`` into a new clean Photon-HDF5 file ``out``; return the record.

    Raises:
        ConfigError: ``out`` is ``src``, exists (without ``overwrite``) or cannot be written.
        DataFileError: ``src`` is not HDF5, its superblock or root metadata are gone, or it
            holds no readable ``/photon_data/timestamps``.
    """
    src = os.path.abspath(os.fspath(src))
    read_superblock(src)
    out_path = check_output_file("--out", out, inputs=[("FILE", src)], overwrite=overwrite)
    source = _open_any(src)
    try:
        with replaced(out_path, suffix=".h5") as tmp:
            with h5py.File(tmp, "w", libver=L.LIBVER) as dst:
                try:
                    record = _repair_into(source, dst, src)
                except (KeyError, OSError, RuntimeError) as exc:  # the root group or /photon_data unreadable
                    raise DataFileError(f"{src}: its HDF5 metadata cannot be read ({h5py_message(exc)}): "
                                        "the file was cut or damaged before its photon data: nothing can be "
                                        "recovered") from None
    finally:
        source.close()
    record["output_file"] = str(out_path)
    return record


def _open_any(path: str) -> h5py.File:
    """SWMR first (a killed writer's file, a truncated file); a plain open for old-format files."""
    try:
        return h5py_open(path, swmr=True)
    except DataFileError as swmr_error:
        try:
            return h5py_open(path, swmr=False)
        except DataFileError:
            raise DataFileError(f"{path}: its HDF5 metadata cannot be read (superblock or root group damaged "
                                f"or cut off): nothing can be recovered; {swmr_error}") from None


class _Copier:
    """Copy groups, datasets and attributes one by one, noting what could not be read."""

    def __init__(self, src: h5py.File, dst: h5py.File, size: int) -> None:
        self.src, self.dst, self.size = src, dst, size
        self.missing: list[str] = []
        self.cut: dict[str, list[int]] = {}  # path -> [rows recovered, rows the source declared]

    def attrs(self, src_obj: Any, dst_obj: Any, path: str) -> None:
        try:
            names = list(src_obj.attrs.keys())
        except Exception as exc:  # noqa: BLE001 - any HDF5 failure: noted, the repair goes on
            self.missing.append(f"{path} (attributes: {h5py_message(exc)})")
            return
        for name in names:
            try:
                dst_obj.attrs[name] = src_obj.attrs[name]
            except Exception as exc:  # noqa: BLE001
                self.missing.append(f"{path} attribute {name} ({h5py_message(exc)})")

    def group(self, src_group: h5py.Group, dst_group: h5py.Group, path: str, skip: tuple[str, ...]) -> None:
        self.attrs(src_group, dst_group, path or "/")
        try:
            names = list(src_group.keys())
        except Exception as exc:  # noqa: BLE001
            self.missing.append(f"{path or '/'} (members: {h5py_message(exc)})")
            return
        for name in names:
            child = f"{path}/{name}"
            if child in skip:
                continue
            try:
                obj = src_group[name]
            except Exception as exc:  # noqa: BLE001
                self.missing.append(f"{child} ({h5py_message(exc)})")
                continue
            if isinstance(obj, h5py.Group):
                self.group(obj, dst_group.create_group(name), child, skip)
            elif isinstance(obj, h5py.Dataset):
                self.dataset(obj, dst_group, name, child)

    def dataset(self, ds: h5py.Dataset, dst_group: h5py.Group, name: str, path: str) -> None:
        try:
            if ds.ndim == 0:
                new = dst_group.create_dataset(name, data=ds[()], dtype=ds.dtype)
            else:
                n, tail = _extent(ds, self.size)
                if n + len(tail) < ds.shape[0]:
                    self.cut[path] = [n + len(tail), ds.shape[0]]
                kw = dict(chunks=ds.chunks, maxshape=ds.maxshape) if ds.chunks else {}
                new = dst_group.create_dataset(name, shape=(n + len(tail), *ds.shape[1:]), dtype=ds.dtype, **kw)
                _copy_rows(ds, new, n, tail)
        except Exception as exc:  # noqa: BLE001
            if name in dst_group:
                del dst_group[name]
            self.missing.append(f"{path} ({h5py_message(exc)})")
            return
        self.attrs(ds, new, path)


def _extent(ds: h5py.Dataset, file_size: int) -> tuple[int, np.ndarray]:
    """(rows HDF5 reads from whole chunks inside the file, rows of the next chunk read from the file's bytes)."""
    n = readable_length(ds, file_size) if ds.chunks else ds.shape[0]
    part = partial_chunk(ds, n, file_size)
    if part is None:
        return n, np.empty((0, *ds.shape[1:]), ds.dtype)
    offset, rows = part
    count = rows * int(np.prod(ds.shape[1:], dtype=np.int64))
    tail = np.fromfile(ds.file.filename, dtype=ds.dtype, count=count, offset=offset)
    return n, tail.reshape((rows, *ds.shape[1:]))


def _copy_rows(src: h5py.Dataset, dst: h5py.Dataset, n: int, tail: np.ndarray) -> None:
    """Rows ``0:n`` of ``src`` through HDF5, in slices, then ``tail`` after them."""
    for i in range(0, n, _COPY_ROWS):
        dst[i:min(n, i + _COPY_ROWS)] = src[i:min(n, i + _COPY_ROWS)]
    if len(tail):
        dst[n:n + len(tail)] = tail


def _repair_into(src: h5py.File, dst: h5py.File, src_path: str) -> dict[str, Any]:
    size = os.path.getsize(src_path)
    copier = _Copier(src, dst, size)
    streams = {p: src.get(p) for p in L.STREAM_PATHS} if L.PHOTON_DATA in src else {}
    ts_src = streams.get(L.TIMESTAMPS)
    if not isinstance(ts_src, h5py.Dataset) or ts_src.ndim != 1 or ts_src.dtype.kind not in "iu":
        what = (f"dtype {ts_src.dtype}, shape {ts_src.shape}" if isinstance(ts_src, h5py.Dataset)
                else "cut or damaged before it, or absent")
        raise DataFileError(f"{src_path}: no readable 1-D integer {L.TIMESTAMPS} ({what}): "
                            "nothing can be recovered")
    present = {p: ds for p, ds in streams.items()
               if isinstance(ds, h5py.Dataset) and ds.ndim == 1 and ds.dtype.kind in "iu"}
    declared = {p: ds.shape[0] for p, ds in present.items()}
    try:
        extents = {p: _extent(ds, size) for p, ds in present.items()}
    except Exception as exc:  # noqa: BLE001 - the chunk index itself is past the cut or damaged
        raise DataFileError(f"{src_path}: the chunk index of the photon data cannot be read "
                            f"({h5py_message(exc)}): no photons can be recovered") from None
    readable = {p: n + len(tail) for p, (n, tail) in extents.items()}
    had_end = isinstance(src.get(L.RUN_END), h5py.Group)
    copier.group(src, dst, "", skip=tuple(present))
    n = min(readable.values())
    for path, ds in present.items():
        new = dst.require_group(L.PHOTON_DATA).create_dataset(
            path.rsplit("/", 1)[-1], shape=(n,), maxshape=(None,), dtype=ds.dtype,
            chunks=(min(max(n, 1), ds.chunks[0] if ds.chunks else 1 << 16),))
        whole, tail = extents[path]
        _copy_rows(ds, new, min(n, whole), tail[:max(0, n - whole)])
        copier.attrs(ds, new, path)
    ts = dst[L.TIMESTAMPS]
    first, last = (int(ts[0]), int(ts[n - 1])) if n else (None, None)
    record = {
        "source_file": src_path, "source_size_bytes": size,
        "repaired_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "photons_recovered": n,
        "photons_declared": max(declared.values()),
        "photons_lost": max(declared.values()) - n,
        "photon_datasets": {p.rsplit("/", 1)[-1]: [readable[p], declared[p]] for p in present},
        "time_range_ticks": [first, last],
        "had_run_end": had_end,
        "tables_cut": {p: rows for p, rows in copier.cut.items()},
        "missing": copier.missing,
    }
    _fix_up(dst, record)
    if not _place(dst, REPAIR):
        raise DataFileError(f"{src_path}: /user/labctl is a dataset, not a group: no room for the repair record")
    group = dst.create_group(REPAIR)
    for key, value in record.items():
        group.attrs[key] = (np.uint8(value) if isinstance(value, bool) else value if isinstance(value, (int, str))
                            else json.dumps(value))
    return record


def _dataset(f: h5py.File, path: str) -> h5py.Dataset | None:
    obj = f.get(path)
    return obj if isinstance(obj, h5py.Dataset) else None


def _number(f: h5py.File, path: str) -> float | None:
    """A scalar number stored at ``path``, or None (missing, a group, not a number)."""
    ds = _dataset(f, path)
    try:
        return float(ds[()]) if ds is not None and ds.shape == () else None
    except (TypeError, ValueError):
        return None


def _place(f: h5py.File, path: str) -> bool:
    """Clear ``path`` for a new object; False if a dataset sits on its way (the copy keeps it)."""
    parts = path.strip("/").split("/")
    for k in range(1, len(parts)):
        if isinstance(f.get("/" + "/".join(parts[:k])), h5py.Dataset):
            return False
    if path in f:
        del f[path]
    return True


def _fix_up(dst: h5py.File, record: dict[str, Any]) -> None:
    """Make the copy consistent with the photons recovered: counts, duration, writer_done, end record."""
    n = record["photons_recovered"]
    ids, counts_ds = _dataset(dst, L.SETUP_DETECTOR_ID), _dataset(dst, L.SETUP_DETECTOR_COUNTS)
    if ids is not None and counts_ds is not None and ids.dtype.kind in "iu" and L.DETECTORS in dst:
        det = dst[L.DETECTORS][:n]
        counts = np.array([np.count_nonzero(det == i) for i in np.asarray(ids[()]).ravel()], np.int64)
        attrs = dict(counts_ds.attrs)
        del dst[L.SETUP_DETECTOR_COUNTS]
        dst[L.SETUP_DETECTOR_COUNTS] = counts
        dst[L.SETUP_DETECTOR_COUNTS].attrs.update(attrs)
    unit_s = _number(dst, L.TIMESTAMPS_UNIT)
    unit_s = unit_s if unit_s is not None and np.isfinite(unit_s) and unit_s > 0 else 1e-12
    first, last = record["time_range_ticks"]
    span_s = (last - first) * unit_s if n else 0.0
    duration_s = _number(dst, L.ACQUISITION_DURATION)
    if duration_s is not None and record["photons_lost"]:
        dst[L.ACQUISITION_DURATION][()] = min(duration_s, span_s) or span_s
    if _number(dst, L.WRITER_DONE) is not None:
        dst[L.WRITER_DONE][()] = 1
    lost = record["photons_lost"] > 0 or bool(record["tables_cut"]) or bool(record["missing"])
    end = None
    if record["had_run_end"]:
        try:
            end = L.read_run_end(dst[L.RUN_END])
        except Exception:  # noqa: BLE001 - a damaged end record is replaced
            end = None
    if not _place(dst, L.RUN_END):
        record["missing"].append(f"{L.RUN_END} (not written: a dataset is in its place)")
        return
    if end is None:
        losses = _dataset(dst, L.LOSSES)
        end = {"clean": False, "end_reason": "repaired: the writer never closed the file (crash?)",
               "duration_ps": int(min(span_s * 1e12, 2.0**62)) if np.isfinite(span_s) else 0,
               "photons_written": n, "counts": {},
               "losses": losses.shape[0] if losses is not None and losses.ndim == 1 else 0,
               "measured_sync_period_ps": None, "errors": []}
    elif lost:
        end["clean"] = False
        end["end_reason"] = f"repaired: {end['end_reason']}"
    if lost:
        end["errors"] = [*end["errors"], f"labctl repair: {record['photons_recovered']:,} of "
                                         f"{record['photons_declared']:,} photons recovered; "
                                         f"{len(record['missing'])} object(s) missing"]
    end["photons_written"] = n
    L.write_run_end(dst.create_group(L.RUN_END), end)


def format_report(record: dict[str, Any]) -> str:
    """What ``labctl repair`` prints."""
    first, last = record["time_range_ticks"]
    lines = [f"source      {record['source_file']} ({record['source_size_bytes']:,} bytes)",
             f"repaired    {record['output_file']}",
             f"photons     {record['photons_recovered']:,} recovered of {record['photons_declared']:,} "
             f"in the source's index ({record['photons_lost']:,} lost)"]
    if first is not None:
        lines.append(f"time range  {first} .. {last} (timestamp units)")
    lines.append("end record  " + ("kept from the source" if record["had_run_end"] else
                                   "none in the source (the writer crashed): written with clean = 0"))
    for path, (kept, declared) in record["tables_cut"].items():
        lines.append(f"!! {path}: {kept:,} of {declared:,} rows recovered")
    for item in record["missing"]:
        lines.append(f"!! missing: {item}")
    return "\n".join(lines)

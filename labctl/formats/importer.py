"""``labctl import``: other labs' time-tag files -> labctl's Photon-HDF5 file.

Records (``labctl.formats.common``) become the same ``PhotonBlock`` s the engine
makes and go through the same ``PhotonHDF5Writer``, chunk by chunk: a file is
memory-mapped and decoded ``chunk_records`` records at a time (the wrap count
carried across chunks), so a multi-GB file is never in memory at once.  Two
passes: the first counts the channels (the detector ids must be known when the
file is created), checks the time order and measures the sync interval; the
second writes.

What becomes what:

* T3 (PicoQuant PT3/HT3, PTU T3): timestamp = ``rint(nsync x sync period) +
  dtime x resolution`` ps, nanotime = ``rint(dtime x resolution)`` ps, detector =
  the record's channel.  ``tcspc_num_bins`` = the sync period in whole ps.
* T2 with a sync channel (the file's own, e.g. the HT2 sync events on channel
  64, or ``--sync-channel N``): sync events are not photons; every other
  channel's events are photons with nanotimes from ``labctl.acquisition.photons.PhotonConverter``
  (pulses reconstructed between kept syncs when the file holds only every
  D-th sync, D = the file's sync divider).  Without a sync: no nanotimes
  (``/photon_data/nanotimes`` is removed, ``/setup/lifetime`` = 0) and no laser
  period (the laser rate fields are removed and ``/setup/excitation_cw`` = 1, as
  Photon-HDF5 asks when no repetition rate is given): a header's sync-input
  rate is kept in the header JSON only, since nothing in the data shows it is
  the laser's.
* Overflow records never appear; marker records go to ``/user/labctl/markers``
  (int64 ps: T2 marker time, T3 ``rint(nsync x sync period)``) with their
  channel (the stored bitmask) at the same index in
  ``/user/labctl/import/marker_channels`` (int16).  Markers never become photons.
* A stream whose events are not in time order is sorted stably (in memory) and a
  note says so.  Notes (also record-count disagreements) are printed by the CLI,
  logged in ``/user/labctl/run_log`` and stored in ``/user/labctl/import/notes``.
* ``/user/labctl/import/``: ``source_files`` (JSON list), ``format`` (the
  ``--format`` name), ``format_name`` (e.g. "PTU HydraHarp V2 T2"), ``header``
  (JSON of the source header), ``notes`` (JSON list), ``stats`` (JSON: records,
  overflow records, events per channel, sync channel, sorted), ``marker_channels``.
  ``/provenance``: the source file's name, path, creator software and time.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from labctl.blocks import CHANNEL_DTYPE, NANOTIME_DTYPE, NO_NANOTIME, ChannelMap, PhotonBlock, TagBlock
from labctl.formats.common import FormatError, T2Records, T3Records
from labctl.formats.import_sources import (
    ImportSource, concat_records, open_source, records_source, sort_t2, sort_t3, t3_memory_source,
)
from labctl.acquisition.photons import PhotonConverter
from labctl.run import RunInfo, RunSummary
from labctl.storage import layout as L

IMPORT = L.LABCTL + "/import"
IMPORT_MARKER_CHANNELS = IMPORT + "/marker_channels"
PROVENANCE_TITLES = {
    "filename": "File name of the original data file before conversion to Photon-HDF5.",
    "filename_full": "File name (with full path) of the original data file before conversion to Photon-HDF5.",
    "creation_time": "Creation time of the original data file.",
    "software": "Software used to save the original data file.",
    "software_version": "Version of the software used to save the original data file.",
}
"""Photon-HDF5 v0.5 descriptions (TITLE) of the /provenance fields written here."""

DEFAULT_CHUNK_RECORDS = 1 << 20
PERIOD_SYNCS = 64
"""Sync events at the start whose median interval sets the nominal period (T2 with a sync)."""


@dataclass
class ImportResult:
    """What ``import_files`` wrote."""

    out: Path
    format_name: str
    photons: int
    counts: dict[int, int]  # photons per detector
    markers: int
    overflow_records: int | None
    duration_s: float
    sync_channel: int | None
    notes: list[str] = field(default_factory=list)
    marker_channels: np.ndarray = field(default_factory=lambda: np.empty(0, np.int16))
    stats: dict = field(default_factory=dict)
    t3: bool = False



# --- the first pass ----------------------------------------------------------------
@dataclass
class _Scan:
    counts: dict[int, int]
    markers: int
    sorted: bool
    first_ps: int | None
    last_ps: int | None
    file_sync_channel: int | None
    first_syncs: np.ndarray
    divider: int
    sync_rate_hz: float | None
    sync_period_ps: float | None  # T3
    duration_s: float | None


def _times(rec: T2Records | T3Records) -> np.ndarray:
    return rec.macrotimes_ps() if isinstance(rec, T3Records) else rec.timestamps_ps


def _scan(src: ImportSource, chunk_records: int, sync_channel: int | None) -> _Scan:
    counts = np.zeros(0, np.int64)
    markers, ordered, prev = 0, True, None
    first = last = file_sync = rate = period = duration = None
    divider = 1
    syncs: list[np.ndarray] = []
    n_syncs = 0
    for rec in src.chunks(chunk_records):
        if rec.channels.size and int(rec.channels.min()) < 0:
            raise FormatError(f"{src.files[0]}: channel {int(rec.channels.min())} in the records: channels are >= 0")
        c = np.bincount(rec.channels.astype(np.int64)) if rec.channels.size else counts[:0]
        if c.size > counts.size:
            counts = np.concatenate([counts, np.zeros(c.size - counts.size, np.int64)])
        counts[:c.size] += c
        markers += int(rec.marker_channels.size)
        divider, duration = rec.sync_divider, rec.duration_s
        if isinstance(rec, T3Records):
            period = rec.sync_period_ps
        else:
            file_sync, rate = rec.sync_channel, rec.sync_rate_hz
        t = _times(rec)
        if t.size:
            if ordered and ((prev is not None and t[0] < prev) or bool(np.any(t[1:] < t[:-1]))):
                ordered = False
            lo, hi, prev = int(t.min()), int(t.max()), int(t[-1])
            first = lo if first is None else min(first, lo)
            last = hi if last is None else max(last, hi)
        want = sync_channel if sync_channel is not None else file_sync
        if want is not None and n_syncs <= PERIOD_SYNCS and not isinstance(rec, T3Records):
            s = rec.timestamps_ps[rec.channels == want][: PERIOD_SYNCS + 1]
            syncs.append(s)
            n_syncs += s.size
    return _Scan({int(ch): int(n) for ch, n in enumerate(counts) if n}, markers, ordered, first, last, file_sync,
                 np.concatenate(syncs) if syncs else np.empty(0, np.int64), max(1, int(divider)), rate, period,
                 duration)


# --- import ------------------------------------------------------------------------
def import_files(paths: list[Path], out: Path, *, fmt: str | None = None, sync_channel: int | None = None,
                 overwrite: bool = False, chunk_records: int = DEFAULT_CHUNK_RECORDS,
                 description: str = "") -> ImportResult:
    """Import ``paths`` (one recording) into the Photon-HDF5 file ``out``.

    Args:
        fmt: one of ``FORMATS``; None = detected from the file.
        sync_channel: T2 channel carrying the laser sync (overrides the file's own).
        overwrite: replace ``out`` if it exists (it is replaced only once the import succeeded).
        chunk_records: records decoded at a time (memory bound; the output does not depend on it).

    Raises:
        FormatError: unreadable input, a wrong option for this file, or ``out`` exists.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise FormatError(f"--out {out}: exists; choose another name or pass --overwrite")
    if any(out.resolve() == Path(p).resolve() for p in paths):
        raise FormatError(f"--out {out}: is one of the input files")
    src = open_source([Path(p) for p in paths], fmt)
    if src.t3 and sync_channel is not None:
        raise FormatError(f"--sync-channel {sync_channel}: {src.format_name} is a T3 file; its photons are "
                          f"already timed from the sync (no sync channel to choose)")
    scan = _scan(src, chunk_records, sync_channel)
    if not scan.sorted:  # rare (merged streams): sort in memory, then serve the sorted records in chunks
        whole = concat_records(list(src.chunks(chunk_records)))
        whole = sort_t3(whole) if isinstance(whole, T3Records) else sort_t2(whole)
        stats = src.stats()
        src = records_source(src.files, src.format, whole) if not src.t3 else t3_memory_source(src, whole)
        src.start_at_zero, src.stats = True, (lambda: stats)
    sync = _choose_sync(src, scan, sync_channel)
    detectors = sorted(ch for ch in scan.counts if ch != sync)
    if any(ch > 255 for ch in detectors):
        raise FormatError(f"{src.files[0]}: detector channels {[c for c in detectors if c > 255]}: "
                          f"the Photon-HDF5 detectors dataset holds 0..255")
    period_ps = _nominal_period_ps(src, scan, sync)
    tmp = out.with_name(out.name + ".importing")
    if tmp.exists():
        tmp.unlink()
    try:
        result = _write(src, scan, tmp, detectors, sync, period_ps, chunk_records, description)
        _finish_file(tmp, src, scan, sync, result)
        os.replace(tmp, out)
    except BaseException:
        if tmp.exists():
            tmp.unlink()
        raise
    result.out = out
    return result


def _choose_sync(src: ImportSource, scan: _Scan, sync_channel: int | None) -> int | None:
    if src.t3:
        return None
    present = ", ".join(f"{ch}: {n}" for ch, n in scan.counts.items()) or "none"
    if sync_channel is not None:
        if scan.counts.get(sync_channel, 0) == 0:
            raise FormatError(f"--sync-channel {sync_channel}: no events on that channel in {src.files[0]} "
                              f"(events per channel: {present})")
        own = scan.file_sync_channel
        if own is not None and own != sync_channel and scan.counts.get(own, 0) > 0:
            raise FormatError(f"--sync-channel {sync_channel}: {src.files[0]} records its sync on channel {own} "
                              f"({scan.counts[own]} events); leave --sync-channel out or give {own}")
        return sync_channel
    if scan.file_sync_channel is not None and scan.counts.get(scan.file_sync_channel, 0) > 0:
        return scan.file_sync_channel
    return None


def _nominal_period_ps(src: ImportSource, scan: _Scan, sync: int | None) -> int:
    """Laser period (ps) for ``tcspc_num_bins``: T3 sync period; T2 measured from the first syncs, else header."""
    if src.t3:
        return max(1, int(np.rint(scan.sync_period_ps)))
    if sync is not None and scan.first_syncs.size > 1:
        return max(1, int(np.rint(np.median(np.diff(scan.first_syncs)) / scan.divider)))
    if sync is not None and scan.sync_rate_hz:  # a single sync event: the header's rate
        return max(1, int(np.rint(1e12 / scan.sync_rate_hz)))
    return 1  # no sync: no nanotimes and no laser period in the file (see _finish_file)


# --- the second pass: writing ----------------------------------------------------------
class _SyncedPhotons:
    """T2 events -> photons with nanotimes, through ``PhotonConverter`` (chunk-invariant).

    The converter knows two detector channels; here every non-sync channel is fed as one
    stand-in channel and the stored channel numbers are restored in order from a FIFO
    (the converter emits photons in input order; checked on every block).
    """

    def __init__(self, sync: int, divider: int) -> None:
        self.sync = sync
        self.stand_in = 1 if sync == 0 else 0
        self.conv = PhotonConverter(ChannelMap(laser_sync=sync, spad_a=self.stand_in, spad_b=self.stand_in),
                                    hardware_sync_divider=divider)
        self._fifo_t = np.empty(0, np.int64)
        self._fifo_d = np.empty(0, CHANNEL_DTYPE)

    def process(self, ts: np.ndarray, ch: np.ndarray) -> PhotonBlock:
        is_sync = ch == self.sync
        photon = ~is_sync
        self._fifo_t = np.concatenate([self._fifo_t, ts[photon]])
        self._fifo_d = np.concatenate([self._fifo_d, ch[photon].astype(CHANNEL_DTYPE)])
        mapped = np.where(is_sync, self.sync, self.stand_in).astype(CHANNEL_DTYPE)
        return self._restore(self.conv.process(TagBlock(np.ascontiguousarray(ts, np.int64), mapped)))

    def finish(self) -> PhotonBlock:
        return self._restore(self.conv.finish())

    def _restore(self, out: PhotonBlock) -> PhotonBlock:
        n = len(out)
        if not np.array_equal(out.timestamps, self._fifo_t[:n]):
            raise RuntimeError("PhotonConverter emitted photons out of input order: channel restore impossible")
        out.detectors = self._fifo_d[:n].copy()
        self._fifo_t, self._fifo_d = self._fifo_t[n:], self._fifo_d[n:]
        return out


def _blocks(src: ImportSource, chunk_records: int, synced: _SyncedPhotons | None,
            marker_channels: list[np.ndarray]) -> Iterator[PhotonBlock]:
    for rec in src.chunks(chunk_records):
        marker_channels.append(rec.marker_channels.astype(np.int16))
        if isinstance(rec, T3Records):
            markers = np.rint(rec.marker_nsync.astype(np.float64) * rec.sync_period_ps).astype(np.int64)
            yield PhotonBlock(rec.macrotimes_ps(), rec.channels.astype(CHANNEL_DTYPE),
                              rec.nanotimes_ps().astype(NANOTIME_DTYPE), markers=markers)
            continue
        markers = np.ascontiguousarray(rec.marker_timestamps_ps, np.int64)
        if synced is not None:
            block = synced.process(rec.timestamps_ps, rec.channels)
            block.markers = markers
            yield block
        else:
            keep = rec.channels != rec.sync_channel if rec.sync_channel is not None else slice(None)
            ts = np.ascontiguousarray(rec.timestamps_ps[keep], np.int64)
            yield PhotonBlock(ts, rec.channels[keep].astype(CHANNEL_DTYPE),
                              np.full(ts.size, NO_NANOTIME, NANOTIME_DTYPE), markers=markers)
    if synced is not None:
        yield synced.finish()


def _write(src: ImportSource, scan: "_Scan", path: Path, detectors: list[int], sync: int | None,
           period_ps: int, chunk_records: int, description: str) -> ImportResult:
    from labctl.storage.writer import PhotonHDF5Writer

    spad_a = detectors[0] if detectors else 0
    spad_b = detectors[1] if len(detectors) > 1 else spad_a
    run = RunInfo(run_id=uuid.uuid4().hex, start_time_iso=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  channels=ChannelMap(laser_sync=-1 if sync is None else sync, spad_a=spad_a, spad_b=spad_b),
                  detector_labels={d: f"ch{d}" for d in detectors}, nominal_sync_period_ps=period_ps,
                  sync_divider=scan.divider, duration_s=scan.duration_s,
                  description=description or f"imported from {', '.join(map(os.path.basename, src.files))} "
                                             f"({src.format_name}) by labctl import")
    writer = PhotonHDF5Writer(path, flush_interval_s=10.0)
    writer.open(run)
    counts: dict[int, int] = {}
    photons = markers = 0
    last_ps = None
    marker_channels: list[np.ndarray] = []
    losses = []
    synced = _SyncedPhotons(sync, scan.divider) if sync is not None else None
    try:
        for block in _blocks(src, chunk_records, synced, marker_channels):
            writer.write(block)
            photons += len(block)
            markers += int(block.markers.size)
            losses += block.losses
            if len(block):
                last_ps = int(block.timestamps[-1])
                for d, n in zip(*np.unique(block.detectors, return_counts=True)):
                    counts[int(d)] = counts.get(int(d), 0) + int(n)
    except BaseException:
        writer.close(RunSummary(False, "error", 0, {}, photons, []))
        raise
    stats = src.stats()
    start = 0 if src.start_at_zero else (scan.first_ps or 0)
    end = max(x for x in (stats.get("end_ps"), scan.last_ps, last_ps, start) if x is not None)
    notes = list(dict.fromkeys(src.notes))
    if not src.t3 and sync is None and scan.sync_rate_hz:
        notes.append(f"no sync events in the data: no nanotimes, and the header's sync rate "
                     f"({scan.sync_rate_hz:.0f} Hz) is not stored as the laser rate")
    if stats.get("unknown_records"):
        notes.append(f"{stats['unknown_records']} records of no kind the format defines (e.g. "
                     f"{', '.join(stats.get('unknown_examples', []))}) were skipped")
    if losses:
        notes.append(f"{len(losses)} gaps in the sync stream (recorded in {L.LOSSES})")
    for note in notes:
        writer.log(note, "WARNING")
    measured = synced.conv.measured_pulse_period_ps if synced is not None else None
    writer.close(RunSummary(True, "import", max(0, end - start), dict(scan.counts), photons, [],
                            measured_sync_period_ps=measured))
    return ImportResult(out=path, format_name=src.format_name, photons=photons, t3=src.t3, counts=dict(sorted(counts.items())),
                        markers=markers, overflow_records=stats.get("overflow_records"),
                        duration_s=max(0, end - start) * 1e-12, sync_channel=sync, notes=notes,
                        marker_channels=np.concatenate(marker_channels) if marker_channels else np.empty(0, np.int16),
                        stats={"events_per_channel": {str(k): v for k, v in scan.counts.items()}, "sync_channel": sync,
                               "sorted_in_file": scan.sorted, **{k: v for k, v in stats.items()}})


def _text(f: h5py.File, path: str, value: str, title: str | None = None) -> None:
    if path in f:
        del f[path]
    f[path] = L.text_scalar(value)
    f[path].attrs["FLAVOR"] = np.bytes_(b"python")
    if title is not None:
        f[path].attrs["TITLE"] = np.bytes_(title.encode())


def _finish_file(path: Path, src: ImportSource, scan: "_Scan", sync: int | None, result: ImportResult) -> None:
    """After the writer closed: /user/labctl/import, /provenance, and no nanotimes when there is no sync."""
    with h5py.File(path, "r+", libver=L.LIBVER) as f:
        _text(f, IMPORT + "/source_files", json.dumps([os.path.abspath(p) for p in src.files]))
        _text(f, IMPORT + "/format", src.format)
        _text(f, IMPORT + "/format_name", src.format_name)
        _text(f, IMPORT + "/header", json.dumps(src.header, default=str))
        _text(f, IMPORT + "/notes", json.dumps(result.notes))
        _text(f, IMPORT + "/stats", json.dumps(result.stats, default=str))
        f.create_dataset(IMPORT_MARKER_CHANNELS, data=result.marker_channels.astype(np.int16))
        first = src.files[0]
        prov = {"filename": os.path.basename(first), "filename_full": os.path.abspath(first),
                "software": src.software or src.format_name, "software_version": src.software_version,
                "creation_time": src.file_time}
        for key, value in prov.items():
            if value:
                _text(f, f"{L.PROVENANCE}/{key}", value, PROVENANCE_TITLES[key])
        if not src.t3 and sync is None:  # no laser sync: no nanotimes
            for node in (L.NANOTIMES, "/photon_data/nanotimes_specs"):
                del f[node]
            f["/setup/lifetime"][()] = 0
            # No sync in the data: no laser period is claimed (a header's sync-input rate may
            # come from anything plugged in there); Photon-HDF5 then wants the source marked CW.
            f["/setup/excitation_cw"][:] = 1
            for node in (L.LASER_REPETITION_RATE, L.SETUP_LASER_REPETITION_RATES):
                del f[node]

"""SSTT data sets (Rabouw lab's PHAST writer, libtimetag reader): an info file + one file per channel.

Info file: see ``labctl.formats.sstt_info``.  Data file ``<info>.c<ChannelID>``
(``../shared/reference/formats.md`` §5; PHAST ``small_tcspc_io2.cpp``,
libtimetag ``sstt_file2.cpp``):

* v2: an 18-byte header ``SSTT2\\0`` + 12 x 0xFF, then 6-byte events, the low
  48 bits of a little-endian uint64.  Bits 0-1: 0 = photon, 1 = overflow,
  bit 1 set = reserved (ignored here, as the format reference says; libtimetag's
  reader would store such an event as a photon at time 0).  Bits 2-47: a photon's time in device units,
  or an overflow's number of 2^46 wraps since the previous event.
  t = (wraps so far) x 2^46 + time.
* v1 (legacy, no header): 8-byte events, bit 0 overflow, photon: bits 2-35
  microtime (delay after the laser pulse), bits 36-63 time, wraps of 2^28.
  PHAST writes the info file with the V2 line for both, so each data file's
  version is read from its own first bytes (as libtimetag does).  v1 files
  whose microtimes are not all 0 are refused: ``T2Records`` cannot carry them
  and nothing recorded may be dropped.

Time unit: ``Time_unit_seconds`` of the info file, parsed exactly from its
text (8.1e-11 s is exactly 81 ps, applied as an int64 multiply); a unit that is
not a whole number of ps gives the nearest ps (noted).  The pulses channel
(IsPulsesChannel) is ``sync_channel``; its TotalSyncDivider is ``sync_divider``.
The per-channel files are merged by a stable time sort (channels in info-file
order at equal times); ``sorted`` is False only if a channel's own file steps
back in time (PHAST never writes that).  Counts in the info file
(NumPhotons, NumOverflows, Filesize) are checked against the data files; the
data files win and ``notes`` tells the difference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import numpy as np

from labctl.formats.common import FormatError, T2Records
from labctl.formats.sstt_info import SsttInfo, data_file_candidates, find_info_file, parse_info
from labctl.formats.ticks import is_time_ordered, ticks_to_ps, unit_ps_from_seconds_text

V2_HEADER = b"SSTT2\x00" + b"\xff" * 12
V2_EVENT = np.dtype([("lo", "<u4"), ("hi", "<u2")])  # packed: itemsize 6
V2_WRAP_BITS = 46
V1_EVENT_BYTES = 8
V1_WRAP_BITS = 28
DEFAULT_CHUNK_RECORDS = 4_000_000


def read_sstt(paths: Iterable[Path] | Path, *, chunk_records: int = DEFAULT_CHUNK_RECORDS) -> T2Records:
    """Decode an SSTT data set into ``T2Records`` (every channel, times in int64 ps, time-sorted).

    Args:
        paths: the info file (its data files are found beside it), or the info
            file and data files, or data files only (the info file is then
            ``<data file>`` without ``.c<N>``).
        chunk_records: events decoded per step (bounds temporary memory; the
            result does not depend on it).

    Raises ``FormatError`` naming the file, what was found and what is allowed.
    """
    paths = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    if chunk_records < 1:
        raise ValueError(f"chunk_records = {chunk_records!r}: allowed >= 1")
    info = parse_info(find_info_file(paths))
    notes = list(info.notes)
    try:
        unit_ps = unit_ps_from_seconds_text(info.time_unit_text)
    except ValueError:
        raise FormatError(f"{info.path}: Time_unit_seconds = {info.time_unit_text!r}; allowed: "
                          "a positive number of seconds") from None
    if unit_ps.denominator != 1:
        notes.append(f"time unit {float(unit_ps):g} ps is not a whole number of ps: times "
                     "rounded to the nearest ps (error <= 0.5 ps)")
    if info.path.with_name(info.path.name + "_temp").exists() or info.path.name.endswith("_temp"):
        notes.append(f"{info.path.name}: a '_temp' info file exists: PHAST may not have finished "
                     "this recording (it writes the counts at the end)")
    used: set[Path] = {info.path.resolve()}
    times, chans, versions = [], [], set()
    all_ordered = True
    for row in info.channels:
        data_path = _data_path(info, row, paths, notes)
        used.add(data_path.resolve())
        ticks, stats = decode_data_file(data_path, chunk_records)
        versions.add(stats["version"])
        notes += stats["notes"]
        _check_counts(data_path, row, stats, notes)
        if not is_time_ordered(ticks):
            all_ordered = False
            notes.append(f"{data_path.name}: {int(np.count_nonzero(ticks[1:] < ticks[:-1]))} "
                         "steps back in time within this channel's file (PHAST never writes that)")
        times.append(ticks_to_ps(ticks, unit_ps, str(data_path)))
        chans.append(np.full(ticks.size, row["ChannelID"], np.int16))
        row["decoded"] = {k: v for k, v in stats.items() if k != "notes"}
    extra = [str(p) for p in paths if p.resolve() not in used]
    if extra:
        raise FormatError(f"{', '.join(extra)}: not part of the SSTT data set {info.path} "
                          f"(its channels {[r['ChannelID'] for r in info.channels]}); allowed: "
                          "the info file and its own data files")
    t = np.concatenate(times)
    c = np.concatenate(chans)
    order = np.argsort(t, kind="stable")
    sync_channel, sync_divider = _sync(info, notes)
    version = max(versions) if len(versions) == 1 else 2
    name = f"SSTT v{version}" + (" (v1 data files)" if versions == {1} and info.version == 2 else "")
    if versions == {1, 2}:
        name = "SSTT v2 (v1 and v2 data files)"
    header: dict[str, Any] = {"info_file": info.path.name, "info_version": info.version,
                              "experiment": dict(info.experiment), "channels": info.channels}
    return T2Records(timestamps_ps=t[order], channels=c[order], sync_channel=sync_channel,
                     time_unit_s=float(unit_ps) * 1e-12, sync_divider=sync_divider,
                     header=header, notes=notes, format_name=name, sorted=all_ordered)


def _data_path(info: SsttInfo, row: dict[str, Any], given: list[Path], notes: list[str]) -> Path:
    candidates = data_file_candidates(info, row, given)
    for candidate in candidates:
        if candidate.is_file():
            if row.get("Filename") and candidate.name != Path(row["Filename"]).name:
                notes.append(f"channel {row['ChannelID']}: {row['Filename']} (Filename column) "
                             f"is missing; read {candidate.name}")
            return candidate
    raise FormatError(f"{info.path}: data file of channel {row['ChannelID']} missing: looked for "
                      f"{', '.join(map(str, candidates))}; allowed: <info file>.c<ChannelID> "
                      "beside the info file")


def decode_data_file(path: Path, chunk_records: int = DEFAULT_CHUNK_RECORDS) -> tuple[np.ndarray, dict]:
    """Photon times (int64 device units, file order) of one SSTT data file, and what was counted.

    The stats dict: version, photons, overflow_events, wraps, reserved_events,
    file_bytes, notes (list of str).
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(len(V2_HEADER))
    except OSError as exc:
        raise FormatError(f"{path}: cannot read SSTT data file ({exc.strerror or exc})") from exc
    if head[:6] == V2_HEADER[:6]:
        return _decode_v2(path, size, head, chunk_records)
    if size % V1_EVENT_BYTES == 0 and size > 0:
        return _decode_v1(path, size, chunk_records)
    raise FormatError(f"{path}: first bytes are {head[:6]!r}; allowed: an SSTT v2 data file "
                      f"(starting {V2_HEADER[:6]!r}) or an SSTT v1 file of 8-byte events "
                      f"(length {size} is not a multiple of 8)")


def _decode_v2(path: Path, size: int, head: bytes, chunk: int) -> tuple[np.ndarray, dict]:
    notes: list[str] = []
    if head != V2_HEADER:
        notes.append(f"{path.name}: header bytes 6-17 are {head[6:].hex(' ')}, not 12 x ff: ignored")
    n_events, tail = divmod(size - len(V2_HEADER), V2_EVENT.itemsize)
    if tail:
        notes.append(f"{path.name}: ends with {tail} bytes that are not a whole 6-byte event "
                     f"(truncated write?): read the {n_events} whole events, ignored the partial one")
    parts, wraps, counts = [], 0, {"overflow_events": 0, "reserved_events": 0}
    with open(path, "rb") as fh:
        fh.seek(len(V2_HEADER))
        done = 0
        while done < n_events:
            ev = np.fromfile(fh, dtype=V2_EVENT, count=min(chunk, n_events - done))
            if ev.size == 0:
                raise FormatError(f"{path}: file shrank while reading: {done} of {n_events} events")
            value = ev["lo"].astype(np.uint64) | (ev["hi"].astype(np.uint64) << np.uint64(32))
            t, wraps = v2_photon_ticks(value, wraps, counts, f"{path}: event {done}+")
            parts.append(t)
            done += ev.size
    ticks = np.concatenate(parts) if parts else np.empty(0, np.int64)
    if counts["reserved_events"]:
        notes.append(f"{path.name}: {counts['reserved_events']} events with the reserved bit 1 "
                     "set: ignored")
    return ticks, {"version": 2, "photons": int(ticks.size), "wraps": wraps, "file_bytes": size,
                   **counts, "notes": notes}


def v2_photon_ticks(value: np.ndarray, wraps: int, counts: dict[str, int],
                    where: str) -> tuple[np.ndarray, int]:
    """Photon times (int64 device units) of v2 events (uint64 words), and the wrap count after.

    ``wraps``: 2^46 wraps before these events (carried from the previous chunk).
    ``counts``: overflow_events and reserved_events are added to it.
    """
    flags = value & np.uint64(3)
    payload = (value >> np.uint64(2)).astype(np.int64)
    is_overflow = flags == 1
    is_photon = flags == 0
    counts["overflow_events"] += int(np.count_nonzero(is_overflow))
    counts["reserved_events"] += int(np.count_nonzero(flags >= 2))
    added = np.where(is_overflow, payload, 0)
    if added.size and int(added.max()) >= 1 << 17:
        raise FormatError(f"{where}: an overflow event of {int(added.max())} wraps; allowed: "
                          f"times below 2^63 device units (< 2^17 wraps of 2^{V2_WRAP_BITS})")
    total = wraps + np.cumsum(added)
    if total.size and int(total[-1]) >= 1 << 17:
        raise FormatError(f"{where}: {int(total[-1])} wraps of 2^{V2_WRAP_BITS}: times beyond "
                          "2^63 device units; allowed: fewer than 2^17 wraps")
    ticks = (total[is_photon] << np.int64(V2_WRAP_BITS)) + payload[is_photon]
    return ticks, int(total[-1]) if total.size else wraps


def _decode_v1(path: Path, size: int, chunk: int) -> tuple[np.ndarray, dict]:
    parts, wraps, counts = [], 0, {"overflow_events": 0, "reserved_events": 0}
    n_events = size // V1_EVENT_BYTES
    with open(path, "rb") as fh:
        done = 0
        while done < n_events:
            value = np.fromfile(fh, dtype="<u8", count=min(chunk, n_events - done))
            if value.size == 0:
                raise FormatError(f"{path}: file shrank while reading: {done} of {n_events} events")
            flags = value & np.uint64(3)
            is_overflow, is_photon = flags == 1, flags == 0
            counts["overflow_events"] += int(np.count_nonzero(is_overflow))
            counts["reserved_events"] += int(np.count_nonzero(flags >= 2))
            if counts["reserved_events"] * 100 > done + value.size:
                raise FormatError(
                    f"{path}: no SSTT2 header and {counts['reserved_events']} of the first "
                    f"{done + value.size} 8-byte events have the reserved bit 1 set: not an SSTT v1 "
                    "file either; allowed: SSTT v2 (header 'SSTT2\\0') or v1 data files")
            micro = (value >> np.uint64(2)) & np.uint64((1 << 34) - 1)
            if np.any(micro[is_photon]):
                raise FormatError(
                    f"{path}: SSTT v1 data file with microtimes (delays after the laser pulse) "
                    "that labctl import cannot store yet (it keeps absolute times only); allowed: "
                    "SSTT v2, or v1 files without microtimes")
            added = np.where(is_overflow, (value >> np.uint64(2)), np.uint64(0)).astype(np.int64)
            if added.size and int(added.max()) >= 1 << 34:
                raise FormatError(f"{path}: an overflow event of {int(added.max())} wraps of "
                                  f"2^{V1_WRAP_BITS}: beyond int64; allowed: < 2^34 wraps")
            total = wraps + np.cumsum(added)
            if total.size and int(total[-1]) >= 1 << 34:
                raise FormatError(f"{path}: {int(total[-1])} wraps of 2^{V1_WRAP_BITS}: beyond "
                                  "int64; allowed: < 2^34 wraps")
            macro = (value[is_photon] >> np.uint64(36)).astype(np.int64)
            parts.append((total[is_photon] << np.int64(V1_WRAP_BITS)) + macro)
            wraps = int(total[-1])
            done += value.size
    ticks = np.concatenate(parts) if parts else np.empty(0, np.int64)
    notes = [f"{path.name}: SSTT v1 data file (no SSTT2 header; 8-byte events)"]
    return ticks, {"version": 1, "photons": int(ticks.size), "wraps": wraps, "file_bytes": size,
                   **counts, "notes": notes}


def _check_counts(path: Path, row: dict[str, Any], stats: dict, notes: list[str]) -> None:
    """Note where the info file's counts disagree with the data file (the file is trusted)."""
    for column, key, what in (("NumPhotons", "photons", "photons"),
                              ("NumOverflows", "wraps", "overflow wraps"),
                              ("Filesize", "file_bytes", "bytes")):
        if column in row and row[column] != stats[key]:
            notes.append(f"{path.name}: the info file says {column} = {row[column]}, the data file "
                         f"holds {stats[key]} {what}: using the data file")


def _sync(info: SsttInfo, notes: list[str]) -> tuple[int | None, int]:
    """(sync channel, total sync divider) from IsPulsesChannel / CorrespondingPulsesChannel."""
    pulses = [r for r in info.channels if r.get("IsPulsesChannel")]
    if len(pulses) > 1:
        wanted = {r.get("CorrespondingPulsesChannel") for r in info.channels
                  if r.get("HasPulsesChannel") and not r.get("IsPulsesChannel")}
        chosen = [r for r in pulses if r["ChannelID"] in wanted]
        if len(chosen) != 1:
            notes.append(f"several pulses channels {[r['ChannelID'] for r in pulses]} and no single "
                         "one the photon channels refer to: no sync channel chosen (give one)")
            return None, 1
        notes.append(f"several pulses channels {[r['ChannelID'] for r in pulses]}: channel "
                     f"{chosen[0]['ChannelID']} is the one the photon channels refer to")
        pulses = chosen
    if not pulses:
        return None, 1
    sync = pulses[0]
    product = sync.get("HardwareSyncDivider", 1) * sync.get("AdditionalSyncDivider", 1)
    divider = sync.get("TotalSyncDivider", product)
    if divider != product:
        notes.append(f"channel {sync['ChannelID']}: TotalSyncDivider {divider} is not "
                     f"HardwareSyncDivider x AdditionalSyncDivider = {product}: using {divider}")
    if divider < 1:
        raise FormatError(f"{info.path}: channel {sync['ChannelID']}: TotalSyncDivider = {divider}; "
                          "allowed: >= 1")
    for r in info.channels:
        ref = r.get("CorrespondingPulsesChannel")
        if r.get("HasPulsesChannel") and ref != sync["ChannelID"]:
            notes.append(f"channel {r['ChannelID']} refers to pulses channel {ref}, but the sync "
                         f"channel is {sync['ChannelID']}")
    return int(sync["ChannelID"]), int(divider)

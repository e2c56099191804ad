"""Vectorised decoding of PicoQuant's 32-bit TTTR records (PT2, PT3, HT2, HT3 layouts).

The same four record layouts are used in PTU files and in the legacy
PT2/PT3/HT2/HT3 files; only the header that says which one (and the wrap) differs.
Bit layouts (MSB -> LSB, PicoQuant's "apx_tttrrecords"):

=====  ===============================================================
PT2    channel 31-28 . timetag 27-0         (channel 15 = special)
PT3    channel 31-28 . dtime 27-16 . nsync 15-0   (channel 15 = special)
HT2    special 31 . channel 30-25 . timetag 24-0
HT3    special 31 . channel 30-25 . dtime 24-10 . nsync 9-0
=====  ===============================================================

Special records:

* PT2 channel 15: low 4 timetag bits 0 -> overflow (one wrap), else a marker
  whose channel is that 4-bit mask; the marker time keeps the mask bits
  (PicoQuant's demos; phconvert clears them).
* PT3 channel 15: dtime 0 -> overflow (one wrap), else marker, channel = dtime.
* HT2/HT3 special bit: channel 63 -> overflow; channels 1-15 -> marker (the
  bitmask); HT2 channel 0 -> the sync input's event.  With "counted"
  overflows (HydraHarp V2, TimeHarp 260, MultiHarp/Generic) the timetag
  (HT2) or nsync (HT3) field holds the number of wraps, 0 meaning one;
  HydraHarp V1 overflows are always one wrap.

Channel numbers are kept as stored (PT3 photons 1-4, HT inputs 0-based).
The HT2 sync event has no channel number of its own: it is given
``HT2_SYNC_CHANNEL`` = 64 (the special bit above the 6-bit channel field, as
phconvert numbers it), which no input can have.

State carried across chunks: the number of wraps seen so far, so decoding a
file in chunks of any size gives the same result as decoding it whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from labctl.formats.common import FormatError, T2Records, T3Records

HT2_SYNC_CHANNEL = 64
"""Channel number given to the HT2 sync events (special bit + channel 0)."""

LAYOUTS = ("PT2", "PT3", "HT2", "HT3")


@dataclass
class DecodedChunk:
    """One chunk of decoded records, in file order, overflows removed.

    ``times`` are in the file's time unit: T2 timetags (``timetag + wraps*wrap``)
    or T3 nsync counts (``nsync + wraps*wrap``).  ``dtime`` is empty for T2.
    """

    times: np.ndarray  # int64
    channels: np.ndarray  # int16
    dtime: np.ndarray  # int64 (T3 photons), empty for T2
    marker_times: np.ndarray  # int64
    marker_channels: np.ndarray  # int16
    n_overflow_records: int = 0
    n_unknown_records: int = 0
    end_time: int = 0  # time of the chunk's last record (overflows included), file units
    unknown_examples: list[int] = field(default_factory=list)


class RecordDecoder:
    """Decode uint32 records chunk by chunk, carrying the wrap count.

    Args:
        layout: "PT2", "PT3", "HT2" or "HT3".
        wrap: time units added per overflow (e.g. 33554432 for HydraHarp V2 T2).
        counted_overflows: the overflow record holds its number of wraps
            (HT layouts except HydraHarp V1); ignored for PT layouts.
    """

    def __init__(self, layout: str, wrap: int, counted_overflows: bool) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"RecordDecoder.layout = {layout!r}: must be one of {LAYOUTS}")
        self.layout = layout
        self.wrap = int(wrap)
        self.counted = bool(counted_overflows) and layout.startswith("HT")
        self.wraps = 0  # wraps before the next record
        self.records_done = 0

    @property
    def t3(self) -> bool:
        return self.layout.endswith("3")

    def decode(self, raw: np.ndarray) -> DecodedChunk:
        """Decode the next ``raw`` records (uint32, file order)."""
        raw = np.asarray(raw, dtype="<u4")
        if self.layout == "PT2":
            out = self._pt(raw, t3=False)
        elif self.layout == "PT3":
            out = self._pt(raw, t3=True)
        else:
            out = self._ht(raw)
        self.records_done += raw.size
        return out

    # -- helpers --------------------------------------------------------------------
    def _unwrap(self, field_: np.ndarray, overflow: np.ndarray, count: np.ndarray | None) -> tuple[np.ndarray, int]:
        """``field + wrap * (wraps so far, this record's own overflow included)`` (int64), and the
        time of the chunk's last record (an overflow record's time is its wrap boundary)."""
        if count is None:
            inc = overflow.astype(np.int64)
        else:
            inc = np.where(overflow, np.maximum(count.astype(np.int64), 1), 0)
        cum = np.cumsum(inc, dtype=np.int64)
        cum += self.wraps
        times = field_.astype(np.int64) + cum * self.wrap
        if cum.size == 0:
            return times, self.wraps * self.wrap
        self.wraps = int(cum[-1])
        end = self.wraps * self.wrap if overflow[-1] else int(times[-1])
        return times, end

    def _finish(self, times: np.ndarray, channels: np.ndarray, dtime: np.ndarray | None, photon: np.ndarray,
                marker: np.ndarray, marker_channels: np.ndarray, overflow: np.ndarray, end: int,
                raw: np.ndarray) -> DecodedChunk:
        unknown = ~(photon | marker | overflow)
        n_unknown = int(np.count_nonzero(unknown))
        return DecodedChunk(
            times=times[photon],
            channels=channels[photon].astype(np.int16),
            dtime=(dtime[photon].astype(np.int64) if dtime is not None else np.empty(0, np.int64)),
            marker_times=times[marker],
            marker_channels=marker_channels[marker].astype(np.int16),
            n_overflow_records=int(np.count_nonzero(overflow)),
            n_unknown_records=n_unknown,
            end_time=end,
            unknown_examples=[int(x) for x in raw[unknown][:3]],
        )

    def _pt(self, raw: np.ndarray, t3: bool) -> DecodedChunk:
        channel = (raw >> 28).astype(np.int16)
        special = channel == 15
        if t3:
            dtime = ((raw >> 16) & 0xFFF).astype(np.int64)
            field_ = raw & 0xFFFF
            mask = dtime
            overflow = special & (dtime == 0)
            photon = ~special & (channel >= 1) & (channel <= 4)
        else:
            dtime = None
            field_ = raw & 0x0FFFFFFF
            mask = (raw & 0xF).astype(np.int64)
            overflow = special & (mask == 0)
            photon = ~special & (channel <= 4)
        marker = special & ~overflow
        times, end = self._unwrap(field_, overflow, None)
        return self._finish(times, channel, dtime, photon, marker, mask, overflow, end, raw)

    def _ht(self, raw: np.ndarray) -> DecodedChunk:
        special = (raw >> 31).astype(bool)
        channel = ((raw >> 25) & 0x3F).astype(np.int16)
        overflow = special & (channel == 63)
        marker = special & (channel >= 1) & (channel <= 15)
        if self.layout == "HT3":
            dtime = ((raw >> 10) & 0x7FFF).astype(np.int64)
            field_ = raw & 0x3FF
            photon = ~special
        else:
            dtime = None
            field_ = raw & 0x1FFFFFF
            sync = special & (channel == 0)
            channel = np.where(sync, np.int16(HT2_SYNC_CHANNEL), channel)
            photon = ~special | sync
        times, end = self._unwrap(field_, overflow, field_ if self.counted else None)
        return self._finish(times, channel, dtime, photon, marker, channel, overflow, end, raw)


# --- a PicoQuant file: header facts + chunked decoding -------------------------------------
@dataclass
class PicoQuantSource:
    """What a header parser found, and the means to decode the records in chunks.

    Attributes:
        path: the file.
        format_name: e.g. ``"PTU HydraHarp V2 T2"``, ``"HT2 v2.0"``.
        layout, wrap, counted_overflows: passed to ``RecordDecoder``.
        data_offset: byte offset of the first record.
        header_records: record count the header states (-1 = none).
        time_unit_s: T2 timetag unit (s); for T3 the sync period (s).
        resolution_s: T3 dtime bin (s); 0 for T2.
        sync_channel: T2 channel of the sync events (HT2: ``HT2_SYNC_CHANNEL``), None if the
            format has no sync event.
        sync_divider, sync_rate_hz, duration_s: header values (divider 1, None if absent).
        header: JSON-serialisable header values; notes: what the parser noticed.
        software, software_version, file_time: the creator, for ``/provenance``.
    """

    path: str
    format_name: str
    layout: str
    wrap: int
    counted_overflows: bool
    data_offset: int
    header_records: int
    time_unit_s: float
    resolution_s: float = 0.0
    sync_channel: int | None = None
    sync_divider: int = 1
    sync_rate_hz: float | None = None
    duration_s: float | None = None
    header: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    software: str = ""
    software_version: str = ""
    file_time: str = ""
    n_records: int = 0  # records that will be read (set by check_length)
    stats: dict = field(default_factory=dict)

    @property
    def t3(self) -> bool:
        return self.layout.endswith("3")

    def check_length(self, file_size: int) -> None:
        """Set ``n_records`` from the file length and the header count (the file wins); note disagreements.

        Raises:
            FormatError: the header points past the end of the file.
        """

        if self.data_offset > file_size:
            raise FormatError(f"{self.path}: {self.format_name} header ends at byte {self.data_offset}, "
                              f"past the end of the {file_size}-byte file: the file is truncated or not this format")
        available, tail = divmod(file_size - self.data_offset, 4)
        if tail:
            self.notes.append(f"the last {tail} bytes are not a whole 4-byte record: ignored")
        n = available
        if self.header_records > available:
            self.notes.append(f"the header says {self.header_records} records but the file holds {available} "
                              f"complete records after byte {self.data_offset}: read the {available} present")
        elif 0 <= self.header_records < available:
            n = self.header_records
            self.notes.append(f"the header says {self.header_records} records but the file has room for {available}: "
                              f"read the {self.header_records} the header counts, ignored the rest")
        elif self.header_records < 0:
            self.notes.append(f"the header states no record count: read the {available} records present")
        self.n_records = int(n)

    def iter_chunks(self, chunk_records: int = 1 << 20) -> Iterator[T2Records | T3Records]:
        """Decode the file in chunks of ``chunk_records`` records (read chunk by chunk, never whole).

        Yields ``T2Records`` or ``T3Records`` per chunk (header, notes and format filled);
        afterwards ``stats`` holds ``overflow_records``, ``unknown_records``, ``end_ps`` (time of
        the last record, overflows included) and ``records``.
        """
        if chunk_records < 1:
            raise ValueError(f"chunk_records = {chunk_records}: must be >= 1")
        decoder = RecordDecoder(self.layout, self.wrap, self.counted_overflows)
        unit_ps = self.time_unit_s * 1e12
        to_ps = _ps_converter(unit_ps)
        self.stats = {"records": self.n_records, "overflow_records": 0, "unknown_records": 0, "end_ps": 0,
                      "unknown_examples": []}
        if self.n_records == 0:  # one empty chunk, so a reader still gets the header's facts
            e64, e16 = np.empty(0, np.int64), np.empty(0, np.int16)
            yield self._chunk(DecodedChunk(e64, e16, e64, e64, e16), unit_ps, to_ps)
            return
        with open(self.path, "rb") as fh:  # read chunk by chunk: only one chunk is ever in memory
            fh.seek(self.data_offset)
            for start in range(0, self.n_records, chunk_records):
                raw = np.fromfile(fh, dtype="<u4", count=min(chunk_records, self.n_records - start))
                if raw.size == 0:
                    raise FormatError(f"{self.path}: ended before record {start} of {self.n_records} "
                                      f"(the file changed while it was read)")
                yield self._chunk(decoder.decode(raw), unit_ps, to_ps)

    def _chunk(self, d: DecodedChunk, unit_ps: float, to_ps: Callable[[np.ndarray], np.ndarray]) -> T2Records | T3Records:
        """One decoded chunk as records in ps (T2) or sync units (T3); updates ``stats``."""
        self.stats["overflow_records"] += d.n_overflow_records
        self.stats["unknown_records"] += d.n_unknown_records
        if len(self.stats["unknown_examples"]) < 3:
            self.stats["unknown_examples"] += [f"0x{x:08x}" for x in d.unknown_examples]
        common = dict(sync_divider=self.sync_divider, duration_s=self.duration_s, header=self.header,
                      notes=self.notes, format_name=self.format_name)
        if self.t3:
            self.stats["end_ps"] = int(np.rint(d.end_time * unit_ps))
            return T3Records(nsync=d.times, dtime=d.dtime, channels=d.channels, sync_period_s=self.time_unit_s,
                             resolution_s=self.resolution_s, marker_nsync=d.marker_times,
                             marker_channels=d.marker_channels, **common)
        self.stats["end_ps"] = int(to_ps(np.array([d.end_time], np.int64))[0])
        return T2Records(timestamps_ps=to_ps(d.times), channels=d.channels, sync_channel=self.sync_channel,
                         marker_timestamps_ps=to_ps(d.marker_times), marker_channels=d.marker_channels,
                         time_unit_s=self.time_unit_s, sync_rate_hz=self.sync_rate_hz, **common)

    def read(self) -> T2Records | T3Records:
        """The whole file as one ``T2Records``/``T3Records`` (for tests and small files)."""
        chunks = list(self.iter_chunks())
        first = chunks[0]
        cat = lambda name: np.concatenate([getattr(c, name) for c in chunks])  # noqa: E731
        if self.t3:
            first.nsync, first.dtime, first.channels = cat("nsync"), cat("dtime"), cat("channels")
            first.marker_nsync, first.marker_channels = cat("marker_nsync"), cat("marker_channels")
        else:
            first.timestamps_ps, first.channels = cat("timestamps_ps"), cat("channels")
            first.marker_timestamps_ps, first.marker_channels = cat("marker_timestamps_ps"), cat("marker_channels")
            first.sorted = bool(np.all(np.diff(first.timestamps_ps) >= 0))
        return first


def _ps_converter(unit_ps: float) -> Callable[[np.ndarray], np.ndarray]:
    """File time units -> int64 ps: an exact integer multiply when the unit is whole ps, else rint."""
    whole = round(unit_ps)
    if whole >= 1 and abs(unit_ps - whole) <= 1e-6 * unit_ps:
        return lambda t: np.asarray(t, np.int64) * np.int64(whole)
    return lambda t: np.rint(np.asarray(t, np.float64) * unit_ps).astype(np.int64)

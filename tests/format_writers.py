"""Test helper: WRITE PicoQuant PTU, PT2/PT3 and HT2/HT3 files from PicoQuant's published layouts.

Independent of labctl's decoders: headers are packed with ``struct`` from the
tables in PicoQuant's file-format documentation (PTU tag types and record
types; the legacy pt2demo.c/pt3demo.c structs; libpicoquant's hh_v20.h for
HydraHarp files), records are packed bit by bit from the record layouts:

    PT2  channel 31-28 | timetag 27-0          (channel 15: special)
    PT3  channel 31-28 | dtime 27-16 | nsync 15-0
    HT2  special 31 | channel 30-25 | timetag 24-0
    HT3  special 31 | channel 30-25 | dtime 24-10 | nsync 9-0

Events are given with their ABSOLUTE time in file units (T2 timetag units, T3
sync counts); the writer inserts the overflow records a real device would
write (one record per wrap, or one counted record for the "counted" types).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

# PTU record types: (layout, wrap, counted overflows)
PTU_REC_TYPES = {
    0x00010203: ("PT2", 210698240, False), 0x00010303: ("PT3", 65536, False),
    0x00010204: ("HT2", 33552000, False), 0x00010304: ("HT3", 1024, False),
    0x01010204: ("HT2", 33554432, True), 0x01010304: ("HT3", 1024, True),
    0x00010205: ("HT2", 33554432, True), 0x00010305: ("HT3", 1024, True),
    0x00010206: ("HT2", 33554432, True), 0x00010306: ("HT3", 1024, True),
    0x00010207: ("HT2", 33554432, True), 0x00010307: ("HT3", 1024, True),
}


@dataclass
class Events:
    """Events in file order.  kind: 0 photon, 1 marker (channel = bitmask), 2 HT2 sync.

    ``time``: T2 absolute timetag (units) / T3 absolute nsync; ``dtime`` for T3 photons.
    """

    time: np.ndarray
    kind: np.ndarray
    channel: np.ndarray
    dtime: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))


def encode(ev: Events, layout: str, wrap: int, counted: bool, zero_means_one: bool = False,
           start_wraps: int = 0) -> np.ndarray:
    """uint32 records of ``ev`` with overflow records inserted before each event that needs them.

    ``start_wraps``: wraps already written (to write a long file in pieces)."""
    t = np.asarray(ev.time, np.int64)
    k = t // wrap  # wraps needed before the event
    level = np.maximum.accumulate(k) if k.size else k  # a device never goes back in wraps
    dk = np.diff(level, prepend=start_wraps)
    if np.any(level != k):
        raise ValueError("events step back across a wrap boundary; the writer cannot encode that")
    max_count = (1 << 25) - 1 if layout == "HT2" else 1023
    n_ofl = np.where(dk > 0, 1, 0) if counted else dk
    if counted and np.any(dk > max_count):
        raise ValueError("too many wraps for one counted overflow record")
    field_ = t - k * wrap
    dtime = np.asarray(ev.dtime, np.int64) if ev.dtime.size else np.zeros_like(t)
    kind, ch = np.asarray(ev.kind), np.asarray(ev.channel, np.int64)
    if layout == "PT2":
        rec = np.where(kind == 1, (15 << 28) | (field_ & ~0xF) | ch, (ch << 28) | field_)
        ofl_word = np.full(t.size, 15 << 28, np.int64)
    elif layout == "PT3":
        rec = np.where(kind == 1, (15 << 28) | (ch << 16) | field_, (ch << 28) | (dtime << 16) | field_)
        ofl_word = np.full(t.size, 15 << 28, np.int64)
    elif layout == "HT2":
        special = (kind != 0).astype(np.int64)
        c = np.where(kind == 2, 0, ch)
        rec = (special << 31) | (c << 25) | field_
        count = np.where(dk == 1, 0 if zero_means_one else 1, dk) if counted else np.zeros_like(dk)
        ofl_word = (1 << 31) | (63 << 25) | count
    else:  # HT3
        special = (kind == 1).astype(np.int64)
        rec = (special << 31) | (ch << 25) | (np.where(kind == 1, 0, dtime) << 10) | field_
        count = np.where(dk == 1, 0 if zero_means_one else 1, dk) if counted else np.zeros_like(dk)
        ofl_word = (1 << 31) | (63 << 25) | count
    per_event = n_ofl + 1
    total = int(per_event.sum())
    out = np.empty(total, np.int64)
    event_pos = np.cumsum(per_event) - 1
    owner = np.repeat(np.arange(t.size), n_ofl)  # overflow records, grouped before their event
    ofl_pos = np.setdiff1d(np.arange(total), event_pos, assume_unique=True)
    out[event_pos] = rec
    out[ofl_pos] = ofl_word[owner]
    return out.astype("<u4")


# --- PTU --------------------------------------------------------------------------
_TY = {"Empty8": 0xFFFF0008, "Bool8": 0x00000008, "Int8": 0x10000008, "Float8": 0x20000008,
       "TDateTime": 0x21000008, "Float8Array": 0x2001FFFF, "AnsiString": 0x4001FFFF,
       "WideString": 0x4002FFFF, "BinaryBlob": 0xFFFFFFFF}


def _tag(ident: str, typ: str, value, idx: int = -1) -> bytes:
    head = struct.pack("<32siI", ident.encode("ascii"), idx, _TY[typ])
    if typ in ("Float8", "TDateTime"):
        return head + struct.pack("<d", value)
    if typ in ("Int8", "Bool8", "Empty8"):
        return head + struct.pack("<q", int(value))
    if typ == "AnsiString":
        payload = value.encode("latin-1") + b"\0"
    elif typ == "WideString":
        payload = value.encode("utf-16-le") + b"\0\0"
    elif typ == "Float8Array":
        payload = np.asarray(value, "<f8").tobytes()
    else:
        payload = bytes(value)
    payload += b"\0" * (-len(payload) % 8)
    return head + struct.pack("<q", len(payload)) + payload


def ptu_bytes(rec_type: int, records: np.ndarray, global_res_s: float, resolution_s: float = 0.0,
              sync_rate_hz: int = 0, header_records: int | None = None, sync_divider: int = 1,
              acq_ms: int = 1000, extra_tags: list[bytes] | None = None) -> bytes:
    """A PTU file: magic, tags (a bit of every tag type), Header_End, the records."""
    mode = 3 if PTU_REC_TYPES[rec_type][0].endswith("3") else 2
    tags = [
        _tag("File_GUID", "AnsiString", "{00000000-TEST-0000-0000-000000000000}"),
        _tag("File_CreatingTime", "TDateTime", 45000.5),
        _tag("File_Comment", "WideString", "written by tests/format_writers.py"),
        _tag("CreatorSW_Name", "AnsiString", "format_writers"),
        _tag("CreatorSW_Version", "AnsiString", "1.0"),
        _tag("Measurement_Mode", "Int8", mode),
        _tag("Measurement_SubMode", "Int8", 0),
        _tag("MeasDesc_AcquisitionTime", "Int8", acq_ms),
        _tag("MeasDesc_GlobalResolution", "Float8", global_res_s),
        _tag("MeasDesc_Resolution", "Float8", resolution_s or global_res_s),
        _tag("HWSync_Divider", "Int8", sync_divider),
        _tag("HWInpChan_CFDLevel", "Int8", 50, idx=0),
        _tag("HWInpChan_CFDLevel", "Int8", 60, idx=1),
        _tag("TTResult_SyncRate", "Int8", sync_rate_hz),
        _tag("TTResult_StopReason", "Int8", 0),
        _tag("TTResult_NumberOfRecords", "Int8", len(records) if header_records is None else header_records),
        _tag("TTResultFormat_TTTRRecType", "Int8", rec_type),
        _tag("TTResultFormat_BitsPerRecord", "Int8", 32),
        _tag("UsrHeadName", "Bool8", True),
        _tag("ChanHistogram", "Float8Array", [1.0, 2.0, 3.0]),
        _tag("ImgHdr_Blob", "BinaryBlob", b"\1\2\3"),
        *(extra_tags or []),
        _tag("Header_End", "Empty8", 0),
    ]
    return b"PQTTTR\0\0" + b"1.0.00\0\0" + b"".join(tags) + np.asarray(records, "<u4").tobytes()


# --- legacy PT2/PT3 (PicoHarp 300, format 2.0) --------------------------------------
def _text_header(ident: str, version: str, comment: str = "") -> bytearray:
    buf = bytearray(328)
    buf[0:16] = ident.encode().ljust(16, b"\0")
    buf[16:22] = version.encode().ljust(6, b"\0")
    buf[22:40] = b"format_writers".ljust(18, b"\0")
    buf[40:52] = b"1.0".ljust(12, b"\0")
    buf[52:70] = b"07/12/26 15:00:00".ljust(18, b"\0")
    buf[70:72] = b"\r\n"
    buf[72:328] = comment.encode().ljust(256, b"\0")
    return buf


def pt_bytes(t3: bool, records: np.ndarray, sync_rate_hz: int = 0, resolution_ns: float = 0.004,
             header_records: int | None = None, img_words: int = 0, sync_divider: int = 1) -> bytes:
    """A legacy PicoHarp PT2/PT3 file (pt2demo.c/pt3demo.c header structs, one board)."""
    buf = _text_header("PicoHarp 300", "2.0") + bytearray(728 - 328 + 4 * img_words)
    pack = lambda fmt, off, v: struct.pack_into(fmt, buf, off, v)  # noqa: E731
    pack("<i", 328, 1)  # Curves
    pack("<i", 332, 32)  # BitsPerRecord
    pack("<i", 336, 4)  # RoutingChannels
    pack("<i", 340, 1)  # NumberOfBoards
    pack("<i", 348, 3 if t3 else 2)  # MeasMode
    pack("<i", 364, 1000)  # Tacq ms
    buf[536:552] = b"PicoHarp 300".ljust(16, b"\0")
    pack("<i", 564, sync_divider)
    pack("<f", 584, resolution_ns)
    pack("<i", 704, sync_rate_hz)  # CntRate0
    pack("<i", 720, len(records) if header_records is None else header_records)
    pack("<i", 724, img_words)
    return bytes(buf) + np.asarray(records, "<u4").tobytes()


# --- legacy HT2/HT3 (HydraHarp 1.0 / 2.0) --------------------------------------------
def ht_bytes(t3: bool, version: str, records: np.ndarray, n_channels: int = 4, sync_rate_hz: int = 0,
             resolution_ps: float = 8.0, header_records: int | None = None, img_words: int = 0,
             sync_divider: int = 1) -> bytes:
    """A legacy HydraHarp HT2/HT3 file (libpicoquant hh_v20.h layout)."""
    b = 696 + 20 * n_channels
    buf = _text_header("HydraHarp", version) + bytearray(b + 24 + 4 * img_words - 328)
    pack = lambda fmt, off, v: struct.pack_into(fmt, buf, off, v)  # noqa: E731
    pack("<i", 328, 1)
    pack("<i", 332, 32)
    pack("<i", 340, 3 if t3 else 2)  # MeasurementMode
    pack("<i", 348, 3)  # Binning
    pack("<d", 352, resolution_ps)
    pack("<i", 364, 1000)  # Tacq ms
    buf[536:552] = b"HydraHarp 400".ljust(16, b"\0")
    pack("<d", 648, 1.0)  # BaseResolution ps
    pack("<i", 664, n_channels)
    pack("<i", 680, sync_divider)
    for i in range(n_channels):  # 16-byte channel settings, then the input rates
        struct.pack_into("<4i", buf, 696 + 16 * i, 0, 100, 10, 0)  # ModuleIdx, CFDLevel, CFDZeroCross, Offset
        pack("<i", 696 + 16 * n_channels + 4 * i, 1000 + i)
    pack("<i", b, sync_rate_hz)
    pack("<i", b + 12, img_words)
    pack("<q", b + 16, len(records) if header_records is None else header_records)
    return bytes(buf) + np.asarray(records, "<u4").tobytes()

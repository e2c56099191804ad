"""quTAG / quTAU time-tag files (qutools ``TDC_writeTimestamps``): BINARY, COMPRESSED, RAW.

Layouts (``../shared/reference/formats.md`` §4; qutools' ``tdcbase.h``; ETA's parser):

* BINARY: a 40-byte header whose bytes 0-3 are ``87 B3 91 FA`` (the rest is
  undocumented; in the qutools files we have seen, bytes 4-7 hold the file size
  as uint32), then packed 10-byte records: uint64 timestamp, uint16 channel.
* COMPRESSED: the same 40-byte header, then 5-byte records: bits 0-36 time,
  bits 37-39 channel.  The time is cut to 37 bits (no overflow records); it is
  unwrapped here (see ``unwrap_37bit``).  No markers or ticks are stored.
* RAW: BINARY records without the header.

The variant is found from the content: the magic says BINARY or COMPRESSED,
then the first records are read both ways and the one that makes sense wins
(BINARY: channels below 256, each channel's times not stepping back;
COMPRESSED: consecutive times close, not jumping back and forth); a file without
the magic is read as RAW only if its records make sense as BINARY records and
its length is a whole number of them.  ``variant=`` forces a variant.

Channels are the numbers as stored (0-based); 100 + n is marker input n and
104 the 1 ms tick: both go to the marker arrays, never to photons.  The time
unit is the device's timebase, which the file does not store: 1 ps on a quTAG
(the default), 81 ps on a quTAU (``time_unit_ps=81``).

Order: qutools write each channel in time order, but not the merged stream
(channel delays are applied at write, so it can step back by up to the delay
difference).  The returned arrays are always in time order (stable sort:
equal times keep file order); ``sorted`` says whether the file's own order was
(and ``notes`` says when it was not).  Events at t == 0 are kept (the format
does not reserve 0; PHAST's reader skips them, and its read loop relies on
that to drop the failed read at the end of the file) and counted in ``notes``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from labctl.formats.common import FormatError, T2Records
from labctl.formats.ticks import is_time_ordered, sort_by_time, ticks_to_ps

MAGIC = b"\x87\xb3\x91\xfa"
HEADER_BYTES = 40
BINARY_DTYPE = np.dtype([("t", "<u8"), ("ch", "<u2")])  # packed: itemsize 10
COMPRESSED_BYTES = 5
COMPRESSED_TIME_BITS = 37
COMPRESSED_WRAP = 1 << COMPRESSED_TIME_BITS
MARKER_CHANNEL_MIN = 100
VARIANTS = ("binary", "compressed", "raw")
DEFAULT_CHUNK_RECORDS = 4_000_000
PLAUSIBLE_SAMPLE_RECORDS = 4096
MAX_PLAUSIBLE_CHANNEL = 255
MAX_STEP_BACK_FRACTION = 0.05
MAX_JUMP_FRACTION = 0.2
MIN_STATISTICS_RECORDS = 16


def read_qutag(path: Path, *, variant: str | None = None, time_unit_ps: int = 1,
               chunk_records: int = DEFAULT_CHUNK_RECORDS) -> T2Records:
    """Decode a quTAG BINARY, COMPRESSED or RAW file into ``T2Records`` (times in int64 ps).

    Args:
        path: the file.
        variant: ``"binary"``, ``"compressed"`` or ``"raw"``; None finds it from the content.
        time_unit_ps: the device timebase in ps (quTAG 1, quTAU 81); not stored in the file.
        chunk_records: records decoded per step (bounds the temporary memory; the
            result does not depend on it).

    Returns photons and markers in time order (``sorted``: whether the file's
    order already was).  ``sync_channel`` is None: quTAG files record no roles.
    Raises ``FormatError`` (naming the file, what was found, what is allowed).
    """
    path = Path(path)
    if variant is not None and variant not in VARIANTS:
        raise ValueError(f"variant = {variant!r}: allowed {', '.join(VARIANTS)} or None (detect)")
    if not isinstance(time_unit_ps, (int, np.integer)) or time_unit_ps < 1:
        raise ValueError(f"time_unit_ps = {time_unit_ps!r}: allowed a whole number of ps >= 1 "
                         "(quTAG 1, quTAU 81)")
    if chunk_records < 1:
        raise ValueError(f"chunk_records = {chunk_records!r}: allowed >= 1")
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(HEADER_BYTES + PLAUSIBLE_SAMPLE_RECORDS * BINARY_DTYPE.itemsize)
    except OSError as exc:
        raise FormatError(f"{path}: cannot read quTAG file ({exc.strerror or exc})") from exc
    notes: list[str] = []
    if variant is None:
        variant = detect_variant(path, head, size, notes)
    offset = 0 if variant == "raw" else HEADER_BYTES
    if variant != "raw" and size < HEADER_BYTES:
        raise FormatError(f"{path}: {size} bytes, shorter than the 40-byte quTAG header")
    if variant != "raw" and head[:4] != MAGIC:
        notes.append(f"bytes 0-3 are {head[:4].hex(' ')}, not the quTAG magic 87 b3 91 fa; "
                     f"read as {variant.upper()} because it was asked for")
    record_bytes = COMPRESSED_BYTES if variant == "compressed" else BINARY_DTYPE.itemsize
    n_records, tail = divmod(size - offset, record_bytes)
    if tail:
        notes.append(f"the file ends with {tail} bytes that are not a whole {record_bytes}-byte "
                     f"record (truncated write?): read the {n_records} whole records, "
                     "ignored the partial one")
    header = {"variant": variant, "header_hex": head[:offset].hex(), "file_bytes": size,
              "records": int(n_records)}
    if offset and len(head) >= 8:
        stated = int.from_bytes(head[4:8], "little")
        header["header_bytes_4_7"] = stated
        if stated != size % 2**32:
            notes.append(f"header bytes 4-7 say {stated} (the file size, in the qutools files we "
                         f"have seen), the file has {size} bytes: trusting the file")
    if variant == "compressed":
        times, chans = _decode_compressed(path, n_records, chunk_records, notes)
    else:
        times, chans = _decode_binary(path, offset, n_records, chunk_records)
    return _records(path, variant, times, chans, int(time_unit_ps), header, notes)


def detect_variant(path: Path, head: bytes, size: int, notes: list[str]) -> str:
    """``"binary"``, ``"compressed"`` or ``"raw"`` from the first bytes; ``FormatError`` if none fits."""
    if head[:4] == MAGIC:
        body = head[HEADER_BYTES:]
        why_not_binary = binary_implausible(body)
        why_not_compressed = compressed_implausible(body)
        if why_not_binary is None and why_not_compressed is not None:
            return "binary"
        if why_not_compressed is None and why_not_binary is not None:
            return "compressed"
        if why_not_binary is None:  # both fit: in practice, only files too short to judge
            fits_binary = (size - HEADER_BYTES) % BINARY_DTYPE.itemsize == 0
            guess = "binary" if fits_binary else "compressed"
            why = ("the length is a whole number of 10-byte records" if fits_binary
                   else "the length is not a whole number of 10-byte records")
            if len(body):
                notes.append(f"the first {len(body)} bytes of records make sense both as BINARY and "
                             f"as COMPRESSED; read as {guess.upper()} because {why}; pass variant= "
                             "if that is wrong")
            return guess
        raise FormatError(
            f"{path}: quTAG header found, but the records are neither BINARY ({why_not_binary}) "
            f"nor COMPRESSED ({why_not_compressed}); allowed: qutools BINARY (10-byte records) "
            "or COMPRESSED (5-byte records)")
    why_not_raw = binary_implausible(head)
    if size > 0 and size % BINARY_DTYPE.itemsize == 0 and why_not_raw is None:
        notes.append(f"no quTAG header (bytes 0-3 are {head[:4].hex(' ')}, not 87 b3 91 fa): read "
                     "as RAW (BINARY records without header) because the first records are "
                     "valid BINARY records and the length is a whole number of them")
        return "raw"
    reason = why_not_raw or f"length {size} bytes is not a whole number of 10-byte records"
    raise FormatError(
        f"{path}: not a quTAG file: bytes 0-3 are {head[:4].hex(' ')}, BINARY and COMPRESSED files "
        f"start with 87 b3 91 fa; not RAW either ({reason}); pass variant='raw' to force RAW")


def binary_implausible(body: bytes) -> str | None:
    """Why these bytes are not BINARY records (first records only), or None if they can be."""
    n = min(len(body) // BINARY_DTYPE.itemsize, PLAUSIBLE_SAMPLE_RECORDS)
    rec = np.frombuffer(body, dtype=BINARY_DTYPE, count=n)
    if n == 0:
        return None
    if int(rec["ch"].max()) > MAX_PLAUSIBLE_CHANNEL:
        return f"channel field {int(rec['ch'].max())} > {MAX_PLAUSIBLE_CHANNEL}"
    if int(rec["t"].max()) >= 2**62:
        return f"timestamp {int(rec['t'].max())} >= 2^62"
    back = _per_channel_step_backs(rec["t"].astype(np.int64), rec["ch"])
    if n >= MIN_STATISTICS_RECORDS and back > MAX_STEP_BACK_FRACTION * n:
        return f"{back} of the first {n} records step back in time within their channel"
    return None


def compressed_implausible(body: bytes) -> str | None:
    """Why these bytes are not COMPRESSED records (first records only), or None if they can be.

    In a COMPRESSED stream consecutive events are close in time: few steps back,
    few wraps.  BINARY bytes read as 5-byte records alternate between the low
    and the high half of each timestamp, so nearly every step is a jump.
    """
    n = min(len(body) // COMPRESSED_BYTES, PLAUSIBLE_SAMPLE_RECORDS)
    if n < MIN_STATISTICS_RECORDS:  # too few to judge by time steps
        return None
    times, _ = split_compressed(np.frombuffer(body, np.uint8, n * COMPRESSED_BYTES))
    step = np.diff(times)
    odd = int(np.count_nonzero((step < 0) | (step > COMPRESSED_WRAP // 2)))
    if odd > MAX_JUMP_FRACTION * (n - 1):
        return f"{odd} of the first {n - 1} steps between records go back in time or jump a half wrap"
    return None


def _per_channel_step_backs(times: np.ndarray, chans: np.ndarray) -> int:
    """How many events are earlier than the previous event of the same channel."""
    order = np.argsort(chans, kind="stable")
    t, c = times[order], chans[order]
    return int(np.count_nonzero((t[1:] < t[:-1]) & (c[1:] == c[:-1])))


def split_compressed(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(37-bit times int64, channels int16) of COMPRESSED records given as uint8 bytes (n*5)."""
    n = raw.size // COMPRESSED_BYTES
    words = np.zeros((n, 8), np.uint8)
    words[:, :COMPRESSED_BYTES] = raw[: n * COMPRESSED_BYTES].reshape(n, COMPRESSED_BYTES)
    value = words.view("<u8").ravel()
    times = (value & np.uint64(COMPRESSED_WRAP - 1)).astype(np.int64)
    chans = (value >> np.uint64(COMPRESSED_TIME_BITS)).astype(np.int16)
    return times, chans


def unwrap_37bit(times: np.ndarray, previous: int | None, wraps: int) -> tuple[np.ndarray, int, int]:
    """Unwrap 37-bit times: (times + 2^37 x wraps so far, last raw time, wrap count after).

    A step of more than 2^36 down is a wrap; a step of more than 2^36 up is a
    step back across a wrap (the merged stream can step back, e.g. a delayed
    channel's event written after the counter wrapped), so it counts -1.
    Needs at least one event every 2^36 units (68.7 s at 1 ps): a longer gap
    loses whole wraps, which the file cannot show.  ``previous``/``wraps``
    carry the state from the chunk before (None, 0 at the start).
    """
    if times.size == 0:
        return times.copy(), previous, wraps
    before = np.empty_like(times)
    before[0] = times[0] if previous is None else previous
    before[1:] = times[:-1]
    step = times - before
    half = COMPRESSED_WRAP // 2
    turns = (step < -half).astype(np.int64) - (step > half).astype(np.int64)
    count = wraps + np.cumsum(turns)
    return times + count * np.int64(COMPRESSED_WRAP), int(times[-1]), int(count[-1])


def _decode_binary(path: Path, offset: int, n_records: int,
                   chunk: int) -> tuple[np.ndarray, np.ndarray]:
    times, chans = [], []
    with open(path, "rb") as fh:
        fh.seek(offset)
        done = 0
        while done < n_records:
            rec = np.fromfile(fh, dtype=BINARY_DTYPE, count=min(chunk, n_records - done))
            if rec.size == 0:
                raise FormatError(f"{path}: file shrank while reading: {done} of {n_records} records")
            t = rec["t"]
            if rec.size and int(t.max()) > np.iinfo(np.int64).max:
                bad = done + int(np.argmax(t > np.uint64(np.iinfo(np.int64).max)))
                raise FormatError(f"{path}: record {bad} has timestamp {int(t[bad - done])} >= 2^63; "
                                  "allowed: timestamps below 2^63 device units")
            c = rec["ch"]
            if rec.size and int(c.max()) > np.iinfo(np.int16).max:
                bad = done + int(np.argmax(c > np.iinfo(np.int16).max))
                raise FormatError(f"{path}: record {bad} has channel {int(c[bad - done])}; "
                                  "allowed: channels 0-32767 (inputs 0.., markers 100+n, tick 104)")
            times.append(t.astype(np.int64))
            chans.append(c.astype(np.int16))
            done += rec.size
    return _join(times, np.int64), _join(chans, np.int16)


def _decode_compressed(path: Path, n_records: int, chunk: int,
                       notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    times, chans = [], []
    previous, wraps, longest_gap = None, 0, 0
    with open(path, "rb") as fh:
        fh.seek(HEADER_BYTES)
        done = 0
        while done < n_records:
            k = min(chunk, n_records - done)
            raw = np.fromfile(fh, dtype=np.uint8, count=k * COMPRESSED_BYTES)
            if raw.size < k * COMPRESSED_BYTES:
                raise FormatError(f"{path}: file shrank while reading: {done} of {n_records} records")
            t37, c = split_compressed(raw)
            last_before = None if previous is None else previous + (wraps * COMPRESSED_WRAP)
            t, previous, wraps = unwrap_37bit(t37, previous, wraps)
            if t.size > 1:
                longest_gap = max(longest_gap, int(np.abs(np.diff(t)).max()))
            if last_before is not None:
                longest_gap = max(longest_gap, abs(int(t[0]) - last_before))
            times.append(t)
            chans.append(c)
            done += k
    t_all = _join(times, np.int64)
    if t_all.size and int(t_all.min()) < 0:  # the first events stepped back across a wrap
        t_all += np.int64(COMPRESSED_WRAP) * np.int64(-(int(t_all.min()) // COMPRESSED_WRAP))
    n_wraps = 0 if t_all.size == 0 else int(t_all.max()) // COMPRESSED_WRAP
    notes.append(
        f"COMPRESSED stores times modulo 2^37 units (no overflow records): unwrapped {n_wraps} "
        "wraps assuming consecutive events are less than 2^36 units apart (68.7 s at 1 ps); "
        f"the largest step between consecutive events is {longest_gap} units; the absolute start "
        "time is not stored (the first event's time is its 37-bit value)")
    if longest_gap > COMPRESSED_WRAP // 4:
        notes.append(f"a step of {longest_gap} units between consecutive events is more than a "
                     "quarter of the 2^37 wrap: a gap longer than a wrap there could not be seen")
    return t_all, _join(chans, np.int16)


def _join(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.empty(0, dtype)


def _records(path: Path, variant: str, ticks: np.ndarray, chans: np.ndarray, unit_ps: int,
             header: dict, notes: list[str]) -> T2Records:
    file_ordered = is_time_ordered(ticks)
    zeros = int(np.count_nonzero(ticks == 0))
    if zeros:
        notes.append(f"{zeros} events at t = 0 kept (PHAST's reader drops them)")
    times_ps = ticks_to_ps(ticks, unit_ps, str(path))
    is_marker = chans >= MARKER_CHANNEL_MIN
    t, c = sort_by_time(times_ps[~is_marker], chans[~is_marker])
    mt, mc = sort_by_time(times_ps[is_marker], chans[is_marker])
    if not file_ordered:
        steps = int(np.count_nonzero(ticks[1:] < ticks[:-1]))
        notes.append(f"the merged stream is not in time order ({steps} steps back): sorted by "
                     "time, stably")
    name = {"binary": "quTAG BINARY", "compressed": "quTAG COMPRESSED", "raw": "quTAG RAW"}[variant]
    return T2Records(timestamps_ps=t, channels=c, sync_channel=None, marker_timestamps_ps=mt,
                     marker_channels=mc, time_unit_s=unit_ps * 1e-12, sync_divider=1,
                     header=header, notes=notes, format_name=name, sorted=file_ordered)

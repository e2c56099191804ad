"""Test writers of quTAG and SSTT files, from the published layouts, independent of labctl's decoders.

Per record with ``struct`` / ``int.to_bytes`` (slow, small files only):

* quTAG BINARY (qutools ``tdcbase.h``: "40B header, 10B/time tag"; ETA's parser):
  40-byte header = 87 B3 91 FA, uint32 file size (as in the qutools files
  seen), zeros; records ``<QH`` (uint64 time, uint16 channel).  RAW: records only.
* quTAG COMPRESSED ("40B header, 5B/time tag"; ETA: bits 0-36 time, 37-39
  channel): 5 little-endian bytes of ``(t mod 2^37) | channel << 37``.
* SSTT v2 (PHAST ``small_tcspc_io2.cpp`` and ``writer_coord.cpp``): the same
  write logic as PHAST (an overflow event carrying the number of 2^46 wraps
  before a photon that needs it), the same info-file text (``%.15e`` unit,
  quoted file names, rows ending in a tab).  SSTT v1 (``small_tcspc_io.cpp``).
"""

from __future__ import annotations

import struct
from pathlib import Path

QUTAG_MAGIC = bytes([0x87, 0xB3, 0x91, 0xFA])
SSTT2_HEADER = b"SSTT2\0" + b"\xff" * 12
SSTT_COLUMNS = ("ChannelID", "Filename", "NumPhotons", "NumOverflows", "Filesize",
                "HardwareSyncDivider", "AdditionalSyncDivider", "TotalSyncDivider",
                "IsPulsesChannel", "HasPulsesChannel", "CorrespondingPulsesChannel")


def qutag_header(file_size: int) -> bytes:
    """The 40-byte header: magic, file size (uint32), zeros for the undocumented rest."""
    return QUTAG_MAGIC + struct.pack("<I", file_size % 2**32) + bytes(32)


def write_qutag_binary(path: Path, times: list[int], channels: list[int], *,
                       header: bool = True, tail: bytes = b"") -> Path:
    """BINARY (or RAW with ``header=False``) file of the events in the order given."""
    body = b"".join(struct.pack("<QH", t, c) for t, c in zip(times, channels)) + tail
    head = qutag_header(40 + len(body)) if header else b""
    path.write_bytes(head + body)
    return path


def write_qutag_compressed(path: Path, times: list[int], channels: list[int], *,
                           tail: bytes = b"") -> Path:
    """COMPRESSED file: each time cut to its low 37 bits, channel (0-7) in bits 37-39."""
    body = b"".join(((t % 2**37) | (c << 37)).to_bytes(5, "little")
                    for t, c in zip(times, channels)) + tail
    path.write_bytes(qutag_header(40 + len(body)) + body)
    return path


class Sstt2ChannelWriter:
    """One channel's data file, written event by event as PHAST's small_tcspc_io2 does."""

    def __init__(self) -> None:
        self.data = bytearray(SSTT2_HEADER)
        self.n_overflows = 0
        self.n_photons = 0
        self.last = 0

    def _event(self, word: int) -> None:
        self.data += (word & (2**48 - 1)).to_bytes(8, "little")[:6]

    def photon(self, t: int) -> None:
        """A photon at t (device units, non-decreasing, as PHAST requires)."""
        assert t >= self.last
        self.last = t
        rest = t - self.n_overflows * 2**46
        if rest >= 2**46:
            wraps = rest // 2**46
            self._event(1 | (wraps << 2))
            self.n_overflows += wraps
            rest -= wraps * 2**46
        self._event(rest << 2)
        self.n_photons += 1

    def reserved(self, payload: int) -> None:
        """An event with the reserved bit 1 set (a reader must ignore it)."""
        self._event(0b10 | (payload << 2))


def write_sstt2(info_path: Path, channels: dict[int, list[int]], *, time_unit_s: float = 1e-12,
                device: str = "qutag", pulses: int | None = None, hw_divider: int = 1,
                add_divider: int = 1, reserved: dict[int, list[int]] | None = None,
                info_overrides: dict[int, dict[str, str]] | None = None,
                experiment: bool = True) -> dict[int, Path]:
    """An SSTT v2 data set: ``<info_path>`` and ``<info_path>.c<N>`` per channel.

    ``reserved[N]``: indexes after which channel N gets a reserved-bit event.
    ``info_overrides[N]``: column -> text replacing what the writer would put.
    """
    reserved = reserved or {}
    paths: dict[int, Path] = {}
    rows = []
    for ch, times in channels.items():
        w = Sstt2ChannelWriter()
        for i, t in enumerate(times):
            w.photon(t)
            if i in reserved.get(ch, []):
                w.reserved(12345)
        path = info_path.with_name(f"{info_path.name}.c{ch}")
        path.write_bytes(bytes(w.data))
        paths[ch] = path
        is_pulses = ch == pulses
        has_pulses = pulses is not None and not is_pulses
        values = {"ChannelID": "%d" % ch, "Filename": '"%s"' % path.name,
                  "NumPhotons": "%d" % w.n_photons, "NumOverflows": "%d" % w.n_overflows,
                  "Filesize": "%d" % len(w.data),
                  "HardwareSyncDivider": "%d" % (hw_divider if is_pulses else 1),
                  "AdditionalSyncDivider": "%d" % (add_divider if is_pulses else 1),
                  "TotalSyncDivider": "%d" % (hw_divider * add_divider if is_pulses else 1),
                  "IsPulsesChannel": "%i" % is_pulses, "HasPulsesChannel": "%i" % has_pulses,
                  "CorrespondingPulsesChannel": "%d" % (pulses if has_pulses else 0)}
        values.update((info_overrides or {}).get(ch, {}))
        rows.append("".join(values[c] + "\t" for c in SSTT_COLUMNS) + "\n")
    text = ("Simple Small Time Tagged (V2)\n"
            "# This file was automatically generated, do not alter its contents.\n" + "\n" * 6)
    if experiment:
        text += ("EXPERIMENT_HEADER\n"
                 "Time_unit_seconds\tdevice_type\texperiment_start_timestamp_UTC\n"
                 + "%.15e\t%s\t%s\n" % (time_unit_s, device, "2020-01-01T00:00:00Z") + "\n" * 6)
    text += "CHANNEL_HEADER\n" + "\t".join(SSTT_COLUMNS) + "\n" + "".join(rows)
    info_path.write_text(text)
    return paths


def write_sstt1_data(path: Path, times: list[int], micro: list[int] | None = None) -> Path:
    """An SSTT v1 data file as PHAST's small_tcspc_io writes it (8-byte events, 2^28 wraps)."""
    out = bytearray()
    n_overflows = 0
    for i, t in enumerate(times):
        rest = t - n_overflows * 2**28
        if rest >= 2**28:
            wraps = rest // 2**28
            out += struct.pack("<Q", 1 | (wraps << 2))
            n_overflows += wraps
            rest -= wraps * 2**28
        m = micro[i] if micro else 0
        out += struct.pack("<Q", (m << 2) | (rest << 36))
    path.write_bytes(bytes(out))
    return path

"""quTAG (BINARY, COMPRESSED, RAW) and SSTT decoders: round trips through independent writers.

The files are written by ``tests/format_writers_qt.py`` from qutools' / PHAST's
published layouts; the expected photons are computed here in plain Python.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from labctl.formats.common import FormatError
from labctl.formats.qutag import read_qutag, unwrap_37bit
from labctl.formats.sstt import read_sstt
from tests.format_writers_qt import (write_qutag_binary, write_qutag_compressed, write_sstt1_data,
                                     write_sstt2)

BIG = 10**17  # quTAG counts ps since its start: beyond float64's exact 2^53


def _expected(times: list[int], chans: list[int], unit: int = 1, markers: bool = False):
    """(times, channels) of photons (or markers) sorted by time, file order at equal times."""
    keep = [(t * unit, i, c) for i, (t, c) in enumerate(zip(times, chans)) if (c >= 100) == markers]
    keep.sort()
    return [t for t, _, _ in keep], [c for _, _, c in keep]


def _binary_events() -> tuple[list[int], list[int]]:
    """Three inputs, each in time order, written channel block by block (globally unsorted),
    with markers 100 and 101, 1 ms ticks (104) and an event at t = 0."""
    rng = np.random.default_rng(3)
    times, chans = [0], [0]
    for ch, delay in ((0, 0), (1, 40_000), (2, -25_000)):
        t = BIG + delay + np.cumsum(rng.integers(1, 60_000, 40))
        for i in range(0, 40, 10):  # blocks of 10 per channel: the merged order steps back
            times += [int(x) for x in t[i:i + 10]]
            chans += [ch] * 10
    times += [BIG + 5, BIG + 1_000_000_000, BIG + 7, BIG + 2_000_000_000]
    chans += [100, 104, 101, 104]
    times += [BIG + 123_456, BIG + 123_456]  # equal times: file order kept
    chans += [4, 3]
    return times, chans


def test_qutag_binary_round_trip_unsorted_markers_and_zero(tmp_path: Path) -> None:
    times, chans = _binary_events()
    path = write_qutag_binary(tmp_path / "a.bin", times, chans)
    rec = read_qutag(path)
    exp_t, exp_c = _expected(times, chans)
    assert rec.format_name == "quTAG BINARY"
    assert rec.timestamps_ps.dtype == np.int64 and rec.channels.dtype == np.int16
    assert rec.timestamps_ps.tolist() == exp_t and rec.channels.tolist() == exp_c
    mt, mc = _expected(times, chans, markers=True)
    assert rec.marker_timestamps_ps.tolist() == mt and rec.marker_channels.tolist() == mc
    assert rec.sorted is False and rec.sync_channel is None and rec.time_unit_s == 1e-12
    assert any("not in time order" in n for n in rec.notes)
    assert any("1 events at t = 0 kept" in n for n in rec.notes)
    assert rec.timestamps_ps[0] == 0 and rec.channels[0] == 0


def test_qutag_binary_sorted_file_says_sorted(tmp_path: Path) -> None:
    times = [BIG + 10 * i for i in range(20)]
    rec = read_qutag(write_qutag_binary(tmp_path / "s.bin", times, [i % 3 for i in range(20)]))
    assert rec.sorted is True and rec.notes == []
    assert rec.timestamps_ps.tolist() == times


def test_qutau_unit_multiplies_exactly_beyond_2_53(tmp_path: Path) -> None:
    times = [BIG + 1, BIG + 2, BIG + 3]
    rec = read_qutag(write_qutag_binary(tmp_path / "q.bin", times, [0, 1, 0]), time_unit_ps=81)
    assert rec.timestamps_ps.tolist() == [t * 81 for t in times]  # float64 would lose the +1
    assert rec.time_unit_s == pytest.approx(81e-12)
    # three records are too few to tell the variants apart by their times: the length decides
    assert any("make sense both as BINARY and as COMPRESSED; read as BINARY because the length"
               in n for n in rec.notes)


def test_qutag_time_beyond_int64_ps_is_an_error(tmp_path: Path) -> None:
    path = write_qutag_binary(tmp_path / "o.bin", [2**61, 2**61 + 1], [0, 0])
    with pytest.raises(FormatError, match=r"o\.bin: time tag .* does not fit int64 ps"):
        read_qutag(path, time_unit_ps=81)


@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_qutag_chunked_equals_whole(tmp_path: Path, chunk: int) -> None:
    times, chans = _binary_events()
    for path in (write_qutag_binary(tmp_path / "a.bin", times, chans),
                 write_qutag_compressed(tmp_path / "c.qtc", *_compressed_events())):
        whole, part = read_qutag(path), read_qutag(path, chunk_records=chunk)
        assert np.array_equal(whole.timestamps_ps, part.timestamps_ps)
        assert np.array_equal(whole.channels, part.channels)
        assert np.array_equal(whole.marker_timestamps_ps, part.marker_timestamps_ps)
        assert whole.notes == part.notes


def _compressed_events() -> tuple[list[int], list[int]]:
    """Channel 0 over 5.3 wraps of 2^37 (an event every < 2^34 units); channel 1 is delayed:
    its events just before two wraps are written after channel 2's events just past them."""
    w = 2**37
    events = [(t, 0) for t in range(1000, 5 * w + w // 3, 2**34 - 12345)]
    events = sorted(events + [(w + 50, 2), (3 * w + 10, 2)])
    for late, after in ((w - 30, w + 50), (3 * w - 99, 3 * w + 10)):
        events.insert(events.index((after, 2)) + 1, (late, 1))
    return [t for t, _ in events], [c for _, c in events]


def test_qutag_compressed_round_trip_several_wraps(tmp_path: Path) -> None:
    w = 2**37
    rng = np.random.default_rng(5)
    times = sorted(int(x) for x in rng.integers(0, 5 * w, 200)) + [5 * w + 3]
    chans = [int(c) for c in rng.integers(0, 8, len(times))]
    times, chans = _insert_fillers(times, chans)  # consecutive events < 2^35 apart
    at = int(np.searchsorted(times, 3 * w - 60))  # a delayed channel steps back across a wrap
    times[at:at] = [3 * w + 40, 3 * w - 60]
    chans[at:at] = [0, 7]
    path = write_qutag_compressed(tmp_path / "c.qtc", times, chans)
    rec = read_qutag(path)
    assert rec.format_name == "quTAG COMPRESSED"
    exp_t, exp_c = _expected(times, chans)
    assert rec.timestamps_ps.tolist() == exp_t and rec.channels.tolist() == exp_c
    assert rec.marker_timestamps_ps.size == 0 and rec.sorted is False
    assert any("unwrapped 5 wraps" in n for n in rec.notes)


def _insert_fillers(times: list[int], chans: list[int]) -> tuple[list[int], list[int]]:
    """Channel-3 events so that consecutive events are < 2^35 apart (keeps the order)."""
    out_t, out_c = [times[0]], [chans[0]]
    for t, c in zip(times[1:], chans[1:]):
        while t - out_t[-1] > 2**35:
            out_t.append(out_t[-1] + 2**35)
            out_c.append(3)
        out_t.append(t)
        out_c.append(c)
    return out_t, out_c


def test_compressed_step_back_across_wrap_is_not_a_wrap() -> None:
    # raw 37-bit times: ..., 5 after a wrap, then a delayed event from before the wrap
    w = 2**37
    raw = np.array([w - 100, 5, w - 20, 40], np.int64)
    times, _, wraps = unwrap_37bit(raw, None, 0)
    assert times.tolist() == [w - 100, w + 5, w - 20, w + 40]
    assert wraps == 1
    # the one-sided formula t + 2^37 * cumsum(diff < -2^36) puts w - 20 one wrap late
    one_sided = raw + w * np.concatenate(([0], np.cumsum(np.diff(raw) < -w // 2)))
    assert one_sided[2] == 2 * w - 20


def test_compressed_first_events_stepping_back_stay_non_negative(tmp_path: Path) -> None:
    w = 2**37
    times, chans = [w + 5, w - 7, w + 100], [0, 1, 0]
    rec = read_qutag(write_qutag_compressed(tmp_path / "f.qtc", times, chans))
    # the absolute start is not stored: times come back relative to the first wrap kept
    assert rec.timestamps_ps.tolist() == [w - 7, w + 5, w + 100]
    assert rec.channels.tolist() == [1, 0, 0]


def test_qutag_raw_detected_from_content(tmp_path: Path) -> None:
    times, chans = _binary_events()
    rec = read_qutag(write_qutag_binary(tmp_path / "r.raw", times, chans, header=False))
    assert rec.format_name == "quTAG RAW"
    assert rec.timestamps_ps.tolist() == _expected(times, chans)[0]
    assert any("read as RAW" in n for n in rec.notes)


def test_qutag_variant_detected_not_from_extension(tmp_path: Path) -> None:
    times, chans = _compressed_events()
    # a COMPRESSED file named like a BINARY one, and the reverse
    assert read_qutag(write_qutag_compressed(tmp_path / "x.bin", times, chans)).format_name \
        == "quTAG COMPRESSED"
    b_times, b_chans = _binary_events()
    assert read_qutag(write_qutag_binary(tmp_path / "y.qtc", b_times, b_chans)).format_name \
        == "quTAG BINARY"


def test_qutag_truncated_tail_reads_whole_records(tmp_path: Path) -> None:
    times, chans = _binary_events()
    rec = read_qutag(write_qutag_binary(tmp_path / "t.bin", times, chans, tail=b"\x01\x02\x03"))
    assert rec.timestamps_ps.tolist() == _expected(times, chans)[0]
    assert any("3 bytes that are not a whole 10-byte record" in n for n in rec.notes)
    assert any("header bytes 4-7 say" not in n for n in rec.notes)
    c_times, c_chans = _compressed_events()
    crec = read_qutag(write_qutag_compressed(tmp_path / "t.qtc", c_times, c_chans, tail=b"\x07\x07"))
    assert crec.timestamps_ps.size == len(c_times)
    assert any("2 bytes that are not a whole 5-byte record" in n for n in crec.notes)


def test_qutag_header_size_disagreeing_with_file_is_noted(tmp_path: Path) -> None:
    times, chans = _binary_events()
    path = write_qutag_binary(tmp_path / "h.bin", times, chans)
    data = bytearray(path.read_bytes())
    data[4:8] = struct.pack("<I", len(data) + 1000)  # the writer meant to write more
    path.write_bytes(bytes(data))
    rec = read_qutag(path)
    assert rec.timestamps_ps.size == len([c for c in chans if c < 100])
    assert any(f"header bytes 4-7 say {len(data) + 1000}" in n and "trusting the file" in n
               for n in rec.notes)


def test_qutag_errors_name_file_found_and_allowed(tmp_path: Path) -> None:
    ptu = tmp_path / "not.ptu"
    ptu.write_bytes(b"PQTTTR\0\0" + b"1.0.00\0\0" + bytes(range(256)) * 8)
    with pytest.raises(FormatError, match=r"not\.ptu: not a quTAG file: bytes 0-3 are 50 51 54 54.*"
                                          r"87 b3 91 fa.*variant='raw'"):
        read_qutag(ptu)
    short = tmp_path / "short.bin"
    short.write_bytes(bytes([0x87, 0xB3, 0x91, 0xFA]) + bytes(10))
    with pytest.raises(FormatError, match=r"short\.bin: 14 bytes, shorter than the 40-byte"):
        read_qutag(short)
    with pytest.raises(ValueError, match=r"variant = 'ascii': allowed binary, compressed, raw"):
        read_qutag(short, variant="ascii")
    with pytest.raises(ValueError, match=r"time_unit_ps = 0.5: allowed a whole number"):
        read_qutag(short, time_unit_ps=0.5)
    garbage = tmp_path / "g.bin"
    rng = np.random.default_rng(0)
    garbage.write_bytes(bytes([0x87, 0xB3, 0x91, 0xFA]) + bytes(36) + rng.bytes(10_000))
    with pytest.raises(FormatError, match=r"g\.bin: quTAG header found, but the records are neither "
                                          r"BINARY \(channel field .*\) nor COMPRESSED"):
        read_qutag(garbage)


def test_qutag_missing_file_is_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match=r"nope\.bin: cannot read quTAG file"):
        read_qutag(tmp_path / "nope.bin")


# ---------------------------------------------------------------- SSTT

def _sstt_channels() -> dict[int, list[int]]:
    """Pulses on channel 0 (every 8th of 12.5 ns pulses kept), photons on 1 and 2; the
    device clock starts beyond 2^46 and the stream has gaps of several wraps."""
    rng = np.random.default_rng(11)
    start = 3 * 2**46 + 12_345
    sync = [start + 8 * 12_500 * i for i in range(300)]
    sync += [sync[-1] + 2 * 2**46 + 8 * 12_500 * i for i in range(1, 50)]  # 2 wraps of silence
    ph1 = sorted(int(x) for x in rng.integers(start, sync[-1], 120))
    ph2 = sorted(int(x) for x in rng.integers(start, sync[-1], 90)) + [sync[-1] + 2**47]
    return {0: sync, 1: ph1, 2: ph2}


def _sstt_expected(channels: dict[int, list[int]], unit: int = 1):
    events = sorted((t * unit, k, ch) for k, ch in enumerate(channels) for t in channels[ch])
    return [t for t, _, _ in events], [ch for _, _, ch in events]


def test_sstt2_round_trip_overflows_reserved_pulses_divider(tmp_path: Path) -> None:
    channels = _sstt_channels()
    write_sstt2(tmp_path / "run.sstt", channels, time_unit_s=81e-12, device="qutau", pulses=0,
                hw_divider=2, add_divider=4, reserved={1: [0, 5, 119], 2: [3]})
    rec = read_sstt([tmp_path / "run.sstt"])
    exp_t, exp_c = _sstt_expected(channels, unit=81)
    assert rec.format_name == "SSTT v2"
    assert rec.timestamps_ps.dtype == np.int64 and rec.channels.dtype == np.int16
    assert rec.timestamps_ps.tolist() == exp_t and rec.channels.tolist() == exp_c
    assert rec.sync_channel == 0 and rec.sync_divider == 8
    assert rec.time_unit_s == pytest.approx(81e-12) and rec.sorted is True
    assert any("run.sstt.c1: 3 events with the reserved bit 1 set: ignored" in n for n in rec.notes)
    assert not any("info file says" in n for n in rec.notes)  # its counts match the files
    assert rec.header["experiment"]["device_type"] == "qutau"


def test_sstt2_found_from_data_files_and_chunked_equals_whole(tmp_path: Path) -> None:
    channels = _sstt_channels()
    data = write_sstt2(tmp_path / "run.sstt", channels, pulses=0)
    whole = read_sstt([tmp_path / "run.sstt"])
    for chunk in (1, 5, 64):
        part = read_sstt([data[1], data[0], data[2]], chunk_records=chunk)
        assert np.array_equal(whole.timestamps_ps, part.timestamps_ps)
        assert np.array_equal(whole.channels, part.channels)
        assert whole.notes == part.notes
    assert whole.timestamps_ps.tolist() == _sstt_expected(channels)[0]


def test_sstt2_info_counts_disagree_and_truncated_tail(tmp_path: Path) -> None:
    channels = {1: [10, 20, 2**46 + 5], 3: [15, 16]}
    data = write_sstt2(tmp_path / "x.sstt", channels, info_overrides={3: {"NumPhotons": "7"}})
    data[1].write_bytes(data[1].read_bytes() + b"\x04\x00\x00")  # half an event at the end
    rec = read_sstt([tmp_path / "x.sstt"])
    assert rec.timestamps_ps.tolist() == [10, 15, 16, 20, 2**46 + 5]
    assert rec.channels.tolist() == [1, 3, 3, 1, 1]
    notes = " | ".join(rec.notes)
    assert "x.sstt.c3: the info file says NumPhotons = 7, the data file holds 2 photons" in notes
    assert "x.sstt.c1: ends with 3 bytes that are not a whole 6-byte event" in notes
    assert "x.sstt.c1: the info file says Filesize" in notes
    assert rec.sync_channel is None and rec.sync_divider == 1


def test_sstt_defaults_and_non_whole_ps_unit(tmp_path: Path) -> None:
    write_sstt2(tmp_path / "d.sstt", {0: [1, 2, 3]}, experiment=False)
    rec = read_sstt([tmp_path / "d.sstt"])
    assert rec.timestamps_ps.tolist() == [81, 162, 243]
    assert any("no Time_unit_seconds" in n and "81e-12" in n for n in rec.notes)
    write_sstt2(tmp_path / "q.sstt", {0: [1, 2, 3, 4, 10**15 + 3]}, time_unit_s=2.5e-13)
    rec = read_sstt([tmp_path / "q.sstt"])
    # 0.25 ps per tick: nearest ps, half up, exact in integers
    assert rec.timestamps_ps.tolist() == [0, 1, 1, 1, 250_000_000_000_001]
    assert any("0.25 ps is not a whole number of ps" in n for n in rec.notes)


def test_sstt1_data_files(tmp_path: Path) -> None:
    info = tmp_path / "v1.sstt"
    write_sstt2(info, {4: [7]}, time_unit_s=1e-12)  # info file and names; data replaced below
    times = [5, 2**28 + 3, 5 * 2**28 + 1, 5 * 2**28 + 2]
    write_sstt1_data(tmp_path / "v1.sstt.c4", times)
    rec = read_sstt([info])
    assert rec.timestamps_ps.tolist() == times and rec.format_name == "SSTT v1 (v1 data files)"
    write_sstt1_data(tmp_path / "v1.sstt.c4", times, micro=[0, 17, 0, 0])
    with pytest.raises(FormatError, match=r"v1\.sstt\.c4: SSTT v1 data file with microtimes"):
        read_sstt([info])


def test_sstt_errors_name_file_found_and_allowed(tmp_path: Path) -> None:
    data = write_sstt2(tmp_path / "e.sstt", {0: [1], 2: [5]})
    data[2].unlink()
    with pytest.raises(FormatError, match=r"e\.sstt: data file of channel 2 missing: looked for "
                                          r".*e\.sstt\.c2"):
        read_sstt([tmp_path / "e.sstt"])
    data[2].write_bytes(b"SSTT1\0" + bytes(13))
    with pytest.raises(FormatError, match=r"e\.sstt\.c2: first bytes are b'SSTT1\\x00'; allowed: "
                                          r"an SSTT v2 data file"):
        read_sstt([tmp_path / "e.sstt"])
    text = (tmp_path / "e.sstt").read_text()
    (tmp_path / "e.sstt").write_text(text.replace("ChannelID\t", "Channel\t", 1))
    with pytest.raises(FormatError, match=r"e\.sstt: line \d+: channel columns .* lack ChannelID"):
        read_sstt([tmp_path / "e.sstt"])
    (tmp_path / "e.sstt").write_text(text.replace('"e.sstt.c0"\t', "", 1))
    with pytest.raises(FormatError, match=r"e\.sstt: line \d+: 10 values for 11 channel columns"):
        read_sstt([tmp_path / "e.sstt"])
    (tmp_path / "f.sstt").write_text("Simple Small Time Tagged (V3)\n")
    with pytest.raises(FormatError, match=r"f\.sstt: first line is 'Simple Small Time Tagged \(V3\)'; "
                                          r"allowed: 'Simple Small Time Tagged \(V2\)'"):
        read_sstt([tmp_path / "f.sstt"])
    with pytest.raises(FormatError, match=r"no SSTT info file.*not found: .*zz\.sstt"):
        read_sstt([tmp_path / "zz.sstt"])
    (tmp_path / "e.sstt").write_text(text)
    data[2].write_bytes(b"SSTT2\0" + b"\xff" * 12)
    (tmp_path / "other.sstt.c0").write_bytes(b"SSTT2\0" + b"\xff" * 12)
    with pytest.raises(FormatError, match=r"other\.sstt\.c0: not part of the SSTT data set"):
        read_sstt([tmp_path / "e.sstt", tmp_path / "other.sstt.c0"])


def test_sstt_renamed_data_set_and_temp_info_noted(tmp_path: Path) -> None:
    write_sstt2(tmp_path / "old.sstt", {0: [1, 5], 1: [3]})
    (tmp_path / "new.sstt").write_text((tmp_path / "old.sstt").read_text())
    for ch in (0, 1):
        (tmp_path / f"old.sstt.c{ch}").rename(tmp_path / f"new.sstt.c{ch}")
    (tmp_path / "new.sstt_temp").write_text("Simple Small Time Tagged (V2)\n")
    rec = read_sstt(tmp_path / "new.sstt")
    assert rec.timestamps_ps.tolist() == [1, 3, 5] and rec.channels.tolist() == [0, 1, 0]
    notes = " | ".join(rec.notes)
    assert "channel 0: old.sstt.c0 (Filename column) is missing; read new.sstt.c0" in notes
    assert "a '_temp' info file exists" in notes


def test_sstt_several_pulses_channels(tmp_path: Path) -> None:
    write_sstt2(tmp_path / "p.sstt", {0: [1], 5: [2], 1: [3]}, pulses=5,
                info_overrides={0: {"IsPulsesChannel": "1"}})
    rec = read_sstt([tmp_path / "p.sstt"])
    assert rec.sync_channel == 5  # the one the photon channel refers to
    assert any("several pulses channels [0, 5]: channel 5" in n for n in rec.notes)
    write_sstt2(tmp_path / "q.sstt", {0: [1], 5: [2]}, pulses=5,
                info_overrides={0: {"IsPulsesChannel": "1", "HasPulsesChannel": "0"}})
    rec = read_sstt([tmp_path / "q.sstt"])
    assert rec.sync_channel is None and rec.sync_divider == 1
    assert any("no sync channel chosen" in n for n in rec.notes)


def test_qutag_bad_record_after_the_sample_names_its_index(tmp_path: Path) -> None:
    times = [BIG + 10 * i for i in range(30)]
    path = write_qutag_binary(tmp_path / "b.bin", times + [BIG + 400], [0] * 30 + [40_000])
    with pytest.raises(FormatError, match=r"b\.bin: record 30 has channel 40000; allowed: channels"):
        read_qutag(path, variant="binary")
    path = write_qutag_binary(tmp_path / "t.bin", times + [2**63 + 5], [0] * 31)
    with pytest.raises(FormatError, match=r"t\.bin: record 30 has timestamp 9223372036854775813 "
                                          r">= 2\^63"):
        read_qutag(path, variant="binary", chunk_records=8)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sstt2_random_round_trip_with_wrap_edges(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    w = 2**46
    channels = {}
    for ch in range(3):
        t = set(int(x) for x in rng.integers(0, 6 * w, 60))
        t |= {w - 1, w, 3 * w, 3 * w + 1}  # the last tick before a wrap, the first after
        channels[ch] = sorted(t)
    write_sstt2(tmp_path / "r.sstt", channels, pulses=2, reserved={0: [int(rng.integers(0, 60))]})
    rec = read_sstt([tmp_path / "r.sstt"], chunk_records=int(rng.integers(1, 40)))
    exp_t, exp_c = _sstt_expected(channels)
    assert rec.timestamps_ps.tolist() == exp_t and rec.channels.tolist() == exp_c


def test_sstt_info_without_channel_rows(tmp_path: Path) -> None:
    (tmp_path / "n.sstt").write_text("Simple Small Time Tagged (V2)\nCHANNEL_HEADER\nChannelID\t"
                                     "Filename\n\n")
    with pytest.raises(FormatError, match=r"n\.sstt: no channel rows after CHANNEL_HEADER"):
        read_sstt([tmp_path / "n.sstt"])

"""labctl import of PicoQuant files: real samples, round trips through files written from the
published layouts (tests/format_writers.py), chunk invariance, sorting, errors, validation."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from labctl.formats.common import FormatError
from labctl.formats.importer import import_files
from labctl.formats.picoquant_legacy import open_legacy
from labctl.formats.picoquant_ptu import open_ptu
from labctl.formats.picoquant_records import HT2_SYNC_CHANNEL
from tests import format_writers as W

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
"""The workplace's real recordings (``../shared/data/real`` beside the checkout, as in CI)."""
HT3_SAMPLE = REAL / "libpicoquant-format-samples" / "v20.ht3"
PTU_SAMPLE = REAL / "libpicoquant-format-samples" / "v30_t2.ptu"
DOTD = REAL / "nanocluster-pcfs-qd-ht2" / "DotD_run_one0.stream"
needs_real = pytest.mark.real_samples  # they must be there: a missing sample fails (test below), never skips


def test_the_real_samples_are_beside_the_checkout():
    missing = [str(p) for p in (HT3_SAMPLE, PTU_SAMPLE, DOTD) if not p.is_file()]
    assert not missing, f"real recordings missing (expected in ../shared/data/real): {missing}"


def read_out(path: Path) -> dict:
    with h5py.File(path, "r") as f:
        out = {k: f[f"/photon_data/{k}"][:] for k in ("timestamps", "detectors")}
        out["nanotimes"] = f["/photon_data/nanotimes"][:] if "/photon_data/nanotimes" in f else None
        out["markers"] = f["/user/labctl/markers"][:]
        out["marker_channels"] = f["/user/labctl/import/marker_channels"][:]
        out["notes"] = json.loads(f["/user/labctl/import/notes"][()])
        out["stats"] = json.loads(f["/user/labctl/import/stats"][()])
        out["ids"] = f["/setup/detectors/id"][:]
        out["counts"] = f["/setup/detectors/counts"][:]
        out["duration"] = float(f["/acquisition_duration"][()])
        out["lifetime"] = int(f["/setup/lifetime"][()])
    return out


def assert_valid(path: Path) -> None:
    tables = pytest.importorskip("tables")
    hdf5 = pytest.importorskip("phconvert.hdf5")
    with tables.open_file(str(path)) as h5:
        hdf5.assert_valid_photon_hdf5(h5, strict_description=True, require_setup=True, warnings=False)


# --- real files ------------------------------------------------------------------------
@needs_real
def test_real_ht3_imports_with_the_readme_counts(tmp_path):
    r = import_files([HT3_SAMPLE], tmp_path / "ht3.h5")
    assert r.photons == 44_141 and r.counts == {0: 7_102, 1: 26_648, 2: 3_085, 3: 7_306}
    out = read_out(tmp_path / "ht3.h5")
    assert out["nanotimes"].min() == 16 * 1 and out["nanotimes"].max() == 16 * 32767  # dtime 1..32767, 16 ps bins
    assert np.all(np.diff(out["timestamps"]) >= 0)
    assert out["duration"] == pytest.approx(10.0, abs=1e-3)
    with h5py.File(tmp_path / "ht3.h5") as f:
        assert f["/provenance/filename"][()] == b"v20.ht3"
        assert f["/provenance/software"][()] == b"HydraHarp AcqUI"
        assert json.loads(f["/user/labctl/import/header"][()])["SyncRate"] == 998_898
        assert f["/user/labctl/import/format"][()] == b"ht3"
        assert f["/photon_data/nanotimes_specs/tcspc_num_bins"][()] == 1_001_103  # 1/998898 Hz in ps
    assert_valid(tmp_path / "ht3.h5")


@needs_real
def test_real_ptu_t2_imports_photons_and_skips_overflows(tmp_path):
    r = import_files([PTU_SAMPLE], tmp_path / "t2.h5")
    assert r.photons == 305_565 and r.counts == {0: 305_565} and r.overflow_records == 129_754
    out = read_out(tmp_path / "t2.h5")
    assert out["nanotimes"] is None and out["lifetime"] == 0  # no sync: no nanotimes
    assert np.all(np.diff(out["timestamps"]) >= 0)
    assert out["duration"] == pytest.approx(5.0, abs=1e-3)
    assert_valid(tmp_path / "t2.h5")


@needs_real
def test_real_dotd_ht2_with_a_wrong_header_count_imports_what_the_file_holds(tmp_path):
    r = import_files([DOTD], tmp_path / "dotd.h5")
    assert r.photons == 399_001 and r.counts == {0: 191_648, 1: 207_353}
    assert any("1597208" in n and "775891" in n for n in r.notes)
    out = read_out(tmp_path / "dotd.h5")
    assert out["stats"]["records"] == 775_891
    ts = out["timestamps"]
    assert np.all(np.diff(ts) >= 0) and ts[-1] / 1e12 == pytest.approx(120.0, abs=1e-3)
    assert any("1597208" in n for n in out["notes"])
    assert any("sync rate (1488874 Hz) is not stored as the laser rate" in n for n in r.notes)
    with h5py.File(tmp_path / "dotd.h5") as f:  # no sync recorded: no nanotimes, no claimed laser period
        assert "/photon_data/nanotimes" not in f and f["/setup/excitation_cw"][:].tolist() == [1]
        assert "/photon_data/measurement_specs/laser_repetition_rate" not in f
    assert_valid(tmp_path / "dotd.h5")


@needs_real
@pytest.mark.parametrize("path", [DOTD, PTU_SAMPLE])
def test_hydraharp_v2_t2_wrap_is_2_pow_25(path):
    """Settled on the real files: timetags >= 33552000 occur (a counter wrapping at 33552000,
    libpicoquant's choice, never shows them) and 2^25 ends the stream closer to the set acquisition time (DotD: Int_Time 120000 ms in its .pcfslog; v30_t2: MeasDesc_AcquisitionTime 5000 ms)."""
    src = open_legacy(path) if path == DOTD else open_ptu(path)
    set_s = 120.0 if path == DOTD else 5.0
    raw = np.fromfile(path, "<u4", offset=src.data_offset)[: src.n_records]
    photon_tt = (raw & 0x1FFFFFF)[(raw >> 31) == 0]
    assert np.count_nonzero(photon_tt >= 33_552_000) >= 10
    assert src.wrap == 2**25
    src.read()
    err = abs(src.stats["end_ps"] / 1e12 - set_s)
    alt = dataclasses.replace(src, wrap=33_552_000)
    alt.read()
    err_alt = abs(alt.stats["end_ps"] / 1e12 - set_s)
    assert err < 1e-3 and err < err_alt / 1.5  # DotD 0.2 ms vs 8.9 ms; v30_t2 0.02 ms vs 0.38 ms


@needs_real
@pytest.mark.parametrize("path", [DOTD, HT3_SAMPLE], ids=["ht2", "ht3"])
def test_chunk_invariance_on_the_real_files(tmp_path, path):
    import_files([path], tmp_path / "whole.h5")
    import_files([path], tmp_path / "chunks.h5", chunk_records=1000)
    a, b = read_out(tmp_path / "whole.h5"), read_out(tmp_path / "chunks.h5")
    for key in ("timestamps", "detectors", "counts", "markers"):
        np.testing.assert_array_equal(a[key], b[key])
    if a["nanotimes"] is not None:
        np.testing.assert_array_equal(a["nanotimes"], b["nanotimes"])
    assert a["duration"] == b["duration"] and a["stats"] == b["stats"]


# --- round trips from the published layouts -------------------------------------------
def t2_events(rng, n: int, wrap: int, photon_channels, marker: bool = True) -> W.Events:
    gaps = rng.integers(1, wrap // 3, n)
    gaps[n // 3] = 5 * wrap + 17  # several wraps with no event: counted overflow > 1 / repeated overflows
    t = np.cumsum(gaps)
    kind = np.zeros(n, np.int64)
    ch = rng.choice(photon_channels, n)
    if marker:
        idx = rng.choice(n, 5, replace=False)
        kind[idx] = 1
        ch[idx] = rng.integers(1, 16, 5)
    return W.Events(t, kind, ch)


def t3_events(rng, n: int, wrap: int, photon_channels, dtime_max: int) -> W.Events:
    gaps = rng.integers(1, 3 * wrap // 2, n)
    gaps[n // 2] = 4 * wrap + 3
    t = np.cumsum(gaps)
    kind = np.zeros(n, np.int64)
    ch = rng.choice(photon_channels, n)
    idx = rng.choice(n, 5, replace=False)
    kind[idx] = 1
    ch[idx] = rng.integers(1, 16, 5)
    dtime = rng.integers(0, dtime_max, n)
    return W.Events(t, kind, ch, dtime)


def expected_t2(ev: W.Events, unit_ps: int, layout: str) -> dict:
    ph = ev.kind == 0
    mk = ev.kind == 1
    mt = ev.time[mk]
    if layout == "PT2":  # the marker bitmask sits in the low 4 timetag bits (PicoQuant's demos)
        mt = (mt & ~0xF) | ev.channel[mk]
    return {"timestamps": ev.time[ph] * unit_ps, "detectors": ev.channel[ph], "markers": mt * unit_ps,
            "marker_channels": ev.channel[mk]}


def expected_t3(ev: W.Events, period_ps: float, res_ps: float) -> dict:
    ph = ev.kind == 0
    nano = np.rint(ev.dtime[ph] * res_ps).astype(np.int64)
    return {"timestamps": np.rint(ev.time[ph] * period_ps).astype(np.int64) + nano, "detectors": ev.channel[ph],
            "nanotimes": nano, "markers": np.rint(ev.time[ev.kind == 1] * period_ps).astype(np.int64),
            "marker_channels": ev.channel[ev.kind == 1]}


def check(out: dict, exp: dict) -> None:
    for key, value in exp.items():
        np.testing.assert_array_equal(out[key], value, err_msg=key)


PTU_UNITS = {0x00010203: 4, 0x00010204: 1, 0x01010204: 1, 0x00010205: 1, 0x00010206: 25, 0x00010207: 5}


@pytest.mark.parametrize("rec_type", sorted(W.PTU_REC_TYPES), ids=lambda r: f"0x{r:08x}")
def test_ptu_round_trip_every_record_type(tmp_path, rec_type):
    layout, wrap, counted = W.PTU_REC_TYPES[rec_type]
    rng = np.random.default_rng(rec_type % 1000)
    path = tmp_path / "in.ptu"
    if layout.endswith("2"):
        unit_ps = PTU_UNITS[rec_type]
        channels = [0, 1, 2, 3, 4] if layout == "PT2" else [0, 1, 5, 17]
        ev = t2_events(rng, 3000, wrap, channels)
        records = W.encode(ev, layout, wrap, counted, zero_means_one=rec_type == 0x00010207)
        path.write_bytes(W.ptu_bytes(rec_type, records, unit_ps * 1e-12))
        exp = expected_t2(ev, unit_ps, layout)
    else:
        period_s, res_s = (1 / 76e6, 4e-12) if layout == "PT3" else (12.5e-9, 1e-12)
        channels = [1, 2, 3, 4] if layout == "PT3" else [0, 2, 3, 7]
        dmax = int(period_s / res_s) - 1 if layout == "PT3" else 12000
        ev = t3_events(rng, 3000, wrap, channels, dmax)
        records = W.encode(ev, layout, wrap, counted)
        path.write_bytes(W.ptu_bytes(rec_type, records, period_s, res_s, sync_rate_hz=int(1 / period_s)))
        exp = expected_t3(ev, period_s * 1e12, res_s * 1e12)
    r = import_files([path], tmp_path / "out.h5")
    assert r.overflow_records == len(records) - len(ev.time) > 0
    out = read_out(tmp_path / "out.h5")
    check(out, exp)
    import_files([path], tmp_path / "chunks.h5", chunk_records=700)  # chunks end anywhere, overflows included
    check(read_out(tmp_path / "chunks.h5"), exp)
    assert sorted(out["ids"].tolist()) == sorted(set(exp["detectors"].tolist()))
    assert out["counts"].sum() == len(exp["timestamps"])  # markers and overflows are not photons
    assert_valid(tmp_path / "out.h5")


@pytest.mark.parametrize("kind,version", [("pt2", "2.0"), ("pt3", "2.0"), ("ht2", "1.0"), ("ht2", "2.0"),
                                          ("ht3", "1.0"), ("ht3", "2.0")])
def test_legacy_round_trip(tmp_path, kind, version):
    rng = np.random.default_rng(7)
    path = tmp_path / f"in.{kind}"
    v1 = version == "1.0"
    if kind == "pt2":
        ev = t2_events(rng, 3000, 210698240, [0, 1, 2, 3, 4])
        path.write_bytes(W.pt_bytes(False, W.encode(ev, "PT2", 210698240, False)))
        exp = expected_t2(ev, 4, "PT2")
    elif kind == "pt3":
        ev = t3_events(rng, 3000, 65536, [1, 2, 3, 4], 3000)
        path.write_bytes(W.pt_bytes(True, W.encode(ev, "PT3", 65536, False), sync_rate_hz=80_000_000,
                                    resolution_ns=0.004))
        exp = expected_t3(ev, 12500.0, float(np.float32(0.004)) * 1e3)
    elif kind == "ht2":
        wrap = 33552000 if v1 else 33554432
        ev = t2_events(rng, 3000, wrap, [0, 1, 2, 3])
        path.write_bytes(W.ht_bytes(False, version, W.encode(ev, "HT2", wrap, not v1), n_channels=4, img_words=3))
        exp = expected_t2(ev, 1, "HT2")
    else:
        ev = t3_events(rng, 3000, 1024, [0, 1, 2, 3], 1500)
        path.write_bytes(W.ht_bytes(True, version, W.encode(ev, "HT3", 1024, not v1, zero_means_one=True),
                                    n_channels=2, sync_rate_hz=80_000_000, resolution_ps=8.0))
        exp = expected_t3(ev, 12500.0, 8.0)
    r = import_files([path], tmp_path / "out.h5")
    assert r.format_name.lower().startswith(("picoharp", "hydraharp"))
    check(read_out(tmp_path / "out.h5"), exp)
    assert_valid(tmp_path / "out.h5")


def ht2_with_sync(rng, period: int, n_pulses: int, divider: int = 1) -> tuple[W.Events, np.ndarray]:
    """HT2 events: a sync event every ``divider`` pulses, photons at random delays after random pulses."""
    pulses = np.arange(n_pulses, dtype=np.int64) * period + 1000
    syncs = pulses[::divider]
    k = np.sort(rng.choice(n_pulses, n_pulses // 5, replace=False))
    photons = pulses[k] + rng.integers(0, period, k.size)
    t = np.concatenate([syncs, photons])
    kind = np.concatenate([np.full(syncs.size, 2), np.zeros(photons.size, np.int64)])
    ch = np.concatenate([np.zeros(syncs.size, np.int64), rng.choice([0, 1, 2], photons.size)])
    order = np.argsort(t, kind="stable")
    return W.Events(t[order], kind[order], ch[order]), photons - pulses[k]


@pytest.mark.parametrize("divider", [1, 4])
def test_ht2_sync_events_give_exact_nanotimes_even_with_a_sync_divider(tmp_path, divider):
    rng = np.random.default_rng(3)
    ev, delays = ht2_with_sync(rng, 12_500, 12_000, divider)  # 150 us: about 4.5 wraps of 2^25 ps
    records = W.encode(ev, "HT2", 2**25, True)
    path = tmp_path / "sync.ptu"
    path.write_bytes(W.ptu_bytes(0x01010204, records, 1e-12, sync_divider=divider))
    r = import_files([path], tmp_path / "out.h5")
    assert r.sync_channel == HT2_SYNC_CHANNEL
    out = read_out(tmp_path / "out.h5")
    ph = ev.kind == 0
    np.testing.assert_array_equal(out["timestamps"], ev.time[ph])
    np.testing.assert_array_equal(out["detectors"], ev.channel[ph])
    np.testing.assert_array_equal(out["nanotimes"], delays)
    assert HT2_SYNC_CHANNEL not in out["ids"]
    with h5py.File(tmp_path / "out.h5") as f:
        assert f["/photon_data/nanotimes_specs/tcspc_num_bins"][()] == 12_500
    with pytest.raises(FormatError, match="records its sync on channel 64 .*leave --sync-channel out or give 64"):
        import_files([path], tmp_path / "other.h5", sync_channel=1)  # its sync events would become photons
    import_files([path], tmp_path / "chunks.h5", chunk_records=1000)
    chunks = read_out(tmp_path / "chunks.h5")
    for key in ("timestamps", "detectors", "nanotimes"):
        np.testing.assert_array_equal(chunks[key], out[key])
    assert_valid(tmp_path / "out.h5")


def test_sync_channel_option_turns_a_pt2_input_into_the_sync(tmp_path):
    rng = np.random.default_rng(4)
    period = 3125  # 12.5 ns in 4 ps units
    pulses = np.arange(8000, dtype=np.int64) * period + 10
    k = np.sort(rng.choice(pulses.size, 1500, replace=False))
    delays = rng.integers(0, period, k.size)
    t = np.concatenate([pulses, pulses[k] + delays])
    ch = np.concatenate([np.zeros(pulses.size, np.int64), rng.choice([1, 2], k.size)])
    order = np.argsort(t, kind="stable")
    ev = W.Events(t[order], np.zeros(t.size, np.int64), ch[order])
    path = tmp_path / "ph.ptu"
    path.write_bytes(W.ptu_bytes(0x00010203, W.encode(ev, "PT2", 210698240, False), 4e-12))
    r = import_files([path], tmp_path / "out.h5", sync_channel=0)
    assert r.sync_channel == 0 and r.counts == {1: int(np.sum(ch == 1)), 2: int(np.sum(ch == 2))}
    out = read_out(tmp_path / "out.h5")
    np.testing.assert_array_equal(out["timestamps"], (pulses[k] + delays) * 4)
    np.testing.assert_array_equal(out["nanotimes"], delays * 4)
    assert_valid(tmp_path / "out.h5")


# --- order, counts, errors ---------------------------------------------------------------
def test_unsorted_t2_stream_is_sorted_stably_with_a_note(tmp_path):
    t = np.array([100, 200, 150, 300, 250, 250, 400], np.int64)
    ch = np.array([0, 1, 2, 0, 1, 2, 0], np.int64)
    ev = W.Events(t, np.zeros(t.size, np.int64), ch)
    path = tmp_path / "u.ht2"
    path.write_bytes(W.ht_bytes(False, "2.0", W.encode(ev, "HT2", 2**25, True)))
    r = import_files([path], tmp_path / "out.h5", chunk_records=3)
    assert any("not in time order" in n and "sorted stably" in n for n in r.notes)
    out = read_out(tmp_path / "out.h5")
    np.testing.assert_array_equal(out["timestamps"], [100, 150, 200, 250, 250, 300, 400])
    np.testing.assert_array_equal(out["detectors"], [0, 2, 1, 1, 2, 0, 0])  # the two at 250 keep file order
    assert any("sorted stably" in n for n in out["notes"])


def test_unsorted_t3_photons_are_sorted_by_macrotime_with_a_note(tmp_path):
    ev = W.Events(np.array([5, 5, 9]), np.zeros(3, np.int64), np.array([1, 2, 1]), np.array([900, 100, 0]))
    path = tmp_path / "u.ht3"
    path.write_bytes(W.ht_bytes(True, "2.0", W.encode(ev, "HT3", 1024, True), sync_rate_hz=1_000_000,
                                resolution_ps=1.0))
    r = import_files([path], tmp_path / "out.h5")
    assert any("not in macrotime order" in n for n in r.notes)
    out = read_out(tmp_path / "out.h5")
    np.testing.assert_array_equal(out["timestamps"], [5_000_100, 5_000_900, 9_000_000])
    np.testing.assert_array_equal(out["nanotimes"], [100, 900, 0])


@pytest.mark.parametrize("stated,present", [(500, 300), (100, 300)])
def test_header_record_count_disagreeing_with_the_file_is_noted(tmp_path, stated, present):
    ev = t2_events(np.random.default_rng(1), present, 2**25, [0, 1], marker=False)
    records = W.encode(ev, "HT2", 2**25, True)
    path = tmp_path / "c.ptu"
    path.write_bytes(W.ptu_bytes(0x01010204, records, 1e-12, header_records=stated))
    r = import_files([path], tmp_path / "out.h5")
    n_read = min(stated, len(records))
    assert any(str(stated) in n for n in r.notes)
    assert read_out(tmp_path / "out.h5")["stats"]["records"] == n_read


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "labctl.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("content,fmt,match", [
    (b"", None, "not a recognised time-tag file"),
    (bytes(range(256)) * 4, None, "not a recognised time-tag file"),
    (b"PQTTTR\0\0" + b"1.0.00\0\0" + b"\0" * 20, None, "without 'Header_End'"),
    (b"HydraHarp\0\0\0\0\0\0\0" + b"9.9\0\0\0" + b"\0" * 900, None, "FormatVersion '9.9'"),
    (b"PicoHarp 300\0\0\0\0" + b"2.0\0\0\0" + b"\0" * 500, None, "shorter than the 728-byte"),
    (b"garbage" * 10, "ptu", "not the PTU magic"),
])
def test_garbage_gives_one_clear_line_and_exit_2(tmp_path, content, fmt, match):
    path = tmp_path / "bad.dat"
    path.write_bytes(content)
    args = ["import", str(path), "--out", str(tmp_path / "o.h5")] + (["--format", fmt] if fmt else [])
    proc = run_cli(*args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("labctl import: ") and match in lines[0], proc.stderr
    assert not (tmp_path / "o.h5").exists() and not (tmp_path / "o.h5.importing").exists()


def test_unknown_ptu_record_type_is_a_format_error(tmp_path):
    path = tmp_path / "x.ptu"
    path.write_bytes(W.ptu_bytes(0x00010203, np.zeros(4, "<u4"), 4e-12).replace(
        (0x00010203).to_bytes(8, "little"), (0x00990203).to_bytes(8, "little")))
    with pytest.raises(FormatError, match=r"record type .*0x00990203: must be one of"):
        import_files([path], tmp_path / "o.h5")


def test_cli_import_prints_counts_and_refuses_to_overwrite(tmp_path):
    ev = t2_events(np.random.default_rng(2), 200, 2**25, [0, 3], marker=True)
    path = tmp_path / "a.ptu"
    path.write_bytes(W.ptu_bytes(0x01010204, W.encode(ev, "HT2", 2**25, True), 1e-12))
    out = tmp_path / "a.h5"
    proc = run_cli("import", str(path), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    n0, n3 = int(np.sum((ev.kind == 0) & (ev.channel == 0))), int(np.sum((ev.kind == 0) & (ev.channel == 3)))
    assert f"photons     {n0 + n3} (ch0 {n0}, ch3 {n3})" in proc.stdout and "markers     5" in proc.stdout
    again = run_cli("import", str(path), "--out", str(out))
    assert again.returncode == 2 and "exists" in again.stderr and "--overwrite" in again.stderr
    assert run_cli("import", str(path), "--out", str(out), "--overwrite").returncode == 0
    bad = run_cli("import", str(path), "--out", str(tmp_path / "b.h5"), "--sync-channel", "9")
    assert bad.returncode == 2 and "--sync-channel 9: no events on that channel" in bad.stderr


def test_writer_lists_every_detector_id_of_the_run(tmp_path):
    """An imported file may have any detectors (here 0, 2, 5, 7): all are in /setup/detectors with counts."""
    from labctl.blocks import ChannelMap, PhotonBlock
    from labctl.run import RunInfo, RunSummary
    from labctl.storage.writer import PhotonHDF5Writer

    det = np.array([0, 2, 5, 7, 5, 5], np.uint8)
    run = RunInfo("r", "2026-01-01T00:00:00Z", ChannelMap(-1, 0, 2), {0: "ch0", 2: "ch2", 5: "ch5", 7: "ch7"}, 1000)
    w = PhotonHDF5Writer(tmp_path / "w.h5")
    w.open(run)
    w.write(PhotonBlock(np.arange(6, dtype=np.int64), det, np.zeros(6, np.int32)))
    w.close(RunSummary(True, "test", 6, {}, 6, []))
    with h5py.File(tmp_path / "w.h5") as f:
        assert f["/setup/detectors/id"][:].tolist() == [0, 2, 5, 7]
        assert f["/setup/detectors/counts"][:].tolist() == [1, 1, 3, 1]


def test_whole_file_decoder_records_merged_unsorted_with_sync_divider(tmp_path, monkeypatch):
    """The framework for whole-file decoders (quTAG, SSTT), with a stand-in decoder module: a merged
    stream that steps back is sorted stably with a note, and --sync-channel gives exact nanotimes
    although only every 4th sync was kept (the records' sync divider)."""
    import types

    from labctl.formats.common import T2Records

    rng = np.random.default_rng(5)
    period, start = 12_500, 10**17  # quTAG-like absolute times far from 0
    pulses = start + np.arange(4000, dtype=np.int64) * period
    k = np.sort(rng.choice(pulses.size - 4, 800, replace=False))
    delays = rng.integers(0, period, k.size)
    det = rng.choice([1, 2], k.size)
    syncs = pulses[::4]
    # merged per channel (sync block, then photons): not in time order, as a per-channel file reader gives
    ts = np.concatenate([syncs, pulses[k] + delays])
    ch = np.concatenate([np.zeros(syncs.size, np.int16), det.astype(np.int16)])
    rec = T2Records(ts, ch, sync_channel=None, sync_divider=4, format_name="stand-in quTAG", sorted=False)
    fake = types.ModuleType("labctl.formats.qutag")
    fake.read_qutag = lambda path: rec
    monkeypatch.setitem(sys.modules, "labctl.formats.qutag", fake)
    path = tmp_path / "x.bin"
    path.write_bytes(b"\0" * 16)
    r = import_files([path], tmp_path / "out.h5", fmt="qutag", sync_channel=0, chunk_records=333)
    assert any("not in time order" in n for n in r.notes)
    out = read_out(tmp_path / "out.h5")
    np.testing.assert_array_equal(out["timestamps"], pulses[k] + delays)
    np.testing.assert_array_equal(out["detectors"], det)
    np.testing.assert_array_equal(out["nanotimes"], delays)
    assert out["duration"] == pytest.approx(float(ts.max() - ts.min()) * 1e-12)  # first to last event
    assert_valid(tmp_path / "out.h5")


def test_records_of_no_defined_kind_are_skipped_with_a_note(tmp_path):
    """PT3 channel 0 is not a photon channel (1-4) nor special (15): skipped and said."""
    ev = W.Events(np.array([1, 2, 3]), np.zeros(3, np.int64), np.array([1, 0, 2]), np.array([10, 20, 30]))
    path = tmp_path / "x.pt3"
    path.write_bytes(W.pt_bytes(True, W.encode(ev, "PT3", 65536, False), sync_rate_hz=10_000_000))
    r = import_files([path], tmp_path / "out.h5")
    assert r.counts == {1: 1, 2: 1}
    assert any("1 records of no kind the format defines (e.g. 0x00140002)" in n for n in r.notes)


@pytest.mark.parametrize("kind", ["ptu_t3", "ht2"])
def test_a_file_without_records_imports_as_an_empty_valid_file(tmp_path, kind):
    path = tmp_path / ("e.ptu" if kind == "ptu_t3" else "e.ht2")
    path.write_bytes(W.ptu_bytes(0x01010304, np.empty(0, "<u4"), 12.5e-9, 1e-12) if kind == "ptu_t3"
                     else W.ht_bytes(False, "2.0", np.empty(0, "<u4")))
    r = import_files([path], tmp_path / "out.h5")
    assert r.photons == 0 and r.counts == {}
    assert read_out(tmp_path / "out.h5")["timestamps"].size == 0
    assert_valid(tmp_path / "out.h5")


def test_a_failed_import_leaves_an_existing_out_untouched(tmp_path, monkeypatch):
    from labctl.formats import importer

    out = tmp_path / "keep.h5"
    out.write_bytes(b"earlier result")
    bad = tmp_path / "bad.ptu"
    bad.write_bytes(W.ptu_bytes(0x01010204, np.zeros(3, "<u4"), 1e-12)[:100])  # header cut
    with pytest.raises(FormatError, match="PTU tag 'File_GUID' says 40 payload bytes .* the header is damaged"):
        import_files([bad], out, overwrite=True)
    good = tmp_path / "good.ptu"
    good.write_bytes(W.ptu_bytes(0x01010204, np.arange(1, 4, dtype="<u4"), 1e-12))

    def fail(*args):
        raise OSError("disk gone")

    monkeypatch.setattr(importer, "_finish_file", fail)  # fails after the photons were written
    with pytest.raises(OSError, match="disk gone"):
        import_files([good], out, overwrite=True)
    assert out.read_bytes() == b"earlier result" and not (tmp_path / "keep.h5.importing").exists()


@pytest.mark.parametrize("kind", ["pt2", "pt3", "ht2", "ht3"])
def test_random_records_never_crash(tmp_path, kind):
    """Any 32-bit words after a valid header: a valid file (notes for what was odd), never a traceback."""
    rng = np.random.default_rng(11)
    records = rng.integers(0, 2**32, 5000, dtype=np.uint64).astype("<u4")
    path = tmp_path / f"r.{kind}"
    if kind.startswith("pt"):
        path.write_bytes(W.pt_bytes(kind == "pt3", records, sync_rate_hz=40_000_000))
    else:
        path.write_bytes(W.ht_bytes(kind == "ht3", "2.0", records, sync_rate_hz=40_000_000))
    r = import_files([path], tmp_path / "out.h5")
    out = read_out(tmp_path / "out.h5")
    assert np.all(np.diff(out["timestamps"]) >= 0) and out["counts"].sum() == r.photons > 0
    assert_valid(tmp_path / "out.h5")

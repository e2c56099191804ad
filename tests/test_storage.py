"""Photon-HDF5 storage: the streaming writer (SWMR, crash and disk-space safety) and the reader."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labctl.blocks import ChannelMap, LossRecord, PhotonBlock
from labctl.errors import DiskSpaceError
from labctl.run import RunInfo, RunSummary
from labctl.storage import PhotonHDF5Reader, PhotonHDF5Writer, describe_file
from labctl.storage import layout as L

PERIOD_PS = 1_000_000


def make_run(**overrides) -> RunInfo:
    fields = dict(run_id="run-0001", start_time_iso="2026-01-01T00:00:00+00:00",
                  channels=ChannelMap(laser_sync=0, spad_a=2, spad_b=1, frame_marker=5),
                  detector_labels={2: "spad_a", 1: "spad_b"}, nominal_sync_period_ps=PERIOD_PS, seed=42,
                  station_snapshot={"laser": {"rate_hz": np.float64(1e6), "mode": "internal"}})
    fields.update(overrides)
    return RunInfo(**fields)


def make_summary(**overrides) -> RunSummary:
    fields = dict(clean=True, end_reason="duration", duration_ps=10**9, counts={0: 1000, 1: 10, 2: 12},
                  photons_written=0, losses=[], measured_sync_period_ps=999_998.5)
    fields.update(overrides)
    return RunSummary(**fields)


def make_blocks(sizes: list[int], seed: int = 0, markers_every: int = 3) -> list[PhotonBlock]:
    """Consecutive blocks of sorted photons (SPADs on channels 1 and 2), some with frame markers."""
    rng = np.random.default_rng(seed)
    blocks, t = [], 0
    for k, n in enumerate(sizes):
        ts = t + np.cumsum(rng.integers(1, 5000, n), dtype=np.int64)
        stop = int(ts[-1]) + 1 if n else t + 1000
        markers = np.array([t + 1], np.int64) if k % markers_every == 0 else np.empty(0, np.int64)
        blocks.append(PhotonBlock(ts, rng.integers(1, 3, n).astype(np.uint8),
                                  rng.integers(-1, PERIOD_PS, n).astype(np.int32), markers=markers, span_ps=(t, stop)))
        t = stop
    return blocks


def concat(blocks: list[PhotonBlock], name: str) -> np.ndarray:
    return np.concatenate([getattr(b, name) for b in blocks])


def write_file(path: Path, blocks: list[PhotonBlock], summary: RunSummary | None = None, **kw) -> PhotonHDF5Writer:
    w = PhotonHDF5Writer(path, **kw)
    w.open(make_run())
    for b in blocks:
        w.write(b)
    w.close(summary or make_summary())
    return w


def run_python(code: str, *args: str, timeout_s: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True,
                          timeout=timeout_s)


# ----------------------------------------------------------------- round trip and chunk invariance
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=st.lists(st.integers(0, 500), min_size=0, max_size=10),
       chunk_photons=st.sampled_from([5, 64, 256, 4096]),
       flush_interval_s=st.sampled_from([0.0, 3600.0]),
       read_chunk=st.sampled_from([11, 250, 1 << 20]))
def test_round_trip_returns_exactly_what_was_written(sizes, chunk_photons, flush_interval_s, read_chunk):
    blocks = make_blocks(sizes, seed=len(sizes))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "run.h5"
        w = write_file(path, blocks, chunk_photons=chunk_photons, flush_interval_s=flush_interval_s)
        assert w.photons_written == sum(sizes)
        with PhotonHDF5Reader(path) as r:
            got = list(r.iter_blocks(read_chunk))
            assert r.num_photons == sum(sizes)
    assert all(0 < len(b) <= read_chunk for b in got if len(b))
    for name in ("timestamps", "detectors", "nanotimes", "markers"):
        expected = concat(blocks, name) if blocks else np.empty(0)
        actual = concat(got, name) if got else np.empty(0)
        assert actual.dtype == expected.dtype or not len(expected)
        np.testing.assert_array_equal(actual, expected)
    spans = [b.span_ps for b in got]
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:])), "read blocks tile the time axis"


def test_different_block_splits_give_identical_datasets(tmp_path):
    one = make_blocks([5000])[0]
    cuts = np.sort(np.random.default_rng(3).choice(np.arange(1, 5000), 40, replace=False))
    pieces = [PhotonBlock(t, d, n) for t, d, n in zip(np.split(one.timestamps, cuts), np.split(one.detectors, cuts),
                                                      np.split(one.nanotimes, cuts))]
    write_file(tmp_path / "a.h5", [one], chunk_photons=512, flush_interval_s=3600.0)
    write_file(tmp_path / "b.h5", pieces, chunk_photons=512, flush_interval_s=0.0)
    with h5py.File(tmp_path / "a.h5", "r") as a, h5py.File(tmp_path / "b.h5", "r") as b:
        for path in (*L.STREAM_PATHS, L.SETUP_DETECTOR_COUNTS, L.SETUP_DETECTOR_ID):
            np.testing.assert_array_equal(a[path][()], b[path][()], err_msg=path)
        assert a[L.SETUP_DETECTOR_COUNTS][()].sum() == 5000


# ----------------------------------------------------------------- layout and SWMR
READER_SCRIPT = """
    import sys
    from labctl.storage import PhotonHDF5Reader
    from labctl.storage import layout as L
    with PhotonHDF5Reader(sys.argv[1]) as r:
        missing = [p for p in L.REQUIRED_PATHS if p not in r._file]
        print(r.num_photons, len(missing), r.run_end() is None)
"""


def test_whole_layout_exists_right_after_open_and_opens_swmr_elsewhere(tmp_path):
    path = tmp_path / "run.h5"
    w = PhotonHDF5Writer(path, author="A. Student")
    w.open(make_run())
    try:
        out = run_python(READER_SCRIPT, str(path))
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["0", "0", "True"]  # no photons, nothing missing, no end record yet
        with h5py.File(path, "r", swmr=True) as f:
            assert f.attrs["format_name"] == b"Photon-HDF5" and f.attrs["format_version"] == b"0.5"
            assert f[L.TIMESTAMPS_UNIT][()] == 1e-12 and f[L.TCSPC_UNIT][()] == 1e-12
            assert f[L.TCSPC_NUM_BINS][()] == PERIOD_PS and f[L.LASER_REPETITION_RATE][()] == 1e6
            assert f[L.MEASUREMENT_TYPE][()] == b"generic"
            assert list(f[L.SETUP_DETECTOR_ID][()]) == [1, 2]  # increasing, as the spec asks
            assert [s.decode() for s in f[L.SETUP_DETECTOR_LABEL][()]] == ["spad_b", "spad_a"]
            assert f[L.SPLIT_CH1][()].tolist() == [2] and f[L.SPLIT_CH2][()].tolist() == [1]
            assert f["/identity/author"][()] == b"A. Student"
            for path_ in (*L.STREAM_PATHS, L.MARKERS, L.LOSSES, L.RUN_LOG):
                ds = f[path_]
                assert ds.maxshape == (None,) and ds.chunks and ds.compression is None, path_
    finally:
        w.close(make_summary())


def test_concurrent_swmr_reader_sees_photons_after_one_flush_interval(tmp_path):
    path = tmp_path / "run.h5"
    block = make_blocks([1000])[0]
    w = PhotonHDF5Writer(path, flush_interval_s=0.3)
    w.open(make_run())
    try:
        w.write(block)  # staged in memory, below one chunk: not in the file yet
        before = run_python(READER_SCRIPT, str(path))
        time.sleep(0.35)
        w.write(PhotonBlock.empty())  # the flush interval has passed: append and flush
        after = run_python(READER_SCRIPT, str(path))
    finally:
        w.close(make_summary())
    assert before.stdout.split()[0] == "0", before.stderr
    assert after.stdout.split()[0] == "1000", after.stderr


WRITER_SCRIPT = """
    import sys, time
    sys.path.insert(0, sys.argv[2])
    from test_storage import make_blocks, make_run, make_summary
    from labctl.storage import PhotonHDF5Writer
    w = PhotonHDF5Writer(sys.argv[1], flush_interval_s=0.05, chunk_photons=256)
    w.open(make_run())
    print("open", flush=True)
    for b in make_blocks([300] * 20, seed=9):
        w.write(b)
        time.sleep(0.03)
    w.close(make_summary())
"""


def test_follow_mode_yields_every_photon_of_a_growing_file_and_then_the_end_record(tmp_path):
    path = tmp_path / "run.h5"
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(WRITER_SCRIPT), str(path),
                             str(Path(__file__).parent)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "open", proc.stderr.read()
        with PhotonHDF5Reader(path) as r:
            got = list(r.iter_blocks(1 << 20, follow=True, poll_s=0.02, timeout_s=30))
            end = r.run_end()
    finally:
        assert proc.wait(timeout=30) == 0, proc.stderr.read()
    expected = make_blocks([300] * 20, seed=9)
    assert len(got) > 1, "a growing file is read in several polls"
    np.testing.assert_array_equal(concat(got, "timestamps"), concat(expected, "timestamps"))
    np.testing.assert_array_equal(concat(got, "markers"), concat(expected, "markers"))
    assert end is not None and end["clean"] and end["photons_written"] == 6000


def test_follow_mode_also_works_with_the_writer_in_a_thread_of_the_same_process(tmp_path):
    path = tmp_path / "run.h5"
    blocks = make_blocks([300] * 10, seed=4)
    w = PhotonHDF5Writer(path, flush_interval_s=0.02, chunk_photons=256)
    w.open(make_run())
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            for b in blocks:
                w.write(b)
                time.sleep(0.01)
            w.close(make_summary())
        except BaseException as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=produce)
    thread.start()
    with PhotonHDF5Reader(path) as r:  # holds the file open while the writer reopens it for run_end
        got = list(r.iter_blocks(follow=True, poll_s=0.01, timeout_s=30))
        end = r.run_end()
    thread.join()
    assert not errors
    np.testing.assert_array_equal(concat(got, "timestamps"), concat(blocks, "timestamps"))
    assert end is not None and end["photons_written"] == 3000


# ----------------------------------------------------------------- crash safety
CRASH_SCRIPT = """
    import os, sys
    sys.path.insert(0, sys.argv[2])
    from test_storage import make_blocks, make_run
    from labctl.storage import PhotonHDF5Writer
    a, b = make_blocks([3000, 5000], seed=5)
    w = PhotonHDF5Writer(sys.argv[1], flush_interval_s=3600, chunk_photons=1024)
    w.open(make_run())
    w.write(a)
    w.flush()
    w.log("this line was never flushed")
    w.write(b)  # four whole chunks reach HDF5, but are never flushed
    os._exit(1)
"""


def test_a_killed_writer_leaves_a_readable_file_with_the_flushed_photons_and_no_end_record(tmp_path):
    path = tmp_path / "run.h5"
    out = run_python(CRASH_SCRIPT, str(path), str(Path(__file__).parent))
    assert out.returncode == 1, out.stderr
    a, b = make_blocks([3000, 5000], seed=5)
    with PhotonHDF5Reader(path) as r:
        n = r.num_photons
        ts = concat(list(r.iter_blocks(1000)), "timestamps")
        assert r.run_end() is None
        assert r.station_snapshot()["run"]["seed"] == 42
    assert 3000 <= n <= 8000
    np.testing.assert_array_equal(ts, np.concatenate([a.timestamps, b.timestamps])[:n])
    text = describe_file(path)
    assert "no end record: the run did not close cleanly (crash?)" in text
    with pytest.raises(OSError, match="open for writing"):
        PhotonHDF5Reader(path, swmr=False)


# ----------------------------------------------------------------- losses, log, errors
def test_losses_from_blocks_and_from_the_summary_are_all_written_once(tmp_path):
    tagger = LossRecord(100, 200, "tagger_flag", 3)
    gap = LossRecord(5000, 9000, "sync_gap", 4)
    queue = LossRecord(20_000, 30_000, "queue_full:file")
    blocks = make_blocks([10, 10, 10])
    blocks[0].losses = [tagger]
    blocks[1].losses = [gap]
    blocks[2].losses = [gap]  # reported twice by the engine
    write_file(tmp_path / "run.h5", blocks, make_summary(losses=[tagger, gap, queue]), flush_interval_s=0.0)
    with PhotonHDF5Reader(tmp_path / "run.h5") as r:
        assert r.losses() == [tagger, gap, queue]
        assert r.run_end()["losses"] == 3
        got = list(r.iter_blocks())
    assert [x for b in got for x in b.losses] == [tagger, gap, queue]
    text = describe_file(tmp_path / "run.h5")
    assert "DATA LOST: 3 stretch(es)" in text and "[queue_full:file]" in text and "3 laser syncs missing" in text


def test_free_space_guard_stops_cleanly_and_names_path_free_bytes_and_margin(tmp_path):
    path = tmp_path / "run.h5"
    free = {"bytes": 10**12}
    margin = 256 * 2**20
    w = PhotonHDF5Writer(path, flush_interval_s=0.0, min_free_bytes=margin, free_bytes=lambda folder: free["bytes"])
    w.open(make_run())
    first, second = make_blocks([2000, 2000])
    w.write(first)
    free["bytes"] = margin + 1000  # less than the margin plus the next block
    with pytest.raises(DiskSpaceError) as info:
        w.write(second)
    message = str(info.value)
    assert str(path) in message and str(margin + 1000) in message and str(margin) in message
    w.close(make_summary())  # the engine still calls close: a no-op now
    with PhotonHDF5Reader(path, swmr=False) as r:  # closed properly: opens without SWMR too
        np.testing.assert_array_equal(concat(list(r.iter_blocks()), "timestamps"), first.timestamps)
        end = r.run_end()
        assert not end["clean"] and end["end_reason"] == "disk space" and end["photons_written"] == 2000
        assert [x.source for x in r.losses()] == ["disk_space:file"]
        assert any(level == "ERROR" and "below the margin" in msg for _, level, msg in r.run_log())


def test_no_file_is_created_when_the_disk_is_already_too_full(tmp_path):
    w = PhotonHDF5Writer(tmp_path / "run.h5", free_bytes=lambda folder: 1000)
    with pytest.raises(DiskSpaceError, match="1000 bytes free"):
        w.open(make_run())
    assert not (tmp_path / "run.h5").exists()


def test_close_after_a_failed_write_keeps_what_was_written(tmp_path):
    path = tmp_path / "run.h5"
    calls = {"n": 0}

    def flaky_free_bytes(folder: str) -> int:
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("statvfs failed")
        return 10**12

    w = PhotonHDF5Writer(path, flush_interval_s=0.0, free_bytes=flaky_free_bytes)
    w.open(make_run())
    first, second, third = make_blocks([500, 500, 500])
    w.write(first)
    with pytest.raises(RuntimeError, match="statvfs"):
        w.write(second)
    with pytest.raises(TypeError, match="timestamps"):
        w.write(PhotonBlock(third.timestamps.astype(np.float64), third.detectors, third.nanotimes))
    w.close(make_summary(clean=False, end_reason="error: statvfs failed"))
    w.close(make_summary())  # idempotent
    with PhotonHDF5Reader(path) as r:
        ts = concat(list(r.iter_blocks()), "timestamps")
        assert r.run_end()["end_reason"] == "error: statvfs failed"
    np.testing.assert_array_equal(ts[:500], first.timestamps)
    assert len(ts) in (500, 1000)  # the second block was staged: written at close, or not at all


def test_log_lines_from_many_threads_all_arrive_and_long_ones_are_cut(tmp_path):
    path = tmp_path / "run.h5"
    w = PhotonHDF5Writer(path, flush_interval_s=0.0)
    w.open(make_run())
    threads = [threading.Thread(target=lambda k=k: [w.log(f"thread {k} line {i}") for i in range(50)])
               for k in range(4)]
    for t in threads:
        t.start()
    for block in make_blocks([100] * 10):
        w.write(block)
    for t in threads:
        t.join()
    w.log("é" * 300, level="warning")
    w.close(make_summary())
    with PhotonHDF5Reader(path) as r:
        log = r.run_log()
    assert sorted(m for _, _, m in log[:-1]) == sorted(f"thread {k} line {i}" for k in range(4) for i in range(50))
    assert [t for t, _, _ in log] == sorted(t for t, _, _ in log)
    _, level, message = log[-1]
    assert level == "WARNING" and message.endswith("…") and len(message.encode()) <= L.LOG_MESSAGE_BYTES


def test_file_is_never_overwritten(tmp_path):
    (tmp_path / "run.h5").write_bytes(b"precious")
    with pytest.raises(FileExistsError):
        PhotonHDF5Writer(tmp_path / "run.h5").open(make_run())
    assert (tmp_path / "run.h5").read_bytes() == b"precious"


def test_run_metadata_and_end_record_round_trip(tmp_path):
    path = tmp_path / "run.h5"
    write_file(path, make_blocks([400, 600]), make_summary(errors=["late tag"], safe_state_actions=["shutter: closed"],
                                                            safe_state_warnings=["still emitting"]))
    with PhotonHDF5Reader(path) as r:
        snap = r.station_snapshot()
        end = r.run_end()
        assert r.is_labctl_file and r.detector_ids == (1, 2) and r.detector_labels == {1: "spad_b", 2: "spad_a"}
        assert r.acquisition_duration_s == pytest.approx(1e-3)  # summary.duration_ps = 1e9 ps
        assert sum(r.photon_counts().values()) == 1000
    assert snap["run"]["channels"]["spad_a"] == 2 and snap["run"]["seed"] == 42
    assert snap["station"]["laser"] == {"rate_hz": 1e6, "mode": "internal"}
    assert end == {"clean": True, "end_reason": "duration", "duration_ps": 10**9, "photons_written": 1000,
                   "counts": {0: 1000, 1: 10, 2: 12}, "losses": 0, "measured_sync_period_ps": 999_998.5,
                   "errors": ["late tag"], "safe_state_actions": ["shutter: closed"],
                   "safe_state_warnings": ["still emitting"]}
    text = describe_file(path)
    assert "Photon-HDF5 0.5" in text and "run-0001" in text and "end:         clean (duration)" in text
    assert "detector 1 (spad_b)" in text and "losses:      none recorded" in text


# ----------------------------------------------------------------- other tools' files
def write_foreign_file(path: Path, timestamps_unit_s: float = 4e-12) -> tuple[np.ndarray, ...]:
    """A Photon-HDF5 file written by hand with h5py, as another tool would (not by labctl)."""
    rng = np.random.default_rng(11)
    ts = np.cumsum(rng.integers(1, 10**6, 2500)).astype(np.int64)
    det = rng.integers(0, 2, 2500).astype(np.uint8)
    nt = rng.integers(0, 4096, 2500).astype(np.uint16)
    nt[7] = 5000  # outside tcspc_num_bins: other tools' values are kept as they are
    with h5py.File(path, "w") as f:
        f.attrs["format_name"], f.attrs["format_version"] = np.bytes_(b"Photon-HDF5"), np.bytes_(b"0.5")
        f["description"], f["acquisition_duration"] = np.bytes_(b"foreign"), 0.012
        f["photon_data/timestamps"], f["photon_data/detectors"], f["photon_data/nanotimes"] = ts, det, nt
        f["photon_data/timestamps_specs/timestamps_unit"] = timestamps_unit_s
        f["photon_data/nanotimes_specs/tcspc_unit"] = 16e-12
        f["photon_data/nanotimes_specs/tcspc_num_bins"] = 4096
        f["photon_data/nanotimes_specs/tcspc_range"] = 4096 * 16e-12
        f["photon_data/measurement_specs/measurement_type"] = np.bytes_(b"smFRET")
        f["photon_data/measurement_specs/laser_repetition_rate"] = 40e6
        for key, value in dict(num_pixels=2, num_spots=1, num_spectral_ch=2, num_polarization_ch=1,
                               num_split_ch=1, modulated_excitation=0, lifetime=1).items():
            f[f"setup/{key}"] = value
        f["identity/software"] = np.bytes_(b"phconvert")
    return ts, det, nt


def test_a_foreign_photon_hdf5_file_is_read_in_picoseconds(tmp_path):
    ts, det, nt = write_foreign_file(tmp_path / "other.h5")
    with PhotonHDF5Reader(tmp_path / "other.h5") as r:
        got = list(r.iter_blocks(1000))
        assert not r.is_labctl_file and r.run_end() is None and r.losses() == []
        assert r.timestamps_unit_s == 4e-12 and r.nanotimes_unit_s == 16e-12 and r.tcspc_num_bins == 4096
        assert r.detector_ids == (0, 1) and r.laser_repetition_rate_hz == 40e6
    assert [len(b) for b in got] == [1000, 1000, 500]
    np.testing.assert_array_equal(concat(got, "timestamps"), ts * 4)
    np.testing.assert_array_equal(concat(got, "detectors"), det)
    nanotimes = concat(got, "nanotimes")
    assert nanotimes.dtype == np.int32 and nanotimes[7] == 80_000
    np.testing.assert_array_equal(nanotimes, nt.astype(np.int32) * 16)
    text = describe_file(tmp_path / "other.h5")
    assert "phconvert" in text and "unit 16 ps" in text and "end:" not in text


def test_timestamps_that_are_not_whole_picoseconds_raise_a_clear_error(tmp_path):
    write_foreign_file(tmp_path / "other.h5", timestamps_unit_s=2.5e-13)
    with PhotonHDF5Reader(tmp_path / "other.h5") as r, pytest.raises(ValueError, match="timestamps_unit = 2.5e-13"):
        next(r.iter_blocks())


def test_a_file_that_is_not_hdf5_is_refused_by_name(tmp_path):
    (tmp_path / "run.ptu").write_bytes(b"PQTTTR\x00\x00" + bytes(100))
    with pytest.raises(ValueError, match="run.ptu: not an HDF5 file"):
        PhotonHDF5Reader(tmp_path / "run.ptu")


def test_repeated_reads_and_refreshes_return_the_same_photons(tmp_path):
    # Guards the one-handle-per-dataset rule (see PhotonHDF5Reader._dataset): a second
    # handle refreshed in between used to turn the partial last chunk into a copy of the first.
    block = make_blocks([6])[0]
    write_file(tmp_path / "run.h5", [block], chunk_photons=5, flush_interval_s=0.0)
    with PhotonHDF5Reader(tmp_path / "run.h5") as r:
        for _ in range(3):
            assert r.num_photons == 6 and sum(r.photon_counts().values()) == 6
            np.testing.assert_array_equal(concat(list(r.iter_blocks(4)), "timestamps"), block.timestamps)


def test_phconvert_validates_a_labctl_file_strictly_and_reads_its_photons(tmp_path):
    """phconvert (the Photon-HDF5 reference library) accepts the file, descriptions included."""
    tables = pytest.importorskip("tables")
    hdf5 = pytest.importorskip("phconvert.hdf5")
    path = tmp_path / "valid.h5"
    blocks = make_blocks([500, 700])
    write_file(path, blocks)
    with tables.open_file(str(path)) as h5:
        hdf5.assert_valid_photon_hdf5(h5, strict_description=True, require_setup=True, warnings=False)
        np.testing.assert_array_equal(h5.root.photon_data.timestamps.read(), concat(blocks, "timestamps"))
        np.testing.assert_array_equal(h5.root.photon_data.nanotimes.read(), concat(blocks, "nanotimes"))
        assert h5.root.photon_data.timestamps_specs.timestamps_unit.read() == 1e-12
    with h5py.File(path, "r+") as f:  # and the check is real: a wrong description is refused
        f["photon_data/timestamps"].attrs["TITLE"] = np.bytes_(b"photon times")
    with tables.open_file(str(path)) as h5:
        with pytest.raises(hdf5.Invalid_PhotonHDF5, match=r'Description \(TITLE\) for "/photon_data/timestamps"'):
            hdf5.assert_valid_photon_hdf5(h5, strict_description=True)


def test_a_reader_sharing_its_file_with_a_writer_of_the_same_process_never_refreshes(tmp_path, monkeypatch):
    """HDF5 opens a file once per process: such a reader sees the writer's cache, and a refresh would
    evict the writer's unflushed metadata and read stale bytes from disk (the follow test above failed
    about once in 25 runs that way)."""
    path = tmp_path / "run.h5"
    blocks = make_blocks([256] * 4, seed=7)  # whole chunks: each reaches HDF5 at once, none is flushed
    w = PhotonHDF5Writer(path, flush_interval_s=3600, chunk_photons=256)
    w.open(make_run())

    def refused(self):
        raise AssertionError(f"refresh() of {self.name} in a reader that shares the writer's file")

    monkeypatch.setattr(h5py.Dataset, "refresh", refused)
    with PhotonHDF5Reader(path) as r:
        for b in blocks:
            w.write(b)
        assert r.num_photons == 1024  # unflushed chunks included: one cache
        got = list(r.iter_blocks(follow=False))
    w.close(make_summary())
    np.testing.assert_array_equal(concat(got, "timestamps"), concat(blocks, "timestamps"))


def test_the_end_record_is_filled_before_it_is_linked_so_a_reader_sees_all_of_it_or_none(tmp_path, monkeypatch):
    from labctl.storage import layout

    seen: list[object] = []
    real = layout.write_run_end

    def watching(group, end):
        seen.append(group.name)  # None: an unlinked group, invisible to readers while it is filled
        real(group, end)

    monkeypatch.setattr(layout, "write_run_end", watching)
    path = tmp_path / "run.h5"
    w = PhotonHDF5Writer(path, flush_interval_s=3600, chunk_photons=256)
    w.open(make_run())
    w.write(make_blocks([100], seed=8)[0])
    w.close(make_summary())
    assert seen == [None]
    with PhotonHDF5Reader(path) as r:
        assert r.run_end()["photons_written"] == 100


def test_reopening_for_the_end_record_waits_for_a_reader_of_this_process_that_holds_the_file(tmp_path, monkeypatch):
    """HDF5 refuses a read/write open of a file this process has open read-only (a following
    reader polls for the end record that way); the writer waits for it instead of giving up."""
    from labctl.storage import file_end

    path = tmp_path / "closed.h5"
    with h5py.File(path, "w", libver=("v110", "v110")) as f:
        f["x"] = 1
    holder = h5py.File(path, "r")
    waits: list[float] = []
    this_thread, real_sleep = threading.get_ident(), time.sleep

    def sleep(seconds: float) -> None:  # the reader lets go while the writer waits
        if threading.get_ident() != this_thread:  # other tests' threads still winding down
            real_sleep(seconds)
            return
        waits.append(seconds)
        if holder.id.valid:
            holder.close()

    monkeypatch.setattr(time, "sleep", sleep)
    f = file_end.reopen_rw(str(path))
    try:
        assert f.mode == "r+" and int(f["x"][()]) == 1
    finally:
        f.close()
    assert len(waits) == 1

"""Damaged and wrong input files: ``labctl info`` / ``labctl analyze`` answer in seconds with one clear line.

Every CLI call runs in a subprocess with a timeout, so a hang fails the test instead of hanging CI.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from labctl.storage import PhotonHDF5Reader, describe_file
from labctl.storage import layout as L
from tests.test_storage import make_blocks, write_file

CLI_TIMEOUT_S = 60


def labctl(*args: str, timeout_s: float = CLI_TIMEOUT_S) -> subprocess.CompletedProcess:
    """``labctl ARGS`` in a subprocess (this tree's code); a hang raises TimeoutExpired."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run([sys.executable, "-c", "import sys; from labctl.cli import main; sys.exit(main())", *args],
                          capture_output=True, text=True, timeout=timeout_s, env=env)


def run_main(*args: str) -> subprocess.CompletedProcess:
    """``labctl ARGS`` in this process (for cases that cannot hang: faster than a subprocess)."""
    import contextlib
    import io

    from labctl.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return subprocess.CompletedProcess(["labctl", *args], code, out.getvalue(), err.getvalue())


def assert_refused(out: subprocess.CompletedProcess, *needles: str) -> None:
    """Exit 2, one line on stderr naming the problem, no traceback."""
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    assert "Traceback" not in out.stderr, out.stderr[-2000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def labctl_file(tmp_path_factory) -> Path:
    """A closed labctl file with several photon chunks (1024 photons each)."""
    path = tmp_path_factory.mktemp("damaged") / "run.h5"
    write_file(path, make_blocks([3000, 2500, 1700], seed=3), chunk_photons=1024)
    return path


def truncated_copy(src: Path, dst: Path, n_bytes: int) -> Path:
    dst.write_bytes(src.read_bytes()[:n_bytes])
    return dst


# ----------------------------------------------------------------- finding 1: truncated files hang
@pytest.mark.parametrize("cut", ["1024", "half"])
@pytest.mark.parametrize("command", ["info", "analyze"])
def test_a_truncated_file_is_refused_in_seconds_not_hung_on(labctl_file, tmp_path, cut, command):
    size = labctl_file.stat().st_size
    n = 1024 if cut == "1024" else size // 2
    t = truncated_copy(labctl_file, tmp_path / "t.h5", n)
    out = labctl(command, str(t), timeout_s=30)
    assert_refused(out, str(t), "truncated", f"{n:,} bytes of the {size:,}", "labctl repair")


def test_a_crashed_file_cut_short_reads_its_readable_part_with_a_warning(tmp_path):
    """kill -9 leaves the superblock's end address stale: the cut is found from the chunk index."""
    from tests.test_storage import CRASH_SCRIPT, run_python

    path = tmp_path / "crash.h5"
    out = run_python(CRASH_SCRIPT, str(path), str(Path(__file__).parent))
    assert out.returncode == 1, out.stderr
    with PhotonHDF5Reader(path) as r:
        full = r.num_photons
        chunk = r._dataset(L.TIMESTAMPS).chunks[0]
        infos = [ds.id.get_chunk_info(i) for ds in map(r._dataset, L.STREAM_PATHS)
                 for i in range(ds.id.get_num_chunks())]
    last = max(infos, key=lambda info: info.byte_offset)  # the chunk stored last: cut inside it
    assert full == 3000 and last.chunk_offset[0] == 2 * chunk
    cut = truncated_copy(path, tmp_path / "cut.h5", last.byte_offset + 100)
    with PhotonHDF5Reader(cut) as r:
        assert r.num_photons == 2 * chunk
        assert any("truncated: only the first 2,048 of 3,000 photons" in w for w in r.warnings())
    text = labctl("info", str(cut))
    assert text.returncode == 0, text.stderr
    assert "!! warning:  the file is truncated: only the first 2,048 of 3,000 photons" in text.stdout
    assert "photons:     2,048" in text.stdout


def test_a_crashed_file_cut_inside_its_metadata_is_refused_by_name(tmp_path):
    from tests.test_storage import CRASH_SCRIPT, run_python

    path = tmp_path / "crash.h5"
    assert run_python(CRASH_SCRIPT, str(path), str(Path(__file__).parent)).returncode == 1
    cut = truncated_copy(path, tmp_path / "cut.h5", 30_000)
    assert_refused(labctl("info", str(cut), timeout_s=30), str(cut), "damaged HDF5 file")


# ----------------------------------------------------------------- finding 7: one clear line, exit 2
def test_inputs_that_are_not_photon_files_get_one_line_each(tmp_path):
    (tmp_path / "empty.h5").write_bytes(b"")
    (tmp_path / "random.h5").write_bytes(np.random.default_rng(0).bytes(5000))
    (tmp_path / "folder.h5").mkdir()
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f["x"] = np.arange(3)
    cases = {"missing.h5": "no such file", "folder.h5": "is a directory", "empty.h5": "empty file (0 bytes)",
             "random.h5": "not an HDF5 file", "plain.h5": "no /photon_data/timestamps dataset"}
    for command in ("info", "analyze"):
        for name, needle in cases.items():
            assert_refused(run_main(command, str(tmp_path / name)), str(tmp_path / name), needle)


def test_photon_datasets_of_the_wrong_kind_are_refused_by_name(labctl_file, tmp_path):
    path = tmp_path / "bad.h5"
    path.write_bytes(labctl_file.read_bytes())
    with h5py.File(path, "r+") as f:
        del f[L.NANOTIMES]
        f[L.NANOTIMES] = np.zeros((3, 2), np.float32)
    with pytest.raises(ValueError, match=r"/photon_data/nanotimes \(dtype float32, shape \(3, 2\)\): "
                                            r"must be a 1-D integer dataset"):
        PhotonHDF5Reader(path)
    assert_refused(run_main("info", str(path)), "/photon_data/nanotimes")


# ----------------------------------------------------------------- finding 8: unequal lengths
def test_photon_datasets_of_unequal_length_are_read_to_the_common_length_and_info_says_so(labctl_file, tmp_path):
    path = tmp_path / "unequal.h5"
    path.write_bytes(labctl_file.read_bytes())
    with h5py.File(path, "r+") as f:
        f[L.DETECTORS].resize((5000,))
    with PhotonHDF5Reader(path) as r:
        assert r.stream_lengths == {L.TIMESTAMPS: 7200, L.DETECTORS: 5000, L.NANOTIMES: 7200}
        assert r.num_photons == 5000
        assert sum(len(b) for b in r.iter_blocks(4096)) == 5000
    text = describe_file(path)
    assert ("!! warning:  photon datasets differ in length (timestamps 7,200, detectors 5,000, nanotimes 7,200): "
            "only the first 5,000 photons (the common length) are read") in text


# ----------------------------------------------------------------- finding 8: unsorted photons
def test_unsorted_timestamps_are_reported_with_the_two_photons_out_of_order(tmp_path):
    from labctl.analysis import G2Accumulator
    from labctl.blocks import PhotonBlock
    from tests.test_analyze import write_foreign_file

    path = tmp_path / "unsorted.h5"
    write_foreign_file(path, seconds=0.2)
    with h5py.File(path, "r+") as f:
        ts = f["photon_data/timestamps"][()]
        ts[100], ts[101] = ts[101], ts[100]
        f["photon_data/timestamps"][...] = ts
    out = labctl("analyze", str(path))
    assert_refused(out, f"photon 101 of the block starting at {ts[0] * 4} ps is at {ts[101] * 4} ps, "
                        f"after one at {ts[100] * 4} ps: timestamps must be sorted")
    assert "None" not in out.stderr
    g2 = G2Accumulator(1, 2, bin_width_ps=10, range_ps=100, period_ps=0)
    block = PhotonBlock(np.array([5, 9, 7], np.int64), np.array([1, 2, 1], np.uint8), np.zeros(3, np.int32))
    with pytest.raises(ValueError, match=r"photon 2 of the block starting at 5 ps is at 7 ps, after one at 9 ps"):
        g2.update(block)
    g2 = G2Accumulator(1, 2, bin_width_ps=10, range_ps=100, period_ps=0)
    g2.update(PhotonBlock(np.array([50], np.int64), np.array([1], np.uint8), np.zeros(1, np.int32)))
    with pytest.raises(ValueError, match=r"the block starts at 7 ps, before the previous photon at 50 ps"):
        g2.update(PhotonBlock(np.array([7], np.int64), np.array([2], np.uint8), np.zeros(1, np.int32)))


def test_analyze_of_a_file_whose_fit_has_no_finite_fractions_prints_its_result(tmp_path):
    """Found by the fuzzer: a fit with non-finite amplitude fractions crashed the text output."""
    from tests.test_fuzz_files import VALID

    path = tmp_path / "odd.h5"
    with h5py.File(path, "w") as f:
        for p, value in VALID.items():
            f[p] = value
    out = labctl("analyze", str(path))
    assert out.returncode == 0, out.stderr
    assert "lifetime    mono: 100.000 ns (error not available)  (amplitude fractions -" in out.stdout
    assert "RuntimeWarning" not in out.stderr
    assert ("labctl analyze: warning: photon datasets differ in length (timestamps 4,000, detectors 3,999, "
            "nanotimes 3,999)") in out.stderr


def test_setup_values_that_are_not_finite_numbers_are_refused_or_ignored_by_name(tmp_path):
    """Found by the slow fuzz run: float ids with inf, an infinite duration crashed info/analyze."""
    from tests.test_fuzz_files import VALID

    path = tmp_path / "odd.h5"
    with h5py.File(path, "w") as f:
        for p, value in VALID.items():
            f[p] = value
        del f[L.SETUP_DETECTOR_ID]
        f[L.SETUP_DETECTOR_ID] = np.array([0.0, np.inf])
        del f[L.ACQUISITION_DURATION]
        f[L.ACQUISITION_DURATION] = np.inf
    assert_refused(labctl("analyze", str(path)), "/setup/detectors/id (float64): must be integer ids")
    assert labctl("info", str(path)).returncode == 0  # info does not need the ids
    with h5py.File(path, "r+") as f:
        del f[L.SETUP_DETECTOR_ID]
    with PhotonHDF5Reader(path) as r:
        assert r.acquisition_duration_s is None and r.detector_ids == (0, 1)
    out = labctl("info", str(path))
    assert out.returncode == 0 and "duration:    0.000399812 s" in out.stdout, out.stdout + out.stderr  # from the photons


def test_info_of_a_file_whose_timestamps_span_more_than_int64_gives_the_exact_duration(tmp_path):
    """Found by the 1,000-example fuzz run: ``ts[-1] - ts[0]`` overflowed int64 (a RuntimeWarning and
    a negative duration) for a damaged file without ``acquisition_duration``."""
    import warnings

    from tests.photon_hdf5_files import write_ps_h5py

    path = tmp_path / "span.h5"
    write_ps_h5py(path, np.array([-(2**62) - 5, 2**62 + 5], np.int64), np.array([1, 2], np.uint8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's overflow warning would fail the test
        text = describe_file(path)
    assert "duration:    9.22337e+06 s" in text, text  # (2**63 + 10) ps

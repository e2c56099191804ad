"""``labctl repair``: crashed and truncated files become clean, valid Photon-HDF5 files holding exactly the
first photons of the original, with a record of what was recovered and what was lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from labctl.errors import ConfigError, DataFileError
from labctl.storage import PhotonHDF5Reader
from labctl.storage import layout as L
from labctl.storage.repair import default_repair_path, repair_file
from tests.test_damaged_files import assert_refused, labctl, run_main
from tests.test_storage import CRASH_SCRIPT, make_blocks, run_python, write_file


def photons(path: Path) -> dict[str, np.ndarray]:
    """The three photon datasets as stored (raw, no unit conversion)."""
    with h5py.File(path, "r", swmr=True) as f:
        return {p: f[p][()] for p in L.STREAM_PATHS}


def assert_valid_photon_hdf5(path: Path) -> None:
    tables = pytest.importorskip("tables")
    hdf5 = pytest.importorskip("phconvert.hdf5")
    with tables.open_file(str(path)) as h5:
        hdf5.assert_valid_photon_hdf5(h5, strict_description=True, require_setup=True, warnings=False)


def assert_prefix(repaired: Path, original: dict[str, np.ndarray], n: int) -> None:
    got = photons(repaired)
    for p in L.STREAM_PATHS:
        assert len(got[p]) == n, p
        np.testing.assert_array_equal(got[p], original[p][:n])


@pytest.fixture(scope="module")
def closed_file(tmp_path_factory) -> Path:
    """A closed labctl file: 7,200 photons in chunks of 1,024."""
    path = tmp_path_factory.mktemp("repair") / "run.h5"
    write_file(path, make_blocks([3000, 2500, 1700], seed=7), chunk_photons=1024)
    return path


def test_a_killed_writers_file_is_copied_whole_with_an_end_record_that_says_so(tmp_path):
    src = tmp_path / "crash.h5"
    assert run_python(CRASH_SCRIPT, str(src), str(Path(__file__).parent)).returncode == 1
    original = photons(src)
    out = run_main("repair", str(src))
    assert out.returncode == 0, out.stderr
    repaired = default_repair_path(src)
    assert repaired == tmp_path / "crash.repaired.h5" and repaired.exists()
    n = len(original[L.TIMESTAMPS])
    assert_prefix(repaired, original, n)
    assert_valid_photon_hdf5(repaired)
    with PhotonHDF5Reader(repaired) as r:
        end, record = r.run_end(), r.repair_record()
        assert r.station_snapshot()["run"]["seed"] == 42
        assert sum(r.photon_counts().values()) == n
    assert end["clean"] is False and "never closed the file" in end["end_reason"]
    assert record["photons_recovered"] == n and record["photons_lost"] == 0 and record["had_run_end"] == 0
    assert record["source_file"] == str(src)
    info = run_main("info", str(repaired))
    assert f"repaired:    from {src}: {n:,} of {n:,} photons recovered (0 lost)" in info.stdout


@pytest.mark.parametrize("fraction", [0.35, 0.6, 0.8, 0.95])
def test_a_truncated_file_gives_back_exactly_its_first_photons(closed_file, tmp_path, fraction):
    data = closed_file.read_bytes()
    src = tmp_path / "cut.h5"
    src.write_bytes(data[:int(len(data) * fraction)])
    original = photons(closed_file)
    out = tmp_path / "fixed.h5"
    result = run_main("repair", str(src), "--out", str(out))
    if result.returncode == 2:  # the cut took the metadata: said so, nothing written
        assert_refused(result, str(src), "nothing can be recovered")
        assert not out.exists()
        return
    assert result.returncode == 0, result.stderr
    with PhotonHDF5Reader(out) as r:
        record, end = r.repair_record(), r.run_end()
    n = record["photons_recovered"]
    assert_prefix(out, original, n)
    assert_valid_photon_hdf5(out)
    assert record["photons_declared"] == 7200 and record["photons_lost"] == 7200 - n
    assert f"photons     {n:,} recovered of 7,200 in the source's index ({7200 - n:,} lost)" in result.stdout
    assert end["clean"] is False  # the end record, written last, is cut off: the copy says it has none
    assert record["had_run_end"] == 0 and "never closed the file" in end["end_reason"]
    assert f"{n:,} of 7,200 photons recovered" in end["errors"][-1]
    assert any(m.startswith("/user/labctl") for m in record["missing"]), record["missing"]  # its group moved to the end


def test_truncations_recover_more_photons_the_later_the_cut(closed_file, tmp_path):
    """The chunk index reaches the photons: a cut late in the file keeps most of them."""
    data = closed_file.read_bytes()
    recovered = []
    for k, fraction in enumerate((0.2, 0.35, 0.5, 0.7, 1.0)):
        src = tmp_path / f"cut{k}.h5"
        src.write_bytes(data[:int(len(data) * fraction)])
        try:
            recovered.append(repair_file(src, tmp_path / f"fixed{k}.h5")["photons_recovered"])
        except DataFileError:
            recovered.append(0)
    assert recovered == sorted(recovered) and recovered[-1] == 7200 and recovered[-2] >= 6144, recovered


def test_repair_never_writes_onto_its_input_and_refuses_what_it_cannot_read(closed_file, tmp_path):
    src = tmp_path / "run.h5"
    src.write_bytes(closed_file.read_bytes())
    before = src.read_bytes()
    with pytest.raises(ConfigError, match="is the input FILE"):
        repair_file(src, src, overwrite=True)
    assert_refused(run_main("repair", str(src), "--out", str(src), "--overwrite"), "is the input FILE")
    assert src.read_bytes() == before
    (tmp_path / "head.h5").write_bytes(before[:1024])
    assert_refused(run_main("repair", str(tmp_path / "head.h5")), "nothing can be recovered")
    (tmp_path / "noise.h5").write_bytes(os.urandom(4096))
    assert_refused(run_main("repair", str(tmp_path / "noise.h5")), "not an HDF5 file")
    assert not (tmp_path / "head.repaired.h5").exists() and not (tmp_path / "noise.repaired.h5").exists()
    repaired = default_repair_path(src)
    repaired.write_bytes(b"old")
    assert_refused(run_main("repair", str(src)), "already exists")
    assert repaired.read_bytes() == b"old"


def test_a_real_acquisition_killed_with_sigkill_is_repaired(tmp_path):
    out = tmp_path / "killed.h5"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "labctl.cli", "acquire", "--duration", "60", "--out", str(out),
                             "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 120
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert out.exists(), "acquire never created its file"
        time.sleep(2.5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    original = photons(out)
    assert len(original[L.TIMESTAMPS]) > 0
    result = run_main("repair", str(out))
    assert result.returncode == 0, result.stderr
    repaired = default_repair_path(out)
    with PhotonHDF5Reader(repaired) as r:
        record, end = r.repair_record(), r.run_end()
    n = record["photons_recovered"]
    assert n == min(len(a) for a in original.values())
    assert_prefix(repaired, original, n)
    assert_valid_photon_hdf5(repaired)
    assert end["clean"] is False and record["had_run_end"] == 0


def test_a_file_whose_timestamps_span_more_than_int64_ps_is_repaired(tmp_path):
    """Found by the slow fuzz run: the end record's duration overflowed int64."""
    src = tmp_path / "wide.h5"
    with h5py.File(src, "w") as f:
        f[L.TIMESTAMPS] = np.array([0, 2**62], np.int64)
        f[L.TIMESTAMPS_UNIT] = np.float64(1e-9)  # 2**62 ns: beyond int64 ps
        f[L.DETECTORS] = np.array([1, 2], np.uint8)
    record = repair_file(src, tmp_path / "out.h5")
    assert record["photons_recovered"] == 2 and record["time_range_ticks"] == [0, 2**62]
    with PhotonHDF5Reader(tmp_path / "out.h5", swmr=False) as r:
        assert r.run_end()["duration_ps"] == 2**62 and r.run_end()["clean"] is False

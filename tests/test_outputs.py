"""Refused commands change no file; outputs are never inputs; bad sizes are refused with the number of bins.

Each CLI call runs in a subprocess (``tests.test_damaged_files.labctl``) with a timeout.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import pytest

from labctl.errors import ConfigError
from labctl.storage.outputs import Recording, check_output_file, check_output_folder, write_text_atomic
from labctl.storage import PhotonHDF5Reader
from tests.test_damaged_files import assert_refused, labctl, run_main
from tests.test_storage import make_blocks, write_file


@pytest.fixture(scope="module")
def photon_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("outputs") / "run.h5"
    write_file(path, make_blocks([3000, 2500], seed=4), chunk_photons=1024)
    return path


def copy_of(src: Path, dst: Path) -> Path:
    dst.write_bytes(src.read_bytes())
    return dst


# ----------------------------------------------------------------- finding 4: refused commands destroy files
def test_acquire_overwrite_with_a_missing_station_file_leaves_the_old_recording(photon_file, tmp_path):
    old = copy_of(photon_file, tmp_path / "old.h5")
    before = old.read_bytes()
    out = run_main("acquire", "--duration", "1", "--out", str(old), "--overwrite", "--config", str(tmp_path / "no.yaml"))
    assert_refused(out, "no.yaml")
    assert old.read_bytes() == before


def test_acquire_refuses_to_record_onto_its_own_station_file(tmp_path):
    station = tmp_path / "s.yaml"
    station.write_text("instruments: {}\n")
    out = run_main("acquire", "--duration", "1", "--config", str(station), "--out", str(station), "--overwrite")
    assert_refused(out, "--out", "is the input --config")
    assert station.read_text() == "instruments: {}\n"


def test_analyze_refuses_json_onto_its_input_and_keeps_the_data(photon_file, tmp_path):
    data = copy_of(photon_file, tmp_path / "x.h5")
    before = data.read_bytes()
    assert_refused(run_main("analyze", str(data), "--json", str(data)), "--json", "is the input FILE")
    assert_refused(run_main("analyze", str(data), "--json", str(tmp_path / "." / "x.h5")), "is the input FILE")
    assert data.read_bytes() == before


def test_analyze_refuses_plots_into_the_input_or_onto_an_existing_file(photon_file, tmp_path):
    data = copy_of(photon_file, tmp_path / "g2.png")  # a plot would be written onto it
    assert_refused(run_main("analyze", str(data), "--plots", str(tmp_path)), "--plots", "is the input FILE")
    other = tmp_path / "notes.txt"
    other.write_text("keep")
    assert_refused(run_main("analyze", str(data), "--plots", str(other)), "--plots", "is an existing file")
    assert other.read_text() == "keep"


@pytest.mark.parametrize("target, needle", [
    ("/proc/labctl-test-out.json", "cannot create files in /proc"),
    ("/sys/labctl-test-out.json", "cannot create files in /sys"),
    ("{tmp}/missing/out.json", "folder {tmp}/missing does not exist"),
    ("{tmp}/afile/out.json", "{tmp}/afile is not a folder"),
    ("{tmp}", "is a folder"),
])
def test_analyze_json_outputs_that_cannot_be_written_are_refused_before_the_analysis(photon_file, tmp_path,
                                                                                     target, needle):
    (tmp_path / "afile").write_text("x")
    target, needle = target.format(tmp=tmp_path), needle.format(tmp=tmp_path)
    assert_refused(run_main("analyze", str(photon_file), "--json", target), "--json", needle)


@pytest.mark.parametrize("target, needle", [
    ("/proc/labctl-test.h5", "cannot create files in /proc"),
    ("{tmp}/afile/run.h5", "{tmp}/afile is not a folder"),
    ("{tmp}", "is a folder: give a file name"),
])
def test_acquire_out_that_cannot_be_written_is_refused(tmp_path, target, needle):
    (tmp_path / "afile").write_text("x")
    target, needle = target.format(tmp=tmp_path), needle.format(tmp=tmp_path)
    assert_refused(run_main("acquire", "--duration", "1", "--out", target), "--out", needle)


def test_json_is_written_whole_and_replaces_the_old_one(photon_file, tmp_path):
    out_json = tmp_path / "r.json"
    out_json.write_text("old")
    out = run_main("analyze", str(photon_file), "--json", str(out_json))
    assert out.returncode == 0, out.stderr
    data = json.loads(out_json.read_text())
    assert data["photons"] == {"1": data["photons"]["1"], "2": data["photons"]["2"]}
    assert sum(data["photons"].values()) == 5500
    assert [w for w in data["warnings"] if not w.startswith("duration:")] == []  # the file is whole
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary file left


# ----------------------------------------------------------------- finding 7/8: sizes and thresholds
@pytest.mark.parametrize("args, needle", [
    (["--g2-range-ps", "100000000000000", "--g2-bin-ps", "1"], "that is 200,000,000,000,000 bins of g(2)"),
    (["--trace-bin-ms", "1e-9"], "bins of the intensity trace; at most 10,000,000"),
    (["--trace-bin-ms", "nan"], "--trace-bin-ms = nan: must be a finite number of ms > 0"),
    (["--on-threshold", "nan"], "--on-threshold = nan: must be a finite number of counts >= 0"),
    (["--on-threshold", "-1"], "--on-threshold = -1.0: must be a finite number of counts >= 0"),
    (["--lifetime-bin-ps", "0"], "--lifetime-bin-ps = 0: must be a whole number of ps >= 1"),
])
def test_analyze_options_that_cannot_work_are_refused_with_numbers(photon_file, args, needle):
    assert_refused(run_main("analyze", str(photon_file), *args), needle)


def test_trace_bins_are_counted_over_the_files_time_span(photon_file):
    with PhotonHDF5Reader(photon_file) as r:
        first, last = r.first_last_ps()
        span_s = max(r.acquisition_duration_s, (last - first) * 1e-12)
    assert span_s == 1e-3  # the summary's duration: longer than the photons' span
    out = run_main("analyze", str(photon_file), "--trace-bin-ms", "5e-8")  # 1 ms / 50 ps: 20 M bins
    assert_refused(out, "over the 0.001 s of", "that is 20,000,000 bins")


# ----------------------------------------------------------------- the helpers themselves
def test_check_output_file_and_folder(tmp_path):
    existing = tmp_path / "a.h5"
    existing.write_bytes(b"x")
    with pytest.raises(ConfigError, match="already exists"):
        check_output_file("--out", existing, overwrite=False)
    assert check_output_file("--out", existing) == existing
    link = tmp_path / "link.h5"
    link.symlink_to(existing)
    with pytest.raises(ConfigError, match="is the input FILE"):
        check_output_file("--json", link, inputs=[("FILE", existing)])
    assert check_output_file("--out", tmp_path / "new" / "deeper" / "b.h5", make_folders=True)
    with pytest.raises(ConfigError, match="is an existing file"):
        check_output_folder("--plots", existing)
    assert not (tmp_path / "new").exists()  # checks write nothing


def test_write_text_atomic_leaves_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "out.json"
    target.write_text("old")

    def boom(self, *a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", boom)
    with pytest.raises(OSError, match="No space left"):
        write_text_atomic(target, "new")
    monkeypatch.undo()
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_a_recording_replaces_the_old_file_only_at_commit(tmp_path):
    old = tmp_path / "run.h5"
    old.write_bytes(b"old")
    record = Recording(old)
    assert record.recording_path != old and record.recording_path.parent == tmp_path
    assert record.commit() == old and old.read_bytes() == b"old"  # nothing recorded: old kept
    record = Recording(old)
    write_file(record.recording_path, [])  # a run that failed before its first photon
    assert record.commit() == record.recording_path and old.read_bytes() == b"old"
    record.recording_path.unlink()
    record = Recording(old)
    write_file(record.recording_path, make_blocks([5]))
    assert record.commit() == old
    with PhotonHDF5Reader(old) as r:
        assert r.num_photons == 5
    assert [p.name for p in tmp_path.iterdir()] == ["run.h5"]


def test_acquire_overwrite_replaces_the_old_file_with_the_new_recording(photon_file, tmp_path):
    old = copy_of(photon_file, tmp_path / "run.h5")
    with PhotonHDF5Reader(old) as r:
        old_id = r.run_id
    out = labctl("acquire", "--duration", "0.5", "--out", str(old), "--overwrite", "--no-progress", timeout_s=240)
    assert out.returncode == 0, out.stderr
    assert f"file             {old} (" in out.stdout
    with h5py.File(old, "r") as f:
        assert "run_end" in f["user/labctl"]
    with PhotonHDF5Reader(old) as r:
        assert r.run_id != old_id and r.run_end()["clean"]
    assert [p.name for p in tmp_path.iterdir()] == ["run.h5"]

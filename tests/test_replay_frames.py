"""Replay of camera frames: a recording's spectra come out of ``labctl acquire --replay`` unchanged.

The replay camera (sim_backends.replay_camera) serves the file's frames through the
Andor SDK2 API, each started by its frame marker on the replay tagger's device time;
the replay spectrograph gives the file's wavelength axis.
"""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

from labctl.cli import main
from labctl.acquisition.engine import AcquisitionEngine
from labctl.station.replay import REPLAY_CAMERA, REPLAY_FINISHED, replay_station_config, scan_replay_file
from labctl.station.station import Station
from labctl.storage import PhotonHDF5Reader
from labctl.storage import layout as L
from tests.conftest import sim_config
from tests.test_replay import read_photons, write_imported_like

SPECTRA = {"frames": L.SPECTRA_FRAMES, "index": L.SPECTRA_FRAME_INDEX, "start": L.SPECTRA_EXPOSURE_START,
           "stop": L.SPECTRA_EXPOSURE_STOP, "skipped": L.SPECTRA_SKIPPED, "wavelength": L.SPECTRA_WAVELENGTH,
           "markers": L.MARKERS}
DROPPED = 4


def read_spectra(path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        return {key: f[p][()] for key, p in SPECTRA.items()}


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """1.5 s of the simulated microscope at 10 frames/s, with frame 4 lost by the camera."""
    path = tmp_path_factory.mktemp("frames") / "sim.h5"
    with Station(sim_config(time_scale=4.0, seed=11, camera_options={"drop_frame_indices": [DROPPED]})) as station:
        summary = AcquisitionEngine(station, path).run(1.5)
    assert summary.clean
    d = read_spectra(path)
    assert d["index"].size >= 10 and d["skipped"].tolist() == [DROPPED]
    return path


def test_replayed_frames_exposures_axis_and_skips_are_the_files(recording, tmp_path, capsys) -> None:
    out = tmp_path / "replayed.h5"
    code = main(["acquire", "--replay", str(recording), "--speed", "2", "--duration", "60", "--out", str(out),
                 "--no-progress"])
    captured = capsys.readouterr()
    assert code == 3, captured.err  # clean with a loss: the source's lost frame, lost again
    assert "run ended: replay finished (clean)" in captured.out
    assert "not replayed" not in captured.err
    assert "carry extra dark charge" not in captured.err  # the replay camera's sensor is stable at once
    source, replayed = read_spectra(recording), read_spectra(out)
    for key in SPECTRA:  # frames pixel for pixel, indices, exposure start/stop ps, skipped indices, axis, markers
        np.testing.assert_array_equal(replayed[key], source[key], err_msg=key)
    assert replayed["frames"].dtype == np.uint16 and replayed["frames"].shape == source["frames"].shape
    for a, b in zip(read_photons(recording), read_photons(out)):  # photons still identical
        np.testing.assert_array_equal(b, a)
    with h5py.File(recording, "r") as f, h5py.File(out, "r") as g:
        assert g[L.SPECTRA].attrs["exposure_s"] == f[L.SPECTRA].attrs["exposure_s"]
        assert g[L.SPECTRA].attrs["frame_rate_hz"] == f[L.SPECTRA].attrs["frame_rate_hz"] == 10.0
    with PhotonHDF5Reader(out) as reader:
        end = reader.run_end()
        assert end["clean"] and end["end_reason"] == REPLAY_FINISHED
        # the lost frame is a camera_skip loss on its marker window, as in the source
        exposure_ps = int(source["stop"][0] - source["start"][0])
        marker = int(source["markers"][DROPPED])
        assert [(r.start_ps, r.stop_ps, r.source) for r in reader.losses()] == \
            [(marker, marker + exposure_ps, "camera_skip")]


def test_a_shorter_run_replays_the_frames_of_its_markers(recording, tmp_path) -> None:
    replay = scan_replay_file(recording)
    with Station(replay_station_config(replay, speed=2.0)) as station:
        summary = AcquisitionEngine(station, tmp_path / "part.h5").run(0.75)
    assert summary.clean, summary.errors
    source, part = read_spectra(recording), read_spectra(tmp_path / "part.h5")
    n = part["markers"].size
    assert 5 < n < source["markers"].size
    np.testing.assert_array_equal(part["markers"], source["markers"][:n])
    keep = source["index"] < n
    for key in ("frames", "index", "start", "stop"):
        np.testing.assert_array_equal(part[key], source[key][keep], err_msg=key)
    np.testing.assert_array_equal(part["skipped"], [DROPPED])


def test_a_file_without_frames_replays_without_camera(tmp_path) -> None:
    path = tmp_path / "t3.h5"
    write_imported_like(path, period_ps=1e6, seconds=0.05, rate_cps=10_000)
    replay = scan_replay_file(path)
    assert replay.frames == 0 and not replay.frames_replayed and replay.notes == []
    assert set(replay_station_config(replay).data["instruments"]) == {"tagger", "laser", "spad_a", "spad_b"}


def test_image_frames_are_announced_as_not_replayed(recording, tmp_path) -> None:
    path = tmp_path / "image.h5"
    shutil.copy(recording, path)
    with h5py.File(path, "a") as f:
        n = f[L.SPECTRA_FRAMES].shape[0]
        del f[L.SPECTRA_FRAMES]
        f.create_dataset(L.SPECTRA_FRAMES, data=np.zeros((n, 2, 8), np.uint16))
    replay = scan_replay_file(path)
    assert not replay.frames_replayed
    assert any(f"{n:,} camera frames in the file are not replayed: they are images" in note for note in replay.notes)
    assert "camera" not in replay_station_config(replay).data["instruments"]
    config = replay_station_config(scan_replay_file(recording))
    assert config.data["instruments"]["camera"]["library"] == REPLAY_CAMERA


def test_the_replay_camera_needs_the_replay_tagger_of_its_station(recording) -> None:
    from sim_backends.replay_camera import ReplayAndorSDK

    with pytest.raises(ValueError, match="no replay tagger in this station"):
        ReplayAndorSDK(str(recording), scene=object())

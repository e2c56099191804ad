"""The labctl command line: acquire with summary, info, Ctrl-C, bad input."""

from __future__ import annotations

import copy
import re
import signal
import subprocess
import sys
import time

import yaml

from labctl.station.station import StationConfig
from labctl.storage import PhotonHDF5Reader


def fast_station_file(tmp_path, **library_options) -> str:
    data = copy.deepcopy(StationConfig.load().data)
    data["instruments"]["tagger"]["library_options"] = {"time_scale": 4.0, **library_options}
    path = tmp_path / "station.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def labctl(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "labctl.cli", *args], capture_output=True, text=True, timeout=120, **kwargs)


def test_acquire_prints_a_summary_that_matches_the_file(tmp_path):
    out = tmp_path / "run.h5"
    result = labctl("acquire", "--duration", "1", "--out", str(out), "--config", fast_station_file(tmp_path), "--seed", "5")
    assert result.returncode == 0, result.stderr
    with PhotonHDF5Reader(out) as reader:
        n = reader.num_photons
        end = reader.run_end()
    assert f"photons written  {n:,d}" in result.stdout
    assert "losses           none" in result.stdout and "run ended: duration (clean)" in result.stdout
    assert end["clean"] is True
    info = labctl("info", str(out))
    assert info.returncode == 0 and f"photons:     {n:,d}" in info.stdout


def test_acquire_reports_losses_in_the_summary_and_exit_code(tmp_path):
    out = tmp_path / "lossy.h5"
    config = fast_station_file(tmp_path, silent_drop_windows_s=[[0.2, 0.25]])
    result = labctl("acquire", "--duration", "0.5", "--out", str(out), "--config", config, "--no-progress")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "LOSSES           1 (" in result.stdout
    # the loss runs from the last sync before the dropped window to the first sync after it
    assert re.search(r"sync_gap: 0\.1999\d+ s \.\. 0\.2500\d+ s \(50\.\d+ ms, 12500 syncs missing\)", result.stdout), result.stdout
    assert "sync_gap" in labctl("info", str(out)).stdout


def test_ctrl_c_closes_the_file_cleanly_with_excitation_off(tmp_path):
    out = tmp_path / "interrupted.h5"
    proc = subprocess.Popen(
        [sys.executable, "-m", "labctl.cli", "acquire", "--duration", "60", "--out", str(out), "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    while not out.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1, stdout + stderr
    assert "run ended: interrupted (NOT clean)" in stdout
    with PhotonHDF5Reader(out) as reader:
        end = reader.run_end()
        log = [message for _, _, message in reader.run_log()]
        assert reader.num_photons > 0
    assert end["end_reason"] == "interrupted" and end["clean"] is False
    assert "excitation in safe state" in log


def test_bad_duration_and_existing_output_are_refused(tmp_path):
    result = labctl("acquire", "--duration", "-2", "--out", str(tmp_path / "x.h5"))
    assert result.returncode == 2 and "--duration '-2': must be a number of seconds > 0" in result.stderr
    existing = tmp_path / "exists.h5"
    existing.write_bytes(b"keep me")
    result = labctl("acquire", "--duration", "1", "--out", str(existing))
    assert result.returncode == 2 and "already exists" in result.stderr
    assert existing.read_bytes() == b"keep me"


def test_bad_station_file_is_reported_with_key_value_and_allowed(tmp_path):
    data = copy.deepcopy(StationConfig.load().data)
    data["instruments"]["tagger"]["settings"]["sync_divider"] = 3
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    result = labctl("acquire", "--duration", "1", "--out", str(tmp_path / "y.h5"), "--config", str(path))
    assert result.returncode == 2
    assert f"{path}: instruments.tagger.settings.sync_divider = 3: must be one of 1, 2, 4, 8" in result.stderr
    assert not (tmp_path / "y.h5").exists()


def test_first_run_with_an_empty_numba_cache_loses_nothing(tmp_path):
    """A fresh install has no compiled kernels: compiling them must not happen while the stream runs
    (seconds of it on the first block overflowed the tagger's buffer at 4x rate)."""
    import os

    out = tmp_path / "cold.h5"
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "empty_numba_cache"))
    env.pop("LABCTL_KERNELS", None)  # the real first run: numpy kernels, numba compiling in the background
    result = labctl("-v", "acquire", "--duration", "1", "--out", str(out), "--config", fast_station_file(tmp_path),
                    "--no-progress", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "losses           none" in result.stdout
    assert "first run after install: numpy kernels for this run" in result.stderr

"""How an acquisition ends: signals, Ctrl-C during set-up, exit codes, a full disk (issue 9, items 2, 3, 6).

Every way a run can end goes through one path: tagger stopped, excitation in its
safe state (read back from the function generator), file closed with run_end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from labctl import cli
from labctl.storage import PhotonHDF5Reader
from tests.test_cli import fast_station_file, labctl

READ_BACK_OFF = "excitation read back after the safe state: off"


def _start_acquire(out, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "labctl.cli", "acquire", "--out", str(out), "--no-progress", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_file(out, proc: subprocess.Popen, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not out.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the data file never appeared"
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_end_the_run_like_ctrl_c(tmp_path, sig):
    out = tmp_path / "signalled.h5"
    proc = _start_acquire(out, "--duration", "30")
    _wait_for_file(out, proc)
    time.sleep(2.0)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    name = signal.Signals(sig).name
    assert proc.returncode == 1, stdout + stderr
    assert f"run ended: interrupted: {name} (NOT clean)" in stdout
    assert "Traceback" not in stderr
    with PhotonHDF5Reader(out) as reader:
        end = reader.run_end()
        log = [message for _, _, message in reader.run_log()]
        assert reader.num_photons > 0
        assert end["photons_written"] == reader.num_photons
    assert end["clean"] is False and end["end_reason"] == f"interrupted: {name}"
    assert "excitation in safe state" in log
    assert READ_BACK_OFF in log  # ch1 of the simulated generator read back as off
    assert labctl("info", str(out)).returncode == 0


def test_a_run_that_is_not_clean_exits_1_even_with_losses(tmp_path):
    out = tmp_path / "lossy_interrupted.h5"
    config = fast_station_file(tmp_path, silent_drop_windows_s=[[0.2, 0.25]])
    proc = _start_acquire(out, "--duration", "60", "--config", config)
    _wait_for_file(out, proc)
    time.sleep(1.5)  # tagger time ~6 s at time_scale 4: the dropped window is behind
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert "LOSSES           1 (" in stdout and "(NOT clean)" in stdout, stdout
    assert proc.returncode == 1, stdout + stderr


class _Interrupt:
    """Patch a set-up step to switch the excitation on and signal this process (a real signal)."""

    def __init__(self, sig: int) -> None:
        self.sig = sig
        self.scene = None

    def after_build(self, station) -> None:
        self.scene = station.scene
        station.laser.enable_excitation()  # the worst case: excitation on when the signal lands
        os.kill(os.getpid(), self.sig)
        time.sleep(5)  # the handler raises here


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_set_up_exits_1_with_one_line_and_excitation_off(tmp_path, monkeypatch, capsys, sig):
    from labctl.station import Station

    interrupt = _Interrupt(sig)
    original = Station._build

    def build(self):
        original(self)
        interrupt.after_build(self)

    monkeypatch.setattr(Station, "_build", build)
    out = tmp_path / "never.h5"
    before = signal.getsignal(signal.SIGTERM)
    code = cli.main(["acquire", "--duration", "5", "--out", str(out), "--config", fast_station_file(tmp_path), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err == [f"labctl acquire: {signal.Signals(sig).name} during set-up, before the run started: "
                   "nothing recorded, excitation in safe state"]
    assert interrupt.scene is not None and interrupt.scene.excitation_enabled() is False
    assert not out.exists()
    assert signal.getsignal(signal.SIGTERM) == before  # handlers are restored


_PARENT = """
import sys, time
from labctl.engine_process import EngineProcess
from tests.conftest import sim_config
engine = EngineProcess(sim_config(), sys.argv[1])
engine.start(60)
print("pid", engine._station._process.pid, flush=True)
time.sleep(120)
"""


def _gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True  # exited, not yet reaped by its parent
        except FileNotFoundError:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("target", ["parent", "child"])
def test_sigterm_to_the_station_process_or_its_parent_ends_the_run_safely(tmp_path, target):
    out = tmp_path / "child.h5"
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, str(out)], stdout=subprocess.PIPE, text=True)
    line = ""
    while not line.startswith("pid "):
        line = parent.stdout.readline()
        assert line, "the parent script ended early"
    child_pid = int(line.split()[1])
    _wait_for_file(out, parent)
    time.sleep(1.5)
    os.kill(parent.pid if target == "parent" else child_pid, signal.SIGTERM)
    assert _gone(child_pid, 30), "the station process did not end"
    parent.kill()
    parent.wait()
    with PhotonHDF5Reader(out) as reader:
        end = reader.run_end()
        log = [message for _, _, message in reader.run_log()]
    assert end is not None and end["clean"] is False
    assert end["end_reason"] == ("interrupted: parent process gone" if target == "parent" else "interrupted: SIGTERM")
    assert READ_BACK_OFF in log

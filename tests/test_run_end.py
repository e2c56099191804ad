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
    from labctl.station.station import Station

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
from labctl.processes.engine_process import EngineProcess
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


# ---------------------------------------------------------------- a full disk (ENOSPC)
import errno  # noqa: E402

import h5py  # noqa: E402
import numpy as np  # noqa: E402

from labctl.acquisition.engine import AcquisitionEngine  # noqa: E402
from labctl.storage import layout as L  # noqa: E402
from labctl.storage import h5_io  # noqa: E402

WRITE_SITES = ["set_extent", "write_chunk", "append_rows", "assign", "flush_dataset", "close_file", "run_end"]


class _Enospc:
    """Make one writer function raise OSError(ENOSPC) once armed: once, or on every later call."""

    def __init__(self, monkeypatch, site: str, always: bool) -> None:
        self.armed = False
        self.failures = 0
        self.always = always
        target, name = (L, "write_run_end") if site == "run_end" else (h5_io, site)
        original = getattr(target, name)

        def failing(*args, **kwargs):
            if self.armed and (self.always or self.failures == 0):
                self.failures += 1
                raise OSError(errno.ENOSPC, "No space left on device")
            return original(*args, **kwargs)

        monkeypatch.setattr(target, name, failing)


def _check_file_agrees(out, summary) -> dict | None:
    with PhotonHDF5Reader(out) as reader:
        n = reader.num_photons
        end = reader.run_end()
        rows = [(x.start_ps, x.stop_ps, x.missing_syncs, x.source) for x in reader.losses()]
    with h5py.File(out, "r", swmr=True) as f:
        lengths = {f[p].shape[0] for p in L.STREAM_PATHS}
        ts = f[L.TIMESTAMPS][:]
    assert lengths == {n}  # photon datasets of equal length
    assert n == summary.photons_written > 0  # the summary tells what the file holds
    assert np.all(np.diff(ts) >= 0) and ts[0] > 0  # no zero-filled tail
    assert (0, 0, 0, "") not in rows
    return end


@pytest.mark.parametrize("site", WRITE_SITES)
def test_enospc_at_any_write_site_ends_the_run_cleanly(make_station, monkeypatch, tmp_path, site):
    station = make_station(engine={"flush_interval_s": 0.1, "min_free_mb": 0})
    enospc = _Enospc(monkeypatch, site, always=False)
    out = tmp_path / "full.h5"
    engine = AcquisitionEngine(station, out)
    engine.start(2.0 if site in ("close_file", "run_end") else 30.0)
    if site not in ("close_file", "run_end"):  # these are reached at the end of the run
        time.sleep(0.6)
    enospc.armed = True
    summary = engine.wait(timeout_s=60)
    assert enospc.failures == 1
    assert summary.clean is False
    assert station.excitation_state() == "off"
    end = _check_file_agrees(out, summary)
    if site == "run_end":  # the end record failed: none in the file (not a dangling one), data intact
        assert end is None
        assert any(f"{L.RUN_END} was not written" in e for e in summary.errors), summary.errors
        return
    assert summary.end_reason == "disk space"
    assert any("disk full: no space left on" in e for e in summary.errors), summary.errors
    assert end is not None and end["clean"] is False and end["end_reason"] == "disk space"
    assert end["photons_written"] == summary.photons_written and end["counts"] == summary.counts
    if site != "close_file":  # a failure during the run loses what came after the last flush
        lost = [x for x in summary.losses if x.source == "disk_space:file"]
        assert len(lost) == 1
        with PhotonHDF5Reader(out) as reader:
            assert lost[0] in reader.losses()
        with h5py.File(out, "r") as f:  # the file holds every photon up to where the loss starts
            assert int(f[L.TIMESTAMPS][-1]) == lost[0].start_ps


@pytest.mark.parametrize("site", ["write_chunk", "flush_dataset"])
def test_enospc_that_stays_leaves_the_file_at_its_last_flush(make_station, monkeypatch, tmp_path, site):
    station = make_station(engine={"flush_interval_s": 0.1, "min_free_mb": 0})
    enospc = _Enospc(monkeypatch, site, always=True)
    out = tmp_path / "full.h5"
    engine = AcquisitionEngine(station, out)
    engine.start(30.0)
    time.sleep(0.6)
    enospc.armed = True
    summary = engine.wait(timeout_s=60)
    assert summary.clean is False and summary.end_reason == "disk space"
    assert station.excitation_state() == "off"
    end = _check_file_agrees(out, summary)
    assert end is not None and end["end_reason"] == "disk space"  # run_end needs none of the failing calls


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 30 MiB tmpfs of its own (needs root and mount permission; skipped otherwise)."""
    folder = tmp_path / "fs"
    folder.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=30m", "tmpfs", str(folder)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({made.stderr.strip()}); the injected ENOSPC tests cover the writer")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_a_disk_filled_by_another_process_ends_the_run_cleanly(tmp_path, small_tmpfs):
    import copy

    import yaml

    from labctl.station.station import StationConfig

    data = copy.deepcopy(StationConfig.load().data)
    data["engine"]["min_free_mb"] = 1
    config = tmp_path / "station.yaml"
    config.write_text(yaml.safe_dump(data))
    out = small_tmpfs / "run.h5"
    proc = _start_acquire(out, "--duration", "30", "--config", str(config), "--no-progress")
    _wait_for_file(out, proc)
    time.sleep(2.5)
    filler = subprocess.run(["dd", "if=/dev/zero", f"of={small_tmpfs / 'filler'}", "bs=64k"], capture_output=True, text=True)
    assert "No space left on device" in filler.stderr  # the other process filled the disk
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1, stdout + stderr
    assert "Traceback" not in stderr and "Segmentation" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith("labctl acquire:")]
    # the filler either fills the disk under a write (ENOSPC) or, while it fills, the writer's
    # free-space guard sees less than its margin plus the next write first: both end the run cleanly
    assert len(lines) == 1 and ("disk full: no space left on" in lines[0]
                                or ("bytes free on" in lines[0] and "below the margin" in lines[0])), stderr
    assert "run ended: disk space (NOT clean)" in stdout
    info = labctl("info", str(out))
    assert info.returncode == 0, info.stderr
    with PhotonHDF5Reader(out) as reader:
        n = reader.num_photons
        end = reader.run_end()  # written in the room the writer kept for it
        log = [message for _, _, message in reader.run_log()]
        losses = reader.losses()
    assert f"photons written  {n:,d}\n" in stdout  # the summary tells what the file holds
    assert end is not None and end["clean"] is False and end["end_reason"] == "disk space"
    assert end["photons_written"] == n and end["counts"]
    assert [x.source for x in losses] == ["disk_space:file"]
    assert "disk_space:file" in stdout
    assert READ_BACK_OFF in log
    assert not list(small_tmpfs.glob(".*reserve"))


def test_no_room_for_the_end_record_leaves_a_readable_file_at_its_last_flush(tmp_path, monkeypatch):
    from labctl.errors import DiskSpaceError
    from labctl.storage import PhotonHDF5Writer
    from tests.test_storage import make_blocks, make_run, make_summary

    free = {"bytes": 10**12}
    path = tmp_path / "run.h5"
    w = PhotonHDF5Writer(path, flush_interval_s=0.0, min_free_bytes=0, free_bytes=lambda folder: free["bytes"])
    w.open(make_run())
    first, second, third = make_blocks([300, 300, 300])
    w.write(first)  # flushed (flush_interval_s 0)
    enospc = _Enospc(monkeypatch, "flush_dataset", always=True)
    enospc.armed = True
    with pytest.raises(DiskSpaceError, match=r"disk full: no space left on .*keeps the run up to its last flush \(300 photons\); 300 photons after"):
        w.write(second)
    with pytest.raises(DiskSpaceError, match="nothing more is written"):
        w.write(third)  # the file ended: later blocks are refused, not half-written
    free["bytes"] = 1000  # and the disk stays full
    with pytest.raises(DiskSpaceError, match="needed for the end record"):
        w.close(make_summary())
    assert w.photons_written == 300 and [x.source for x in w.own_losses] == ["disk_space:file"]
    with PhotonHDF5Reader(path) as reader:
        assert reader.num_photons == 300 and reader.run_end() is None
    assert labctl("info", str(path)).returncode == 0
    assert not list(tmp_path.glob(".*reserve"))


def test_an_excitation_that_stays_on_after_the_safe_state_makes_the_run_not_clean(make_station, monkeypatch, tmp_path):
    station = make_station()
    monkeypatch.setattr(station.laser, "disable_excitation", lambda: None)  # a generator that ignores "output off"
    summary = AcquisitionEngine(station, tmp_path / "on.h5").run(0.5)
    assert summary.clean is False
    assert "the excitation is still on after the safe state" in summary.errors
    with PhotonHDF5Reader(tmp_path / "on.h5") as reader:
        lines = reader.run_log()
    assert ("CRITICAL", "excitation read back after the safe state: ON; switch the laser off by hand") in [(lv, m) for _, lv, m in lines]

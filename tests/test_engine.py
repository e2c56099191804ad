"""The acquisition engine end to end on the simulated microscope: files, losses, safety, chunk invariance."""

from __future__ import annotations

import threading

import h5py
import numpy as np
import pytest

from labctl.blocks import PhotonBlock
from labctl.acquisition.engine import AcquisitionEngine
from labctl.processes.engine_process import EngineProcess
from labctl.run import RunInfo, RunSummary
from labctl.storage import PhotonHDF5Reader
from tests.conftest import sim_config

DATASETS = ("/photon_data/timestamps", "/photon_data/detectors", "/photon_data/nanotimes")


def read_datasets(path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        return {name: f[name][()] for name in DATASETS}


def test_run_writes_every_photon_the_summary_reports(make_station, tmp_path):
    station = make_station()
    out = tmp_path / "run.h5"
    with AcquisitionEngine(station, out) as engine:
        summary = engine.run(1.0)
    assert summary.clean and summary.end_reason == "duration" and summary.losses == []
    assert summary.duration_s == pytest.approx(1.0, abs=1e-9)
    channels = station.channels
    assert summary.counts[channels.laser_sync] == pytest.approx(250_000, abs=1)  # 1 MHz for 1 s, divider 4
    with PhotonHDF5Reader(out) as reader:
        assert reader.num_photons == summary.photons_written
        assert reader.num_photons == summary.counts[channels.spad_a] + summary.counts[channels.spad_b]
        assert reader.run_end()["clean"]
        block = next(reader.iter_blocks(1 << 22))
    assert np.all(np.diff(block.timestamps) >= 0)
    assert block.nanotimes.min() >= -1 and block.nanotimes.max() < 1_000_000
    assert summary.measured_sync_period_ps == pytest.approx(1e6, abs=1e-6)


def test_same_seed_gives_identical_datasets_whatever_the_poll_interval_and_buffer(make_station, tmp_path):
    runs = []
    for i, (poll_ms, buffer) in enumerate([(5, 1_000_000), (60, 400_000), (23, 1_000_000)]):
        station = make_station(seed=7, engine={"poll_interval_ms": poll_ms}, tagger_settings={"buffer_size": buffer})
        with AcquisitionEngine(station, tmp_path / f"r{i}.h5") as engine:
            summary = engine.run(0.6)
        assert summary.losses == [], summary.losses
        runs.append(read_datasets(tmp_path / f"r{i}.h5"))
    for other in runs[1:]:
        for name in DATASETS:
            np.testing.assert_array_equal(other[name], runs[0][name], err_msg=name)
    station = make_station(seed=8)
    with AcquisitionEngine(station, tmp_path / "other.h5") as engine:
        engine.run(0.6)
    assert not np.array_equal(read_datasets(tmp_path / "other.h5")[DATASETS[0]], runs[0][DATASETS[0]])


def test_reader_too_slow_for_the_tagger_buffer_gives_a_flagged_loss_with_its_range(make_station, tmp_path):
    # 1.4 M tags/s x 8 (time scale) = 11 M tags/s into a 100 k buffer read every 200 ms: overflow
    station = make_station(time_scale=8.0, engine={"poll_interval_ms": 200}, tagger_settings={"buffer_size": 100_000})
    out = tmp_path / "lossy.h5"
    with AcquisitionEngine(station, out) as engine:
        summary = engine.run(2.0)
    flagged = [loss for loss in summary.losses if loss.source == "tagger_flag"]
    assert flagged, summary.losses
    for loss in flagged:
        assert loss.stop_ps > loss.start_ps
        assert loss.missing_syncs > 0  # the sync gap gives the exact range and size
    with PhotonHDF5Reader(out) as reader:
        stored = reader.losses()
    assert [(l.start_ps, l.stop_ps, l.source) for l in stored] == [(l.start_ps, l.stop_ps, l.source) for l in summary.losses]
    from labctl.cli.summary import format_summary

    text = format_summary(summary, station.channels, summary.start_ps)
    assert "LOSSES" in text and "tagger_flag" in text


def test_loss_the_tagger_does_not_flag_is_found_from_the_sync_stream(make_station, tmp_path):
    station = make_station(library_options={"silent_drop_windows_s": [(0.30, 0.32)]})
    out = tmp_path / "silent.h5"
    with AcquisitionEngine(station, out) as engine:
        summary = engine.run(0.6)
    assert len(summary.losses) == 1
    loss = summary.losses[0]
    assert loss.source == "sync_gap"
    # 20 ms of 1 MHz pulses, one sync tag per 4 pulses (the quTAG's divider)
    assert station.tagger.sync_divider() == 4
    assert loss.missing_syncs == pytest.approx(20_000 / 4, abs=1)
    sync_interval_ps = 4_000_000  # the loss runs from the last sync before the window to the first after it
    assert 0.30e12 - sync_interval_ps <= loss.start_ps < 0.30e12 and 0.32e12 <= loss.stop_ps < 0.32e12 + sync_interval_ps
    with PhotonHDF5Reader(out) as reader:
        assert [l.source for l in reader.losses()] == ["sync_gap"]
        ts = next(reader.iter_blocks(1 << 22)).timestamps
    assert not np.any((ts > loss.start_ps) & (ts < loss.stop_ps))


class FailingSink:
    name = "failing"

    def __init__(self, fail_after: int) -> None:
        self.fail_after = fail_after
        self.blocks = 0
        self.closed_with: RunSummary | None = None

    def open(self, run: RunInfo) -> None:
        pass

    def write(self, block: PhotonBlock) -> None:
        self.blocks += 1
        if self.blocks > self.fail_after:
            raise RuntimeError("live view crashed")

    def close(self, summary: RunSummary) -> None:
        self.closed_with = summary


def test_excitation_is_off_after_a_normal_run(make_station, tmp_path):
    station = make_station()
    seen_on = []
    with AcquisitionEngine(station, tmp_path / "a.h5") as engine:
        engine.start(0.5)
        threading.Timer(0.05, lambda: seen_on.append(station.laser.excitation_enabled())).start()
        engine.wait()
    assert seen_on == [True]
    assert station.laser.excitation_enabled() is False and station.scene.excitation_enabled() is False


def test_excitation_is_off_after_an_exception_in_a_sink_and_the_file_keeps_its_data(make_station, tmp_path):
    station = make_station()
    sink = FailingSink(fail_after=3)
    out = tmp_path / "b.h5"
    with AcquisitionEngine(station, out, sinks=[sink]) as engine:
        summary = engine.run(5.0)
    assert station.laser.excitation_enabled() is False
    assert not summary.clean and "live view crashed" in summary.end_reason
    assert sink.closed_with is summary
    assert summary.duration_s < 5.0
    with PhotonHDF5Reader(out) as reader:
        assert reader.num_photons == summary.photons_written > 0
        assert reader.run_end()["clean"] is False


def test_excitation_is_off_after_ctrl_c(make_station, tmp_path, monkeypatch):
    """Ctrl-C while a script waits for its run (the KeyboardInterrupt raised inside ``wait``, where
    Python delivers it); real SIGINTs to a process: tests/test_cli.py, tests/test_run_end.py.  A
    timer thread calling ``_thread.interrupt_main`` failed in full-suite runs on a loaded machine."""
    station = make_station(time_scale=1.0)
    with pytest.raises(KeyboardInterrupt):
        with AcquisitionEngine(station, tmp_path / "c.h5") as engine:
            real_wait = engine._done.wait
            polls: list[bool] = []

            def wait_then_ctrl_c(timeout=None):
                if len(polls) < 3:  # Ctrl-C at the third wait since the excitation went on (0.2 s)
                    on = station.laser.excitation_enabled()
                    if on or polls:
                        polls.append(on)
                    if len(polls) == 3:
                        raise KeyboardInterrupt
                return real_wait(timeout)

            monkeypatch.setattr(engine._done, "wait", wait_then_ctrl_c)
            engine.run(30.0)
    assert polls == [True, True, True]  # the excitation was on when Ctrl-C came
    assert station.laser.excitation_enabled() is False
    summary = engine.wait()
    assert summary.end_reason == "interrupted" and not summary.clean
    with PhotonHDF5Reader(tmp_path / "c.h5") as reader:
        assert reader.run_end()["end_reason"] == "interrupted"


def test_spad_over_its_count_rate_limit_cuts_the_excitation(make_station, tmp_path):
    station = make_station(spad_limit_cps=1e3)  # the QD gives several kcps per SPAD
    with AcquisitionEngine(station, tmp_path / "d.h5") as engine:
        summary = engine.run(5.0)
    assert summary.end_reason.startswith("protection") and not summary.clean
    assert station.laser.excitation_enabled() is False
    assert summary.duration_s < 2.0


def test_single_qd_antibunching_through_the_whole_chain(make_station, tmp_path):
    # Default QD physics (biexciton yield 0.07, n = 0.3: g2(0) ~ 0.08) with all light collected,
    # so that 2 s give ~4000 coincidences per side peak and the 10 % bound is a 3-sigma test.
    scene = {"emitter": {"kind": "single_qd"}, "collection_efficiency": 1.0}
    station = make_station(time_scale=4.0, scene=scene)
    out = tmp_path / "qd.h5"
    with AcquisitionEngine(station, out) as engine:
        summary = engine.run(2.0)
    assert summary.losses == []
    with PhotonHDF5Reader(out) as reader:
        block = next(reader.iter_blocks(1 << 24))
    a = block.timestamps[block.detectors == station.channels.spad_a]
    b = block.timestamps[block.detectors == station.channels.spad_b]
    # coincidences within +-100 ns of lag k microseconds, k = -3..3
    window = 100_000
    peaks = []
    for k in range(-3, 4):
        lo = np.searchsorted(b, a + k * 1_000_000 - window)
        hi = np.searchsorted(b, a + k * 1_000_000 + window)
        peaks.append(int((hi - lo).sum()))
    side = np.mean(peaks[:3] + peaks[4:])
    assert side > 2000
    assert peaks[3] < 0.10 * side, peaks


def test_engine_in_its_own_process_records_the_same_file(tmp_path):
    config = sim_config(seed=3)
    with EngineProcess(config, tmp_path / "proc.h5") as engine:
        engine.start(0.5)
        status = engine.status()
        assert status["state"] in ("starting", "recording", "done")
        summary = engine.wait()
    assert summary.clean and summary.losses == []
    from labctl.station.station import Station

    with Station(config) as station:
        with AcquisitionEngine(station, tmp_path / "inproc.h5") as local:
            local.run(0.5)
    a, b = read_datasets(tmp_path / "proc.h5"), read_datasets(tmp_path / "inproc.h5")
    for name in DATASETS:
        np.testing.assert_array_equal(a[name], b[name])

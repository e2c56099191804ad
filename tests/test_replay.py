"""Replay: a recorded or imported Photon-HDF5 file drives a virtual quTAG (labctl acquire --replay).

The photons that come out are the file's photons, unchanged (timestamps, detectors,
nanotimes), and ``labctl analyze`` gives the same histograms on both files.
"""

from __future__ import annotations

import json
import math

import h5py
import numpy as np
import pytest

from labctl.blocks import ChannelMap, TagBlock
from labctl.cli import main
from labctl.acquisition.engine import AcquisitionEngine
from labctl.acquisition.photons import PhotonConverter
from labctl.station.replay import REPLAY_FINISHED, overload_note, replay_station_config, scan_replay_file
from labctl.station.station import Station
from labctl.storage import PhotonHDF5Reader
from sim_backends.replay_source import ReplaySource, gap_fillers, pulse_anchors, tail_fillers
from tests.conftest import sim_config

PICOHARP_PERIOD_PS = 1e12 / 76.2e6  # 13123.36 ps: not a whole number of ps


def write_imported_like(path, *, period_ps: float, seconds: float, rate_cps: float, detectors=(0, 1),
                        tau_ps: float = 3000.0, tcspc_unit_ps: int = 1, drift: float = 0.0, n_unsynced: int = 0,
                        state_rate: bool = True, seed: int = 0) -> dict[str, np.ndarray]:
    """A Photon-HDF5 file made with h5py the way converters write T3 data in ps (not labctl's writer).

    Pulses at ``rint`` of a (drifting: period x (1 + drift x sin)) clock, photons on random pulses
    with an exponential delay on the ``tcspc_unit_ps`` grid; ``n_unsynced`` photons before the
    first pulse with nanotime -1 (stored as is: int32 nanotimes).
    """
    rng = np.random.default_rng(seed)
    n_pulses = int(seconds * 1e12 / period_ps)
    k = np.arange(n_pulses + 1, dtype=np.float64)
    pulse_ps = np.rint(1e6 + k * period_ps + drift * period_ps * n_pulses / 10 * np.sin(k / n_pulses * 20)).astype(np.int64)
    n = int(rate_cps * seconds)
    which = np.sort(rng.integers(0, n_pulses, n))
    gap = pulse_ps[which + 1] - pulse_ps[which]
    delay = (np.minimum(rng.exponential(tau_ps, n) + 500, gap - 1) // tcspc_unit_ps * tcspc_unit_ps).astype(np.int64)
    ts = pulse_ps[which] + delay
    det = np.asarray(detectors, np.uint8)[rng.integers(0, len(detectors), n)]
    order = np.argsort(ts, kind="stable")
    ts, det, delay = ts[order], det[order], delay[order]
    if n_unsynced:
        early = np.sort(rng.integers(0, int(pulse_ps[0]), n_unsynced))
        ts = np.concatenate([early, ts])
        det = np.concatenate([np.asarray(detectors, np.uint8)[rng.integers(0, len(detectors), n_unsynced)], det])
        delay = np.concatenate([np.full(n_unsynced, -1, np.int64), delay])
    with h5py.File(path, "w") as f:
        f.attrs["format_name"] = np.bytes_(b"Photon-HDF5")
        f.attrs["format_version"] = np.bytes_(b"0.5")
        f["description"] = np.bytes_(b"imported-like test file")
        f["acquisition_duration"] = seconds
        pd = f.create_group("photon_data")
        pd["timestamps"] = ts
        pd["timestamps_specs/timestamps_unit"] = 1e-12
        pd["detectors"] = det
        pd["nanotimes"] = np.where(delay >= 0, delay // tcspc_unit_ps, -1).astype(np.int32)
        pd["nanotimes_specs/tcspc_unit"] = tcspc_unit_ps * 1e-12
        pd["nanotimes_specs/tcspc_num_bins"] = int(period_ps // tcspc_unit_ps)
        pd["measurement_specs/measurement_type"] = np.bytes_(b"generic")
        if state_rate:
            pd["measurement_specs/laser_repetition_rate"] = 1e12 / period_ps
        f["setup/num_pixels"] = len(detectors)
        f["setup/num_spots"] = 1
        f["setup/lifetime"] = True
        f["setup/detectors/id"] = np.asarray(sorted(detectors), np.int64)
    return {"ts": ts, "det": det, "nt": delay.astype(np.int32)}


def read_photons(path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    with PhotonHDF5Reader(path) as reader:
        blocks = list(reader.iter_blocks(1 << 16))
    return tuple(np.concatenate([getattr(b, k) for b in blocks])  # type: ignore[return-value]
                 for k in ("timestamps", "detectors", "nanotimes", "markers"))


def replay_stream(path, detectors, sync=2, marker=3, period_ps=1e6, chunk=1 << 16, stops=None) -> TagBlock:
    source = ReplaySource(str(path), detectors, sync, marker, period_ps, chunk)
    try:
        stops = [2**62] if stops is None else stops
        return TagBlock.concatenate([source.generate(int(s)) for s in stops])
    finally:
        source.close()


def converted(stream: TagBlock, channels: ChannelMap) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    conv = PhotonConverter(channels)
    out = [conv.process(stream), conv.finish()]
    return tuple(np.concatenate([getattr(b, k) for b in out]) for k in ("timestamps", "detectors", "nanotimes"))  # type: ignore[return-value]


def analyze_json(path, tmp_path, *extra: str) -> dict:
    out = tmp_path / f"{path.stem}.json"
    assert main(["analyze", str(path), "--json", str(out), *extra]) == 0
    return json.loads(out.read_text())


def assert_same_histograms(a: dict, b: dict) -> None:
    assert a["g2"]["counts"] == b["g2"]["counts"] and sum(a["g2"]["counts"]) > 0
    assert a["g2"]["period_ps"] == b["g2"]["period_ps"]
    assert a["lifetime"]["bin_edges_ps"] == b["lifetime"]["bin_edges_ps"]
    assert a["lifetime"]["detector_counts"] == b["lifetime"]["detector_counts"] and sum(a["lifetime"]["counts"]) > 0
    assert a["trace"]["counts"] == b["trace"]["counts"] and a["trace"]["detector_counts"] == b["trace"]["detector_counts"]
    assert a["flid"]["counts"] == b["flid"]["counts"]
    assert a["photons"] == b["photons"]


# --- the sync comb (no engine) ---------------------------------------------------------------

def reference_fillers(anchors: np.ndarray, last: np.ndarray, period_ps: float) -> np.ndarray:
    """The module docstring's rule, one gap at a time (test oracle)."""
    out = []
    for a, b, latest in zip(anchors[:-1].tolist(), anchors[1:].tolist(), last[:-1].tolist()):
        m = max(round((b - a) / period_ps), 1)
        comb = [a + round(k * (b - a) / m) for k in range(1, m)]
        after = [f for f in comb if f > latest]
        if len(after) < len(comb) and latest + 1 < (after[0] if after else b):
            out.append(latest + 1)  # the last filler at or before the pulse's latest photon moves after it
        out += after
    return np.asarray(out, np.int64)


def test_fillers_match_the_one_gap_at_a_time_rule_in_any_window() -> None:
    rng = np.random.default_rng(3)
    period = 13123.36
    pulses = np.rint(np.arange(20_000) * period * (1 + 1e-5 * np.sin(np.arange(20_000) / 3000))).astype(np.int64)
    anchors = np.unique(rng.choice(pulses, 600))
    last = anchors + rng.integers(0, 30_000, anchors.size)  # some photons later than the next pulse
    expected = reference_fillers(anchors, last, period)
    cuts = np.sort(rng.integers(int(anchors[0]), int(anchors[-1]), 40))
    edges = [int(anchors[0]) - 5, *cuts.tolist(), int(anchors[-1]) + 5]
    got = np.concatenate([gap_fillers(anchors, last, period, lo, hi) for lo, hi in zip(edges[:-1], edges[1:])])
    np.testing.assert_array_equal(got, expected)
    assert np.all(np.diff(got) > 0)


def test_a_filler_never_falls_between_a_pulse_and_its_own_late_photon() -> None:
    # One photon 2.5 periods after its pulse (a file recorded with a sync divider): the
    # pulses at 11 000 and 12 000 would steal it; one moves to just after it, one is left out.
    anchors, last = pulse_anchors(np.array([100, 10_000 + 2_500, 40_000]), np.array([0, 2_500, 0], np.int32))
    np.testing.assert_array_equal(anchors, [100, 10_000, 40_000])
    np.testing.assert_array_equal(last, [100, 12_500, 40_000])
    fillers = gap_fillers(anchors, last, 1_000.0, -(2**62), 2**62)
    np.testing.assert_array_equal(fillers[9:12], [12_501, 13_000, 14_000])
    assert fillers.size == 9 + 1 + 27 and not np.any((fillers > 10_000) & (fillers <= 12_500))
    np.testing.assert_array_equal(tail_fillers(40_000, 40_000, 1_000.0, 0, 43_001), [41_000, 42_000, 43_000])
    np.testing.assert_array_equal(tail_fillers(40_000, 41_000, 1_000.0, 0, 43_001), [41_001, 42_000, 43_000])
    np.testing.assert_array_equal(tail_fillers(40_000, 42_500, 1_000.0, 0, 45_001), [42_501, 43_000, 44_000, 45_000])
    np.testing.assert_array_equal(tail_fillers(40_000, 42_500, 1_000.0, 43_500, 45_001), [44_000, 45_000])


@pytest.mark.parametrize("period_ps, drift, unit", [(1e6, 0.0, 1), (1e6, 2e-4, 1), (PICOHARP_PERIOD_PS, 1e-4, 4)])
def test_regenerated_syncs_give_back_the_file_nanotimes_exactly_whatever_the_windows(
        tmp_path, period_ps, drift, unit) -> None:
    path = tmp_path / "src.h5"
    src = write_imported_like(path, period_ps=period_ps, seconds=0.2 if period_ps > 1e5 else 0.01,
                              rate_cps=200_000 if period_ps > 1e5 else 4e6, drift=drift, tcspc_unit_ps=unit,
                              n_unsynced=5, detectors=(0, 1))
    whole = replay_stream(path, (0, 1), period_ps=period_ps)
    rng = np.random.default_rng(1)
    stops = np.sort(rng.integers(int(whole.timestamps[0]), int(whole.timestamps[-1]), 30)).tolist() + [2**62]
    pieces = replay_stream(path, (0, 1), period_ps=period_ps, chunk=997, stops=stops)
    np.testing.assert_array_equal(pieces.timestamps, whole.timestamps)
    np.testing.assert_array_equal(pieces.channels, whole.channels)
    ts, det, nt = converted(whole, ChannelMap(laser_sync=2, spad_a=0, spad_b=1))
    np.testing.assert_array_equal(ts, src["ts"])
    np.testing.assert_array_equal(det, src["det"])
    np.testing.assert_array_equal(nt, src["nt"])  # -1 before the first sync included
    assert (nt == -1).sum() == 5
    syncs = whole.timestamps[whole.channels == 2]
    assert np.all(np.diff(syncs) < 1.5 * period_ps)  # a full comb: no sync gap for the engine to report


def test_the_period_is_estimated_from_the_photons_when_the_file_states_none(tmp_path) -> None:
    path = tmp_path / "norate.h5"
    write_imported_like(path, period_ps=PICOHARP_PERIOD_PS, seconds=0.005, rate_cps=4e6, state_rate=False)
    replay = scan_replay_file(path)
    assert replay.period_source == "photons"
    assert abs(replay.period_ps - PICOHARP_PERIOD_PS) < 0.01


# --- labctl acquire --replay ------------------------------------------------------------------

@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """A short run of the simulated microscope (photons, syncs at divider 4, markers, frames)."""
    path = tmp_path_factory.mktemp("rec") / "sim.h5"
    with Station(sim_config(time_scale=4.0, seed=5)) as station:
        summary = AcquisitionEngine(station, path).run(1.5)
    assert summary.clean and not summary.losses
    return path


def test_replay_of_a_recording_writes_the_same_photons_and_analyze_gives_the_same_histograms(
        recording, tmp_path, capsys) -> None:
    out = tmp_path / "replayed.h5"
    code = main(["acquire", "--replay", str(recording), "--speed", "2", "--duration", "60", "--out", str(out),
                 "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "run ended: replay finished (clean)" in captured.out
    assert "not replayed" not in captured.err  # its frames are replayed too (tests/test_replay_frames.py)
    source, replayed = read_photons(recording), read_photons(out)
    assert source[0].size > 1000
    for a, b in zip(source, replayed):  # timestamps, detectors, nanotimes, markers
        np.testing.assert_array_equal(b, a)
    with PhotonHDF5Reader(out) as reader:
        end = reader.run_end()
        assert end["clean"] and end["end_reason"] == REPLAY_FINISHED
        assert reader.losses() == []
    assert_same_histograms(analyze_json(recording, tmp_path), analyze_json(out, tmp_path))


def test_duration_shorter_than_the_file_replays_the_photons_of_that_span(recording, tmp_path, capsys) -> None:
    out = tmp_path / "part.h5"
    assert main(["acquire", "--replay", str(recording), "--speed", "2", "--duration", "0.5", "--out", str(out),
                 "--no-progress"]) == 0
    assert "run ended: duration (clean)" in capsys.readouterr().out
    ts, det, nt, markers = read_photons(recording)
    first = scan_replay_file(recording).first_ps
    inside = ts < first + 500_000_000_000
    assert 0 < inside.sum() < ts.size
    got = read_photons(out)
    for a, b in zip((ts[inside], det[inside], nt[inside]), got[:3]):
        np.testing.assert_array_equal(b, a)


def test_four_detector_file_replays_its_first_two_and_says_which_are_left_out(tmp_path, capsys) -> None:
    path = tmp_path / "four.h5"
    src = write_imported_like(path, period_ps=1e6, seconds=0.5, rate_cps=80_000, detectors=(1, 2, 3, 4), tau_ps=20_000)
    out = tmp_path / "four_out.h5"
    assert main(["acquire", "--replay", str(path), "--speed", "2", "--duration", "5", "--out", str(out),
                 "--no-progress"]) == 0
    assert "detectors 3 (" in capsys.readouterr().err
    keep = src["det"] <= 2
    ts, det, nt, _ = read_photons(out)
    np.testing.assert_array_equal(ts, src["ts"][keep])
    np.testing.assert_array_equal(det, src["det"][keep])
    np.testing.assert_array_equal(nt, src["nt"][keep])
    assert_same_histograms(analyze_json(path, tmp_path, "--detectors", "1", "2"), analyze_json(out, tmp_path))


def test_detectors_0_and_1_keep_their_ids_and_the_sync_moves_to_a_free_channel(tmp_path) -> None:
    path = tmp_path / "zero_one.h5"
    src = write_imported_like(path, period_ps=1e6, seconds=0.5, rate_cps=80_000, detectors=(0, 1), tau_ps=20_000)
    config = replay_station_config(scan_replay_file(path), speed=4.0)
    assert config.channels == ChannelMap(laser_sync=2, spad_a=0, spad_b=1, frame_marker=3)
    out = tmp_path / "zero_one_out.h5"
    assert main(["acquire", "--replay", str(path), "--speed", "2", "--duration", "5", "--out", str(out),
                 "--no-progress"]) == 0
    for a, b in zip((src["ts"], src["det"], src["nt"]), read_photons(out)[:3]):
        np.testing.assert_array_equal(b, a)
    assert_same_histograms(analyze_json(path, tmp_path), analyze_json(out, tmp_path))


def test_picoharp_period_of_13123_36_ps_replays_exactly(tmp_path, capsys) -> None:
    path = tmp_path / "picoharp.h5"
    src = write_imported_like(path, period_ps=PICOHARP_PERIOD_PS, seconds=0.02, rate_cps=2e6, detectors=(1, 2),
                              tcspc_unit_ps=4, drift=5e-5)
    out = tmp_path / "picoharp_out.h5"
    # 76.2 M syncs per second of device time: replayed slower than real time (as a quTAG, the
    # buffer would overflow at full speed, and the replay says so beforehand).  CLI tests replay
    # at <= 2 M tags/s: the 1 M-tag buffer then outlasts a 0.5 s stall of a loaded CI machine.
    assert main(["acquire", "--replay", str(path), "--speed", "0.02", "--duration", "1", "--out", str(out),
                 "--no-progress"]) == 0, capsys.readouterr().err
    assert "expect buffer-overflow losses" not in capsys.readouterr().err
    for a, b in zip((src["ts"], src["det"], src["nt"]), read_photons(out)[:3]):
        np.testing.assert_array_equal(b, a)
    with PhotonHDF5Reader(out) as reader:
        assert math.isclose(reader.laser_repetition_rate_hz, 1e12 / 13123, rel_tol=1e-12)  # labctl stores whole ps
    assert_same_histograms(analyze_json(path, tmp_path, "--lifetime-bin-ps", "4", "--g2-range-ps", "60000",
                                        "--g2-bin-ps", "100"),
                           analyze_json(out, tmp_path, "--lifetime-bin-ps", "4", "--g2-range-ps", "60000",
                                        "--g2-bin-ps", "100"))


@pytest.mark.parametrize("argv, message", [
    (["--speed", "2"], "--speed = 2.0: only with --replay FILE"),
    (["--replay", "{missing}"], "must be a Photon-HDF5 file labctl can read"),
    (["--replay", "{no_nanotimes}"], "must hold nanotimes"),
    (["--replay", "{no_nanotimes}", "--seed", "3"], "--seed = 3: only without --replay"),
])
def test_bad_replay_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message) -> None:
    no_nt = tmp_path / "t2.h5"
    write_imported_like(no_nt, period_ps=1e6, seconds=0.01, rate_cps=10_000)
    with h5py.File(no_nt, "a") as f:
        del f["photon_data/nanotimes"]
    argv = [a.format(missing=tmp_path / "nope.h5", no_nanotimes=no_nt) for a in argv]
    code = main(["acquire", *argv, "--duration", "1", "--out", str(tmp_path / "x.h5"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_out_may_not_be_the_replayed_file_even_with_overwrite(recording, capsys) -> None:
    before = recording.stat().st_size
    code = main(["acquire", "--replay", str(recording), "--duration", "1", "--out", str(recording), "--overwrite",
                 "--no-progress"])
    assert code == 2 and "is the input --replay" in capsys.readouterr().err
    assert recording.stat().st_size == before and read_photons(recording)[0].size > 1000


def test_a_replay_too_fast_for_the_tagger_buffer_is_announced(tmp_path) -> None:
    path = tmp_path / "picoharp.h5"
    write_imported_like(path, period_ps=PICOHARP_PERIOD_PS, seconds=0.001, rate_cps=2e6)
    replay = scan_replay_file(path)
    note = overload_note(replay, replay_station_config(replay, 1.0), 1.0)
    assert note is not None and "7.62e+07 tags/s at --speed 1" in note and "--speed 0.13 or lower" in note
    assert overload_note(replay, replay_station_config(replay, 0.1), 0.1) is None


def test_speed_must_be_positive(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["acquire", "--replay", "x.h5", "--speed", "0", "--duration", "1", "--out", "y.h5"])
    assert exc.value.code == 2 and "--speed '0': must be a number > 0" in capsys.readouterr().err


def test_photons_whose_nanotime_cannot_be_kept_are_counted_and_named(tmp_path) -> None:
    path = tmp_path / "renamed.h5"
    src = write_imported_like(path, period_ps=1e6, seconds=0.1, rate_cps=50_000, detectors=(1, 2), tau_ps=20_000)
    nt = src["nt"].copy()
    named = src["ts"] - nt.astype(np.int64)
    late = [100, 200, 300]
    for i in late[:2]:  # from the pulse before the one the photon before it names
        nt[i] = src["ts"][i] - (named[i - 1] - 1_000_000)
    nt[300] += 1_000_000  # from the pulse before: nobody names its own pulse, it keeps its nanotime
    assert named[299] < src["ts"][300] - nt[300]
    with h5py.File(path, "a") as f:
        f["photon_data/nanotimes"][...] = nt
    replay = scan_replay_file(path)
    assert replay.renamed_photons == 2
    assert any("2 photons have a nanotime from an earlier pulse" in n for n in replay.notes)
    stream = replay_stream(path, (1, 2), sync=0, period_ps=1e6)
    _, _, got = converted(stream, ChannelMap(laser_sync=0, spad_a=1, spad_b=2))
    np.testing.assert_array_equal(np.flatnonzero(got != nt), late[:2])


def test_a_single_detector_file_replays_with_spad_b_on_a_free_channel(tmp_path) -> None:
    path = tmp_path / "one.h5"
    src = write_imported_like(path, period_ps=1e6, seconds=0.3, rate_cps=50_000, detectors=(2,), tau_ps=20_000)
    replay = scan_replay_file(path)
    assert replay.detectors == (2,)
    assert replay_station_config(replay).channels == ChannelMap(laser_sync=0, spad_a=2, spad_b=1, frame_marker=3)
    out = tmp_path / "one_out.h5"
    assert main(["acquire", "--replay", str(path), "--speed", "2", "--duration", "5", "--out", str(out),
                 "--no-progress"]) == 0
    for a, b in zip((src["ts"], src["det"], src["nt"]), read_photons(out)[:3]):
        np.testing.assert_array_equal(b, a)

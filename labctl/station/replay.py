"""Replay: a station whose time tagger serves a Photon-HDF5 file (``labctl acquire --replay``, ``labctl gui --replay``).

:func:`scan_replay_file` reads the file once (detectors, laser period, first and last
tag); :func:`replay_station_config` turns a station file (default: the built-in
one) into a replay station: the tagger's library becomes
``sim_backends.replay_tagger.ReplayTDCBase`` (named by its dotted path, as every
library is; labctl never imports it) and the laser's trigger a stand-in.  A file with
camera frames (labctl's FVB spectra) keeps the base station's camera, spectrograph and
function generator, with the libraries ``sim_backends.replay_camera.ReplayAndorSDK``
(the file's frames, each started by its replayed frame marker, on the tagger's device
time) and ``ReplayShamrock`` (the file's wavelength axis), and the generator's frame-clock output (the
frame clock the engine switches) at the file's frame rate; without frames those three
are left out.  Driver, engine, live views and GUI run unchanged.

Channels: the replayed detectors keep the file's detector ids as tagger channels
(``channels.spad_a`` / ``spad_b`` = the file's first two detector ids, the ones
``labctl analyze`` takes), so the recording's photons come out with the same
detector ids.  The laser sync and the frame markers go on the station's channels
for them unless a detector id takes one; then on the lowest free channel.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from labctl.errors import ConfigError
from labctl.station.station import StationConfig
from labctl.station.outputs import DEFAULT_FRAME_CLOCK
from labctl.storage import PhotonHDF5Reader
from labctl.storage import layout as L
from labctl.storage.hdf5_open import open_hdf5

REPLAY_LIBRARY = "sim_backends.replay_tagger.ReplayTDCBase"
REPLAY_TRIGGER = "sim_backends.replay_tagger.ReplayTriggerOutput"
REPLAY_CAMERA = "sim_backends.replay_camera.ReplayAndorSDK"
REPLAY_SPECTROGRAPH = "sim_backends.replay_camera.ReplayShamrock"
REPLAY_FINISHED = "replay finished"
"""End reason of a run that reached the end of the replayed file before its duration."""

_CHUNK_PHOTONS = 1 << 22


@dataclass(frozen=True)
class ReplayFile:
    """What a replay needs to know about its file (times in ps on the file's clock).

    Attributes:
        path: the file.
        photons: detector id -> photons in the file.
        detectors: the detector ids replayed (at most two: the engine records spad_a and spad_b).
        period_ps: laser period (ps, may be fractional).
        period_source: ``"file"`` (its laser repetition rate) or ``"photons"`` (estimated from the
            pulse times the photons' nanotimes imply).
        first_ps: first tag of the replay (a replayed photon, a marker or the pulse of the first
            photon with a nanotime).
        last_ps: last replayed photon or marker of the file: the replay's last tag.
        markers: frame markers in the file.
        frames: camera frames in the file.
        frames_replayed: the frames are replayed (FVB spectra, frame rate known); else a note says why not.
        frame_rate_hz: the file's frame rate (Hz; NaN without frames): the replayed frame clock's.
        wavelength_known: the file's wavelength axis is a calibration (finite), replayed by the spectrograph.
        exposure_s: exposure of the file's first frame (s; NaN without frames).
        unsynced_photons: photons with nanotime -1 after the first pulse (they cannot keep it).
        renamed_photons: photons whose nanotime a replay cannot keep (another photon names a pulse
            between theirs and their arrival).
        notes: what the replay leaves out or changes, one sentence each.
    """

    path: str
    photons: dict[int, int]
    detectors: tuple[int, ...]
    period_ps: float
    period_source: str
    first_ps: int
    last_ps: int
    markers: int
    frames: int
    unsynced_photons: int
    renamed_photons: int
    notes: list[str] = field(default_factory=list)
    frames_replayed: bool = False
    frame_rate_hz: float = math.nan
    wavelength_known: bool = False
    exposure_s: float = math.nan


def _estimate_period_ps(anchors_ps: np.ndarray) -> float | None:
    """The laser period (ps) from sorted unique pulse times.

    The smallest spacing gives a first value; it is then refined over spans ten
    times longer each step (1 000, 10 000, ... periods), each short enough that the
    pulse count over it is still exact with the value so far.
    """
    diffs = np.diff(anchors_ps)
    diffs = diffs[diffs > 0]
    if diffs.size == 0:
        return None
    smallest = float(diffs.min())
    period = float(np.median(diffs[diffs < 1.5 * smallest]))
    span_pulses = 1000.0
    while True:
        target = anchors_ps[0] + span_pulses * period
        j = min(int(np.searchsorted(anchors_ps, target)), anchors_ps.size - 1)
        span = float(anchors_ps[j] - anchors_ps[0])
        period = span / max(round(span / period), 1)
        if j == anchors_ps.size - 1:
            return period
        span_pulses *= 10


def scan_replay_file(path: str | Path) -> ReplayFile:
    """Read ``path`` once: what a replay of it will serve.

    Raises:
        ConfigError: (key ``--replay``) the file cannot be read, has no photons or no nanotimes,
            or states no laser period and none can be estimated.
    """
    path = str(path)
    try:
        reader = PhotonHDF5Reader(path)
    except (OSError, ValueError) as exc:
        raise ConfigError("--replay", path, f"must be a Photon-HDF5 file labctl can read ({exc})") from None
    with reader:
        if reader.nanotimes_unit_s is None:
            raise ConfigError("--replay", path, "must hold nanotimes (/photon_data/nanotimes): "
                                                "without them the laser sync cannot be regenerated")
        counts = reader.photon_counts()
        if not counts:
            raise ConfigError("--replay", path, "has no photons to replay")
        ids = [i for i in reader.detector_ids if counts.get(i)] or sorted(counts)
        replayed = np.zeros(256, bool)
        replayed[ids[:2]] = True
        rate_hz = reader.laser_repetition_rate_hz
        first_ps = last_ps = None
        first_anchor = last_anchor = None
        unsynced = renamed = 0
        carried = np.empty(0, np.int64)
        estimate: float | None = None
        try:
            for block in reader.iter_blocks(_CHUNK_PHOTONS):
                if not len(block):
                    continue
                ts, nt = block.timestamps, block.nanotimes
                mine = ts[replayed[block.detectors]]
                if mine.size:
                    first_ps = int(mine[0]) if first_ps is None else first_ps
                    last_ps = int(mine[-1])
                valid = nt >= 0
                if not valid.any():
                    unsynced += 0 if first_anchor is None else int(ts.size)
                    continue
                named = ts[valid] - nt[valid].astype(np.int64)
                anchors = np.unique(named)
                # A photon keeps its nanotime only if no pulse named by any photon lies in
                # (its pulse, its time]; with the previous chunk's late pulses too.
                known = np.union1d(carried[carried >= anchors[0]], anchors)
                latest = known[np.searchsorted(known, ts[valid], side="right") - 1]
                renamed += int(np.count_nonzero((latest != named) & replayed[block.detectors[valid]]))
                carried = anchors[anchors > int(ts[-1]) - int(nt[valid].max())]
                if first_anchor is None:
                    first_anchor = int(anchors[0])
                    unsynced += int(np.count_nonzero(~valid & (ts >= first_anchor)))
                    if not rate_hz:
                        estimate = _estimate_period_ps(anchors)
                else:
                    unsynced += int(np.count_nonzero(~valid))
                last_anchor = int(anchors[-1])
            markers = reader.markers()
        except ValueError as exc:
            raise ConfigError("--replay", path, f"cannot be read: {exc}") from None
    frames, frame_ndim, frame_rate_hz, wavelength_known, exposure_s = _scan_spectra(path, markers)
    if first_anchor is None:
        raise ConfigError("--replay", path, "has no photon with a nanotime: the laser sync cannot be regenerated")
    if rate_hz:
        period_ps, source = 1e12 / rate_hz, "file"
    elif estimate is not None:
        assert last_anchor is not None
        span = last_anchor - first_anchor
        period_ps, source = (span / max(round(span / estimate), 1) if span else estimate), "photons"
    else:
        raise ConfigError("--replay", path, "states no laser repetition rate and its photons name a single "
                                            "pulse: the sync period is unknown")
    assert first_ps is not None and last_ps is not None
    if markers.size:
        first_ps, last_ps = min(first_ps, int(markers[0])), max(last_ps, int(markers[-1]))
    notes = []
    replayed_ids = tuple(ids[:2])
    if len(ids) > 2:
        left = ", ".join(f"{i} ({counts[i]:,} photons)" for i in ids[2:])
        notes.append(f"detectors {left} not replayed: a run records two detectors (spad_a = {replayed_ids[0]}, "
                     f"spad_b = {replayed_ids[1]})")
    frames_replayed = bool(frames) and frame_ndim == 2 and frame_rate_hz > 0
    if frames and frame_ndim != 2:
        notes.append(f"{frames:,} camera frames in the file are not replayed: they are images, the replay "
                     "camera serves FVB spectra (frames x pixels)")
    elif frames and not frame_rate_hz > 0:
        notes.append(f"{frames:,} camera frames in the file are not replayed: its frame rate is unknown "
                     "(no frame_rate_hz and fewer than two frame markers)")
    if renamed:
        notes.append(f"{renamed:,} photons have a nanotime from an earlier pulse than the latest pulse other photons "
                     "name before them (not relative to the preceding sync): the replay gives them the nanotime "
                     "after that later pulse")
    if unsynced:
        notes.append(f"{unsynced:,} photons with nanotime -1 after the first laser pulse: the replay gives "
                     "them the nanotime of the regenerated sync")
    return ReplayFile(path=path, photons={i: counts[i] for i in ids}, detectors=replayed_ids, period_ps=float(period_ps),
                      period_source=source, first_ps=min(first_ps, first_anchor), last_ps=last_ps,
                      markers=int(markers.size), frames=frames, unsynced_photons=unsynced,
                      renamed_photons=renamed, notes=notes, frames_replayed=frames_replayed,
                      frame_rate_hz=frame_rate_hz if frames else math.nan, wavelength_known=wavelength_known,
                      exposure_s=exposure_s)


def _scan_spectra(path: str, markers_ps: np.ndarray) -> tuple[int, int, float, bool, float]:
    """(frames, dimensions of the frames dataset, frame rate in Hz, wavelength axis finite, exposure in s) of a file.

    The frame rate is the file's ``frame_rate_hz`` attribute, else 1 / the median marker
    spacing (NaN if neither).
    """
    f, _ = open_hdf5(path, swmr=True)  # as PhotonHDF5Reader: a replay of this file may still hold it open
    with f:
        frames_ds = f.get(L.SPECTRA_FRAMES)
        if not isinstance(frames_ds, h5py.Dataset) or frames_ds.shape[0] == 0:
            return 0, 0, math.nan, False, math.nan
        group = f[L.SPECTRA]
        rate_hz = float(group.attrs.get("frame_rate_hz", math.nan))
        axis = f.get(L.SPECTRA_WAVELENGTH)
        known = isinstance(axis, h5py.Dataset) and bool(np.all(np.isfinite(axis[()])))
        frames, ndim = int(frames_ds.shape[0]), int(frames_ds.ndim)
        exposure_s = float(int(f[L.SPECTRA_EXPOSURE_STOP][0]) - int(f[L.SPECTRA_EXPOSURE_START][0])) * 1e-12
    if not rate_hz > 0 and markers_ps.size > 1:
        rate_hz = 1e12 / float(np.median(np.diff(markers_ps)))
    return frames, ndim, rate_hz, known, exposure_s


def _free_channel(preferred: int, taken: set[int]) -> int:
    """``preferred`` unless taken, else the lowest channel not taken."""
    if preferred not in taken:
        return preferred
    return min(set(range(256)) - taken)


def replay_station_config(replay: ReplayFile, speed: float = 1.0, base: StationConfig | None = None) -> StationConfig:
    """A station that replays ``replay`` at ``speed`` times real time, from ``base`` (default: built-in).

    Kept from ``base``: the engine settings, the tagger's driver and settings (sync divider
    forced to 1: every regenerated sync is served, so nanotimes come out exact), the
    SPADs' drivers and figures.  Their count-rate limit is raised to the maximum: a
    replay excites nothing.  With ``replay.frames_replayed`` and a camera and function
    generator in ``base``: those and the spectrograph, serving the file's frames and
    wavelength axis (:func:`_replay_camera`).

    Raises:
        ConfigError: ``speed`` is not a number > 0, or the file's laser rate is outside what
            the laser driver accepts.
    """
    if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not (math.isfinite(speed) and speed > 0):
        raise ConfigError("--speed", speed, "must be a number > 0 (device time per wall-clock time)")
    base = base if base is not None else StationConfig.load()
    data: dict[str, Any] = copy.deepcopy(base.data)
    data.pop("safety", None)  # nothing to gate: a replay excites nothing and counts nothing live
    channels = dict(data["channels"])
    a = replay.detectors[0]
    taken = set(replay.detectors)
    sync = _free_channel(int(channels["laser_sync"]), taken)
    marker = _free_channel(int(channels.get("frame_marker", 3)), taken | {sync})
    b = replay.detectors[1] if len(replay.detectors) > 1 else _free_channel(int(channels["spad_b"]), taken | {sync, marker})
    data["channels"] = {"laser_sync": sync, "spad_a": a, "spad_b": b, "frame_marker": marker}
    data["station"] = {"name": "replay", "description": f"replay of {replay.path} at {speed:g}x real time"}
    instruments = data["instruments"]
    tagger = dict(instruments["tagger"])
    tagger["library"] = REPLAY_LIBRARY
    tagger["library_options"] = {
        "path": str(Path(replay.path).resolve()), "detectors": list(replay.detectors), "sync_channel": sync,
        "marker_channel": marker, "period_ps": replay.period_ps, "time_scale": float(speed),
    }
    tagger["settings"] = {**(tagger.get("settings") or {}), "sync_divider": 1}
    rate_hz = 1e12 / replay.period_ps
    laser = {"driver": instruments["laser"]["driver"], "trigger_output": REPLAY_TRIGGER,
             "settings": {"trigger_source": "external", "external_rate_hz": rate_hz}}
    replayed = {"tagger": tagger, "laser": laser}
    for role in ("spad_a", "spad_b"):
        spad = copy.deepcopy(instruments.get(role) or {"driver": "drivers.spad.SPAD"})
        spad["settings"] = {**(spad.get("settings") or {}), "max_count_rate_cps": 5e7}
        replayed[role] = spad
    if replay.frames_replayed and "camera" in instruments and "function_generator" in instruments:
        replayed.update(_replay_camera(replay, instruments))
    data["instruments"] = replayed
    data["engine"] = {**(data.get("engine") or {}), "software_sync_divider": 1}
    return StationConfig.from_dict(data, source=f"<replay of {replay.path}>")


def _replay_camera(replay: ReplayFile, instruments: dict[str, Any]) -> dict[str, Any]:
    """The base station's camera, spectrograph and function generator, serving the file's frames and axis.

    The camera keeps its driver and options; its library becomes the replay camera and its
    settings are the ones a frame per frame-marker needs (FVB, run till abort, external
    trigger; ``exposure_s`` the file's, which the replay camera reports to the ps).  The spectrograph
    comes only if the file's axis is a calibration (else the run's axis is NaN, as the
    file's).  The generator's frame-clock output (ch2 unless the camera's ``frame_clock`` says
    otherwise) runs at the file's frame rate (it triggers nothing: the frames follow the file's markers).
    """
    path = str(Path(replay.path).resolve())
    camera = copy.deepcopy(instruments["camera"])
    camera["library"] = REPLAY_CAMERA
    camera["library_options"] = {"path": path}
    camera["settings"] = {**(camera.get("settings") or {}), "read_mode": "fvb", "acquisition_mode": "run_till_abort",
                          "trigger_mode": "external", "exposure_s": replay.exposure_s}
    generator = copy.deepcopy(instruments["function_generator"])
    settings = dict(generator.get("settings") or {})
    clock = f"ch{camera.get('frame_clock', DEFAULT_FRAME_CLOCK)['channel']}"  # the station's frame-clock output
    settings[clock] = {**(settings.get(clock) or {}), "frequency_hz": float(replay.frame_rate_hz)}
    generator["settings"] = settings
    out = {"camera": camera, "function_generator": generator}
    if replay.wavelength_known and "spectrograph" in instruments:
        spectrograph = copy.deepcopy(instruments["spectrograph"])
        spectrograph["library"] = REPLAY_SPECTROGRAPH
        spectrograph["library_options"] = {"path": path}
        out["spectrograph"] = spectrograph
    return out


def overload_note(replay: ReplayFile, config: StationConfig, speed: float) -> str | None:
    """A warning if the regenerated sync alone fills more than half the tagger buffer per engine poll.

    Like a quTAG, the replay's buffer then overflows: the engine records a ``tagger_flag``
    loss (never silent); a lower ``--speed`` avoids it.
    """
    buffer_tags = int((config.data["instruments"]["tagger"].get("settings") or {}).get("buffer_size", 1_000_000))
    poll_s = config.engine.poll_interval_ms / 1000.0
    sync_per_s = 1e12 / replay.period_ps * speed
    if sync_per_s * poll_s <= 0.5 * buffer_tags:
        return None
    return (f"the sync alone is {sync_per_s:.3g} tags/s at --speed {speed:g}: more than half the tagger buffer "
            f"({buffer_tags:,} tags) per {poll_s * 1e3:g} ms poll, expect buffer-overflow losses; "
            f"--speed {0.5 * buffer_tags / poll_s / (1e12 / replay.period_ps):.2g} or lower avoids them")


def stop_at_file_end(engine: Any, replay: ReplayFile, speed: float, poll_s: float = 0.05,
                     grace_s: float = 2.0) -> threading.Thread:
    """Stop the started ``engine`` with reason ``"replay finished"`` once it has read the file's last tag.

    For runs asked to last longer than the file (no tag comes after its last one, so
    the engine would wait for ever).  Should the last tag never be seen, the run is
    stopped all the same ``grace_s`` after the wall-clock time the file's span takes
    at ``speed``.  Returns the (daemon) watcher thread.
    """
    span_s = (replay.last_ps - replay.first_ps) * 1e-12 / speed

    def watch() -> None:
        started = time.monotonic()
        while engine.running:
            last = engine.status().get("last_tag_ps")
            if (last is not None and last >= replay.last_ps) or time.monotonic() - started > span_s + grace_s:
                engine.stop(REPLAY_FINISHED)
                return
            time.sleep(poll_s)

    thread = threading.Thread(target=watch, name="labctl-replay-end", daemon=True)
    thread.start()
    return thread

"""All photons of a file in memory (int64 ps), with the laser period and the detectors' IRF alignment."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from labctl.analysis.analyze_parts import duration_choice, lifetime_bin_ps, period_from_first_block, t3_photon_times
from labctl.analysis.decay_start import estimate_irf_offset_ps
from labctl.analysis.lifetime_align import MIN_ALIGN_PHOTONS, period_edges
from labctl.errors import ConfigError
from labctl.storage import PhotonHDF5Reader


@dataclass
class PhotonData:
    """Photons of the chosen detectors, time-sorted.

    ``nanotimes_ps``: delay after the laser pulse, moved per detector onto the reference
    detector's IRF (``detector_shifts_ps`` subtracted, modulo the period); -1: none or
    outside [0, period).  ``origin_ps``: time zero of the bins (the first photon).
    """

    timestamps_ps: np.ndarray
    detectors: np.ndarray
    nanotimes_ps: np.ndarray
    detector_ids: tuple[int, ...]
    period_ps: int
    period_source: str
    bin_ps: int
    bin_source: str
    duration_s: float
    duration_source: str
    origin_ps: int
    detector_shifts_ps: dict[int, int]
    warnings: list[str]

    def edges_ps(self) -> np.ndarray:
        """Nanotime bin edges 0, w, ..., period (last bin partial if needed)."""
        n = -(-self.period_ps // self.bin_ps)
        return period_edges(np.arange(n + 1, dtype=np.int64) * self.bin_ps, self.period_ps)


def load_photons(path: str | Path, detectors: tuple[int, ...] | None, laser_period_ps: int | None,
                 lifetime_bin_wanted_ps: int) -> PhotonData:
    """Read the file's photons of ``detectors`` (default: the first two); they need nanotimes.

    Raises:
        ConfigError: no nanotimes, no laser period, unknown detectors.
    """
    warnings: list[str] = []
    with PhotonHDF5Reader(path) as reader:
        ids = reader.detector_ids
        chosen = tuple(detectors) if detectors else tuple(ids[:2])
        if not chosen or any(d not in ids for d in chosen):
            raise ConfigError("--detectors", list(chosen), f"must be detectors of {path}: {list(ids)}")
        unit_s = reader.nanotimes_unit_s
        if unit_s is None:
            raise ConfigError(str(path), "no nanotimes", "labctl report needs TCSPC nanotimes (lifetimes)")
        blocks = reader.iter_blocks(1 << 22)
        first = next(blocks, None)
        period_ps, period_source, t3 = period_from_first_block(
            laser_period_ps, reader.laser_repetition_rate_hz, first, True, reader.timestamps_unit_s * 1e12,
            reader.is_labctl_file)
        if period_ps is None:
            raise ConfigError("--laser-period-ps", None, f"{path} has no laser period: give the period (ps)")
        stream = itertools.chain([first] if first is not None else [], blocks)
        if t3:
            stream = t3_photon_times(stream)
        wanted = np.zeros(256, bool)
        wanted[list(chosen)] = True
        ts, det, nt = [], [], []
        for block in stream:
            keep = wanted[block.detectors]
            ts.append(block.timestamps[keep])
            det.append(block.detectors[keep])
            nt.append(block.nanotimes[keep])
        file_duration = reader.acquisition_duration_s
    timestamps = np.concatenate(ts) if ts else np.empty(0, np.int64)
    if timestamps.size < 100:
        raise ConfigError(str(path), f"{timestamps.size} photons", "labctl report needs at least 100 photons")
    dets = np.concatenate(det)
    nanotimes = np.concatenate(nt).astype(np.int64)
    duration_s, duration_source = duration_choice(file_duration, int(timestamps[0]), int(timestamps[-1]), warnings)
    bin_ps, bin_source = lifetime_bin_ps(lifetime_bin_wanted_ps, unit_s)
    nanotimes[(nanotimes < 0) | (nanotimes >= period_ps)] = -1
    data = PhotonData(timestamps, dets, nanotimes, chosen, int(period_ps), str(period_source), bin_ps, bin_source,
                      duration_s, duration_source, int(timestamps[0]), {}, warnings)
    _align(data)
    return data


def _align(data: PhotonData) -> None:
    """Move each detector's nanotimes onto the reference (most photons) detector's IRF onset, in place."""
    edges = data.edges_ps()
    ok = data.nanotimes_ps >= 0
    offsets: dict[int, int | None] = {}
    counts = {}
    for d in data.detector_ids:
        sel = ok & (data.detectors == d)
        hist = np.histogram(data.nanotimes_ps[sel], edges)[0]
        counts[d] = int(hist.sum())
        offsets[d] = estimate_irf_offset_ps(hist, edges) if hist.sum() >= MIN_ALIGN_PHOTONS else None
    ref = max(counts, key=counts.get)
    for d in data.detector_ids:
        shift = 0
        if offsets[d] is not None and offsets[ref] is not None:
            shift = int((offsets[d] - offsets[ref] + data.period_ps // 2) % data.period_ps - data.period_ps // 2)
        data.detector_shifts_ps[d] = shift
        if shift:
            sel = ok & (data.detectors == d)
            data.nanotimes_ps[sel] = np.mod(data.nanotimes_ps[sel] - shift, data.period_ps)

"""Run records shared by the engine and its sinks (Bluesky-style start/stop documents)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from labctl.blocks import ChannelMap, LossRecord


@dataclass
class SpectralInfo:
    """What the file writer needs to lay out the spectra before the first frame.

    Attributes:
        frame_shape: shape of one frame: ``(pixels,)`` for FVB, ``(rows, pixels)`` for images.
        wavelength_nm: wavelength of each pixel column (nm), from the spectrograph calibration.
        exposure_s: exposure time of each frame (s).
        frame_rate_hz: frame-clock rate (Hz).
    """

    frame_shape: tuple[int, ...]
    wavelength_nm: np.ndarray
    exposure_s: float
    frame_rate_hz: float

    @property
    def energy_ev(self) -> np.ndarray:
        """Photon energy of each pixel column (eV): 1239.84198 / wavelength_nm."""
        return 1239.841984 / np.asarray(self.wavelength_nm, dtype=np.float64)


@dataclass
class RunInfo:
    """The start record of a run, handed to every sink's ``open``.

    Attributes:
        run_id: unique id (uuid4 hex).
        start_time_iso: wall-clock start (ISO 8601, UTC).
        channels: the tagger channel map.
        detector_labels: tagger channel -> label (``{1: "spad_a", 2: "spad_b"}``).
        nominal_sync_period_ps: laser pulse period expected from the station settings (ps).
        sync_divider: total sync divider (hardware x software) in force.
        duration_s: requested duration (None = until stopped).
        seed: simulation seed, if simulated.
        station_snapshot: the QCoDeS snapshot of every instrument plus the station config.
        description: free text.
        spectra: frame layout and axes when a camera records (None = no camera).
    """

    run_id: str
    start_time_iso: str
    channels: ChannelMap
    detector_labels: dict[int, str]
    nominal_sync_period_ps: int
    sync_divider: int = 1
    duration_s: float | None = None
    seed: int | None = None
    station_snapshot: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    spectra: SpectralInfo | None = None


@dataclass
class RunSummary:
    """The stop record of a run, handed to every sink's ``close``.

    Attributes:
        clean: True if the run ended as asked (duration reached or stop called),
            False after an error or interrupt.
        end_reason: "duration", "stopped", "interrupted", "error: ..." etc.
        duration_ps: tagger time covered by the run (ps).
        counts: tagger channel -> tags seen (all channels, syncs included).
        photons_written: photons handed to the file sink.
        losses: every loss record of the run.
        measured_sync_period_ps: pulse period measured from the sync stream (ps, float).
        file_path / file_size_bytes: the data file, if any.
        errors: error messages collected during the run.
        start_ps: timestamp of the first tag of the run (tagger clock, ps).
        safe_state_actions: what the safe state at the end of the run switched (laser trigger output,
            SPAD gate, shutter), in order (:mod:`labctl.station.safe_state`).
        safe_state_warnings: what it could not make safe, e.g. the laser on its internal clock still
            emitting with nothing to cut its light.
    """

    clean: bool
    end_reason: str
    duration_ps: int
    counts: dict[int, int]
    photons_written: int
    losses: list[LossRecord]
    measured_sync_period_ps: float | None = None
    file_path: str | None = None
    file_size_bytes: int | None = None
    errors: list[str] = field(default_factory=list)
    start_ps: int = 0
    safe_state_actions: list[str] = field(default_factory=list)
    safe_state_warnings: list[str] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return self.duration_ps * 1e-12

    def rates_cps(self) -> dict[int, float]:
        """Tags per second per channel over the run."""
        if self.duration_ps <= 0:
            return {ch: 0.0 for ch in self.counts}
        return {ch: n / self.duration_s for ch, n in self.counts.items()}

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["losses"] = [asdict(loss) for loss in self.losses]
        return out

"""Live spectrum and spectral time trace (waterfall) from the camera frames of a run.

``LiveSpectrum`` is an engine sink like the photon accumulators: it reads the
frames the engine attaches to each photon block (``PhotonBlock.frames``, frame
``i`` = the i-th frame-clock marker of the run) and keeps

* the latest spectrum: the last frame, summed over rows for image frames
  (full vertical binning in software), in counts per pixel column;
* a waterfall of the last ``history`` spectra, one row per frame index, with
  frames the camera lost (``skipped_frames``) left as NaN rows so that the
  time axis stays true;
* the wavelength of each column (nm) from the run's spectrograph calibration.

It keeps no photons and nothing that grows with the run: its memory is
``history x pixels`` float32.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from labctl.blocks import PhotonBlock
from labctl.run import RunInfo, RunSummary

DEFAULT_HISTORY = 200
"""Spectra kept for the waterfall (20 s at the default 10 Hz frame clock)."""


@dataclass(frozen=True)
class SpectrumSnapshot:
    """A copy of the live spectral state.

    Attributes:
        wavelength_nm: wavelength of each pixel column (nm), float64.
        latest: the newest spectrum (counts per column, float64), None before the first frame.
        latest_index: frame index of ``latest`` (-1 before the first frame).
        waterfall: float32 ``(history, pixels)``: row k is frame ``first_index + k``;
            NaN rows are frames not (yet) delivered or lost.
        first_index: frame index of the waterfall's first row.
        frame_period_s: time between frames (s), from the frame-clock rate.
        frames_received: frames delivered in this run.
        frames_skipped: frames the camera lost in this run.
    """

    wavelength_nm: np.ndarray
    latest: np.ndarray | None
    latest_index: int
    waterfall: np.ndarray
    first_index: int
    frame_period_s: float
    frames_received: int
    frames_skipped: int


class LiveSpectrum:
    """Engine sink: the latest spectrum and a rolling waterfall of camera frames.

    Args:
        history: number of frames the waterfall keeps (>= 1).
        name: the sink's name.
    """

    def __init__(self, history: int = DEFAULT_HISTORY, name: str = "spectrum") -> None:
        if not isinstance(history, int) or isinstance(history, bool) or history < 1:
            raise ValueError(f"LiveSpectrum: history = {history!r}: must be an integer >= 1")
        self.name = name
        self.history = history
        self._lock = threading.Lock()
        self._reset(np.empty(0, np.float64), 0.0)

    def _reset(self, wavelength_nm: np.ndarray, frame_period_s: float) -> None:
        self._wavelength_nm = np.asarray(wavelength_nm, np.float64)
        self._waterfall = np.full((self.history, self._wavelength_nm.size), np.nan, np.float32)
        self._newest = -1  # highest frame index placed
        self._latest: np.ndarray | None = None
        self._latest_index = -1
        self._frame_period_s = frame_period_s
        self._received = 0
        self._skipped = 0

    # -- Sink --------------------------------------------------------------------------
    def open(self, run: RunInfo) -> None:
        """Take the wavelength axis and frame rate of the run (no camera: an empty view)."""
        spectra = run.spectra
        with self._lock:
            if spectra is None:
                self._reset(np.empty(0, np.float64), 0.0)
            else:
                period = 1.0 / spectra.frame_rate_hz if spectra.frame_rate_hz > 0 else 0.0
                self._reset(spectra.wavelength_nm, period)

    def write(self, block: PhotonBlock) -> None:
        self.update(block)

    def close(self, summary: RunSummary) -> None:
        """Nothing to finish: the view keeps the last state."""

    # -- accumulate ----------------------------------------------------------------------
    def update(self, block: PhotonBlock) -> None:
        """Place the block's frames (and lost frames, as NaN) in the waterfall."""
        frames = block.frames
        skipped = np.asarray(block.skipped_frames, np.int64)
        if (frames is None or len(frames) == 0) and skipped.size == 0:
            return
        with self._lock:
            self._skipped += int(skipped.size)
            if frames is None or len(frames) == 0:
                self._advance(int(skipped.max()))
                return
            data = np.asarray(frames.frames, np.float64)
            spectra = data.sum(axis=1) if data.ndim == 3 else data  # image: sum the rows
            if spectra.shape[1] != self._waterfall.shape[1]:  # no calibration from the run: index axis
                self._wavelength_nm = np.arange(spectra.shape[1], dtype=np.float64)
                self._waterfall = np.full((self.history, spectra.shape[1]), np.nan, np.float32)
            indices = np.asarray(frames.indices, np.int64)
            top = int(max(indices.max(), skipped.max() if skipped.size else -1))
            self._advance(top)
            rows = indices - (self._newest - self.history + 1)
            keep = rows >= 0
            self._waterfall[rows[keep]] = spectra[keep].astype(np.float32)
            newest = int(np.argmax(indices))
            self._latest = spectra[newest].copy()
            self._latest_index = int(indices[newest])
            self._received += int(indices.size)

    def _advance(self, top_index: int) -> None:
        """Roll the waterfall so that its last row is frame ``top_index`` (new rows NaN)."""
        shift = top_index - self._newest
        if shift <= 0:
            return
        if shift >= self.history:
            self._waterfall[:] = np.nan
        else:
            self._waterfall[:-shift] = self._waterfall[shift:]
            self._waterfall[-shift:] = np.nan
        self._newest = top_index

    def snapshot(self) -> SpectrumSnapshot:
        """A consistent copy (safe from another thread)."""
        with self._lock:
            latest = None if self._latest is None else self._latest.copy()
            return SpectrumSnapshot(
                wavelength_nm=self._wavelength_nm.copy(),
                latest=latest,
                latest_index=self._latest_index,
                waterfall=self._waterfall.copy(),
                first_index=self._newest - self.history + 1,
                frame_period_s=self._frame_period_s,
                frames_received=self._received,
                frames_skipped=self._skipped,
            )

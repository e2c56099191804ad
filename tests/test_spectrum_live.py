"""LiveSpectrum: latest spectrum and waterfall rows placed by frame index, lost frames NaN."""

from __future__ import annotations

import numpy as np
import pytest

from labctl.analysis.spectrum_live import LiveSpectrum
from labctl.blocks import FrameBlock, PhotonBlock


def block_with(indices, frames, skipped=()):
    block = PhotonBlock.empty()
    n = len(indices)
    if n:
        block.frames = FrameBlock(np.asarray(indices, np.int64), np.asarray(frames, np.float64),
                                  np.zeros(n, np.int64), np.zeros(n, np.int64))
    block.skipped_frames = np.asarray(skipped, np.int64)
    return block


def test_waterfall_rows_follow_frame_indices_with_lost_frames_as_nan():
    sink = LiveSpectrum(history=4)
    spectra = np.arange(6 * 3, dtype=np.float64).reshape(6, 3)
    sink.update(block_with([0, 1], spectra[:2]))
    sink.update(block_with([3], spectra[3:4], skipped=[2]))
    sink.update(block_with([4, 5], spectra[4:6]))
    snap = sink.snapshot()
    assert snap.first_index == 2 and snap.latest_index == 5
    np.testing.assert_array_equal(snap.latest, spectra[5])
    assert np.isnan(snap.waterfall[0]).all()  # frame 2 was lost
    np.testing.assert_array_equal(snap.waterfall[1:], spectra[3:6].astype(np.float32))
    assert (snap.frames_received, snap.frames_skipped) == (5, 1)


def test_image_frames_are_summed_over_rows_and_history_is_checked():
    sink = LiveSpectrum(history=2)
    image = np.arange(2 * 4 * 5, dtype=np.float64).reshape(2, 4, 5)
    sink.update(block_with([0, 1], image))
    snap = sink.snapshot()
    np.testing.assert_array_equal(snap.latest, image[1].sum(axis=0))
    np.testing.assert_array_equal(snap.waterfall, image.sum(axis=1).astype(np.float32))
    with pytest.raises(ValueError, match=r"history = 0: must be an integer >= 1"):
        LiveSpectrum(history=0)

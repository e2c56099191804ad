"""Replay: a recorded or imported Photon-HDF5 file served through the quTAG library API.

``ReplayTDCBase`` is the simulated quTAG library (:class:`sim_backends.qutag_sim.SimTDCBase`,
every ``TDC_*`` function and behaviour unchanged: ring buffer, data-lost flag, channel
mask, delays, divider) whose tag source is a file instead of the scene
(:class:`sim_backends.replay_source.ReplaySource`: the file's photons and frame
markers, and the laser sync regenerated from their nanotimes).  So
``drivers.qutag.QuTAG``, the engine, the live views and the GUI run unchanged on a
recording.  A station names it like any simulated library::

    tagger:
      driver: drivers.qutag.QuTAG
      library: sim_backends.replay_tagger.ReplayTDCBase
      library_options: {path: run.h5, detectors: [1, 2], sync_channel: 0, marker_channel: 3,
                        period_ps: 1000000.0, time_scale: 4.0}

Device time is the file's clock: it starts at the file's first tag when the stream is
first enabled and runs ``time_scale`` times faster than the wall clock.  After the
file's last tag no more tags come (a run asked to last longer is stopped by
``labctl.station.replay.stop_at_file_end``).  ``labctl.station.replay`` builds such a station.

``ReplayTriggerOutput`` stands in for the function-generator channel that would
trigger the laser: the replay's pulses come from the file, so it only records
frequency and on/off.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from sim_backends.qutag_sim import SimTDCBase
from sim_backends.replay_source import ReplaySource, share_source


class ReplayTDCBase(SimTDCBase):
    """The standard quTAG library (v1.5) serving a Photon-HDF5 file's tags.

    Args:
        path: the Photon-HDF5 file.
        detectors: the file's detector ids to replay (each keeps its id as channel).
        sync_channel: channel of the regenerated laser sync.
        marker_channel: channel of the file's frame markers (None = none).
        period_ps: the file's laser period (ps; may be fractional).
        time_scale: device time runs this many times faster than the wall clock (``--speed``).
        chunk_photons: photons read from the file at a time.
        clock: wall clock (s), for tests.
        scene: the station's shared scene (the station passes it): the source is registered
            with it, so a replay camera of the same station shares the tagger's device time.
    """

    def __init__(self, path: str, *, detectors: Sequence[int] = (1, 2), sync_channel: int = 0,
                 marker_channel: int | None = 3, period_ps: float = 1e6, time_scale: float = 1.0,
                 chunk_photons: int = 1 << 16, clock: Callable[[], float] = time.monotonic,
                 scene: Any = None) -> None:
        source = ReplaySource(path, detectors, sync_channel, marker_channel, period_ps, chunk_photons)
        try:
            super().__init__(source, time_scale=time_scale, clock=clock)
        except BaseException:
            source.close()
            raise
        self.source = source
        # The device clock starts at the file's first tag (TDC_init keeps the generated time).
        self._t_generated_ps = self._time_offset_ps = source.start_ps
        if scene is not None:
            share_source(scene, source)


class ReplayTriggerOutput:
    """A laser trigger output with nothing behind it (labctl.interfaces.TriggerOutput)."""

    def __init__(self) -> None:
        self._frequency_hz = 0.0
        self._enabled = False

    def set_frequency_hz(self, frequency_hz: float) -> None:
        self._frequency_hz = float(frequency_hz)

    def frequency_hz(self) -> float:
        return self._frequency_hz

    def frequency_range_hz(self) -> tuple[float, float]:
        """Any rate (Hz): the file's, whatever it is."""
        return 0.0, float("inf")

    def set_enabled(self, enabled: bool) -> None:
        self._enabled = bool(enabled)

    def enabled(self) -> bool:
        return self._enabled

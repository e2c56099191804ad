"""What labctl expects of each kind of instrument, and of a data sink.

These are structural interfaces (``typing.Protocol``): a driver satisfies one by
having the methods, whatever its base class (QCoDeS ``Instrument`` subclasses
cannot also take an ``ABCMeta`` base).  The station checks each configured
instrument against the interface of its role when it builds it.

Settings live in the drivers as QCoDeS parameters with units and validators;
these interfaces carry only what the engine needs to stream and to be safe.

A driver that takes a vendor ``library`` object (real or simulated) declares, as a
class attribute, the functions that object must define, per library flavour::

    vendor_library_functions = {"standard": ("TDC_init", "TDC_deInit", ...), "mc": (...)}

The station checks a ``library:`` class of a station file against it before calling
anything (see :mod:`labctl.station.classes`).

Every member a Protocol lists is required (the core never asks ``getattr(x, name, None)``):
members may be plain methods or QCoDeS parameters (callable), and each role's Protocol
derives from :class:`StationInstrument` (``snapshot``, ``close``).  A function generator's
outputs become a :class:`TriggerOutput` (laser trigger; SPAD gate: off = SPADs off) or a
:class:`FrameClock` (camera trigger) as the station file wires them
(:mod:`labctl.station.outputs`).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from labctl.blocks import PhotonBlock, TagBlock
from labctl.run import RunInfo, RunSummary


@runtime_checkable
class StationInstrument(Protocol):
    """What the station asks of every instrument it builds: a snapshot for the data file, and close."""

    def snapshot(self, update: bool | None = False) -> dict[str, Any]:
        """QCoDeS snapshot of every setting."""

    def close(self) -> None:
        """Release the instrument (the station calls it once, at its own close)."""


@runtime_checkable
class TimeTagger(StationInstrument, Protocol):
    """A T2 time-to-digital converter streaming (timestamp ps, channel) tags."""

    def timebase_ps(self) -> float:
        """Duration of one timestamp unit in picoseconds (1.0 for a quTAG)."""

    def sync_divider(self) -> int:
        """Hardware divider applied to the sync input (1, 2, 4, 8 on a quTAG)."""

    def start_stream(self) -> None:
        """Enable timestamp streaming and clear the tagger's buffer."""

    def read_tags(self) -> TagBlock:
        """Return every tag buffered since the last call (sorted by time), and clear the buffer."""

    def data_lost(self) -> bool:
        """True if the tagger dropped tags since the previous call (latched flag, then cleared)."""

    def stop_stream(self) -> None:
        """Stop streaming (the buffer is no longer filled)."""


@runtime_checkable
class PulsedLaser(StationInstrument, Protocol):
    """A pulsed excitation source with a safe state."""

    def trigger_source(self) -> str:
        """``"external"`` (software sets the rate and switches the pulses through a trigger output)
        or ``"internal"`` (the laser's own clock: software can neither switch nor read its emission)."""

    def repetition_rate_hz(self) -> float:
        """Pulse repetition rate in Hz."""

    def enable_excitation(self) -> None:
        """Start pulsing (or un-gate the excitation path)."""

    def disable_excitation(self) -> None:
        """Stop the excitation: the safe state.  Must not raise for a healthy instrument."""

    def excitation_enabled(self) -> bool:
        """True while the sample is being excited."""


@runtime_checkable
class PhotonDetector(StationInstrument, Protocol):
    """A single-photon detector (SPAD).  Its "driver" is its wiring plus protection."""

    def tagger_channel(self) -> int:
        """The time-tagger input the detector is wired to."""

    def max_count_rate_cps(self) -> float:
        """Count rate (counts/s) above which the excitation is cut to protect the detector."""


@runtime_checkable
class Camera(StationInstrument, Protocol):
    """A spectroscopy camera (EMCCD) that takes one frame per frame-clock edge."""

    def start_frames(self) -> None:
        """Arm the camera (external trigger) and start streaming frames."""

    def read_frames(self) -> tuple[np.ndarray, np.ndarray]:
        """Return (frame indices int64, frames uint16/int32 of shape (n, ...)) acquired since the last call."""

    def read_skipped_frames(self) -> np.ndarray:
        """Indices (int64) of the frames found lost since the previous call (overwritten before they were
        read); clears them.  Empty if none."""

    def stop_frames(self) -> None:
        """Abort the acquisition."""

    def kinetic_cycle_s(self) -> float:
        """Shortest time between two frames (s): exposure plus readout, as the camera computes it."""

    def actual_exposure_s(self) -> float:
        """Exposure time per frame (s) as the camera rounded it."""

    def frame_shape(self) -> tuple[int, ...]:
        """Shape of one frame (pixels): ``(width,)`` for a spectrum (FVB), ``(rows, width)`` for an image."""

    def temperature_c(self) -> float:
        """Sensor temperature (degC)."""

    def temperature_state(self) -> str:
        """Cooling state: ``"stabilized"``, or another word (``"not_stabilized"``, ``"off"``...) when it is not."""


@runtime_checkable
class Spectrograph(StationInstrument, Protocol):
    """A grating spectrograph."""

    def wavelength_axis_nm(self, num_pixels: int, pixel_width_um: float) -> np.ndarray:
        """Wavelength (nm) of each detector pixel for the current grating and centre wavelength."""


@runtime_checkable
class FrameClock(Protocol):
    """A generator output that clocks the camera: each rising edge starts a frame and is a frame-marker tag."""

    def set_enabled(self, enabled: bool) -> None:
        """Switch the clock on (edges) or off (none)."""

    def enabled(self) -> bool:
        """True while the clock runs."""

    def set_rate_hz(self, rate_hz: float) -> None:
        """Frame rate (Hz)."""

    def rate_hz(self) -> float:
        """Frame rate (Hz), read from the generator."""


@runtime_checkable
class FunctionGenerator(StationInstrument, Protocol):
    """A multi-channel function generator: laser trigger, camera frame clock, SPAD gate (one output each)."""

    output_channels: tuple[int, ...]
    """Numbers of its outputs (class attribute, e.g. ``(1, 2)``): what a station file may name as a channel."""

    def set_output(self, channel: int, enabled: bool) -> None:
        """Switch an output channel on or off."""

    def trigger_output(self, channel: int) -> "TriggerOutput":
        """Output ``channel`` as an on/off pulse train (the laser trigger; also the SPAD gate: off = gated off)."""

    def frame_clock(self, channel: int) -> FrameClock:
        """Output ``channel`` as the camera frame clock."""


@runtime_checkable
class Shutter(StationInstrument, Protocol):
    """A shutter in the excitation path: closed, no laser light reaches the sample."""

    def set_open(self, is_open: bool) -> None:
        """Open (True) or close (False) the shutter; returns once it has moved."""

    def is_open(self) -> bool:
        """True while the shutter is open."""


@runtime_checkable
class Sink(Protocol):
    """A consumer of the engine's photon blocks (file writer, live accumulators).

    The engine calls ``open`` once, ``write`` from the sink's own thread for
    every block in order, and ``close`` once at the end (also after an error).
    """

    name: str

    def open(self, run: RunInfo) -> None:
        """Prepare for a run (create the file layout, reset accumulators)."""

    def write(self, block: PhotonBlock) -> None:
        """Consume one block.  May raise; the engine then stops the run safely."""

    def close(self, summary: RunSummary) -> None:
        """Finish the run (write the end record, release resources)."""


@runtime_checkable
class TriggerOutput(Protocol):
    """An output that triggers the laser (a function-generator channel), so software can
    set the repetition rate and switch the excitation when the laser runs on external trigger."""

    def set_frequency_hz(self, frequency_hz: float) -> None:
        """Pulse frequency of the trigger output (Hz)."""

    def frequency_hz(self) -> float:
        """Current pulse frequency (Hz)."""

    def frequency_range_hz(self) -> tuple[float, float]:
        """Lowest and highest frequency (Hz) the output can produce; a laser driver validates its rate against it."""

    def set_enabled(self, enabled: bool) -> None:
        """Switch the trigger output on (laser pulses) or off (no pulses)."""

    def enabled(self) -> bool:
        """True while the output is on."""

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
anything (see :mod:`labctl.station.classes`).  A trigger output may also offer
``frequency_range_hz() -> (low, high)``; a laser driver then validates its rate against it.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from labctl.blocks import PhotonBlock, TagBlock
from labctl.run import RunInfo, RunSummary


@runtime_checkable
class TimeTagger(Protocol):
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

    def snapshot(self, update: bool | None = False) -> dict[str, Any]:
        """QCoDeS snapshot of every setting."""


@runtime_checkable
class PulsedLaser(Protocol):
    """A pulsed excitation source with a safe state."""

    def repetition_rate_hz(self) -> float:
        """Pulse repetition rate in Hz."""

    def enable_excitation(self) -> None:
        """Start pulsing (or un-gate the excitation path)."""

    def disable_excitation(self) -> None:
        """Stop the excitation: the safe state.  Must not raise for a healthy instrument."""

    def excitation_enabled(self) -> bool:
        """True while the sample is being excited."""

    def snapshot(self, update: bool | None = False) -> dict[str, Any]:
        """QCoDeS snapshot of every setting."""


@runtime_checkable
class PhotonDetector(Protocol):
    """A single-photon detector (SPAD).  Its "driver" is its wiring plus protection."""

    def tagger_channel(self) -> int:
        """The time-tagger input the detector is wired to."""

    def max_count_rate_cps(self) -> float:
        """Count rate (counts/s) above which the excitation is cut to protect the detector."""

    def snapshot(self, update: bool | None = False) -> dict[str, Any]:
        """QCoDeS snapshot of every setting."""


@runtime_checkable
class Camera(Protocol):
    """A spectroscopy camera (EMCCD) that delivers frames on a frame clock.  Implemented in a later issue."""

    def start_frames(self) -> None:
        """Arm the camera (external trigger) and start streaming frames."""

    def read_frames(self) -> tuple[np.ndarray, np.ndarray]:
        """Return (frame indices int64, frames uint16/int32 of shape (n, ...)) acquired since the last call."""

    def stop_frames(self) -> None:
        """Abort the acquisition."""

    def snapshot(self, update: bool | None = False) -> dict[str, Any]:
        """QCoDeS snapshot of every setting."""


@runtime_checkable
class Spectrograph(Protocol):
    """A grating spectrograph.  Implemented in a later issue."""

    def wavelength_axis_nm(self, num_pixels: int, pixel_width_um: float) -> np.ndarray:
        """Wavelength (nm) of each detector pixel for the current grating and centre wavelength."""

    def snapshot(self, update: bool | None = False) -> dict[str, Any]:
        """QCoDeS snapshot of every setting."""


@runtime_checkable
class FunctionGenerator(Protocol):
    """A two-channel arbitrary function generator (laser trigger, frame clock).  Implemented in a later issue."""

    def set_output(self, channel: int, enabled: bool) -> None:
        """Switch an output channel on or off."""

    def snapshot(self, update: bool | None = False) -> dict[str, Any]:
        """QCoDeS snapshot of every setting."""


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

    def set_enabled(self, enabled: bool) -> None:
        """Switch the trigger output on (laser pulses) or off (no pulses)."""

    def enabled(self) -> bool:
        """True while the output is on."""

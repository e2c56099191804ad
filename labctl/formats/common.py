"""What every time-tag file decoder returns: records as numpy arrays, plus what it noticed.

Two shapes, because the files come in two kinds:

* ``T2Records``: absolute time tags (PicoQuant T2, quTAG, SSTT).  Every event
  of every input, the laser sync included where the file recorded it, with its
  time in integer picoseconds.  Photons get nanotimes later, from the sync
  channel (``labctl.acquisition.photons.PhotonConverter``).
* ``T3Records``: photons already referred to the laser sync (PicoQuant T3):
  the sync count ``nsync`` and the delay bin ``dtime``.  The photon time is
  ``rint(nsync * sync_period_ps) + dtime * resolution_ps`` (see ``macrotimes_ps``).

Channel numbers are the numbers as stored in the records (no renumbering),
except where a format stores no number for an event kind (e.g. the HT2 sync
event); the decoder then documents the number it chose.  Overflow records
never appear in the arrays; markers go to ``marker_*`` and never become photons.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


class FormatError(ValueError):
    """A file is not what its format says, or is damaged beyond reading.

    The message names the file, what was found and what the format allows.
    """


@dataclass
class T2Records:
    """Absolute time tags decoded from a T2-style file.

    Attributes:
        timestamps_ps: ``int64`` ps, every non-overflow, non-marker event, in
            file order (``sorted`` says whether that order is by time).
        channels: ``int16`` channel number of each event as stored in the file.
        sync_channel: channel number that carries the laser sync in this file,
            or None when the file has no sync (or does not say which).
        marker_timestamps_ps, marker_channels: marker events (``int64`` ps, ``int16``).
        time_unit_s: the file's time unit (s), for the record.
        sync_divider: pulses per recorded sync event (hardware x software), >= 1.
        sync_rate_hz: laser sync rate the header states (Hz), None if absent.
        duration_s: acquisition time the header states (s), None if absent.
        header: the file's header values (JSON-serialisable), for /user and provenance.
        notes: what the decoder noticed and a user should read (header record
            count disagreeing with the file length, unsorted stream sorted, ...).
        format_name: e.g. ``"PTU HydraHarp V2 T2"``, ``"quTAG BINARY"``, ``"SSTT v2"``.
    """

    timestamps_ps: np.ndarray
    channels: np.ndarray
    sync_channel: int | None = None
    marker_timestamps_ps: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    marker_channels: np.ndarray = field(default_factory=lambda: np.empty(0, np.int16))
    time_unit_s: float = 1e-12
    sync_divider: int = 1
    sync_rate_hz: float | None = None
    duration_s: float | None = None
    header: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    format_name: str = ""
    sorted: bool = True


@dataclass
class T3Records:
    """Photons referred to the laser sync, decoded from a T3-style file.

    Attributes:
        nsync: ``int64`` sync count of each photon (overflows already added).
        dtime: ``int64`` delay after that sync, in units of ``resolution_s``.
        channels: ``int16`` photon channel as stored in the file.
        sync_period_s: laser sync period (s) (PTU ``MeasDesc_GlobalResolution``).
        resolution_s: delay bin width (s).
        marker_nsync, marker_channels: marker events (``int64`` nsync, ``int16``).
        Other attributes as in ``T2Records``.
    """

    nsync: np.ndarray
    dtime: np.ndarray
    channels: np.ndarray
    sync_period_s: float
    resolution_s: float
    marker_nsync: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    marker_channels: np.ndarray = field(default_factory=lambda: np.empty(0, np.int16))
    sync_divider: int = 1
    duration_s: float | None = None
    header: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    format_name: str = ""

    @property
    def sync_period_ps(self) -> float:
        """Laser sync period in ps (float: PicoHarp periods are not whole ps)."""
        return self.sync_period_s * 1e12

    @property
    def resolution_ps(self) -> float:
        """Delay bin width in ps."""
        return self.resolution_s * 1e12

    def macrotimes_ps(self) -> np.ndarray:
        """``int64`` ps: rint(nsync x sync period) + dtime x resolution, per photon."""
        sync_ps = np.rint(self.nsync.astype(np.float64) * self.sync_period_ps).astype(np.int64)
        return sync_ps + self.nanotimes_ps().astype(np.int64)

    def nanotimes_ps(self) -> np.ndarray:
        """``int32`` ps: rint(dtime x resolution), the photon's delay after its sync."""
        return np.rint(self.dtime.astype(np.float64) * self.resolution_ps).astype(np.int32)

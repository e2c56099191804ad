"""Single-photon avalanche diodes (Micro Photonic Devices PDM class).

A SPAD has no software interface: its "driver" is its wiring (which tagger
input) and its count-rate protection limit.  Its optical figures are recorded
as metadata so they land in the data file.
"""

from __future__ import annotations

from typing import Any

from qcodes.instrument import Instrument
from qcodes.validators import Numbers, Strings


class SPAD(Instrument):
    """One SPAD: tagger input (from the station's channel map) + protection + recorded figures.

    Args:
        name: instrument name.
        tagger_channel: the time-tagger input it is wired to.
    """

    def __init__(self, name: str, tagger_channel: int, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self._tagger_channel = int(tagger_channel)
        self.model = self.add_parameter("model", initial_value="MPD PDM 50um", vals=Strings(), set_cmd=None, get_cmd=None)
        """Detector model (recorded)."""
        self.max_count_rate_cps = self.add_parameter(
            "max_count_rate_cps", unit="counts/s", initial_value=5e6, vals=Numbers(1e3, 5e7), set_cmd=None, get_cmd=None,
        )
        """Count rate above which labctl cuts the excitation to protect the detector (counts/s)."""
        self.dead_time_ns = self.add_parameter(
            "dead_time_ns", unit="ns", initial_value=77.0, vals=Numbers(0, 10_000), set_cmd=None, get_cmd=None,
        )
        """Detector dead time (ns, recorded; assumed 77 ns for a PDM)."""
        self.dark_count_rate_cps = self.add_parameter(
            "dark_count_rate_cps", unit="counts/s", initial_value=25.0, vals=Numbers(0, 1e5), set_cmd=None, get_cmd=None,
        )
        """Dark count rate from the datasheet or a measurement (counts/s, recorded)."""

    def tagger_channel(self) -> int:
        """The time-tagger input this SPAD is wired to."""
        return self._tagger_channel

    def get_idn(self) -> dict[str, str | None]:
        return {"vendor": "Micro Photonic Devices", "model": self.model(), "serial": None, "firmware": None}

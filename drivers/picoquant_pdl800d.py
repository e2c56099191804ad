"""PicoQuant PDL 800-D picosecond diode laser driver (with an LDH-D-C-405 head).

The PDL 800-D has no known programming interface (see
``shared/reference/instruments.md``).  This driver therefore:

* records the front-panel settings (trigger source, internal rate, intensity
  dial, head) as QCoDeS parameters, so they land in every data file;
* on external trigger, sets the repetition rate and switches the excitation
  through an injected :class:`labctl.interfaces.TriggerOutput` (a function
  generator channel, real or simulated);
* on internal trigger, cannot switch the laser: its safe state logs a critical
  message telling the operator to turn the soft lock key, and the excitation is
  reported as "unknown/on".  A PC-controllable driver (PDL-M1 "Taiko",
  Sepia II) would replace this class behind the same interface.
"""

from __future__ import annotations

import logging
from typing import Any

from qcodes.instrument import Instrument
from qcodes.validators import Enum, Numbers, Strings, Validator

from labctl.errors import InstrumentError
from labctl.interfaces import TriggerOutput

log = logging.getLogger(__name__)

# Facts not confirmed against a primary source (instruments.md marks them *unverified*;
# docs/vendor_facts.md, "PDL 800-D", says what each rests on).
PDL800D_UNVERIFIED = {
    "internal_rate_range_hz": (31.25e3, 80e6),
    # The internal rates: the 80 MHz base clock (the top of the -D's range) divided by
    # 1, 2, 4, 8, 16 (the PDL 800 family's divider, PDL 800-B manual).  The quoted lower
    # end of the range, 31.25 kHz, is not reached this way: the unit has lower rates no
    # public source lists.  Add them here from the lab's front panel.
    "internal_rates_hz": (5e6, 10e6, 20e6, 40e6, 80e6),
    "external_trigger_max_hz": 80e6,
    "external_trigger_delay_ns": 12.0,
    "head_wavelength_nm": 405.0,
}


DEFAULT_INTERNAL_RATE_HZ = 5e6
"""The lowest listed internal rate: nearest the paper's 1 MHz, and the lightest sync load on the tagger."""


class InternalRate(Validator[float]):
    """One of the PDL 800-D's internal repetition rates (Hz), from ``PDL800D_UNVERIFIED["internal_rates_hz"]``."""

    is_numeric = True

    def __init__(self, rates_hz: tuple[float, ...]) -> None:
        self._rates_hz = tuple(sorted(float(rate) for rate in rates_hz))
        self._valid_values = self._rates_hz

    def validate(self, value: float, context: str = "") -> None:
        ok_type = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not (ok_type and float(value) in self._rates_hz):
            allowed = ", ".join(f"{rate:g}" for rate in self._rates_hz)
            raise ValueError(
                f"{value!r} Hz is not an internal rate of the PDL 800-D; allowed: {allowed} Hz "
                f"(other rates: trigger_source external); {context}"
            )

    def __repr__(self) -> str:
        return f"<one of {', '.join(f'{rate:g}' for rate in self._rates_hz)} Hz>"


def _external_rate_validator(trigger_output: TriggerOutput | None) -> Numbers:
    """The laser's external-trigger range, narrowed to what the trigger output can produce.

    A trigger output tells its range (``frequency_range_hz()``, e.g. a generator
    channel stops at 30 MHz): validating against it refuses a rate the laser accepts but
    its trigger cannot output, before anything is set.
    """
    low, high = 1.0, PDL800D_UNVERIFIED["external_trigger_max_hz"]
    if trigger_output is None:
        return Numbers(low, high)
    out_low, out_high = trigger_output.frequency_range_hz()
    vals = Numbers(max(low, out_low), min(high, out_high))
    vals.limit_note = f"limited by its trigger output {trigger_output}"  # type: ignore[attr-defined]
    return vals


class PDL800D(Instrument):
    """PDL 800-D laser driver: front-panel settings as parameters, excitation via a trigger output.

    Args:
        name: instrument name.
        trigger_output: the output that triggers the laser in external mode (None if
            the laser only runs on its internal clock).
    """

    def __init__(self, name: str, trigger_output: TriggerOutput | None = None, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self._trigger_output = trigger_output

        self.trigger_source = self.add_parameter(
            "trigger_source", initial_value="external" if trigger_output is not None else "internal",
            vals=Enum("internal", "external"), set_cmd=self._set_trigger_source, get_cmd=None,
        )
        """Front-panel trigger source: internal clock or external trigger input."""
        self.internal_rate_hz = self.add_parameter(
            "internal_rate_hz", unit="Hz", initial_value=DEFAULT_INTERNAL_RATE_HZ,
            vals=InternalRate(PDL800D_UNVERIFIED["internal_rates_hz"]), set_cmd=None, get_cmd=None,
        )
        """Front-panel internal repetition rate in Hz, one of its internal rates (recorded; set by the operator)."""
        self.external_rate_hz = self.add_parameter(
            "external_rate_hz", unit="Hz", initial_value=1e6, vals=_external_rate_validator(trigger_output),
            set_cmd=self._set_external_rate, get_cmd=None,
        )
        """Repetition rate applied through the trigger output in external mode."""
        self.intensity_percent = self.add_parameter(
            "intensity_percent", unit="%", initial_value=50.0, vals=Numbers(0, 100), set_cmd=None, get_cmd=None,
        )
        """Front-panel intensity dial position (recorded)."""
        self.head_model = self.add_parameter(
            "head_model", initial_value="LDH-D-C-405", vals=Strings(), set_cmd=None, get_cmd=None,
        )
        """Laser head model (recorded)."""
        self.wavelength_nm = self.add_parameter(
            "wavelength_nm", unit="nm", initial_value=PDL800D_UNVERIFIED["head_wavelength_nm"],
            vals=Numbers(200, 2000), set_cmd=None, get_cmd=None,
        )
        """Head emission wavelength (nm)."""

    # -- parameter hooks ----------------------------------------------------------------
    def _set_trigger_source(self, source: str) -> None:
        if source == "external" and self._trigger_output is None:
            raise InstrumentError(
                f"{self.name}.trigger_source = 'external': no trigger_output is configured; "
                "give the station a trigger_output (function generator channel) or use 'internal'"
            )

    def _set_external_rate(self, rate_hz: float) -> None:
        if self._trigger_output is not None:
            self._trigger_output.set_frequency_hz(rate_hz)

    # -- labctl.interfaces.PulsedLaser ----------------------------------------------------
    def repetition_rate_hz(self) -> float:
        """Pulse repetition rate in force (Hz)."""
        if self.trigger_source() == "external":
            return float(self.external_rate_hz())
        return float(self.internal_rate_hz())

    def enable_excitation(self) -> None:
        """Start pulsing: switch the trigger output on (external mode)."""
        if self.trigger_source() == "external":
            assert self._trigger_output is not None
            self._trigger_output.set_frequency_hz(self.external_rate_hz())
            self._trigger_output.set_enabled(True)
        else:
            log.warning("%s runs on its internal clock: excitation is controlled on its front panel", self.name)

    def disable_excitation(self) -> None:
        """Safe state: trigger output off (external mode), or tell the operator (internal mode)."""
        if self.trigger_source() == "external":
            assert self._trigger_output is not None
            self._trigger_output.set_enabled(False)
        else:
            log.critical(
                "%s runs on its internal clock and cannot be switched off by software: "
                "turn its soft lock key now", self.name,
            )

    def excitation_enabled(self) -> bool:
        """True while pulsing (internal mode: assumed on, software cannot tell)."""
        if self.trigger_source() == "external":
            assert self._trigger_output is not None
            return bool(self._trigger_output.enabled())
        return True

    def get_idn(self) -> dict[str, str | None]:
        return {"vendor": "PicoQuant", "model": "PDL 800-D", "serial": None, "firmware": None}

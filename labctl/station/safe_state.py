"""The safe state: every means the station has to keep laser light off the sample and the SPADs.

Three means, each used if the station has it (:mod:`labctl.station.outputs`):

* the laser's own: on external trigger its trigger output off (no pulses).  On its internal
  clock (the PDL 800-D has no programming interface) software cannot switch it;
* the SPAD gate (``safety.spad_gate``, a generator output into the MPD PDM gate inputs):
  off = SPADs off, so an over-bright sample cannot harm them and counts stop;
* the shutter (``instruments.shutter``): closed = no laser light on the sample.

:func:`make_safe` uses all of them (not only when the laser is on its internal clock: a
closed shutter is the better state either way) and reports what it did.  With the laser
on its internal clock and neither a gate nor a shutter, nothing can cut the light: the
report says so plainly, as a warning, and the operator must lock the laser by hand.
:func:`start_excitation` undoes it at the start of a run (shutter open, gate on, pulses on).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from labctl.station.watchdog import InstrumentHung, call_with_timeout

log = logging.getLogger(__name__)

NOTHING_CUTS_THE_LIGHT = ("the laser runs on its internal clock and is STILL EMITTING: this station has no "
                          "safety.spad_gate and no shutter, so nothing could cut the light; lock the laser "
                          "(soft lock key) by hand")
"""The warning of a safe state that could not cut the light."""


@dataclass
class SafeStateReport:
    """What one safe state did.

    Attributes:
        done: every safe-state call returned (none raised or hung).
        light_cut: the sample gets no laser light, or the SPADs are gated off (a means succeeded).
        actions: what was switched, in order, e.g. ``"spad_gate: function_generator ch1 off (SPADs gated off)"``.
        warnings: what could not be made safe, e.g. :data:`NOTHING_CUTS_THE_LIGHT`.
    """

    done: bool = True
    light_cut: bool = False
    actions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def make_safe(station: Any, timeout_s: float) -> SafeStateReport:
    """Put the excitation in its safe state by every means ``station`` has; never raises.

    Each call is attempted (even on an instrument that hung before) and waited for at most
    ``timeout_s``; a hung one is recorded in ``station.hung``.

    Args:
        station: a :class:`labctl.station.station.Station` (``instruments``, ``spad_gate``, ``hung``).
        timeout_s: longest wait per call (s).
    """
    report = SafeStateReport()
    laser = station.instruments.get("laser")
    if laser is None:
        report.light_cut = True
        return report

    def attempt(role: str, what: str, fn: Callable[[], Any]) -> tuple[bool, Any]:
        done, result = call_with_timeout(fn, timeout_s, f"{role} {what}")
        if not done:
            report.done = False
            if isinstance(result, InstrumentHung):
                station.hung.setdefault(role, result)
                log.critical("the excitation could not be put in its safe state: %s; switch the laser off by hand", result)
            else:
                log.error("safe state: %s failed: %s: %s", what, type(result).__name__, result)
            report.warnings.append(f"{what} failed: {result}")
        return done, result

    done, source = attempt("laser", "laser trigger_source", laser.trigger_source)
    external, internal = done and source == "external", done and source != "external"
    if attempt("laser", "laser disable_excitation", laser.disable_excitation)[0] and external:
        report.actions.append("laser: trigger output off (no pulses)")
        report.light_cut = True
    gate, gate_ref = station.spad_gate, station.config.outputs.get("spad_gate")
    if gate is not None and attempt(gate_ref.instrument, "spad_gate off", lambda: gate.set_enabled(False))[0]:
        report.actions.append(f"spad_gate: {gate_ref.instrument} ch{gate_ref.channel} off (SPADs gated off)")
        report.light_cut = True
    shutter = station.instruments.get("shutter")
    if shutter is not None and attempt("shutter", "shutter close", lambda: shutter.set_open(False))[0]:
        report.actions.append("shutter: closed")
        report.light_cut = True
    if internal:
        report.actions.insert(0, "laser: on its internal clock, cannot be switched by software")
        if not report.light_cut:
            report.warnings.append(NOTHING_CUTS_THE_LIGHT)
            log.critical(NOTHING_CUTS_THE_LIGHT)
    return report


def start_excitation(station: Any, call: Callable[..., Any]) -> None:
    """Light on for a run: shutter open, SPAD gate on, then the laser (its trigger output on).

    Args:
        call: ``call(role, name, fn, *args)``, the engine's watchdog (:class:`labctl.station.watchdog.CallGuard`).
    """
    shutter = station.instruments.get("shutter")
    if shutter is not None:
        call("shutter", "set_open", shutter.set_open, True)
    gate = station.spad_gate
    if gate is not None:
        call(station.config.outputs["spad_gate"].instrument, "spad_gate.set_enabled", gate.set_enabled, True)
    laser = station.laser
    call("laser", "enable_excitation", laser.enable_excitation)

"""QCoDeS driver of a 2-channel SCPI function generator (Keysight 33500B style), over VISA.

On the microscope, channel 1 triggers the PDL 800-D laser (repetition rate and
excitation on/off: :class:`GeneratorTriggerOutput`) and channel 2 is the frame clock
that triggers the camera and marks frames in the tag stream (:class:`FrameClock`).

Every set is checked: the validator refuses an unknown or out-of-range value before
anything is sent (the message names the parameter, the value and what is allowed),
and after each command the driver reads ``SYSTem:ERRor?`` until ``+0,"No error"``;
any error the generator queued raises :class:`FunctionGeneratorError` naming the
command, and the parameter keeps its previous value.

The VISA library is injected like any labctl driver's library: ``library`` is passed
to QCoDeS as ``visalib`` (a pyvisa library object such as
``sim_backends.fgen_sim.SimFunctionGeneratorLibrary``, or a backend string such as
``"@py"``); the driver never knows whether the generator is simulated.  Ranges are the
33522B's into 50 ohm (*unverified* for other variants): edit ``LIMITS``.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

from qcodes.instrument import InstrumentChannel, VisaInstrument
from qcodes.parameters import Parameter
from qcodes.validators import Bool, Enum, Ints, Numbers

from drivers.errors import DriverError
from labctl.errors import InstrumentError

log = logging.getLogger(__name__)

CHANNELS = (1, 2)

FUNCTIONS = ("SIN", "SQU", "TRI", "RAMP", "PULS", "PRBS", "NOIS", "ARB", "DC")
"""Waveform names accepted by ``SOURce<n>:FUNCtion`` (short form, as the generator answers)."""

LIMITS: dict[str, tuple[float, float]] = {
    # Keysight 33522B data sheet values, into 50 ohm (*unverified* for other variants).
    "frequency_hz": (1e-6, 30e6),
    "amplitude_vpp": (1e-3, 10.0),
    "voltage_v": (-5.0, 5.0),
    "duty_cycle_percent": (0.01, 99.99),
    "pulse_width_s": (16e-9, 1e6),
    "burst_ncycles": (1, 100_000_000),
    "visa_timeout_s": (0.05, 600.0),  # labctl's choice, not the generator's
}
"""Allowed ranges of the settings (validators); the simulated generator's YAML uses the same."""

MAX_ERRORS_PER_CHECK = 32
"""SYSTem:ERRor? is read at most this many times per check (the 33500B queue holds 20)."""

_NO_ERROR = re.compile(r"^\s*\+?0\s*,")
_INFINITE_LOAD_OHM = 9.9e37


class FunctionGeneratorError(DriverError):
    """The generator queued an error after a command.

    Attributes:
        command: the command that was sent (e.g. ``"SOURce1:FREQuency 1e+09"``).
        errors: the error queue entries read back, e.g. ``['-222,"Data out of range"']``.
    """

    def __init__(self, instrument: str, command: str, errors: list[str]) -> None:
        self.command = command
        self.errors = errors
        super().__init__(f"{instrument}: the generator reported {'; '.join(errors)} after {command!r}")


def _format_number(value: float) -> str:
    """A number as SCPI text: shortest exact form (``1000000``, ``1e-07``, ``0.25``)."""
    return format(float(value), ".15g")


def _parse_on_off(response: str) -> bool:
    """``"1"``/``"ON"`` -> True, ``"0"``/``"OFF"`` -> False (the 33500B answers 1/0)."""
    text = response.strip().upper()
    if text in ("1", "ON"):
        return True
    if text in ("0", "OFF"):
        return False
    raise InstrumentError(f"unexpected on/off answer {response!r}: expected 1, 0, ON or OFF")


def _parse_load(response: str) -> int | str:
    """``OUTPut<n>:LOAD?`` answer -> 50 (ohm) or ``"INF"`` (high impedance, answered as 9.9E+37)."""
    text = response.strip().upper()
    if text.startswith("INF") or float(text) >= _INFINITE_LOAD_OHM:
        return "INF"
    return int(round(float(text)))


def _parse_text(response: str) -> str:
    return response.strip().strip('"').upper()


class GeneratorChannel(InstrumentChannel):
    """One output channel (1 or 2) of the generator: waveform, levels, output, burst, trigger."""

    def __init__(self, parent: "Keysight33500B", name: str, channel: int) -> None:
        super().__init__(parent, name)
        self.channel = channel
        self._generator = parent
        n = channel
        source = f"SOURce{n}"

        self.function = Parameter(
            "function", instrument=self, label=f"Channel {n} waveform", vals=Enum(*FUNCTIONS),
            get_cmd=f"{source}:FUNCtion?", get_parser=_parse_text,
            set_cmd=lambda shape: self._send(f"{source}:FUNCtion {shape}"),
        )
        """Waveform: SIN, SQU, TRI, RAMP, PULS, PRBS, NOIS, ARB or DC (SQU or PULS to trigger the laser/camera)."""

        self.frequency_hz = Parameter(
            "frequency_hz", instrument=self, label=f"Channel {n} frequency", unit="Hz",
            vals=Numbers(*LIMITS["frequency_hz"]), get_cmd=f"{source}:FREQuency?", get_parser=float,
            set_cmd=lambda hz: self._send(f"{source}:FREQuency {_format_number(hz)}"),
        )
        """Frequency in Hz: ch1 = laser repetition rate, ch2 = camera frame rate."""

        self.amplitude_vpp = Parameter(
            "amplitude_vpp", instrument=self, label=f"Channel {n} amplitude", unit="Vpp",
            vals=Numbers(*LIMITS["amplitude_vpp"]), get_cmd=f"{source}:VOLTage?", get_parser=float,
            set_cmd=lambda vpp: self._send_level(f"{source}:VOLTage {_format_number(vpp)}", "amplitude_vpp"),
        )
        """Peak-to-peak amplitude in V (into the load set by `load`); also changes high_v/low_v."""

        self.offset_v = Parameter(
            "offset_v", instrument=self, label=f"Channel {n} offset", unit="V",
            vals=Numbers(*LIMITS["voltage_v"]), get_cmd=f"{source}:VOLTage:OFFSet?", get_parser=float,
            set_cmd=lambda v: self._send_level(f"{source}:VOLTage:OFFSet {_format_number(v)}", "offset_v"),
        )
        """DC offset in V; also changes high_v/low_v."""

        self.high_v = Parameter(
            "high_v", instrument=self, label=f"Channel {n} high level", unit="V",
            vals=Numbers(*LIMITS["voltage_v"]), get_cmd=f"{source}:VOLTage:HIGH?", get_parser=float,
            set_cmd=self._set_high,
        )
        """High level in V (must stay above low_v); also changes amplitude_vpp/offset_v."""

        self.low_v = Parameter(
            "low_v", instrument=self, label=f"Channel {n} low level", unit="V",
            vals=Numbers(*LIMITS["voltage_v"]), get_cmd=f"{source}:VOLTage:LOW?", get_parser=float,
            set_cmd=self._set_low,
        )
        """Low level in V (must stay below high_v); also changes amplitude_vpp/offset_v."""

        self.duty_cycle_percent = Parameter(
            "duty_cycle_percent", instrument=self, label=f"Channel {n} square duty cycle", unit="%",
            vals=Numbers(*LIMITS["duty_cycle_percent"]), get_cmd=f"{source}:FUNCtion:SQUare:DCYCle?",
            get_parser=float,
            set_cmd=lambda pct: self._send(f"{source}:FUNCtion:SQUare:DCYCle {_format_number(pct)}"),
        )
        """Duty cycle of the square wave in % (used when function is SQU)."""

        self.pulse_width_s = Parameter(
            "pulse_width_s", instrument=self, label=f"Channel {n} pulse width", unit="s",
            vals=Numbers(*LIMITS["pulse_width_s"]), get_cmd=f"{source}:FUNCtion:PULSe:WIDTh?", get_parser=float,
            set_cmd=lambda s: self._send(f"{source}:FUNCtion:PULSe:WIDTh {_format_number(s)}"),
        )
        """Pulse width in s (used when function is PULS); must be shorter than the period."""

        self.output = Parameter(
            "output", instrument=self, label=f"Channel {n} output", vals=Bool(),
            get_cmd=f"OUTPut{n}?", get_parser=_parse_on_off,
            set_cmd=lambda on: self._send(f"OUTPut{n} {'ON' if on else 'OFF'}"),
        )
        """Output on (True) or off (False): ch1 off = no laser pulses."""

        self.load = Parameter(
            "load", instrument=self, label=f"Channel {n} load", unit="ohm", vals=Enum(50, "INF"),
            get_cmd=f"OUTPut{n}:LOAD?", get_parser=_parse_load,
            set_cmd=lambda load: self._send(f"OUTPut{n}:LOAD {'INF' if load == 'INF' else int(load)}"),
        )
        """Expected load: 50 (ohm) or "INF" (high impedance); the displayed levels assume it."""

        self.burst_state = Parameter(
            "burst_state", instrument=self, label=f"Channel {n} burst", vals=Bool(),
            get_cmd=f"{source}:BURSt:STATe?", get_parser=_parse_on_off,
            set_cmd=lambda on: self._send(f"{source}:BURSt:STATe {'ON' if on else 'OFF'}"),
        )
        """Burst mode on (True): the channel outputs burst_ncycles cycles per trigger (TRIG) or while gated (GAT)."""

        self.burst_mode = Parameter(
            "burst_mode", instrument=self, label=f"Channel {n} burst mode", vals=Enum("TRIG", "GAT"),
            get_cmd=f"{source}:BURSt:MODE?", get_parser=_parse_text,
            set_cmd=lambda mode: self._send(f"{source}:BURSt:MODE {mode}"),
        )
        """Burst mode: TRIG (N cycles per trigger) or GAT (output while the gate input is true)."""

        self.burst_ncycles = Parameter(
            "burst_ncycles", instrument=self, label=f"Channel {n} burst cycles", vals=Ints(*LIMITS["burst_ncycles"]),
            get_cmd=f"{source}:BURSt:NCYCles?", get_parser=lambda r: int(float(r)),
            set_cmd=lambda cycles: self._send(f"{source}:BURSt:NCYCles {int(cycles)}"),
        )
        """Cycles per triggered burst (1..1e8)."""

        self.trigger_source = Parameter(
            "trigger_source", instrument=self, label=f"Channel {n} trigger source", vals=Enum("IMM", "EXT", "BUS"),
            get_cmd=f"TRIGger{n}:SOURce?", get_parser=_parse_text,
            set_cmd=lambda src: self._send(f"TRIGger{n}:SOURce {src}"),
        )
        """Burst trigger: IMM (internal, continuous), EXT (rear Trig In) or BUS (software, `trigger()`)."""

    def _send(self, command: str) -> None:
        self._generator.write_checked(command)

    def _send_level(self, command: str, changed: str) -> None:
        """Send a level command, then re-read the coupled levels (amplitude/offset <-> high/low)."""
        self._send(command)
        for name in ("amplitude_vpp", "offset_v", "high_v", "low_v"):
            if name != changed:
                self.parameters[name].get()

    def _set_high(self, high_v: float) -> None:
        low_v = self.low_v.cache.get()
        if low_v is not None and high_v <= low_v:
            raise ValueError(f"{self.high_v.full_name} = {high_v!r} V: must be above low_v = {low_v!r} V")
        self._send_level(f"SOURce{self.channel}:VOLTage:HIGH {_format_number(high_v)}", "high_v")

    def _set_low(self, low_v: float) -> None:
        high_v = self.high_v.cache.get()
        if high_v is not None and low_v >= high_v:
            raise ValueError(f"{self.low_v.full_name} = {low_v!r} V: must be below high_v = {high_v!r} V")
        self._send_level(f"SOURce{self.channel}:VOLTage:LOW {_format_number(low_v)}", "low_v")


class Keysight33500B(VisaInstrument):
    """Two-channel SCPI function generator (Keysight 33500B style), a labctl ``FunctionGenerator``.

    Args:
        name: QCoDeS instrument name.
        address: VISA resource name, e.g. ``"TCPIP0::192.168.1.20::inst0::INSTR"``
            (the simulated generator answers at ``"GPIB0::10::INSTR"``).
        library: the VISA library, given to QCoDeS as ``visalib``: a pyvisa library object
            (e.g. ``SimFunctionGeneratorLibrary(scene)``) or a backend string (``"@py"``,
            ``"<file>.yaml@sim"``); None = pyvisa's default backend.
        **kwargs: passed to :class:`qcodes.instrument.VisaInstrument` (``timeout``,
            ``pyvisa_sim_file``, ``visalib``...).

    Channels are submodules ``ch1`` and ``ch2``.  At connection the driver reads and logs
    any errors left in the generator's queue, then reads every setting.
    """

    default_terminator = "\n"

    vendor_library_functions = {"pyvisa": ("open", "close", "read", "write", "list_resources")}
    """Methods a ``library`` (pyvisa library class) must define (checked by the station)."""

    output_channels: tuple[int, ...] = CHANNELS
    """Its outputs (labctl ``FunctionGenerator``): the channels a station file may name."""

    def __init__(self, name: str, address: str, library: Any = None, **kwargs: Any) -> None:
        if library is not None:
            if kwargs.get("visalib") is not None:
                raise TypeError(f"{name}: give either library or visalib, not both")
            kwargs["visalib"] = library
        super().__init__(name, address, **kwargs)
        # VISA timeout: a settable parameter of every VisaInstrument; refuse values that
        # make every reply time out (1e-6 s) or wait forever (None).
        self.timeout.remove_validator()
        self.timeout.add_validator(Numbers(*LIMITS["visa_timeout_s"]))
        self._lock = threading.RLock()
        self.channels: dict[int, GeneratorChannel] = {}
        for number in CHANNELS:
            channel = GeneratorChannel(self, f"ch{number}", number)
            self.add_submodule(f"ch{number}", channel)
            self.channels[number] = channel
        stale = self.read_errors()
        if stale:
            log.warning("%s: errors left in the generator's queue at connection: %s", name, "; ".join(stale))
        self.snapshot(update=True)
        self.connect_message()

    # --- SCPI with error check ----------------------------------------------------------
    def read_errors(self) -> list[str]:
        """Read ``SYSTem:ERRor?`` until ``+0,"No error"``; return the errors read (oldest first)."""
        errors: list[str] = []
        with self._lock:
            for _ in range(MAX_ERRORS_PER_CHECK):
                answer = self.ask("SYSTem:ERRor?").strip()
                if _NO_ERROR.match(answer):
                    break
                errors.append(answer)
        return errors

    def write_checked(self, command: str) -> None:
        """Send a command, then raise :class:`FunctionGeneratorError` if the generator queued an error."""
        with self._lock:
            self.write(command)
            errors = self.read_errors()
        if errors:
            raise FunctionGeneratorError(self.name, command, errors)

    def trigger(self) -> None:
        """Software trigger (``*TRG``) for channels whose trigger_source is BUS."""
        self.write_checked("*TRG")

    # --- labctl.interfaces.FunctionGenerator --------------------------------------------
    def channel(self, channel: int) -> GeneratorChannel:
        """The submodule of output ``channel`` (1 or 2)."""
        try:
            return self.channels[int(channel)]
        except (KeyError, TypeError, ValueError):
            raise InstrumentError(f"{self.name}: channel = {channel!r}: allowed {', '.join(map(str, CHANNELS))}") from None

    def set_output(self, channel: int, enabled: bool) -> None:
        """Switch output ``channel`` (1 or 2) on or off."""
        self.channel(channel).output(bool(enabled))

    def trigger_output(self, channel: int = 1) -> "GeneratorTriggerOutput":
        """A labctl ``TriggerOutput`` on ``channel`` (the laser trigger, ch1 by default)."""
        return GeneratorTriggerOutput(self, channel)

    def frame_clock(self, channel: int = 2) -> "FrameClock":
        """The camera frame clock on ``channel`` (ch2 by default)."""
        return FrameClock(self, channel)


class GeneratorTriggerOutput:
    """A generator channel as a labctl ``TriggerOutput`` (frequency and on/off), e.g. for the PDL 800-D.

    Args:
        generator: the generator driver.
        channel: its output (1 or 2).
    """

    def __init__(self, generator: Keysight33500B, channel: int = 1) -> None:
        self._channel = generator.channel(channel)

    @property
    def channel(self) -> GeneratorChannel:
        return self._channel

    def __str__(self) -> str:
        return self._channel.full_name

    def frequency_range_hz(self) -> tuple[float, float]:
        """Lowest and highest frequency (Hz) the output can produce (its parameter's validator)."""
        low, high = self._channel.frequency_hz.vals.valid_values
        return float(low), float(high)

    def set_frequency_hz(self, frequency_hz: float) -> None:
        """Pulse frequency of the output in Hz (validated against the generator's range)."""
        self._channel.frequency_hz(float(frequency_hz))

    def frequency_hz(self) -> float:
        """Current frequency of the output in Hz, read from the generator."""
        return float(self._channel.frequency_hz())

    def set_enabled(self, enabled: bool) -> None:
        """Switch the output on (pulses) or off (none)."""
        self._channel.output(bool(enabled))

    def enabled(self) -> bool:
        """True while the output is on, read from the generator."""
        return bool(self._channel.output())


class FrameClock(GeneratorTriggerOutput):
    """The camera frame clock: a generator channel whose frequency is the frame rate.

    The same channel triggers the camera and marks each frame in the tag stream.
    """

    def __init__(self, generator: Keysight33500B, channel: int = 2) -> None:
        super().__init__(generator, channel)

    def set_rate_hz(self, rate_hz: float) -> None:
        """Frame rate in Hz."""
        self.set_frequency_hz(rate_hz)

    def rate_hz(self) -> float:
        """Frame rate in Hz, read from the generator."""
        return self.frequency_hz()

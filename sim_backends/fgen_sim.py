"""Simulated function generator wired to the shared scene: a pyvisa library over pyvisa-sim.

:class:`SimFunctionGeneratorLibrary` is pyvisa-sim's ``SimVisaLibrary`` loaded with
``function_generator.yaml`` (the SCPI model of the generator), plus one thing: after
every message written to the generator and when a session opens, it reads the
device's state and applies what changed to the scene, as the cables do on the
microscope.  What each output is cabled to is the ``cables`` option (default
``{1: laser_trigger, 2: frame_clock}``; it must match the station file's
``instruments.laser.trigger_output``, ``instruments.camera.frame_clock`` and ``safety.spad_gate``):

* ``laser_trigger``: frequency -> ``scene.set_repetition_rate_hz(hz)``,
  output on/off -> ``scene.set_excitation(enabled)``;
* ``frame_clock`` (camera trigger): frequency and output ->
  ``scene.set_frame_clock(rate_hz, enabled)``;
* ``spad_gate`` (the SPADs' gate inputs): output on/off -> ``scene.set_spad_gate(enabled)``;
* ``none``: nothing.

Only values the simulated generator accepted reach the scene (a refused command
changes no state, so nothing is applied).  Burst mode, trigger source, waveform and
levels are not applied: the scene treats every enabled cycle as one trigger edge.

The driver (``drivers.function_generator.Keysight33500B``) receives an instance as its
``library`` (QCoDeS ``visalib``; pyvisa's ``ResourceManager`` accepts a library
object) and never knows it is simulated.  Each instance has its own simulated device
(pyvisa normally shares one library object per file path; this class does not), so
two stations in one process do not share a generator.

Relies on pyvisa-sim internals to read the device state (``Device._channels``,
``ChannelProperty._value``, ``ErrorQueue._queue``; pyvisa-sim 0.6-0.7).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pyvisa import constants
from pyvisa.constants import StatusCode
from pyvisa.errors import VisaIOError
from pyvisa_sim.highlevel import SimVisaLibrary

from labctl.errors import ConfigError
from sim_backends.faults import FaultSchedule

DEFAULT_YAML = Path(__file__).with_name("function_generator.yaml")
"""The generator's SCPI model."""

SIM_ADDRESS = "GPIB0::10::INSTR"
"""VISA address of the simulated generator (give it to the driver as ``address``)."""

LASER_CHANNEL = "1"
_CHANNEL_GROUP = "channel"
_ERROR_QUERY = b"SYSTem:ERRor?"
DEFAULT_CABLES = {1: "laser_trigger", 2: "frame_clock"}
"""What each output drives in the scene, unless the ``cables`` option says otherwise."""
_SCENE_METHODS = {"laser_trigger": ("set_repetition_rate_hz", "set_excitation"), "frame_clock": ("set_frame_clock",),
                  "spad_gate": ("set_spad_gate",), "none": ()}
VISA_OPERATIONS = ("open", "close", "write", "read", "clear")
"""The library operations a scheduled fault can name."""


class SimFunctionGeneratorLibrary(SimVisaLibrary):
    """pyvisa library of a simulated 2-channel generator whose ch1/ch2 drive the scene's laser/frame clock.

    Args:
        scene: the shared scene (needs ``set_repetition_rate_hz``, ``set_excitation`` and
            ``set_frame_clock``); None = a plain simulated generator.
        yaml_path: the pyvisa-sim model (default: ``function_generator.yaml`` beside this file).
        faults: scheduled faults of the VISA operations ``open``, ``close``, ``write``,
            ``read``, ``clear`` (:mod:`sim_backends.faults`): a failed call raises
            ``pyvisa.errors.VisaIOError(code)`` as pyvisa's own library does; the fault
            clock is wall seconds since ch1's output (the laser trigger) was last switched on.

    Raises:
        TypeError: the scene lacks one of the methods above.
        ConfigError: a bad fault (key path from ``faults[<index>]``).

    Attributes:
        commands: every message written to the generator, in order (a test hook).
    """

    def __new__(cls, scene: Any = None, yaml_path: str | Path | None = None,
                faults: Sequence[dict[str, Any]] = (), cables: Mapping[int, str] | None = None) -> "SimFunctionGeneratorLibrary":
        obj = super().__new__(cls, str(yaml_path or DEFAULT_YAML))
        # pyvisa hands out one library per (class, path): forget it, so each instance is its own device.
        cls._registry.pop((cls, obj.library_path), None)
        return obj

    def __init__(self, scene: Any = None, yaml_path: str | Path | None = None,
                 faults: Sequence[dict[str, Any]] = (), cables: Mapping[int, str] | None = None) -> None:
        self._laser_on_since_s: float | None = None  # time.monotonic() when ch1 output last went on
        self._fault_schedule = FaultSchedule(
            faults, status_functions=VISA_OPERATIONS, check_code=_visa_error_code, elapsed_s=self._fault_clock_s)
        self._cables = _check_cables(DEFAULT_CABLES if cables is None else cables)
        if scene is not None:
            needed = [m for what in self._cables.values() for m in _SCENE_METHODS[what]]
            missing = [m for m in needed if not callable(getattr(scene, m, None))]
            if missing:
                raise TypeError(
                    f"SimFunctionGeneratorLibrary: the scene ({type(scene).__name__}) lacks "
                    f"{', '.join(missing)}; needed for its cables {self._cables}: {', '.join(needed)}"
                )
        self._scene = scene
        self._scene_lock = threading.RLock()
        self._applied: dict[str, Any] = {}
        self.commands: list[str] = []

    # --- pyvisa library -------------------------------------------------------------------
    def open(self, session: Any, resource_name: str, *args: Any, **kwargs: Any) -> Any:
        self._fault("open")
        result = super().open(session, resource_name, *args, **kwargs)
        if result[1] == constants.StatusCode.success:
            self._track_laser_output()
            self._apply_to_scene()
        return result

    def close(self, session: Any) -> Any:
        self._fault("close")
        return super().close(session)

    def read(self, session: Any, count: int) -> Any:
        self._fault("read")
        return super().read(session, count)

    def write(self, session: Any, data: bytes) -> Any:
        self._fault("write")
        result = super().write(session, data)
        self.commands.append(bytes(data).decode("utf-8", errors="replace").rstrip("\r\n"))
        self._track_laser_output()
        self._apply_to_scene()
        return result

    def clear(self, session: Any) -> constants.StatusCode:
        """Device clear (viClear): empty the generator's input and output buffers."""
        self._fault("clear")
        device = self._device_of(session)
        if device is None:
            return constants.StatusCode.error_invalid_object
        device._input_buffer = bytearray()
        device._output_buffers.clear()
        return constants.StatusCode.success

    # --- faults ------------------------------------------------------------------------------
    @property
    def faults_fired(self) -> list[tuple[str, str]]:
        """(operation, mode) of every scheduled fault that fired, in order."""
        return list(self._fault_schedule.fired)

    def _fault(self, operation: str) -> None:
        """Wait out a scheduled hang; raise VisaIOError if a scheduled failure is due."""
        fault = self._fault_schedule.enter(operation)
        if fault is not None:
            raise VisaIOError(fault.code)

    def _fault_clock_s(self) -> float:
        """Wall seconds since ch1's output last went on; 0 before it ever did."""
        return 0.0 if self._laser_on_since_s is None else time.monotonic() - self._laser_on_since_s

    def _track_laser_output(self) -> None:
        try:
            on = _is_on(self.device_value("output", LASER_CHANNEL))
        except (KeyError, ValueError):  # no such device or session yet
            return
        if on and self._laser_on_since_s is None:
            self._laser_on_since_s = time.monotonic()
        elif not on:
            self._laser_on_since_s = None

    # --- test hooks -------------------------------------------------------------------------
    def device_value(self, prop: str, channel: int | str) -> Any:
        """Current value of a property of the model for a channel, e.g. ``("frequency", 1)``."""
        return self._device()._channels[_CHANNEL_GROUP]._properties[prop]._value[str(channel)]

    def inject_error(self, message: str = '-222,"Data out of range"') -> None:
        """Queue ``message`` for the next ``SYSTem:ERRor?`` (as if the last command had failed)."""
        self._device()._error_queues[_ERROR_QUERY]._queue.append(message.encode())

    # --- the link -------------------------------------------------------------------------------
    def _device(self) -> Any:
        (resource,) = self.devices.list_resources()
        return self.devices[resource]

    def _device_of(self, session: Any) -> Any:
        sess = self.sessions.get(session)
        return getattr(sess, "device", None)

    def _apply_to_scene(self) -> None:
        if self._scene is None:
            return
        with self._scene_lock:
            state: dict[str, Any] = {}
            for channel, what in self._cables.items():
                hz, on = float(self.device_value("frequency", channel)), _is_on(self.device_value("output", channel))
                if what == "laser_trigger":
                    state.update(laser_rate_hz=hz, laser_on=on)
                elif what == "frame_clock":
                    state["frame_clock"] = (hz, on)
                elif what == "spad_gate":
                    state["spad_gate"] = on
            # Each change is recorded before it is applied, so a value the scene refuses
            # raises once (here, through the driver's write) instead of at every later write.
            changed = {key: value for key, value in state.items() if self._applied.get(key) != value}
            self._applied.update(changed)
            if "laser_rate_hz" in changed:
                self._scene.set_repetition_rate_hz(state["laser_rate_hz"])
            if "laser_on" in changed:
                self._scene.set_excitation(state["laser_on"])
            if "frame_clock" in changed:
                self._scene.set_frame_clock(*state["frame_clock"])
            if "spad_gate" in changed:
                self._scene.set_spad_gate(state["spad_gate"])


def _check_cables(cables: Any) -> dict[int, str]:
    """``{output: what it drives}``: outputs 1, 2; each of laser_trigger, frame_clock, spad_gate at most once."""
    if not isinstance(cables, Mapping):
        raise ConfigError("cables", cables, "must be a mapping {output: what it drives}, e.g. {1: spad_gate, 2: frame_clock}")
    out: dict[int, str] = {}
    for key, what in cables.items():
        channel = int(key) if isinstance(key, (int, str)) and str(key).strip() in ("1", "2") else None
        if channel is None:
            raise ConfigError(f"cables.{key}", what, "the generator's outputs are 1 and 2")
        if what not in _SCENE_METHODS or (what != "none" and what in out.values()):
            raise ConfigError(f"cables.{key}", what, f"must be one of {', '.join(_SCENE_METHODS)}, each but none once")
        out[channel] = what
    return out

def _visa_error_code(code: Any) -> int:
    """A VISA error status (negative ``pyvisa.constants.StatusCode``) by number or name."""
    if isinstance(code, str) and code in StatusCode.__members__:
        code = StatusCode[code].value
    if isinstance(code, bool) or not isinstance(code, int) or code >= 0 or code not in set(StatusCode):
        raise ValueError("must be a VISA error status (a negative pyvisa StatusCode), by number or name, "
                         "e.g. error_timeout or error_connection_lost")
    return int(code)


def _is_on(value: Any) -> bool:
    return str(value).strip().upper() in ("ON", "1")

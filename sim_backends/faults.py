"""Scheduled faults of the simulated vendor libraries: a call fails once, always, or hangs.

Every simulated library (quTAG ``SimTDCBase``, iXon ``SimAndorSDK``, Kymera
``SimShamrock``, the VISA function generator ``SimFunctionGeneratorLibrary``) takes
the option ``faults`` (station file: ``instruments.<role>.library_options.faults``),
a list of::

    {function: NAME, after_s: S, mode: once | always | hang, code: C, hang_s: H}

* ``function``: a function of the vendor library (its exported name; for the
  generator the VISA operation ``open``, ``close``, ``write``, ``read`` or ``clear``).
* ``after_s`` (s, >= 0): when the fault becomes due, on the library's fault clock
  (below).  ``after_s: 0`` fires at the very first call, including set-up calls made
  while the station is built or a run starts.
* ``mode`` (default ``always``): ``once`` fails the first call at or after ``after_s``
  and no other; ``always`` fails every call from then on (a device gone from the
  bus); ``hang`` blocks the first call at or after ``after_s`` for ``hang_s`` seconds
  (default: until the process ends) and every other call of the library meanwhile (a
  hung device answers nothing), then lets them run normally.
* ``code``: what a failed call returns: a non-success vendor status code (the quTAG,
  iXon and Kymera libraries), or a VISA error status (number or name, e.g.
  ``error_timeout``) that the generator raises as ``pyvisa.errors.VisaIOError``, as
  pyvisa's own library does.  Required with ``once`` and ``always``, not used by ``hang``.
  Functions that return a value instead of a status (``TDC_getVersion``...) can only hang.

The fault clock: seconds since the library's stream last started, 0 before it ever did.

* quTAG: device seconds since the timestamp buffer was last (re)started
  (``TDC_setTimestampBufferSize``; device time runs ``time_scale`` times the wall clock);
* iXon: scene (tagger) seconds since the last ``StartAcquisition``;
* function generator: wall seconds since its ch1 output (the laser trigger) was last
  switched on, i.e. since the excitation of the current run went on;
* Kymera (no stream): wall seconds since the library was created.

:class:`FaultSchedule` is the one mechanism all four use: the library calls
:meth:`FaultSchedule.enter` at the entry of every vendor function.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labctl.errors import ConfigError

MODES = ("once", "always", "hang")
KEYS = ("function", "after_s", "mode", "code", "hang_s")


@dataclass(frozen=True)
class Fault:
    """One scheduled fault (see the module docstring); ``hang_s`` None = until the process ends."""

    function: str
    after_s: float
    mode: str
    code: Any
    hang_s: float | None


class FaultSchedule:
    """The faults of one library instance, and the hang in progress.

    Args:
        faults: the ``faults`` option as given (list of mappings); checked here.
        status_functions: functions that return a status code (they can fail or hang).
        value_functions: functions that return a value (they can only hang).
        check_code: ``check_code(code)`` returns the code to return (normalised) or raises
            ValueError saying what is allowed.
        elapsed_s: the library's fault clock (s); see the module docstring.
        canonical: maps a function name as written to the library's own (e.g. exported
            name -> logical name); identity by default.

    Raises:
        ConfigError: a bad fault; the key path starts at ``faults[<index>]``.
    """

    def __init__(
        self,
        faults: Sequence[Mapping[str, Any]] | None,
        *,
        status_functions: Collection[str],
        value_functions: Collection[str] = (),
        check_code: Callable[[Any], Any],
        elapsed_s: Callable[[], float],
        canonical: Callable[[str], str] = str,
    ) -> None:
        if faults is None:
            faults = ()
        if not isinstance(faults, (list, tuple)):
            raise ConfigError("faults", faults, "must be a list of faults, e.g. "
                              "[{after_s: 2.0, function: TDC_getLastTimestamps, code: 2, mode: always}]")
        self._status = frozenset(status_functions)
        self._value = frozenset(value_functions)
        self._canonical = canonical
        self.faults = tuple(self._check(i, f, check_code) for i, f in enumerate(faults))
        self._elapsed_s = elapsed_s
        self._lock = threading.Lock()
        self._spent: set[int] = set()
        self._hang_end = 0.0  # time.monotonic() at which the hang in progress ends (inf: never)
        self.fired: list[tuple[str, str]] = []
        """(function, mode) of every fault that fired, in order (a test hook)."""

    def enter(self, function: str) -> Fault | None:
        """Called at the entry of ``function``: wait out a hang; return the failure due now, if any.

        Blocks while a hang is in progress (and, if a ``hang`` fault is due for this
        call, for its ``hang_s``).  Returns the ``once``/``always`` fault whose ``code``
        the call must return instead of running, or None: run normally.
        """
        self._wait_out_hang()
        if not self.faults:
            return None
        name = self._canonical(function)
        with self._lock:
            due = self._due(name)
            if due is None:
                return None
            index, fault = due
            if fault.mode != "always":
                self._spent.add(index)
            if fault.mode == "hang":
                self._hang_end = math.inf if fault.hang_s is None else time.monotonic() + fault.hang_s
            self.fired.append((name, fault.mode))
            if fault.mode != "hang":
                return fault
        self._wait_out_hang()
        return None

    # -- internals -----------------------------------------------------------------------
    def _due(self, name: str) -> tuple[int, Fault] | None:
        elapsed = None
        for index, fault in enumerate(self.faults):
            if fault.function != name or index in self._spent:
                continue
            if elapsed is None:
                elapsed = float(self._elapsed_s())
            if elapsed >= fault.after_s:
                return index, fault
        return None

    def _wait_out_hang(self) -> None:
        while True:
            remaining = self._hang_end - time.monotonic()
            if remaining <= 0:
                return
            if not threading.main_thread().is_alive():
                return  # "until the process ends": the main thread has finished, let the rest exit
            time.sleep(min(remaining, 0.05))

    def _check(self, index: int, fault: Any, check_code: Callable[[Any], Any]) -> Fault:
        where = f"faults[{index}]"
        if not isinstance(fault, Mapping):
            raise ConfigError(where, fault, "must be a mapping with keys function, after_s, mode, code (or hang_s)")
        for key in fault:
            if key not in KEYS:
                raise ConfigError(f"{where}.{key}", fault[key], "unknown key; allowed: " + ", ".join(KEYS))
        for key in ("function", "after_s"):
            if key not in fault:
                raise ConfigError(f"{where}.{key}", None, "is required")
        function, after_s = fault["function"], fault["after_s"]
        mode = fault.get("mode", "always")
        known = self._status | self._value
        if not isinstance(function, str) or self._canonical(function) not in known:
            example = sorted(self._status)[0] if self._status else ""
            raise ConfigError(f"{where}.function", function, f"this library has no such function (e.g. {example})")
        name = self._canonical(function)
        if isinstance(after_s, bool) or not isinstance(after_s, (int, float)) or not 0 <= after_s < math.inf:
            raise ConfigError(f"{where}.after_s", after_s, "must be a number of seconds >= 0")
        if mode not in MODES:
            raise ConfigError(f"{where}.mode", mode, "must be one of " + ", ".join(MODES))
        code = fault.get("code")
        hang_s = fault.get("hang_s")
        if mode == "hang":
            if "code" in fault:
                raise ConfigError(f"{where}.code", code, "is not used with mode hang (the call blocks, then runs); remove it")
            if hang_s is not None and (isinstance(hang_s, bool) or not isinstance(hang_s, (int, float))
                                       or not 0 < hang_s < math.inf):
                raise ConfigError(f"{where}.hang_s", hang_s, "must be a number of seconds > 0 (omit it: until the process ends)")
            return Fault(name, float(after_s), mode, None, None if hang_s is None else float(hang_s))
        if "hang_s" in fault:
            raise ConfigError(f"{where}.hang_s", hang_s, f"is used only with mode hang (this fault has mode {mode})")
        if name in self._value:
            raise ConfigError(f"{where}.mode", mode, f"{name} returns a value, not a status: it can only hang (mode hang)")
        if "code" not in fault:
            raise ConfigError(f"{where}.code", None, f"is required with mode {mode}")
        try:
            code = check_code(code)
        except ValueError as exc:
            raise ConfigError(f"{where}.code", fault["code"], str(exc)) from None
        return Fault(name, float(after_s), mode, code, None)


def nonzero_status(success: int, example: str) -> Callable[[Any], int]:
    """``check_code`` for a C library whose success status is ``success``: any other integer.

    ``example`` names a typical error code in the message, e.g. ``"2 (no connection)"``.
    """

    def check(code: Any) -> int:
        if isinstance(code, bool) or not isinstance(code, int) or code == success:
            if success == 0:
                raise ValueError(f"must be a non-zero vendor status code, e.g. {example}")
            raise ValueError(f"must be a vendor status code other than {success} (success), e.g. {example}")
        return int(code)

    return check

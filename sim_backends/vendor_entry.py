"""The entry every simulated vendor library puts in front of its C functions.

A simulated function returns a status code, like the C function it stands for, and
every library enters it the same way (:func:`status_function`):

1. the scheduled fault (:mod:`sim_backends.faults`), outside the lock: a hang blocks
   the caller, and every other caller at the lock, like a hung device;
2. under the library's lock: the call log (:meth:`SimVendorLibrary._log_call`), the
   fault's code, an error a test injected (:meth:`SimVendorLibrary.inject_error`), the
   ``Initialize`` check, the function's own extra check, then the function itself on
   plain Python values (ctypes scalars unwrapped).

A library class derives from :class:`SimVendorLibrary` and sets up ``_lock``,
``_injected``, ``_fault_schedule`` and ``initialized`` in its ``__init__``.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from sim_backends.ctypes_out import num
from sim_backends.faults import FaultSchedule

Check = Callable[[Any, list[Any]], "int | None"]
"""An extra entry check: ``(library, plain argument values) -> status to return at once, or None``."""


class SimVendorLibrary:
    """Test hooks and entry state shared by the simulated vendor libraries.

    Subclasses set ``NOT_INITIALIZED`` (the status of a call before ``Initialize``) and, in
    ``__init__``, ``_lock``, ``_injected`` (``{}``), ``_fault_schedule`` and ``initialized``.
    """

    NOT_INITIALIZED: int
    _lock: threading.RLock
    _injected: dict[str, int]
    _fault_schedule: FaultSchedule
    initialized: bool

    def _entry_name(self, function: str) -> str:
        """The name a function is entered, logged, injected and scheduled under (default: as given)."""
        return function

    def _log_call(self, name: str, args: tuple[Any, ...]) -> None:
        """Record a call (as entered, before any check); the default records nothing."""

    def inject_error(self, function: str, code: int) -> None:
        """Make the next call of ``function`` return ``code`` and change nothing."""
        with self._lock:
            self._injected[self._entry_name(function)] = int(code)

    @property
    def faults_fired(self) -> list[tuple[str, str]]:
        """(function, mode) of every scheduled fault that fired, in order."""
        return list(self._fault_schedule.fired)


def status_functions(cls: type) -> list[str]:
    """Attribute names of every :func:`status_function` of ``cls``."""
    return [name for name in dir(cls) if getattr(getattr(cls, name), "returns_status", False)]


def status_function(
    requires_init: bool = True,
    check: Check | None = None,
) -> Callable[[Callable[..., int]], Callable[..., int]]:
    """Decorate a simulated vendor function with the common entry (see the module docstring).

    Args:
        requires_init: before ``Initialize`` the call returns ``NOT_INITIALIZED``.
        check: an extra check after the init check (device index, idle camera...).
    """

    def decorate(func: Callable[..., int]) -> Callable[..., int]:
        @functools.wraps(func)
        def wrapper(self: SimVendorLibrary, *args: Any) -> int:
            name = self._entry_name(func.__name__)
            fault = self._fault_schedule.enter(name)  # may block (mode hang), outside the lock
            with self._lock:
                self._log_call(name, args)
                if fault is not None:
                    return fault.code
                injected = self._injected.pop(name, None)
                if injected is not None:
                    return injected
                if requires_init and not self.initialized:
                    return self.NOT_INITIALIZED
                values = [num(a) for a in args]
                if check is not None:
                    refused = check(self, values)
                    if refused is not None:
                        return refused
                return func(self, *values)

        wrapper.returns_status = True  # type: ignore[attr-defined]
        return wrapper

    return decorate

"""The watchdog for instrument calls: a call that does not return within ``watchdog_s`` is hung.

A vendor call that hangs (a USB device that stopped answering, a VISA read without
timeout) cannot be interrupted from Python.  So the engine never makes one on a thread
it needs: :class:`CallGuard` runs each instrument call on a daemon worker thread and
waits at most ``timeout_s`` for it.  A call that takes longer raises
:class:`InstrumentHung` in the caller, which then ends the run through its normal error
path (excitation safe, camera stopped, file closed); the worker stays behind, blocked,
and a new one serves the next calls.  Further calls to the hung instrument fail at once
(:class:`~labctl.errors.AcquisitionError` naming the hung call) instead of blocking one
more ``timeout_s`` each.

:func:`call_with_timeout` is the one-shot form, for calls that must be attempted even on
a hung instrument (the safe state) and for closing instruments.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import traceback
from typing import Any, Callable

from labctl.errors import AcquisitionError

log = logging.getLogger(__name__)


class InstrumentHung(AcquisitionError):
    """An instrument call did not return within the watchdog time.

    Attributes:
        role: the instrument's role in the station ("tagger", "camera", ...).
        call: the driver call that hung ("read_tags", ...).
        timeout_s: the watchdog time (s).
        where: where the hung call is blocked: a header line, then its innermost frames
            (file:line in function), one per line, for the log.
    """

    def __init__(self, role: str, call: str, timeout_s: float, where: str = "") -> None:
        self.role = role
        self.call = call
        self.timeout_s = timeout_s
        self.where = where
        super().__init__(f"{role} call {call} hung for > {timeout_s:g} s")


class _Worker:
    """A daemon thread that runs the calls it is given, one at a time."""

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="labctl-instrument-call", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            fn, args, box, done = job
            try:
                box.append((True, fn(*args)))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, raised there
                box.append((False, exc))
            done.set()


class CallGuard:
    """Runs instrument calls with a time limit (see the module docstring).

    Args:
        timeout_s: the watchdog time (s): a call taking longer is hung.
        hung: where to record the instruments (by role) with a hung call, e.g. the
            station's ``hung`` (shared: a later guard on the same station knows them).
    """

    def __init__(self, timeout_s: float, hung: dict[str, InstrumentHung] | None = None) -> None:
        self.timeout_s = float(timeout_s)
        self.hung: dict[str, InstrumentHung] = {} if hung is None else hung
        """The instruments (by role) with a hung call, and that call."""
        self._worker: _Worker | None = None
        self._lock = threading.Lock()

    def call(self, role: str, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` on the worker; its result, or its exception raised here.

        Raises:
            InstrumentHung: the call did not return within ``timeout_s``, or ``role``
                already has a hung call.
        """
        if role in self.hung:
            raise AcquisitionError(f"not called: {self.hung[role]}")
        with self._lock:
            if self._worker is None:
                self._worker = _Worker()
            worker = self._worker
        box: list[tuple[bool, Any]] = []
        done = threading.Event()
        worker.jobs.put((fn, args, box, done))
        if not done.wait(self.timeout_s):
            with self._lock:
                if self._worker is worker:
                    self._worker = None  # it is stuck in the hung call; the next call gets a new one
            error = InstrumentHung(role, name, self.timeout_s, _where(worker.thread))
            self.hung[role] = error
            raise error
        ok, value = box[0]
        if ok:
            return value
        raise value

    def attempt(self, role: str, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` even if ``role`` has a hung call (a safe-state call), on its own thread, within ``timeout_s``.

        Raises:
            InstrumentHung: it did not return in time (the role is then recorded as hung);
                or the exception ``fn`` raised.
        """
        done, value = call_with_timeout(lambda: fn(*args), self.timeout_s, f"{role} {name}")
        if done:
            return value
        if isinstance(value, InstrumentHung):
            self.hung.setdefault(role, value)
        raise value

    def close(self) -> None:
        """Let the worker thread end (a stuck one stays until its call returns)."""
        with self._lock:
            if self._worker is not None:
                self._worker.jobs.put(None)
                self._worker = None


def call_with_timeout(fn: Callable[[], Any], timeout_s: float, name: str) -> tuple[bool, Any]:
    """Run ``fn()`` on a new daemon thread and wait at most ``timeout_s``.

    Returns:
        ``(True, result)``; ``(False, exception)`` if it raised; ``(False, InstrumentHung)``
        if it did not return in time (the thread is left behind).  Never raises.
    """
    box: list[tuple[bool, Any]] = []

    def run() -> None:
        try:
            box.append((True, fn()))
        except BaseException as exc:  # noqa: BLE001 - returned to the caller
            box.append((False, exc))

    thread = threading.Thread(target=run, name=f"labctl-{name}", daemon=True)
    try:
        thread.start()
    except RuntimeError:  # no new threads at interpreter shutdown: call it here
        run()
        return box[0]
    thread.join(timeout_s)
    if thread.is_alive():
        role, _, call = name.partition(" ")
        return False, InstrumentHung(role, call or name, timeout_s, _where(thread))
    return box[0]


def _where(thread: threading.Thread) -> str:
    """The innermost frames of ``thread`` (where a hung call is blocked), one line each."""
    frame = sys._current_frames().get(thread.ident or -1)
    if frame is None:
        return ""
    stack = traceback.extract_stack(frame)[-6:]
    return "\n".join(["the hung call is blocked at:"] + [f"  {s.filename}:{s.lineno} in {s.name}" for s in stack])

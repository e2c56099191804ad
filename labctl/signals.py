"""Signals that end a run: Ctrl-C (SIGINT), SIGTERM (``kill``, ``timeout``, a process
manager) and SIGHUP (a closed terminal or ssh session).

All three take the path Ctrl-C takes: the first one raises :class:`Interrupted` (a
``KeyboardInterrupt``) in the main thread, so the code that ends a run on Ctrl-C —
stop the tagger, excitation to its safe state, close the file — ends it on the others
too.  Later signals are not raised again (that would cut the ending short); each one
prints a line and is otherwise ignored.  Inside :meth:`EndOnSignals.deferred` a signal
is held and raised when the block ends, so a step that must not be cut in two (starting
the run: sinks opened, threads started) completes first and is then ended properly.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

ENDING_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""The signals that end a run cleanly."""


class Interrupted(KeyboardInterrupt):
    """A run-ending signal arrived.

    Attributes:
        signal_name: ``"SIGINT"``, ``"SIGTERM"`` or ``"SIGHUP"``.
    """

    def __init__(self, signal_name: str = "SIGINT") -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name

    @property
    def end_reason(self) -> str:
        """The run's end reason: ``"interrupted"`` for Ctrl-C, ``"interrupted: SIGTERM"`` etc. otherwise."""
        return "interrupted" if self.signal_name == "SIGINT" else f"interrupted: {self.signal_name}"


def end_reason(exc: BaseException) -> str:
    """End reason for a run ended by ``exc`` (a plain KeyboardInterrupt is Ctrl-C)."""
    return exc.end_reason if isinstance(exc, Interrupted) else "interrupted"


def signal_name(exc: BaseException) -> str:
    """``"SIGTERM"``... for an :class:`Interrupted`, ``"SIGINT"`` for a plain KeyboardInterrupt."""
    return exc.signal_name if isinstance(exc, Interrupted) else "SIGINT"


class EndOnSignals:
    """Context manager: SIGINT, SIGTERM and SIGHUP raise :class:`Interrupted` once (main thread only).

    Args:
        prog: name used in the line printed for repeated signals.
        signals: the signals to catch (default: SIGINT, SIGTERM, SIGHUP).

    Outside the main thread it installs nothing (Python allows handlers only there).
    The previous handlers are restored on exit.
    """

    def __init__(self, prog: str = "labctl", signals: tuple[signal.Signals, ...] = ENDING_SIGNALS) -> None:
        self.prog = prog
        self.signals = signals
        self.received: str | None = None
        self._raised = False
        self._held = False
        self._defer = 0
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "EndOnSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.received is not None or self._held:
            self.received = self.received or name
            try:
                os.write(2, f"{self.prog}: {name} received; already ending (excitation safe, file being closed)\n".encode())
            except OSError:  # the terminal may be gone (SIGHUP)
                pass
            return
        self.received = name
        if self._defer:
            return  # raised when the deferred block ends
        self._raised = True
        raise Interrupted(name)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Hold a signal during the block; raise it (once) when the block ends."""
        self._defer += 1
        try:
            yield
        finally:
            self._defer -= 1
        if not self._defer and self.received is not None and not self._raised:
            self._raised = True
            raise Interrupted(self.received)

    def hold(self) -> None:
        """From now on signals only print a line (the run is over; the summary is being printed)."""
        self._held = True

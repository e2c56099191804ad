"""The GUI thread's CPU time of each paint of the live views, for bench_gui.py and bench_gui_frames.py.

No ``sys.path`` changes here: ``gui.views`` is whichever checkout the importing script put first.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def time_paints(into: list[float]) -> Callable[[], None]:
    """Append the GUI thread's CPU time (s) of every ``LiveViews.paintEvent`` to ``into`` (class-wide).

    Returns the function that puts the original ``paintEvent`` back.
    """
    from gui.views import LiveViews

    original = LiveViews.paintEvent

    def paint_event(self, event):  # noqa: ANN001 - Qt's signature
        started = time.thread_time()
        try:
            return original(self, event)
        finally:
            into.append(time.thread_time() - started)

    LiveViews.paintEvent = paint_event

    def restore() -> None:
        LiveViews.paintEvent = original

    return restore

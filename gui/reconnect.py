"""Reconnect after a fault: close the station process, then open a new one on the same station.

The two happen one after the other on a thread of their own: a real instrument can be
opened by one process at a time, and closing a faulted station can take seconds (a
hung call times out), during which the window stays live and keeps its last views.
"""

from __future__ import annotations

import threading

from gui.link import StationLink


def replace_station(old: StationLink, new: StationLink) -> threading.Thread:
    """Stop listening to ``old``, close its station process, then start ``new`` (its ``opened``
    or ``failed`` follows); returns the thread doing it (join it before closing the window)."""
    for signal in (old.opened, old.failed, old.run_ended, old.progress):
        try:
            signal.disconnect()
        except TypeError:  # nothing connected
            pass

    def work() -> None:
        old.close()
        new.start()

    thread = threading.Thread(target=work, name="labctl-gui-reconnect", daemon=True)
    thread.start()
    return thread

"""Installed entry points, read once per ``sys.path``.

``importlib.metadata.entry_points(group=...)`` reads the metadata of every installed
distribution on each call (~10 ms here, with ~150 distributions); resolving a
station file's classes asked it once per class (25 times: a quarter of a second of
``labctl acquire``'s start).  :func:`entry_points` reads all groups in one scan and
keeps the result while ``sys.path`` is unchanged (a package installed into the
running interpreter's path, or a folder added to ``sys.path``, is seen at the next call).
"""

from __future__ import annotations

import sys
import threading
from importlib import metadata
from typing import Any

_lock = threading.Lock()
_cached: tuple[tuple[str, ...], Any] | None = None


def entry_points(group: str) -> tuple[metadata.EntryPoint, ...]:
    """The installed entry points of ``group`` (as ``importlib.metadata.entry_points(group=group)``)."""
    global _cached
    path = tuple(sys.path)
    with _lock:
        if _cached is None or _cached[0] != path:
            _cached = (path, metadata.entry_points())  # every group, one scan (3.10-3.11: by group; later: a list)
        installed = _cached[1]
    return tuple(installed.select(group=group))

"""The one platform fact the vendor-library loaders share."""

from __future__ import annotations

import ctypes
import os
import sys
from typing import Any


def platform_key() -> str:
    """``"win32"``, ``"darwin"`` or ``"linux"``: the key of the drivers' library-name tables."""
    if sys.platform.startswith("win"):
        return "win32"
    if sys.platform == "darwin":
        return "darwin"
    return "linux"


def library_candidates(path: str | None, env_var: str, default_names: tuple[str, ...] | list[str]) -> list[str]:
    """Where to look for a vendor library: ``path`` if given, else ``$env_var`` if set, else the default names."""
    if path:
        return [path]
    if os.environ.get(env_var):
        return [os.environ[env_var]]
    return list(default_names)


def load_first(candidates: list[str]) -> tuple[Any | None, list[str]]:
    """Load the first candidate that loads (``ctypes.WinDLL`` on Windows, ``CDLL`` elsewhere).

    Returns:
        (the library or None, one text per failed candidate naming it and the OS error).
    """
    loader = getattr(ctypes, "WinDLL") if platform_key() == "win32" else ctypes.CDLL
    failures: list[str] = []
    for candidate in candidates:
        try:
            return loader(candidate), failures
        except OSError as exc:
            where = "" if os.sep in candidate or "/" in candidate else " on the system library search path (PATH / LD_LIBRARY_PATH)"
            failures.append(f"{candidate!r}{where} ({exc})")
    return None, failures

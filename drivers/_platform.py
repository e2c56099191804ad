"""The one platform fact the vendor-library loaders share."""

from __future__ import annotations

import sys


def platform_key() -> str:
    """``"win32"``, ``"darwin"`` or ``"linux"``: the key of the drivers' library-name tables."""
    if sys.platform.startswith("win"):
        return "win32"
    if sys.platform == "darwin":
        return "darwin"
    return "linux"

"""The record ``labctl repair`` leaves in a repaired file (``/user/labctl/repair``), read back."""

from __future__ import annotations

import json
from typing import Any

import h5py
import numpy as np

from labctl.storage import layout as L

REPAIR = "/user/labctl/repair"
"""Group whose attributes are the repair record (README, "labctl repair")."""


def read_repair_record(f: h5py.File) -> dict[str, Any] | None:
    """The attributes of ``REPAIR`` (JSON ones decoded), or None if the file was not repaired."""
    group = f.get(REPAIR)
    if not isinstance(group, h5py.Group):
        return None
    out: dict[str, Any] = {}
    for key, value in group.attrs.items():
        if isinstance(value, (bytes, str, np.bytes_)):
            value = L.text(value)
            out[key] = json.loads(value) if value[:1] in "[{" else value
        else:
            out[key] = value.item() if isinstance(value, np.generic) else value
    return out

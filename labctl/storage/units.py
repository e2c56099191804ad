"""Stored integer times in any unit, as int64 picoseconds."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np


def times_unit_ps(raw: np.ndarray, unit_s: float, path: str, data_path: str) -> np.ndarray:
    """``rint(raw x unit_s / 1 ps)`` as int64 for any unit > 0, without float64's loss on large ``raw``.

    The unit in ps is split exactly (``Fraction`` of the stored float64) into whole ps and a
    fraction < 1: ``raw x whole`` is exact in int64, ``raw x fraction`` is below ``raw`` and
    exact to ~1e-4 ps in float64 for |raw| < 2**52.
    """
    unit_ps = Fraction(unit_s) * 10**12
    whole = math.floor(unit_ps)
    frac = float(unit_ps - whole)
    if len(raw):
        big = max(abs(int(raw.max())), abs(int(raw.min())))
        if big * unit_ps >= 2**62 or big >= 2**52:
            raise ValueError(f"{path}: {data_path} value {big} x {float(unit_ps)!r} ps overflows int64 ps")
    ticks = raw.astype(np.int64, copy=False)
    out = np.rint(ticks * frac).astype(np.int64)
    if whole:
        out += ticks * np.int64(whole)
    return out

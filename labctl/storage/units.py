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

_INT64_MAX = np.iinfo(np.int64).max
INT32_RANGE = np.iinfo(np.int32)
UINT8_RANGE = np.iinfo(np.uint8)


def dtype_within(dtype: np.dtype, bounds: np.iinfo) -> bool:
    """Whether every value of the integer ``dtype`` lies within ``bounds`` (no need to look at the data)."""
    if dtype.kind not in "iu":
        return False
    info = np.iinfo(dtype)
    return bool(info.min >= bounds.min and info.max <= bounds.max)


def whole_ps(unit_s: float) -> int | None:
    """``unit_s`` as a whole number of picoseconds, or None if it is not one."""
    if not math.isfinite(unit_s) or unit_s <= 0:
        return None
    k = round(unit_s / 1e-12)
    return k if k >= 1 and abs(unit_s / 1e-12 - k) <= 1e-6 * k else None


def stored_to_ps(raw: np.ndarray, unit_s: float, path: str, data_path: str, unit_path: str, *,
                 exact: bool) -> np.ndarray:
    """Stored integers ``raw`` of ``path``'s ``data_path`` times ``unit_s``, as int64 ps.

    A unit of whole picoseconds gives exact products (overflow checked).  Any other
    unit (``exact=False``; ``exact=True`` refuses it) gives ``rint(raw x unit_ps)``,
    computed as ``raw x floor(unit_ps)`` (exact int64) plus ``rint(raw x frac(unit_ps))``
    (float64, exact to well below 1 ps while |raw| < 2**52), so that 10**11 sync ticks of
    13123.36 ps still land on the nearest ps.
    """
    if raw.dtype.kind not in "iu":
        raise ValueError(f"{path}: {data_path} has dtype {raw.dtype}: must be integers")
    k = whole_ps(unit_s)
    if k is None:
        if not math.isfinite(unit_s) or unit_s <= 0:
            raise ValueError(f"{path}: {unit_path} = {unit_s!r} s: missing or not a positive time")
        if exact:
            raise ValueError(f"{path}: {unit_path} = {unit_s!r} s is not a whole number of "
                             "picoseconds and is below 1 ps: labctl reads timestamps as int64 ps, and rounding "
                             "would merge distinct timestamps (units >= 1 ps are rounded to the nearest ps)")
        return times_unit_ps(raw, unit_s, path, data_path)
    info = np.iinfo(raw.dtype)
    if int(info.max) * k > _INT64_MAX or int(info.min) * k < -_INT64_MAX - 1:  # else no overflow: no pass
        big = max(abs(int(raw.max())), abs(int(raw.min()))) if len(raw) else 0
        if big > _INT64_MAX // k:
            raise ValueError(f"{path}: {data_path} value {big} x {k} ps overflows int64 ps")
    out = raw.astype(np.int64, copy=False)
    if k != 1:
        out *= k
    return out

"""Small exact helpers shared by the quTAG and SSTT decoders: device ticks to ps, time order.

Timestamps stay ``int64`` end to end: a quTAG counts ps since its start, which
reaches ~1e17 ps, beyond the 2^53 that float64 holds exactly.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from labctl.formats.common import FormatError

INT64_MAX = np.iinfo(np.int64).max


def unit_ps_from_seconds_text(text: str) -> Fraction:
    """The time unit written as seconds in decimal text (``"8.100000000000000e-11"``), exactly in ps.

    Parsed from the text, not through float: ``8.1e-11`` s is exactly 81 ps.
    Raises ``ValueError`` if the text is not a positive number.
    """
    unit_ps = Fraction(text.strip()) * 10**12
    if unit_ps <= 0:
        raise ValueError(f"time unit {text!r} s: must be > 0")
    return unit_ps


def ticks_to_ps(ticks: np.ndarray, unit_ps: Fraction | int, source: str) -> np.ndarray:
    """``int64`` ps of ``int64`` device ticks (>= 0), exact, rounded half up to whole ps.

    A whole-ps unit multiplies exactly; any other unit (e.g. 0.5 ps) gives the
    nearest ps (error <= 0.5 ps), computed in integers: ``q*num + round(r*num/den)``
    with ``q, r = divmod(ticks, den)``.  ``source`` names the file in the
    ``FormatError`` raised when a time would not fit int64 ps (about 107 days).
    """
    unit = Fraction(unit_ps)
    ticks = np.asarray(ticks, dtype=np.int64)
    if ticks.size == 0:
        return ticks.copy()
    num, den = unit.numerator, unit.denominator
    largest = int(ticks.max())
    if largest * unit > INT64_MAX:
        raise FormatError(
            f"{source}: time tag {largest} x {float(unit):g} ps = {float(largest * unit):.4g} ps "
            f"does not fit int64 ps (max {INT64_MAX}); allowed: times below ~107 days")
    if den == 1:
        return ticks * np.int64(num)
    q, r = np.divmod(ticks, np.int64(den))
    return q * np.int64(num) + (r * np.int64(num) + np.int64(den // 2)) // np.int64(den)


def is_time_ordered(timestamps: np.ndarray) -> bool:
    """True if ``timestamps`` never step back (equal times allowed)."""
    return bool(timestamps.size < 2 or np.all(timestamps[1:] >= timestamps[:-1]))


def sort_by_time(timestamps: np.ndarray, channels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays in time order, stable (equal times keep their order); unchanged if already sorted."""
    if is_time_ordered(timestamps):
        return timestamps, channels
    order = np.argsort(timestamps, kind="stable")
    return timestamps[order], channels[order]

"""Axis ranges and colour levels of the live views that change in steps, not every frame.

Presentation only.  A new axis range or colour-bar level makes pyqtgraph regenerate the
axis (its ticks and labels, in Python) and repaint the plot around it; done every frame,
that was a large part of each repaint.  These functions keep the current range while the
data stay inside it and fill a good part of it, and otherwise give a new one with room
to grow, so a range changes only now and then.
"""

from __future__ import annotations

LEVEL_HEADROOM = 0.2
"""New colour levels or y ranges reach this fraction of the data's span beyond it on each side."""
KEEP_FILL = 0.5
"""The current levels or range are kept while the data fill at least this fraction of them."""


def grow_range(current: float | None, wanted: float) -> float | None:
    """New upper limit if ``wanted`` left the current range (grow by 1.5x, shrink when 4x too big);
    None: keep ``current``."""
    if wanted <= 0:
        return None
    if current is None or wanted > current or wanted < current / 4:
        return wanted * 1.5
    return None


def steady_span(current: tuple[float, float] | None, low: float, high: float,
                floor: float | None = None) -> tuple[float, float] | None:
    """New ``(low, high)`` limits for data spanning ``low..high``, or None to keep ``current``.

    ``current`` is kept while it holds the data and the data fill at least ``KEEP_FILL`` of it;
    new limits reach ``LEVEL_HEADROOM`` of the data's span (at least 1) beyond the data on each
    side, but not below ``floor`` (e.g. 0 counts).

    Args:
        current: the limits shown now (None: none yet).
        low, high: the data's smallest and largest value (same units as the limits).
        floor: lowest allowed limit (None: no floor).
    """
    span = max(float(high) - float(low), 1.0)
    if current is not None:
        cur_low, cur_high = float(current[0]), float(current[1])
        if cur_low <= low and high <= cur_high and span >= KEEP_FILL * (cur_high - cur_low):
            return None
    new_low = float(low) - LEVEL_HEADROOM * span
    if floor is not None:
        new_low = max(new_low, float(floor))
    return new_low, float(high) + LEVEL_HEADROOM * span

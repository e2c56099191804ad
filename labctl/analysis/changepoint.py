"""Intensity change points of a photon stream (Watkins & Yang 2005) and the level table.

Watkins & Yang, J. Phys. Chem. B 2005, 109, 617: a generalised likelihood-ratio
test on the photon arrival times themselves (no binning).  A segment of ``N``
inter-photon intervals spanning ``T`` holds at most one intensity change; if
it falls after the ``k``-th photon, at the fraction ``V_k = t_k / T`` of the
segment's time, the log-likelihood ratio of "change at k" against "no change"
is (Poisson process, intensities fitted by maximum likelihood on each side)::

    ln L_k = k ln(k / V_k) + (N - k) ln((N - k) / (1 - V_k)) - N ln N

evaluated here for every ``k`` of a segment at once (cumulative times, numpy).
A change is accepted when ``Z_N = max_k 2 ln L_k`` exceeds the critical value
``τ_N(α)`` of a segment without change, ``α = 1 - confidence`` being the
Type-I error.  Under "no change" the interior photon times of a segment are
uniform order statistics, so the distribution of ``Z_N`` depends on ``N``
only; it has no closed form, and Watkins & Yang tabulated its quantiles by
Monte-Carlo simulation.  We do the same: ``CRITICAL_VALUES`` holds the 0.69,
0.90, 0.95 and 0.99 quantiles on a grid of ``N`` (2 ... 8192), simulated
once by ``null_critical_values`` (60 000 segments per ``N``, seed 20050101;
``tests/test_changepoint.py`` simulates a few again and compares), made
non-decreasing in ``N`` (conservative where the simulation wobbles),
interpolated linearly in ``ln N`` and, beyond 8192, extrapolated along the
slope of the points N ≥ 1000 (checked against a simulation at 32768).
Another confidence is simulated on first use (20 000 segments per grid
point, a few seconds) and cached.

Segmentation: recursive binary segmentation (the most significant change of
a segment splits it; both halves are tested again).  Long streams are cut
into windows of ``window_photons`` photons, as Watkins & Yang do: a window
is segmented, the next window starts at the last change found in it (or half
a window further when it has none), so every change is tested with the
photons on both sides that the window holds, and a window never has more
photons than the tabulated ``N``.  Finally every change is tested again on
all the photons between its two neighbouring changes (at its own position,
against the critical value of that segment's ``N``): a change that held only
within a window's or a split's part of the data is dropped, the weakest
first, until every change holds.

False changes: each test that finds nothing still had probability ``α`` of a
Type-I error, so at 95 % about 5 % of the final levels get one spurious split;
almost all of them split one state into two levels of the same intensity and
disappear when ``find_levels`` joins neighbouring levels of the same state
(``merge_same_group``).  Measured on simulated telegraphs (tests): ≤ 5 % false
changes, ≥ 95 % of the switches between levels > 10 ms found within 1 ms.

The change's time is the maximum-likelihood time given the photon after
which it falls: at the brighter side's end photon (a bright → dim change just
after photon ``k``, at its time + 1 ps; a dim → bright change at photon
``k + 1``), so that every photon falls in its level by time ``[start, stop)``.

Grouping of the levels into intensity states (Watkins & Yang's clustering):
``labctl.analysis.level_groups``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy.special import xlogy

from labctl.analysis.level_groups import group_levels
from labctl.errors import ConfigError

__all__ = [
    "CRITICAL_GRID_N",
    "CRITICAL_VALUES",
    "Level",
    "change_points",
    "critical_value",
    "find_levels",
    "levels_as_dicts",
    "llr_curve",
    "null_critical_values",
    "select_photons_by_levels",
]

CRITICAL_GRID_N = np.array([2, 3, 4, 6, 7, 10, 12, 16, 21, 27, 35, 45, 59, 76, 99, 128, 166, 215, 279, 362, 470,
                            609, 790, 1024, 1328, 1722, 2233, 2896, 3756, 4871, 6317, 8192], np.int64)
"""Segment sizes (inter-photon intervals) of the tabulated critical values."""

# {confidence: τ_N at CRITICAL_GRID_N}: quantiles of max_k 2 ln L_k without change (see the module docstring).
CRITICAL_VALUES: dict[float, list[float]] = {  # null_critical_values(N, ..., 60_000, rng(20050101)), N in the grid
    0.69: [1.287, 2.086, 2.542, 3.089, 3.27, 3.713, 3.891, 4.146, 4.398, 4.618, 4.81, 5.0, 5.199, 5.368, 5.546, 5.712, 5.842, 5.933, 6.103, 6.196, 6.333, 6.487, 6.564, 6.655, 6.766, 6.851, 6.953, 7.058, 7.149, 7.219, 7.293, 7.367],
    0.9: [3.314, 4.308, 4.887, 5.49, 5.744, 6.19, 6.433, 6.669, 6.995, 7.198, 7.428, 7.632, 7.797, 7.994, 8.206, 8.379, 8.548, 8.652, 8.787, 8.874, 9.098, 9.238, 9.243, 9.352, 9.481, 9.579, 9.668, 9.779, 9.88, 9.958, 10.022, 10.152],
    0.95: [4.631, 5.766, 6.314, 6.96, 7.19, 7.615, 7.866, 8.18, 8.512, 8.704, 8.963, 9.184, 9.322, 9.481, 9.734, 9.865, 10.083, 10.174, 10.374, 10.386, 10.638, 10.781, 10.761, 10.906, 11.03, 11.13, 11.202, 11.355, 11.408, 11.6, 11.634, 11.664],
    0.99: [7.833, 9.031, 9.593, 10.19, 10.52, 10.992, 11.092, 11.491, 11.651, 12.045, 12.25, 12.616, 12.767, 13.051, 13.262, 13.306, 13.587, 13.652, 13.818, 13.879, 14.085, 14.282, 14.221, 14.501, 14.649, 14.608, 14.648, 14.871, 14.813, 15.03, 15.014, 15.182],
}

MAX_WINDOW_PHOTONS = int(CRITICAL_GRID_N[-1])


@functools.lru_cache(maxsize=4)
def _log_table(size: int) -> np.ndarray:
    """ln k for k = 0 ... size - 1 (ln 0 set to 0: never used with a factor k = 0)."""
    table = np.zeros(size, np.float64)
    table[1:] = np.log(np.arange(1, size, dtype=np.float64))
    return table


def llr_curve(times: np.ndarray) -> np.ndarray:
    """``2 ln L_k`` for k = 1 .. N-1 of one segment.

    ``times``: the segment's photon times (float or int, any unit), ``times[0]``
    its start and ``times[-1]`` its end: N = len(times) - 1 intervals.
    """
    t = np.asarray(times)
    n = len(t) - 1
    if n < 2:
        return np.zeros(0, np.float64)
    span = float(t[-1] - t[0])
    if not span > 0:
        return np.zeros(n - 1, np.float64)
    log_k = _log_table(max(MAX_WINDOW_PHOTONS + 1, 1 << int(n).bit_length()))[: n + 1]
    k = np.arange(1, n, dtype=np.float64)
    eps = 0.5 / max(span, 1.0)  # identical timestamps: half a time unit, not a zero time
    v = np.clip((t[1:-1] - t[0]) / span, eps, 1.0 - eps)
    # k ln(k/v) + (n-k) ln((n-k)/(1-v)) - n ln n, with k and n - k >= 1 (no 0 ln 0)
    out = k * (log_k[1:n] - np.log(v)) + (n - k) * (log_k[n - 1:0:-1] - np.log1p(-v))
    out -= n * log_k[n]
    out *= 2.0
    return out


def null_critical_values(n: int, confidences: tuple[float, ...], replicates: int,
                         rng: np.random.Generator) -> np.ndarray:
    """Quantiles ``confidences`` of ``max_k 2 ln L_k`` over segments of ``n`` intervals without change
    (Monte Carlo, ``replicates`` segments of exponential intervals)."""
    if n < 2:
        return np.zeros(len(confidences))
    out = np.empty(replicates)
    chunk = max(1, 4_000_000 // n)
    k = np.arange(1, n, dtype=np.float64)
    for start in range(0, replicates, chunk):
        m = min(chunk, replicates - start)
        c = np.cumsum(rng.exponential(size=(m, n)), axis=1)
        v = c[:, :-1] / c[:, -1:]
        stat = xlogy(k, k / v) + xlogy(n - k, (n - k) / (1.0 - v))
        out[start:start + m] = 2.0 * (stat.max(axis=1) - n * np.log(n))
    return np.quantile(out, confidences)


_LOG_GRID_N = np.log(CRITICAL_GRID_N.astype(np.float64))


@functools.lru_cache(maxsize=16)
def _critical_table(confidence: float) -> tuple[np.ndarray, float]:
    """(τ_N on the grid, made non-decreasing; slope dτ/d ln N of the points N ≥ 1000)."""
    raw = CRITICAL_VALUES.get(round(confidence, 6))
    if raw is None:
        rng = np.random.default_rng(20050101)
        raw = [float(null_critical_values(int(n), (confidence,), 20_000, rng)[0]) for n in CRITICAL_GRID_N]
    table = np.maximum.accumulate(np.asarray(raw, np.float64))
    tail = CRITICAL_GRID_N >= 1000
    return table, float(np.polyfit(_LOG_GRID_N[tail], table[tail], 1)[0])


def critical_value(n: int | np.ndarray, confidence: float) -> np.ndarray:
    """Critical value τ_N of ``Z_N = max_k 2 ln L_k`` at ``confidence`` (1 - Type-I error), N intervals.

    Interpolated linearly in ln N; beyond the grid (the confirmation step tests segments
    between two changes, which may hold more than a window) extrapolated along the
    least-squares slope in ln N of the grid points N ≥ 1000 (τ grows ~0.3 per e-fold there)."""
    _check_confidence(confidence)
    table, slope = _critical_table(float(confidence))
    log_n = np.log(np.maximum(np.asarray(n, np.float64), 2.0))
    inside = np.interp(log_n, _LOG_GRID_N, table)
    return np.where(log_n > _LOG_GRID_N[-1], table[-1] + slope * (log_n - _LOG_GRID_N[-1]), inside)


def _check_confidence(confidence: float) -> None:
    if not (isinstance(confidence, (float, int)) and 0.5 <= float(confidence) < 1.0):
        raise ConfigError("confidence", confidence, "must be a number in [0.5, 1), e.g. 0.69, 0.90, 0.95, 0.99")


def _split(times: np.ndarray, lo: int, hi: int, confidence: float, min_photons: int) -> list[int]:
    """Change indices (photon index after which the intensity changes) inside ``times[lo:hi+1]``."""
    found: list[int] = []
    stack = [(lo, hi)]
    while stack:  # one pass per segment, not per photon
        a, b = stack.pop()
        n = b - a
        if n < 2 * min_photons:
            continue
        curve = llr_curve(times[a:b + 1])
        inner = curve[min_photons - 1: n - min_photons]  # both sides keep >= min_photons intervals
        if not inner.size:
            continue
        j = int(np.argmax(inner))
        if inner[j] <= critical_value(n, confidence):
            continue
        cut = a + min_photons + j  # the change falls after photon `cut`
        found.append(cut)
        stack += [(a, cut), (cut, b)]
    return sorted(found)


def _point_llr(times: np.ndarray, a: np.ndarray, c: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``2 ln L_k`` of a change after photon ``c`` in segments ``times[a..b]`` (arrays of indices)."""
    n = (b - a).astype(np.float64)
    k = (c - a).astype(np.float64)
    span = (times[b] - times[a]).astype(np.float64)
    eps = 0.5 / np.maximum(span, 1.0)
    v = np.clip((times[c] - times[a]) / np.maximum(span, 1.0), eps, 1.0 - eps)
    return 2.0 * (xlogy(k, k / v) + xlogy(n - k, (n - k) / (1.0 - v)) - n * np.log(n))


def _confirm(times: np.ndarray, cuts: list[int], confidence: float) -> np.ndarray:
    """Drop changes not significant between their neighbouring changes, until all are.

    Of neighbouring failing changes only the weaker goes per pass (its neighbour's
    segment grows and is tested again)."""
    c = np.unique(np.asarray(cuts, np.int64))
    last = len(times) - 1
    while c.size:
        bounds = np.concatenate([[0], c, [last]])
        score = _point_llr(times, bounds[:-2], c, bounds[2:]) - critical_value(bounds[2:] - bounds[:-2], confidence)
        fail = score <= 0
        if not fail.any():
            break
        left = np.concatenate([[np.inf], np.where(fail[:-1], score[:-1], np.inf)])
        right = np.concatenate([np.where(fail[1:], score[1:], np.inf), [np.inf]])
        drop = fail & (score < left) & (score <= right)
        c = c[~drop]
    return c


def change_points(timestamps_ps: np.ndarray, *, confidence: float = 0.95, window_photons: int = 4096,
                  min_photons: int = 1) -> np.ndarray:
    """Indices ``k`` of the photons after which the intensity changes (int64, sorted).

    ``timestamps_ps``: sorted photon times (int64 ps).  ``window_photons``: photons
    per window (2 ... 8192, see the module docstring).  ``min_photons``: intervals
    each side of a change must keep (1 = any).
    """
    _check_confidence(confidence)
    if not (2 <= int(window_photons) <= MAX_WINDOW_PHOTONS):
        raise ConfigError("window_photons", window_photons, f"must be 2 ... {MAX_WINDOW_PHOTONS} photons")
    if int(min_photons) < 1:
        raise ConfigError("min_photons", min_photons, "must be >= 1")
    t = np.asarray(timestamps_ps)
    if t.ndim != 1:
        raise ConfigError("timestamps_ps", t.shape, "must be a 1-D array of photon times (ps)")
    if len(t) > 1 and np.any(np.diff(t) < 0):
        raise ConfigError("timestamps_ps", "unsorted", "must be sorted in time (ps)")
    last = len(t) - 1
    cuts: list[int] = []
    start = 0
    while start < last:
        end = min(start + int(window_photons), last)
        found = _split(t, start, end, float(confidence), int(min_photons))
        cuts += found
        if end == last:
            break
        start = found[-1] if found and found[-1] > start else start + int(window_photons) // 2
    return _confirm(t, cuts, float(confidence))


@dataclass(frozen=True)
class Level:
    """One constant-intensity stretch of the stream.

    ``start_s``/``stop_s``: seconds from the origin (default the first photon);
    ``intensity_cps``: photons / duration (counts/s); ``lifetime_ns``: mean
    nanotime − IRF offset (ns), None without nanotimes; ``group``: intensity
    state (0 = dimmest); ``photons``: photons in the level.
    """

    start_s: float
    stop_s: float
    intensity_cps: float
    lifetime_ns: float | None
    group: int
    photons: int


def _change_times_ps(t: np.ndarray, cuts: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Maximum-likelihood change times: at photon k if the left side is brighter, else at photon k + 1."""
    starts, stops = bounds[:-1], bounds[1:]
    rate = (stops - starts) / np.maximum(t[stops] - t[starts], 1).astype(np.float64)
    brighter_left = rate[:-1] > rate[1:]
    return np.where(brighter_left, t[cuts] + 1, t[np.minimum(cuts + 1, len(t) - 1)])


def _level_arrays(t: np.ndarray, cuts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(first photon index, edges ps, photons, duration ps) of the levels between changes ``cuts``."""
    bounds = np.concatenate([[0], cuts, [len(t) - 1]]).astype(np.int64)
    edges_ps = np.concatenate([[t[0]], _change_times_ps(t, cuts, bounds), [t[-1]]])
    first = np.concatenate([[0], cuts + 1]).astype(np.int64)
    photons = np.diff(np.concatenate([first, [len(t)]]))
    return first, edges_ps, photons, np.diff(edges_ps).astype(np.float64)


def find_levels(timestamps_ps: np.ndarray, *, confidence: float = 0.95, nanotimes_ps: np.ndarray | None = None,
                irf_offset_ps: float = 0.0, window_photons: int = 4096, origin_ps: int | None = None,
                max_groups: int = 8, merge_same_group: bool = True, min_photons: int = 3) -> list[Level]:
    """Change-point levels of a photon stream, grouped into intensity states.

    ``timestamps_ps``: sorted photon times (int64 ps, all detectors merged);
    ``confidence``: 1 − the Type-I error of each change test; ``nanotimes_ps``:
    delay after the laser pulse per photon (ps), for the levels' lifetimes;
    ``irf_offset_ps``: subtracted from the mean nanotime; ``origin_ps``: time
    zero of ``start_s``/``stop_s`` (default the first photon, like the trace);
    ``min_photons``: fewest photon intervals a level may hold (a 1-photon
    "level" is no intensity; the test stays valid, only more conservative);
    ``max_groups``: most intensity states tried by the BIC; ``merge_same_group``:
    join neighbouring levels that fall into the same state (the change between
    them is no change of state: most of the test's false positives, Type-I
    errors splitting a level, go this way).
    """
    t = np.asarray(timestamps_ps, np.int64)
    if nanotimes_ps is not None and len(nanotimes_ps) != len(t):
        raise ConfigError("nanotimes_ps", len(nanotimes_ps), f"must have one nanotime per photon ({len(t)})")
    if len(t) < 2:
        return []
    cuts = change_points(t, confidence=confidence, window_photons=window_photons, min_photons=min_photons)
    first, edges_ps, photons, duration_ps = _level_arrays(t, cuts)
    groups = group_levels(photons, duration_ps * 1e-12, max_groups=max_groups)
    if merge_same_group and len(cuts):  # a change between two levels of one state is no change of state
        keep = groups[:-1] != groups[1:]
        cuts, groups = cuts[keep], groups[np.concatenate([[True], keep])]
        first, edges_ps, photons, duration_ps = _level_arrays(t, cuts)
    intensity = photons / np.maximum(duration_ps, 1.0) * 1e12
    lifetimes: list[float | None] = [None] * len(photons)
    if nanotimes_ps is not None:
        sums = np.add.reduceat(np.asarray(nanotimes_ps, np.float64), first)
        lifetimes = [float(x) for x in (sums / photons - float(irf_offset_ps)) * 1e-3]
    origin = int(t[0]) if origin_ps is None else int(origin_ps)
    start_s = (edges_ps[:-1] - origin) * 1e-12
    stop_s = (edges_ps[1:] - origin) * 1e-12
    return [Level(float(a), float(b), float(i), lt, int(g), int(n))
            for a, b, i, lt, g, n in zip(start_s, stop_s, intensity, lifetimes, groups, photons)]


def levels_as_dicts(levels: list[Level]) -> list[dict]:
    """The report.json ``levels`` table: ``[{start_s, stop_s, intensity_cps, lifetime_ns, group}]``."""
    return [{"start_s": lv.start_s, "stop_s": lv.stop_s, "intensity_cps": lv.intensity_cps,
             "lifetime_ns": lv.lifetime_ns, "group": lv.group} for lv in levels]


def select_photons_by_levels(timestamps_ps: np.ndarray, levels: list[Level], groups: set[int] | list[int],
                             origin_ps: int | None = None) -> np.ndarray:
    """Boolean mask of the photons inside levels of the given ``groups`` (level table as a selection).

    A photon at time t (ps) is in level [start_s, stop_s) measured from ``origin_ps``
    (default the first photon, as in ``find_levels``); the last level includes its stop.
    """
    t = np.asarray(timestamps_ps, np.int64)
    if not levels or not len(t):
        return np.zeros(len(t), bool)
    origin = int(t[0]) if origin_ps is None else int(origin_ps)
    starts_ps = np.rint(np.array([lv.start_s for lv in levels]) * 1e12).astype(np.int64) + origin
    stops_ps = np.rint(levels[-1].stop_s * 1e12).astype(np.int64) + origin
    wanted = np.array([lv.group in set(groups) for lv in levels], bool)
    idx = np.searchsorted(starts_ps, t, side="right") - 1
    inside = (idx >= 0) & (t <= stops_ps)
    return inside & wanted[np.clip(idx, 0, len(levels) - 1)]

"""Numba kernels of the simulated scene.

``dead_time_filter`` is sequential by nature (each detection depends on the previous kept
one) and cannot be vectorised.  The others fuse per-segment work that numpy would do in
dozens of small calls, whose fixed cost per call (~1-3 us) would otherwise dominate a
10 ms segment.  Each kernel is a small pure function of arrays; its numpy version (same
arguments and results, in :mod:`sim_backends.kernels_numpy`) is the test oracle, and what
the first run after an install runs while numba compiles for the next one
(:mod:`labctl.analysis.kernel_backend`).

Compiling is what the first run after an install waits for, so the kernels keep to
plain loops: sorting and searching are left to numpy around them (numba's ``np.sort``
compiled in ~2 s, its ``searchsorted`` ~0.5 s), and arrays are copied element by
element, never by slice assignment (``a[:n] = b`` makes numba compile its shape-mismatch
error message, string formatting included: ~3 s).  Measured with
``benchmarks/bench_start.py``.
"""

from __future__ import annotations

import numpy as np

from labctl.analysis.kernel_backend import kernel
from sim_backends.kernels_numpy import (dead_time_filter_numpy, merge_tags_numpy, qd_photons_numpy,
                                        segment_candidates_numpy)

WARM_UP = "sim_backends.scene:compile_kernels"
"""What calls these kernels with a run's types (:func:`labctl.analysis.kernel_backend.kernel`)."""

NEVER_PS = np.int64(-(2**62))
"""``last_kept_ps`` of a SPAD that has not detected anything yet."""


def dead_time_filter(
    times_ps: np.ndarray,
    horizon_ps: np.int64,
    dead_time_ps: np.int64,
    last_kept_ps: np.int64,
    afterpulse_probability: float,
    afterpulse_uniform: np.ndarray,
    afterpulse_extra_ps: np.ndarray,
) -> tuple[np.ndarray, np.int64, np.ndarray, int, bool]:
    """Non-paralyzable dead time with afterpulsing, for one SPAD (``_dead_time_filter``, with
    the pending afterpulses sorted)."""
    kept, last, pending, used, complete = _dead_time_filter(
        times_ps, horizon_ps, dead_time_ps, last_kept_ps, afterpulse_probability, afterpulse_uniform,
        afterpulse_extra_ps)
    pending.sort()
    return kept, last, pending, used, complete


@kernel(dead_time_filter_numpy, warm_up=WARM_UP)
def _dead_time_filter(times_ps, horizon_ps, dead_time_ps, last_kept_ps, afterpulse_probability, afterpulse_uniform,
                      afterpulse_extra_ps):  # types: those of ``dead_time_filter``
    """Non-paralyzable dead time with afterpulsing, for one SPAD.

    Candidates (``times_ps``, sorted, all < ``horizon_ps``) and the afterpulses they make
    are taken in time order (a candidate before an afterpulse at the same time).  A
    candidate is kept if it is >= ``dead_time_ps`` after the previous kept one
    (``last_kept_ps``, carried between calls; ``NEVER_PS`` at start).  The j-th kept
    detection makes an afterpulse if ``afterpulse_uniform[j] < afterpulse_probability``, at
    ``t + dead_time_ps + afterpulse_extra_ps[j]``; afterpulses can afterpulse again.
    Afterpulses at or after ``horizon_ps`` are not processed but returned as pending.

    Returns:
        (kept times, new last_kept_ps, pending afterpulse times (unsorted), pool entries used,
        complete).  ``complete`` is False if the afterpulse pool ran out: call again with
        a longer pool (the other outputs are then meaningless).
    """
    n = times_ps.shape[0]
    pool = afterpulse_uniform.shape[0]
    use_pool = afterpulse_probability > 0.0
    kept = np.empty(n + pool, np.int64)
    heap = np.empty(pool + 1, np.int64)
    pending = np.empty(pool + 1, np.int64)
    n_kept = 0
    n_heap = 0
    n_pending = 0
    used = 0
    i = 0
    last = last_kept_ps
    while True:
        if i < n and (n_heap == 0 or times_ps[i] <= heap[0]):
            t = times_ps[i]
            i += 1
        elif n_heap > 0:  # pop the minimum of the binary heap (inline: one function compiles faster than three)
            t = heap[0]
            n_heap -= 1
            heap[0] = heap[n_heap]
            k = 0
            while True:
                child = 2 * k + 1
                if child >= n_heap:
                    break
                if child + 1 < n_heap and heap[child + 1] < heap[child]:
                    child += 1
                if heap[k] <= heap[child]:
                    break
                heap[k], heap[child] = heap[child], heap[k]
                k = child
        else:
            break
        if t >= last + dead_time_ps:
            kept[n_kept] = t
            n_kept += 1
            last = t
            if use_pool:
                if used >= pool:
                    return np.empty(0, np.int64), last, np.empty(0, np.int64), used, False
                if afterpulse_uniform[used] < afterpulse_probability:
                    t_after = t + dead_time_ps + afterpulse_extra_ps[used]
                    if t_after < horizon_ps:  # push onto the heap
                        k = n_heap
                        heap[k] = t_after
                        n_heap += 1
                        while k > 0:
                            parent = (k - 1) // 2
                            if heap[parent] <= heap[k]:
                                break
                            heap[parent], heap[k] = heap[k], heap[parent]
                            k = parent
                    else:
                        pending[n_pending] = t_after
                        n_pending += 1
                used += 1
    return kept[:n_kept].copy(), last, pending[:n_pending].copy(), used, True


def spad_segment(
    carry_ps: np.ndarray,
    photons_ps: np.ndarray,
    n_dark: int,
    start_ps: np.int64,
    stop_ps: np.int64,
    uniform: np.ndarray,
    jitter_sigma_ps: float,
    jitter_clip_ps: np.int64,
    delay_ps: np.int64,
    horizon_ps: np.int64,
    dead_time_ps: np.int64,
    last_kept_ps: np.int64,
    afterpulse_probability: float,
    afterpulse_mean_delay_ps: float,
) -> tuple[np.ndarray, np.int64, np.ndarray, bool]:
    """One segment ``[start, stop)`` of one SPAD: candidates -> detections before ``horizon_ps``.

    Candidates are the carried ones (``carry_ps``, already delayed), the photons
    (+ ``delay_ps`` + Gaussian jitter, rounded and clipped at ``±jitter_clip_ps``) and
    ``n_dark`` dark counts uniform in the segment (+ ``delay_ps``).  Those before the
    horizon go through ``dead_time_filter``; the rest, and afterpulses at or after the
    horizon, are returned sorted as the new carry.

    ``uniform`` (4, pool) supplies all randomness, pool >= number of candidates: rows 0
    and 1 give the photons' jitter (Box-Muller, column i for photon i), row 0 after the
    photons the dark-count times, rows 2 and 3 the afterpulse decisions and
    ``Exp(afterpulse_mean_delay_ps)`` extra delays of ``dead_time_filter``.

    Returns:
        (kept detections, new last_kept_ps, new carry, complete); see ``dead_time_filter``.
    """
    cand, extra = _segment_candidates(carry_ps, photons_ps, n_dark, start_ps, stop_ps, uniform, jitter_sigma_ps,
                                      jitter_clip_ps, delay_ps, afterpulse_probability, afterpulse_mean_delay_ps)
    cand.sort()
    cut = int(np.searchsorted(cand, horizon_ps))
    kept, last, pending, _, complete = _dead_time_filter(
        cand[:cut], horizon_ps, dead_time_ps, last_kept_ps, afterpulse_probability, uniform[2], extra
    )
    later = cand[cut:]
    if pending.shape[0] > 0:
        later = np.concatenate((later, pending))
        later.sort()
    else:
        later = later.copy()
    return kept, last, later, complete


@kernel(segment_candidates_numpy, warm_up=WARM_UP)
def _segment_candidates(carry_ps, photons_ps, n_dark, start_ps, stop_ps, uniform, jitter_sigma_ps, jitter_clip_ps,
                        delay_ps, afterpulse_probability, afterpulse_mean_delay_ps):  # types: ``spad_segment``'s
    """``spad_segment``'s candidates (unsorted) and the afterpulse extra delays (int64 ps, 0 where
    ``uniform[2] >= afterpulse_probability``: only the others are read)."""
    n_carry = carry_ps.shape[0]
    n_photon = photons_ps.shape[0]
    cand = np.empty(n_carry + n_photon + n_dark, np.int64)
    for i in range(n_carry):
        cand[i] = carry_ps[i]
    for i in range(n_photon):
        jitter = np.int64(0)
        if jitter_sigma_ps > 0.0:
            normal = np.sqrt(-2.0 * np.log(1.0 - uniform[0, i])) * np.cos(2.0 * np.pi * uniform[1, i])
            jitter = np.int64(np.rint(normal * jitter_sigma_ps))
            jitter = min(max(jitter, -jitter_clip_ps), jitter_clip_ps)
        cand[n_carry + i] = photons_ps[i] + delay_ps + jitter
    span = float(stop_ps - start_ps)
    for i in range(n_dark):
        t = start_ps + np.int64(uniform[0, n_photon + i] * span)
        cand[n_carry + n_photon + i] = min(t, stop_ps - 1) + delay_ps
    pool = uniform.shape[1]
    extra = np.zeros(pool, np.int64)
    for i in range(pool):
        if uniform[2, i] < afterpulse_probability:  # only these are read
            extra[i] = np.int64(np.rint(-np.log(1.0 - uniform[3, i]) * afterpulse_mean_delay_ps))
    return cand, extra


@kernel(merge_tags_numpy, warm_up=WARM_UP)
def merge_tags(
    syncs_ps: np.ndarray, sync_channel: int, det_a_ps: np.ndarray, channel_a: int, det_b_ps: np.ndarray, channel_b: int
) -> tuple[np.ndarray, np.ndarray]:
    """Merge three sorted tag streams into one (int64 times, uint8 channels), ties by channel ascending.

    Made for many syncs and few detections: the runs of syncs between detections are
    copied as blocks, each run's end found by binary search.
    """
    n_sync = syncs_ps.shape[0]
    n_a = det_a_ps.shape[0]
    n_b = det_b_ps.shape[0]
    times = np.empty(n_sync + n_a + n_b, np.int64)
    chans = np.empty(n_sync + n_a + n_b, np.uint8)
    sync_code = np.uint8(sync_channel)
    i_s = 0
    i_a = 0
    i_b = 0
    out = 0
    while i_a < n_a or i_b < n_b:
        # the next detection: earlier time first, then lower channel
        take_a = i_b >= n_b or (
            i_a < n_a and (det_a_ps[i_a] < det_b_ps[i_b] or (det_a_ps[i_a] == det_b_ps[i_b] and channel_a < channel_b))
        )
        if take_a:
            t = det_a_ps[i_a]
            ch = channel_a
            i_a += 1
        else:
            t = det_b_ps[i_b]
            ch = channel_b
            i_b += 1
        # the syncs before it (at equal time, before it if their channel is lower): binary search
        lo = i_s
        hi = n_sync
        after_ties = ch > sync_channel
        while lo < hi:
            mid = (lo + hi) >> 1
            if syncs_ps[mid] < t or (after_ties and syncs_ps[mid] == t):
                lo = mid + 1
            else:
                hi = mid
        for k in range(i_s, lo):
            times[out] = syncs_ps[k]
            chans[out] = sync_code
            out += 1
        i_s = lo
        times[out] = t
        chans[out] = ch
        out += 1
    for k in range(i_s, n_sync):
        times[out] = syncs_ps[k]
        chans[out] = sync_code
        out += 1
    return times, chans


@kernel(qd_photons_numpy, warm_up=WARM_UP)
def qd_photons(
    pulses_ps: np.ndarray,
    p_any: float,
    uniform: np.ndarray,
    on: bool,
    p_trap: float,
    biexciton_fraction: float,
    exciton_given_biexciton: float,
    fraction_a: float,
    lifetimes_ps: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, int, int, int, bool]:
    """Registered photons of a QD over pulses of one constant state.

    Each pulse independently registers at least one photon with probability ``p_any``:
    those pulses are found by geometric gaps, ``1 + floor(log(1 - uniform[0, j]) /
    log(1 - p_any))``.  For the j-th such pulse, with ``u = uniform[:, j]``: if
    ``u[1] < biexciton_fraction`` its biexciton photon is registered, at
    ``rint(-log(1 - u[7]) * lifetimes_ps[3])`` after the pulse, on A if
    ``u[5] < fraction_a``, and the exciton photon follows the biexciton delay and is
    registered only if ``u[2] < exciton_given_biexciton``; otherwise the exciton photon is
    registered.  Exciton kind: trap if ON and ``u[3] < p_trap``, band edge if ON
    otherwise, off if OFF; delay ``rint(-log(1 - u[6]) * lifetimes_ps[kind])`` (kinds
    0, 1, 2); on A if ``u[4] < fraction_a``.

    Returns:
        (photon times at A, at B — unsorted; registered excitons, of which trap;
        registered biexciton photons; complete).  ``complete`` is False if the columns of
        ``uniform`` ran out before the last pulse: call again with more.
    """
    n = pulses_ps.shape[0]
    pool = uniform.shape[1]
    at_a = np.empty(2 * pool, np.int64)
    at_b = np.empty(2 * pool, np.int64)
    n_a = 0
    n_b = 0
    n_x = 0
    n_trap = 0
    n_xx = 0
    if p_any <= 0.0 or n == 0:
        return at_a[:0], at_b[:0], 0, 0, 0, True
    log_q = np.log1p(-p_any) if p_any < 1.0 else -np.inf
    pulse = -1
    j = 0
    while True:
        if j >= pool:
            return at_a[:0], at_b[:0], 0, 0, 0, False
        gap = np.log(1.0 - uniform[0, j]) / log_q if p_any < 1.0 else 0.0
        if gap >= n:  # guard the float -> int conversion
            break
        pulse += 1 + np.int64(gap)
        if pulse >= n:
            break
        t = pulses_ps[pulse]
        if uniform[1, j] < biexciton_fraction:
            n_xx += 1
            t += np.int64(np.rint(-np.log(1.0 - uniform[7, j]) * lifetimes_ps[3]))
            if uniform[5, j] < fraction_a:
                at_a[n_a] = t
                n_a += 1
            else:
                at_b[n_b] = t
                n_b += 1
            if uniform[2, j] >= exciton_given_biexciton:
                j += 1
                continue
        n_x += 1
        kind = 2
        if on:
            kind = 0
            if uniform[3, j] < p_trap:
                kind = 1
                n_trap += 1
        t += np.int64(np.rint(-np.log(1.0 - uniform[6, j]) * lifetimes_ps[kind]))
        if uniform[4, j] < fraction_a:
            at_a[n_a] = t
            n_a += 1
        else:
            at_b[n_b] = t
            n_b += 1
        j += 1
    return at_a[:n_a].copy(), at_b[:n_b].copy(), n_x, n_trap, n_xx, True

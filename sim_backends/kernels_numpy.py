"""numpy versions of the simulated scene's numba kernels (:mod:`sim_backends._kernels`).

Same arguments, same results, bit for bit: each is its kernel's test oracle, and what the
first run after an install runs while numba compiles the kernels for the next run
(:mod:`labctl.analysis.kernel_backend`).  The dead-time filter is sequential by nature: a
Python loop over the candidates (~2 kcps per SPAD in the default scene).
"""

from __future__ import annotations

import heapq

import numpy as np


def dead_time_filter_numpy(times_ps, horizon_ps, dead_time_ps, last_kept_ps, afterpulse_probability,
                           afterpulse_uniform, afterpulse_extra_ps):  # types: those of ``dead_time_filter``
    """numpy/Python version of ``_kernels._dead_time_filter`` (pending afterpulses in the same, unsorted order)."""
    times = times_ps.tolist()
    dead, horizon, last = int(dead_time_ps), int(horizon_ps), int(last_kept_ps)
    use_pool = afterpulse_probability > 0.0
    pool = afterpulse_uniform.shape[0]
    uniform = afterpulse_uniform.tolist() if use_pool else []
    extra = afterpulse_extra_ps.tolist() if use_pool else []
    kept: list[int] = []
    heap: list[int] = []
    pending: list[int] = []
    used = 0
    i, n = 0, len(times)
    while True:
        if i < n and (not heap or times[i] <= heap[0]):
            t = times[i]
            i += 1
        elif heap:
            t = heapq.heappop(heap)
        else:
            break
        if t >= last + dead:
            kept.append(t)
            last = t
            if use_pool:
                if used >= pool:
                    return np.empty(0, np.int64), last, np.empty(0, np.int64), used, False
                if uniform[used] < afterpulse_probability:
                    t_after = t + dead + extra[used]
                    if t_after < horizon:
                        heapq.heappush(heap, t_after)
                    else:
                        pending.append(t_after)
                used += 1
    return np.array(kept, np.int64), last, np.array(pending, np.int64), used, True


def segment_candidates_numpy(carry_ps, photons_ps, n_dark, start_ps, stop_ps, uniform, jitter_sigma_ps, jitter_clip_ps,
                             delay_ps, afterpulse_probability, afterpulse_mean_delay_ps):  # types: ``spad_segment``'s
    """numpy version of ``_kernels._segment_candidates``."""
    n_photon = photons_ps.shape[0]
    photons = photons_ps + delay_ps
    if jitter_sigma_ps > 0.0 and n_photon:
        normal = np.sqrt(-2.0 * np.log(1.0 - uniform[0, :n_photon])) * np.cos(2.0 * np.pi * uniform[1, :n_photon])
        photons = photons + np.clip(np.rint(normal * jitter_sigma_ps).astype(np.int64), -jitter_clip_ps, jitter_clip_ps)
    span = float(stop_ps - start_ps)
    dark = np.minimum(start_ps + (uniform[0, n_photon:n_photon + n_dark] * span).astype(np.int64), stop_ps - 1) + delay_ps
    cand = np.concatenate((carry_ps, photons, dark)).astype(np.int64, copy=False)
    extra = np.zeros(uniform.shape[1], np.int64)
    afterpulse = uniform[2] < afterpulse_probability  # only these are read
    extra[afterpulse] = np.rint(-np.log(1.0 - uniform[3, afterpulse]) * afterpulse_mean_delay_ps).astype(np.int64)
    return cand, extra


def merge_tags_numpy(syncs_ps: np.ndarray, sync_channel: int, det_a_ps: np.ndarray, channel_a: int,
                     det_b_ps: np.ndarray, channel_b: int) -> tuple[np.ndarray, np.ndarray]:
    """numpy version of ``_kernels.merge_tags``: the detections sorted (time, channel), then placed among the syncs."""
    det_t = np.concatenate((det_a_ps, det_b_ps)).astype(np.int64, copy=False)
    det_c = np.concatenate((np.full(det_a_ps.shape[0], channel_a, np.uint8), np.full(det_b_ps.shape[0], channel_b, np.uint8)))
    order = np.lexsort((det_c, det_t))
    det_t, det_c = det_t[order], det_c[order]
    after = det_c > sync_channel  # at equal time after the syncs
    syncs_before = np.where(after, np.searchsorted(syncs_ps, det_t, side="right"),
                            np.searchsorted(syncs_ps, det_t, side="left"))
    at = syncs_before + np.arange(det_t.size)
    n = syncs_ps.shape[0] + det_t.size
    is_det = np.zeros(n, bool)
    is_det[at] = True
    times = np.empty(n, np.int64)
    chans = np.full(n, sync_channel, np.uint8)
    times[at] = det_t
    chans[at] = det_c
    times[~is_det] = syncs_ps
    return times, chans


def qd_photons_numpy(pulses_ps, p_any, uniform, on, p_trap, biexciton_fraction, exciton_given_biexciton, fraction_a,
                     lifetimes_ps):  # types: those of ``qd_photons``
    """numpy version of ``_kernels.qd_photons``: the same photons in the same order (by pulse, biexciton first)."""
    n = pulses_ps.shape[0]
    empty = np.empty(0, np.int64)
    if p_any <= 0.0 or n == 0:
        return empty, empty, 0, 0, 0, True
    pool = uniform.shape[1]
    if p_any < 1.0:
        gaps = np.log(1.0 - uniform[0]) / np.log1p(-p_any)
    else:
        gaps = np.zeros(pool)
    too_far = np.flatnonzero(gaps >= n)  # the kernel stops there (guards the float -> int conversion)
    m = int(too_far[0]) if too_far.size else pool
    pulse = np.cumsum(1 + gaps[:m].astype(np.int64)) - 1
    past = np.flatnonzero(pulse >= n)
    if past.size:
        m = int(past[0])
    elif m == pool:
        return empty, empty, 0, 0, 0, False
    u = uniform[:, :m]
    t = pulses_ps[pulse[:m]]
    is_xx = u[1] < biexciton_fraction
    xx_delay = np.where(is_xx, np.rint(-np.log(1.0 - u[7]) * lifetimes_ps[3]).astype(np.int64), 0)
    has_x = ~is_xx | (u[2] < exciton_given_biexciton)
    kind = np.where(u[3] < p_trap, 1, 0) if on else np.full(m, 2)
    t_x = t + xx_delay + np.rint(-np.log(1.0 - u[6]) * lifetimes_ps[kind]).astype(np.int64)
    # per pulse two slots, biexciton photon first: the kernel's order within each detector
    times = np.column_stack((t + xx_delay, t_x)).ravel()
    present = np.column_stack((is_xx, has_x)).ravel()
    to_a = np.column_stack((u[5] < fraction_a, u[4] < fraction_a)).ravel()
    n_trap = int(np.count_nonzero(has_x & (kind == 1)))
    return (times[present & to_a], times[present & ~to_a], int(np.count_nonzero(has_x)), n_trap,
            int(np.count_nonzero(is_xx)), True)

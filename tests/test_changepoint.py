"""Change points (Watkins & Yang) and level grouping on simulated telegraph streams with known switches."""

from __future__ import annotations

import numpy as np
import pytest

from labctl.analysis.changepoint import (
    CRITICAL_GRID_N,
    change_points,
    critical_value,
    find_levels,
    levels_as_dicts,
    llr_curve,
    null_critical_values,
    select_photons_by_levels,
)
from labctl.analysis.level_groups import agglomerate, group_levels
from labctl.errors import ConfigError


def telegraph(rates_cps, mean_dwell_s, duration_s, seed, taus_ns=None):
    """Poisson photons (int64 ps) switching between states; dwell exponential. Returns (ps, edges_s, states, nanotimes_ps)."""
    rng = np.random.default_rng(seed)
    t, edges, states = 0.0, [0.0], []
    s = int(rng.integers(len(rates_cps)))
    while t < duration_s:
        states.append(s)
        t = min(t + rng.exponential(mean_dwell_s), duration_s)
        edges.append(t)
        s = int((s + rng.integers(1, len(rates_cps))) % len(rates_cps))
    edges_s, states = np.array(edges), np.array(states)
    counts = rng.poisson(np.asarray(rates_cps)[states] * np.diff(edges_s))
    times = np.concatenate([rng.uniform(a, b, c) for a, b, c in zip(edges_s[:-1], edges_s[1:], counts)])
    order = np.argsort(times)
    state_of = np.repeat(states, counts)[order]
    nanotimes = None
    if taus_ns is not None:
        nanotimes = np.rint(rng.exponential(np.asarray(taus_ns)[state_of] * 1e3)).astype(np.int64)
    return np.rint(times[order] * 1e12).astype(np.int64) + 10**9, edges_s + 1e-3, states, nanotimes


def score(levels, edges_s, tol_s=1e-3, long_s=0.01):
    """(found fraction of switches between levels lasting > long_s, false fraction of detected changes)."""
    switches = edges_s[1:-1]
    dwell = np.diff(edges_s)
    long_both = (dwell[:-1] > long_s) & (dwell[1:] > long_s)
    detected = np.array([lv.stop_s for lv in levels[:-1]]) + 1e-3  # origin: first photon ~ 1 ms
    found = np.array([np.any(np.abs(detected - s) <= tol_s) for s in switches[long_both]])
    false = np.array([not np.any(np.abs(switches - d) <= tol_s) for d in detected])
    return float(found.mean()), float(false.mean())


@pytest.mark.parametrize("rates, seed", [((40e3, 4e3), 1), ((40e3, 15e3, 3e3), 2), ((20e3, 2e3), 3)])
def test_telegraph_switches_found_within_1ms_few_false_and_states_recovered(rates, seed):
    ph, edges_s, states, _ = telegraph(rates, 0.05, 10.0, seed)
    levels = find_levels(ph, confidence=0.95, origin_ps=10**9)
    found, false = score(levels, edges_s)
    assert found >= 0.95, found
    assert false <= 0.05, false
    assert len({lv.group for lv in levels}) == len(rates)
    by_group = {g: np.median([lv.intensity_cps for lv in levels if lv.group == g]) for g in range(len(rates))}
    assert np.allclose(sorted(by_group.values()), sorted(rates), rtol=0.05), by_group


def test_level_lifetimes_and_selection_mask():
    ph, edges_s, states, nanotimes = telegraph((40e3, 4e3), 0.05, 5.0, 4, taus_ns=(20.0, 50.0))
    levels = find_levels(ph, nanotimes_ps=nanotimes, irf_offset_ps=0.0)
    bright = [lv for lv in levels if lv.group == 1 and lv.photons > 1000]
    dim = [lv for lv in levels if lv.group == 0 and lv.photons > 200]
    assert abs(np.average([lv.lifetime_ns for lv in bright], weights=[lv.photons for lv in bright]) - 20.0) < 0.6
    assert abs(np.average([lv.lifetime_ns for lv in dim], weights=[lv.photons for lv in dim]) - 50.0) < 2.5
    mask = select_photons_by_levels(ph, levels, {1})
    assert mask.dtype == bool and mask.shape == ph.shape
    assert int(mask.sum()) == sum(lv.photons for lv in levels if lv.group == 1)
    assert not (mask & select_photons_by_levels(ph, levels, [0])).any()
    assert int((mask | select_photons_by_levels(ph, levels, [0])).sum()) == len(ph)
    table = levels_as_dicts(levels)
    assert list(table[0]) == ["start_s", "stop_s", "intensity_cps", "lifetime_ns", "group"]
    assert table[0]["start_s"] == 0.0 and table[-1]["stop_s"] == pytest.approx((ph[-1] - ph[0]) * 1e-12)


def test_no_change_in_a_constant_stream_at_most_alpha():
    """A Poisson stream without change: the windows' tests split it rarely (Type-I error per test ~ 5 %)."""
    rng = np.random.default_rng(5)
    splits = 0
    for _ in range(40):
        ph = np.cumsum(rng.exponential(1e7, 2000)).astype(np.int64)  # 100 kcps, 20 ms, one window
        splits += len(change_points(ph, confidence=0.95)) > 0
    assert splits <= 6  # binomial(40, 0.05): P(> 6) < 1 %


def test_llr_curve_is_the_watkins_yang_formula():
    t = np.array([0, 3, 4, 10, 11, 30], np.int64)
    n = 5
    expected = [2 * (k * np.log(k / (t[k] / 30)) + (n - k) * np.log((n - k) / (1 - t[k] / 30)) - n * np.log(n))
                for k in range(1, n)]
    np.testing.assert_allclose(llr_curve(t), expected, rtol=1e-12)


@pytest.mark.parametrize("n, confidence", [(99, 0.95), (1024, 0.9), (16, 0.99), (1500, 0.95), (32768, 0.95)])
def test_tabulated_critical_values_agree_with_a_new_simulation(n, confidence):
    """Grid points, an interpolated N and one extrapolated beyond the grid (8192)."""
    assert (n in CRITICAL_GRID_N) == (n in (99, 1024, 16))
    fresh = null_critical_values(n, (confidence,), 8000 if n < 10_000 else 2000, np.random.default_rng(n))[0]
    assert abs(float(critical_value(n, confidence)) - fresh) < 0.06 * fresh


def test_bad_confidence_is_refused_with_the_allowed_range():
    with pytest.raises(ConfigError, match="confidence"):
        find_levels(np.arange(10, dtype=np.int64), confidence=95)


@pytest.mark.parametrize("seed", range(10, 20))
def test_telegraph_campaign_over_seeds(seed):
    rates = ((40e3, 4e3), (40e3, 15e3, 3e3), (20e3, 2e3))[seed % 3]
    ph, edges_s, _, _ = telegraph(rates, 0.05, 20.0, seed)
    levels = find_levels(ph, confidence=0.95, origin_ps=10**9)
    found, false = score(levels, edges_s)
    assert found >= 0.95 and false <= 0.05, (found, false)
    assert len({lv.group for lv in levels}) == len(rates)


def test_higher_confidence_finds_no_more_changes():
    ph, _, _, _ = telegraph((30e3, 20e3), 0.05, 3.0, 6)  # low contrast: the confidence matters
    counts = [len(change_points(ph, confidence=c)) for c in (0.69, 0.90, 0.95, 0.99)]
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1], counts


def _agglomerate_reference(n, t, max_groups):
    """Plain numpy oracle: merge the cheapest neighbouring pair in intensity order, one merge per pass."""
    order = np.argsort(n / t, kind="stable")
    gn, gt, members = list(n[order]), list(t[order]), [[int(i)] for i in order]

    def ll(a, b):
        return a * np.log(a / b)

    out = {}
    while True:
        if len(gn) <= max_groups:
            labels = np.empty(len(n), np.int64)
            for g, m in enumerate(members):
                labels[m] = g
            out[len(gn)] = labels
        if len(gn) == 1:
            return out
        an, at = np.array(gn), np.array(gt)
        cost = ll(an[:-1], at[:-1]) + ll(an[1:], at[1:]) - ll(an[:-1] + an[1:], at[:-1] + at[1:])
        i = int(np.argmin(cost))
        gn[i:i + 2], gt[i:i + 2], members[i:i + 2] = [gn[i] + gn[i + 1]], [gt[i] + gt[i + 1]], [members[i] + members[i + 1]]


def test_heap_agglomeration_equals_the_plain_oracle():
    rng = np.random.default_rng(7)
    t = rng.exponential(0.05, 600) + 1e-3
    n = rng.poisson(np.where(rng.random(600) < 0.5, 4e3, 4e4) * t) + 1.0
    fast, slow = agglomerate(n, t, 6), _agglomerate_reference(n, t, 6)
    assert sorted(fast) == sorted(slow) == [1, 2, 3, 4, 5, 6]
    for g in slow:
        np.testing.assert_array_equal(fast[g], slow[g])


def test_thousands_of_levels_with_mixed_outliers_keep_their_two_states():
    """Many levels: the BIC alone would split states on a few straddling levels and on the
    segmentation's extra spread; the state-size and separation rules keep the two."""
    rng = np.random.default_rng(8)
    t = rng.exponential(0.05, 8000) + 0.01
    state = rng.random(8000) < 0.5
    rate = np.where(state, 40e3, 4e3) * rng.normal(1.0, 0.01, 8000)  # 1 % extra spread
    rate[:40] = 30e3  # levels straddling a missed change
    n = rng.poisson(rate * t)
    groups = group_levels(n, t)
    assert set(groups.tolist()) == {0, 1}
    assert np.array_equal(groups[40:], state[40:].astype(np.int64))

"""labctl analyze's shortcuts give what the long way gives: T3 blocks already in time order, files with
more detectors than analysed, the fits on one BLAS thread (issue 13, "Faster start and analysis")."""

from __future__ import annotations

import numpy as np
import pytest

from labctl.analysis.analyze_parts import t3_photon_times
from labctl.analysis.analyze import AnalyzeOptions, analyze_file
from labctl.blocks import PhotonBlock
from tests.photon_hdf5_files import write_ps_h5py
from tests.test_analyze import brute_force_g2

PERIOD_PS = 1_000_000


def _t3_blocks(rng: np.random.Generator, n: int, cuts: int, late_fraction: float) -> list[PhotonBlock]:
    """T3 photons as blocks of (sync time, detector, nanotime) in a card's record order (by sync);
    ``late_fraction`` of the nanotimes exceed the period (photon time past the next sync)."""
    sync = np.sort(rng.integers(0, 2_000, n)) * PERIOD_PS
    nano = rng.integers(0, PERIOD_PS, n)
    late = rng.random(n) < late_fraction
    nano[late] += rng.integers(PERIOD_PS, 3 * PERIOD_PS, int(late.sum()))
    order = np.lexsort((nano, sync))
    sync, nano = sync[order].astype(np.int64), nano[order].astype(np.int32)
    det = rng.integers(1, 3, n).astype(np.uint8)
    bounds = np.unique(np.concatenate([[0, n], rng.integers(0, n, cuts)]))
    return [PhotonBlock(sync[a:b], det[a:b], nano[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


@pytest.mark.parametrize("late_fraction", [0.0, 0.05])
@pytest.mark.parametrize("seed", range(4))
def test_t3_photon_times_equal_one_stable_sort_of_the_whole_recording(seed, late_fraction):
    rng = np.random.default_rng(seed)
    blocks = _t3_blocks(rng, 3_000, 7, late_fraction)
    out = list(t3_photon_times(blocks))
    ts = np.concatenate([b.timestamps + np.maximum(b.nanotimes, 0) for b in blocks])
    det = np.concatenate([b.detectors for b in blocks])
    nt = np.concatenate([b.nanotimes for b in blocks])
    order = np.argsort(ts, kind="stable")
    np.testing.assert_array_equal(np.concatenate([b.timestamps for b in out]), ts[order])
    np.testing.assert_array_equal(np.concatenate([b.detectors for b in out]), det[order])
    np.testing.assert_array_equal(np.concatenate([b.nanotimes for b in out]), nt[order])


def test_photons_of_other_detectors_are_left_out_and_counted(tmp_path):
    rng = np.random.default_rng(5)
    n = 40_000
    pulse = np.sort(rng.integers(0, 200_000, n))
    nano = (2_000 + rng.exponential(20_000, n)).astype(np.int64) % PERIOD_PS
    ts = pulse * PERIOD_PS + nano
    order = np.argsort(ts, kind="stable")
    ts, nano = ts[order], nano[order]
    det = rng.choice(np.array([0, 3, 7], np.uint8), n, p=[0.45, 0.45, 0.1])
    path = tmp_path / "three.h5"
    write_ps_h5py(path, ts, det, nanotimes_ps=nano, period_ps=PERIOD_PS)
    options = AnalyzeOptions(detectors=(3, 0), g2_bin_ps=10_000, g2_range_ps=3_000_000, chunk_photons=4_096)
    result = analyze_file(path, options)
    assert result["left_out"]["other_detectors"] == int(np.count_nonzero(det == 7))
    assert result["photons"] == {"3": int(np.count_nonzero(det == 3)), "0": int(np.count_nonzero(det == 0))}
    expected = brute_force_g2(ts, det, 3, 0, 10_000, 3_000_000)
    np.testing.assert_array_equal(np.asarray(result["g2"]["counts"]), expected)


def test_the_decay_fits_run_on_one_blas_thread(tmp_path, monkeypatch):
    from threadpoolctl import threadpool_info

    import labctl.analysis.fit as fit_module

    rng = np.random.default_rng(1)
    n = 20_000
    ts = np.sort(rng.integers(0, 20_000, n)) * PERIOD_PS + (2_000 + rng.exponential(20_000, n)).astype(np.int64)
    ts.sort()
    nano = ts % PERIOD_PS
    path = tmp_path / "fit.h5"
    write_ps_h5py(path, ts, rng.integers(0, 2, n).astype(np.uint8), nanotimes_ps=nano, period_ps=PERIOD_PS)
    seen: list[set[int]] = []
    real = fit_module.fit_decay

    def watched(*args, **kwargs):
        seen.append({int(i["num_threads"]) for i in threadpool_info() if i.get("user_api") == "blas"})
        return real(*args, **kwargs)

    monkeypatch.setattr(fit_module, "fit_decay", watched)
    result = analyze_file(path, AnalyzeOptions())
    assert result["lifetime"]["fit"] is not None
    assert seen == [{1}]


def test_prefetched_items_come_in_order_and_a_producer_error_at_its_place():
    from labctl.analysis.analyze import prefetched

    assert list(prefetched(iter(range(100)), depth=2)) == list(range(100))

    def failing():
        yield from range(3)
        raise ValueError("block 3 of the file is unreadable")

    got = []
    with pytest.raises(ValueError, match="block 3"):
        for item in prefetched(failing()):
            got.append(item)
    assert got == [0, 1, 2]
    early = prefetched(iter(range(10**6)), depth=2)
    assert next(early) == 0
    early.close()  # leaving early ends the producer (close joins it)

"""labctl analyze on recordings from other setups (issue 10, "Found" 1-5).

Every file here is made the way other labs' tools write them (tests/photon_hdf5_files.py:
h5py from the Photon-HDF5 spec, or phconvert), from photon streams simulated in the test
with known truth: a pulsed single emitter on an HBT pair with a cable delay, decays at
80.03, 76.2 and 3 MHz, two detectors with different IRF offsets, one detector, a broken
sync, a rounded acquisition duration, a blinking trace.
"""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

from labctl.analysis.analyze import AnalyzeOptions, analyze_file, format_result
from labctl.storage import PhotonHDF5Reader
from tests.photon_hdf5_files import pulsed_emitter, to_t3, write_ps_h5py, write_t3_h5py, write_t3_phconvert

PERIOD_76_PS = 1e12 / 76.2e6  # 13123.36 ps: PicoHarp-like, not a whole number of ps


def _t3_file(path, photons, tcspc_unit_ps: float, *, writer=write_t3_h5py, **kw) -> None:
    ticks, nt = to_t3(photons, tcspc_unit_ps)
    num_bins = int(np.ceil(photons.period_ps / tcspc_unit_ps))
    duration = kw.pop("acquisition_duration_s", (ticks[-1] + 1) * photons.period_ps * 1e-12)
    writer(path, ticks, photons.detectors, nt, sync_period_s=photons.period_ps * 1e-12,
           tcspc_unit_s=tcspc_unit_ps * 1e-12, tcspc_num_bins=num_bins, acquisition_duration_s=duration, **kw)


# ----------------------------------------------------------------------------- 4: T3 files


def test_t3_file_from_phconvert_reads_sync_ticks_and_tcspc_bins_to_ps(tmp_path):
    rng = np.random.default_rng(1)
    photons = pulsed_emitter(rng, n_pulses=200_000, period_ps=PERIOD_76_PS, p_photon=0.05, tau_ps=3000,
                             irf_offset_ps={0: 2000, 1: 2000})
    path = tmp_path / "picoharp_t3.h5"
    _t3_file(path, photons, 4.0, writer=write_t3_phconvert)
    ticks, nt = to_t3(photons, 4.0)
    with PhotonHDF5Reader(path) as r:
        blocks = list(r.iter_blocks(7_777))
        unit_ps = Fraction(r.timestamps_unit_s) * 10**12  # the stored float64, exactly
    ts = np.concatenate([b.timestamps for b in blocks])
    expected = [round(int(k) * unit_ps) for k in ticks[::997]]
    assert ts[::997].tolist() == expected
    np.testing.assert_array_equal(np.concatenate([b.nanotimes for b in blocks]), nt.astype(np.int64) * 4)


@pytest.mark.parametrize("unit_s, unit_ps", [(16e-12, 16), (8.0e-12, 8), (2.5e-11, 25)])
def test_t3_nanotime_units_become_ps(tmp_path, unit_s, unit_ps):
    ticks = np.array([0, 5, 5, 9_000_000_000], np.int64)
    nt = np.array([0, 1, 700, 65535], np.uint16)
    path = tmp_path / "t3.h5"
    write_t3_h5py(path, ticks, np.array([0, 1, 0, 1]), nt, sync_period_s=12.5e-9, tcspc_unit_s=unit_s,
                  tcspc_num_bins=int(12500 // unit_ps))
    with PhotonHDF5Reader(path) as r:
        block = next(r.iter_blocks())
    assert block.timestamps.tolist() == [0, 62_500, 62_500, 9_000_000_000 * 12_500]
    assert block.nanotimes.tolist() == [0, unit_ps, 700 * unit_ps, 65535 * unit_ps]


def test_huge_sync_tick_counts_keep_picosecond_precision(tmp_path):
    # 4 hours at 76.2 MHz: 1.1e12 syncs; float64 ticks x 13123.36 would be off by several ps
    ticks = np.array([0, 1, 10**9 + 7, 1_097_280_000_000, 1_097_280_000_001], np.int64)
    path = tmp_path / "long.h5"
    write_t3_h5py(path, ticks, np.zeros(5, np.uint8), np.zeros(5, np.uint16), sync_period_s=PERIOD_76_PS * 1e-12,
                  tcspc_unit_s=4e-12, tcspc_num_bins=3281)
    with PhotonHDF5Reader(path) as r:
        ts = next(r.iter_blocks()).timestamps
        unit_ps = Fraction(r.timestamps_unit_s) * 10**12
    assert ts.tolist() == [round(int(k) * unit_ps) for k in ticks]


# ----------------------------------------------------------------------------- 1: g2 with a cable delay


def _hbt(seed: int = 2, *, single_photon: bool = True, n_pulses: int = 1_600_000, p_photon: float = 0.06):
    """A pulsed single emitter at 80 MHz on an HBT pair; detector 1's path 7.5 periods longer."""
    rng = np.random.default_rng(seed)
    period = 12_500.0
    photons = pulsed_emitter(rng, n_pulses=n_pulses, period_ps=period, p_photon=p_photon, tau_ps=1_000,
                             irf_offset_ps={0: 1_500, 1: 1_500}, cable_delay_ps={1: 7.5 * period},
                             background_cps=2_000, single_photon=single_photon)
    return photons, 7.5 * period


def _oracle_g2_zero(photons, delay_ps: float, range_ps: float) -> float:
    """Centre area / mean side area with windows +-P/2 around delay + k P, by brute force on the photon times."""
    t, d, period = photons.times_ps, photons.detectors, photons.period_ps
    a, b = t[d == 0], t[d == 1] - delay_ps
    k_max = int((2 * range_ps - period) // (2 * period))
    lo = np.searchsorted(a, b - (k_max + 0.5) * period)
    hi = np.searchsorted(a, b + (k_max + 0.5) * period)
    lags = np.concatenate([bb - a[i:j] for bb, i, j in zip(b, lo, hi)])
    k = np.floor(lags / period + 0.5).astype(int)
    areas = np.bincount(k + k_max, minlength=2 * k_max + 1)
    side = np.delete(areas, k_max)
    return areas[k_max] / side.mean()


@pytest.mark.parametrize("layout", ["t3", "t2"])
def test_g2_of_an_antibunched_hbt_pair_with_a_cable_delay(tmp_path, layout):
    photons, delay = _hbt()
    path = tmp_path / f"hbt_{layout}.h5"
    if layout == "t3":  # timestamps in sync ticks: photon time = sync time + nanotime
        _t3_file(path, photons, 4.0)
    else:  # ps timestamps, no nanotimes, no laser rate: the period comes from the comb
        write_ps_h5py(path, np.rint(photons.times_ps).astype(np.int64), photons.detectors,
                      period_ps=photons.period_ps, laser_rate=False)
    truth = _oracle_g2_zero(photons, delay, 3_500_000 - 94_000)
    assert truth < 0.15  # a single emitter (background only in the zero peak)

    given = analyze_file(path, AnalyzeOptions(g2_delay_ps=int(delay)))
    g2 = given["g2"]
    assert g2["delay_source"].startswith("given") and g2["lag_offset_ps"] == int(delay)
    assert abs(g2["period_ps"] - 12_500) <= 5 and g2["period_source"].startswith("file" if layout == "t3" else "comb")
    assert g2["g2_zero"] == pytest.approx(_oracle_g2_zero(photons, delay, 3_500_000), abs=3 * g2["g2_zero_err"])
    assert g2["g2_zero"] < 0.15

    found = analyze_file(path, AnalyzeOptions())["g2"]  # no delay given: never a silently wrong number
    assert found["g2_zero"] is not None, found["delay_source"]
    assert found["delay_source"].startswith("found") and abs(found["delay_ps"] - delay) <= 1000
    assert found["g2_zero"] == pytest.approx(truth, abs=3 * found["g2_zero_err"])


def test_g2_without_a_located_zero_peak_is_null_with_the_suggested_delay(tmp_path, capsys):
    # few photons: the missing tooth does not stand out; the comb is half a period off-centre
    photons, delay = _hbt(seed=5, n_pulses=100_000, p_photon=0.02)
    path = tmp_path / "weak.h5"
    _t3_file(path, photons, 16.0)
    result = analyze_file(path, AnalyzeOptions())
    g2 = result["g2"]
    assert g2["g2_zero"] is None and g2["g2_zero_err"] is None
    assert g2["delay_source"].startswith("not located: the comb is off-centre")
    phase = g2["zero_peak"]["comb_phase_ps"]  # the cable delay modulo the period: 7.5 P = P / 2 (mod P)
    assert abs(abs(phase) - 6250) < 300
    assert any("--g2-delay-ps" in w and f"{round(phase)} + k x 12500" in w for w in result["warnings"])
    assert "g2(0)       -" in format_result(result)


# ----------------------------------------------------------------------------- 2: lifetime at any period


@pytest.mark.parametrize("rate_hz, tau_ps, tcspc_unit_ps", [
    (80.0256e6, 2_000, 16.0),   # 12496 ps: 80 MHz as a real laser runs, not 125 bins of 100 ps
    (76.2e6, 3_000, 4.0),       # PicoHarp: 13123.36 ps, 4 ps TCSPC bins
    (3e6, 40_000, 16.0),        # 333333.3 ps
])
def test_lifetime_fit_for_any_period_with_default_bins(tmp_path, rate_hz, tau_ps, tcspc_unit_ps):
    rng = np.random.default_rng(7)
    period = 1e12 / rate_hz
    photons = pulsed_emitter(rng, n_pulses=int(4e6 * 12_500 / period) + 200_000, period_ps=period, p_photon=0.05,
                             tau_ps=tau_ps, irf_offset_ps={0: 1_200, 1: 1_200}, background_cps=500)
    path = tmp_path / "decay.h5"
    _t3_file(path, photons, tcspc_unit_ps)
    result = analyze_file(path, AnalyzeOptions(g2_range_ps=1_000_000))
    lifetime = result["lifetime"]
    fit = lifetime["fit"]
    assert not fit.get("error"), fit.get("error")
    assert fit["tau_ns"][0] == pytest.approx(tau_ps / 1e3, rel=0.02)
    assert fit["reduced_chi2"] < 1.3 and lifetime["reduced_chi2"] == fit["reduced_chi2"]
    assert lifetime["bin_edges_ps"][-1] == round(period)
    # default 100 ps bins, in whole TCSPC units: 25 x 4 ps, 6 x 16 ps (100 ps of 16 ps units would alias)
    assert lifetime["bin_edges_ps"][1] == lifetime["bin_width_ps"] == (100 if tcspc_unit_ps == 4.0 else 96)
    assert sum(lifetime["counts"]) + sum(lifetime["left_out"].values()) == photons.times_ps.size


# ----------------------------------------------------------------------------- 3: detectors' IRF offsets


def _ps_file_with_nanotimes(path, photons) -> None:
    """ps timestamps (photon times) and ps nanotimes (delay after the last pulse), as labctl's importers write."""
    t = np.rint(photons.times_ps).astype(np.int64)
    write_ps_h5py(path, t, photons.detectors, nanotimes_ps=t % int(photons.period_ps), period_ps=photons.period_ps)


def test_two_detectors_with_irf_offsets_1_ns_apart_give_one_lifetime(tmp_path):
    rng = np.random.default_rng(11)
    photons = pulsed_emitter(rng, n_pulses=3_000_000, period_ps=12_500.0, p_photon=0.06, tau_ps=2_000,
                             irf_offset_ps={0: 1_500, 1: 2_500}, background_cps=300)
    path = tmp_path / "two_irfs.h5"
    _ps_file_with_nanotimes(path, photons)
    summed = analyze_file(path, AnalyzeOptions(g2_range_ps=500_000))["lifetime"]["fit"]
    assert (summed["tau_ns"][0], summed["reduced_chi2"]) == (pytest.approx(2.0, rel=0.02), pytest.approx(1.0, abs=0.3))
    result = analyze_file(path, AnalyzeOptions(per_detector_fits=True, g2_range_ps=500_000))
    lifetime = result["lifetime"]
    assert lifetime["fit"]["tau_ns"] == summed["tau_ns"]
    shifts = lifetime["detector_shifts_ps"]
    assert shifts["1"] - shifts["0"] == 1000  # whole 100 ps bins
    for det in ("0", "1"):
        per = lifetime["detector_fits"][det]
        assert per["tau_ns"][0] == pytest.approx(2.0, rel=0.03) and per["reduced_chi2"] < 1.3
    text = format_result(result)
    assert "reduced chi2" in text and "detector 1: mono" in text


# ----------------------------------------------------------------------------- 5: one detector, left-out photons,
# duration, ON threshold


def test_one_detector_gives_lifetime_trace_and_flid_without_g2(tmp_path):
    rng = np.random.default_rng(3)
    photons = pulsed_emitter(rng, n_pulses=2_000_000, period_ps=12_500.0, p_photon=0.05, tau_ps=2_000,
                             irf_offset_ps={2: 1_500})
    path = tmp_path / "one.h5"
    _ps_file_with_nanotimes(path, photons)
    result = analyze_file(path, AnalyzeOptions())
    assert result["g2"] is None and "g(2) needs two" in result["g2_note"]
    assert result["detectors"] == [2] and result["photons"] == {"2": photons.times_ps.size}
    assert result["lifetime"]["fit"]["tau_ns"][0] == pytest.approx(2.0, rel=0.02)
    assert 0.9 * photons.times_ps.size < sum(result["trace"]["counts"]) <= photons.times_ps.size
    assert np.sum(result["flid"]["counts"]) > 0
    text = format_result(result)
    assert "g2(0)       -" in text and "±" not in text.split("g2(0)")[1].split("\n")[0]
    out = tmp_path / "one.json"
    proc = subprocess.run([sys.executable, "-m", "labctl.cli", "analyze", str(path), "--detectors", "2",
                           "--json", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["g2"] is None


def test_nanotimes_outside_the_period_are_counted_and_warned(tmp_path):
    # a broken sync: the TCSPC card saw only every 32nd sync, nanotimes run over 32 periods
    rng = np.random.default_rng(4)
    period = 12_500.0
    photons = pulsed_emitter(rng, n_pulses=1_000_000, period_ps=period, p_photon=0.05, tau_ps=2_000,
                             irf_offset_ps={0: 1_500, 1: 1_500})
    broken = type(photons)(photons.times_ps, photons.detectors, 32 * period)
    ticks, nt = to_t3(broken, 16.0)
    path = tmp_path / "broken_sync.h5"
    write_t3_h5py(path, ticks * 32, photons.detectors, nt, sync_period_s=period * 1e-12, tcspc_unit_s=16e-12,
                  tcspc_num_bins=4096)
    outside = int(np.count_nonzero(nt.astype(np.int64) * 16 >= 12_500))
    assert outside > 0.9 * nt.size
    result = analyze_file(path, AnalyzeOptions(g2_range_ps=200_000))
    assert result["lifetime"]["left_out"] == {"no_nanotime": 0, "outside_period": outside}
    assert any("left out of the lifetime view" in w for w in result["warnings"])


def test_rounded_acquisition_duration_is_replaced_by_the_tag_span(tmp_path):
    rng = np.random.default_rng(6)
    photons = pulsed_emitter(rng, n_pulses=8_000_000, period_ps=12_500.0, p_photon=0.01, tau_ps=2_000,
                             irf_offset_ps={0: 1_500, 1: 1_500})
    span_s = (photons.times_ps[-1] - photons.times_ps[0]) * 1e-12
    path = tmp_path / "rounded.h5"
    _t3_file(path, photons, 16.0, acquisition_duration_s=round(span_s * 0.954, 3))  # a writer's -4.6 %
    result = analyze_file(path, AnalyzeOptions(g2_range_ps=200_000))
    assert result["duration_source"].startswith("tags") and result["duration_s"] == pytest.approx(span_s, rel=1e-3)
    n0 = result["photons"]["0"]
    assert result["rates_cps"]["0"] == pytest.approx(n0 / span_s, rel=1e-3)
    good = tmp_path / "good.h5"
    _t3_file(good, photons, 16.0, acquisition_duration_s=span_s * 1.002)
    assert analyze_file(good, AnalyzeOptions(g2_range_ps=200_000))["duration_source"].startswith("file")


def test_on_threshold_derived_from_a_blinking_trace(tmp_path):
    rng = np.random.default_rng(8)
    seconds, bin_s = 20.0, 0.01
    # ON: 3000 counts/s (30 per 10 ms bin), OFF: 200 counts/s (2 per bin); switching every ~0.2 s
    edges = np.cumsum(rng.exponential(0.2, 200))
    edges = edges[edges < seconds]
    times = []
    for i, (a, b) in enumerate(zip(np.r_[0, edges], np.r_[edges, seconds])):
        rate = 3000 if i % 2 == 0 else 200
        times.append(rng.uniform(a, b, rng.poisson(rate * (b - a))))
    t_ps = np.sort(np.concatenate(times) * 1e12).astype(np.int64)
    det = rng.integers(0, 2, t_ps.size).astype(np.uint8)
    path = tmp_path / "blinking.h5"
    write_ps_h5py(path, t_ps, det, acquisition_duration_s=seconds)
    trace = analyze_file(path, AnalyzeOptions(g2_range_ps=100_000))["trace"]
    assert trace["on_threshold_source"].startswith("from the data")
    assert 5 < trace["on_threshold"] < 25  # between the OFF (2) and ON (30) levels
    on_time = sum(b - a for i, (a, b) in enumerate(zip(np.r_[0, edges], np.r_[edges, seconds])) if i % 2 == 0)
    assert trace["on_fraction"] == pytest.approx(on_time / seconds, abs=0.03)
    given = analyze_file(path, AnalyzeOptions(g2_range_ps=100_000, on_threshold=12))["trace"]
    assert given["on_threshold"] == 12 and given["on_threshold_source"].startswith("given")


# ----------------------------------------------------------------------------- the parts, exactly


def test_fit_integrates_a_partial_last_bin_over_its_true_edges():
    from labctl.analysis.decay_shapes import gaussian_irf_shape
    from labctl.analysis.fit import fit_decay

    period = 12_496.0  # 124 bins of 100 ps and one of 96 ps
    edges = np.r_[np.arange(0, 12_401, 100), period]
    widths = np.diff(edges)
    expected = 2e6 * gaussian_irf_shape(edges, 2_000.0, 1_500.0, 40.0, period) + 3.0 * widths / 100
    fit = fit_decay(expected, edges, period_ps=12_496)  # noise-free expected counts: the exact answer
    assert fit.tau_ns[0] == pytest.approx(2.0, rel=1e-4) and fit.background_per_bin == pytest.approx(3.0, rel=1e-3)
    with pytest.raises(ValueError, match="the last bin may be shorter"):
        fit_decay(expected, np.r_[np.arange(0, 12_401, 100), 12_520.0], period_ps=12_520)


def test_shift_periodic_moves_counts_circularly_and_keeps_them():
    from labctl.analysis.lifetime_align import shift_periodic

    edges = np.array([0, 10, 20, 30, 35])  # a period of 35 ps: the last bin is half a bin
    counts = np.array([1, 2, 3, 4])
    assert shift_periodic(counts, edges, 0).tolist() == [1, 2, 3, 4]
    # bin 2 <- [30, 40) = old bin 3 (4) + half of old bin 0 wrapped round (0.5, rounded up); bin 3 <- [40, 45)
    assert shift_periodic(counts, edges, 10).tolist() == [2, 3, 5, 0]
    # bin 0 <- [-10, 0) = [25, 35): half of old bin 2 (1.5) + old bin 3 (4) = 5.5; bin 3 <- [20, 25): 1.5;
    # the rounded cumulative counts (-5.5 -> -5, 4.5 -> 5) give 5 and 2, and keep the total
    assert shift_periodic(counts, edges, -10).tolist() == [5, 1, 2, 2]


def test_period_from_sync_times_of_a_76_mhz_laser():
    from labctl.analysis.g2_comb import period_from_sync_times

    rng = np.random.default_rng(0)
    pulses = np.sort(rng.choice(10**7, 5000, replace=False))
    sync = np.rint(pulses * PERIOD_76_PS).astype(np.int64)
    assert period_from_sync_times(sync) == pytest.approx(PERIOD_76_PS, abs=0.01)
    assert period_from_sync_times(np.sort(rng.integers(0, 10**12, 5000))) is None  # not on a sync grid


def test_cli_new_options_and_their_errors(tmp_path):
    photons, delay = _hbt(n_pulses=400_000)
    path = tmp_path / "hbt.h5"
    _t3_file(path, photons, 4.0)
    out = tmp_path / "r.json"
    cmd = [sys.executable, "-m", "labctl.cli", "analyze", str(path)]
    proc = subprocess.run(cmd + ["--g2-delay-ps", str(int(delay)), "--laser-period-ps", "12500", "--per-detector-fits",
                                 "--json", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert data["g2"]["delay_source"].startswith("given") and data["g2"]["period_source"].startswith("given")
    assert set(data["lifetime"]["detector_fits"]) == {"0", "1"} and "reduced chi2" in proc.stdout
    for args, message in ((["--laser-period-ps", "0"], "--laser-period-ps = 0"),
                          (["--detectors", "0", "1", "2"], "--detectors = [0, 1, 2]")):
        proc = subprocess.run(cmd + args, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_results_do_not_depend_on_the_chunk_size_of_a_t3_file(tmp_path):
    photons, delay = _hbt(n_pulses=300_000)
    path = tmp_path / "hbt.h5"
    _t3_file(path, photons, 4.0)
    big = analyze_file(path, AnalyzeOptions(g2_delay_ps=int(delay)))
    small = analyze_file(path, AnalyzeOptions(g2_delay_ps=int(delay), chunk_photons=777))
    assert big["g2"]["counts"] == small["g2"]["counts"] and sum(big["g2"]["counts"]) > 10_000
    assert big["lifetime"]["detector_counts"] == small["lifetime"]["detector_counts"]
    assert big["trace"]["detector_counts"] == small["trace"]["detector_counts"]
    assert big["photons"] == small["photons"] and big["duration_s"] == small["duration_s"]
    # the FLID subtracts each detector's IRF offset: its mean lifetime is the decay's (1 ns), not 1.5 ns later
    mean = np.nanmean(np.array(big["flid"]["mean_lifetime_ns"], dtype=float))
    assert mean == pytest.approx(1.0, abs=0.1)


def test_a_period_of_fewer_than_8_lifetime_bins_reports_the_fit_error_instead_of_failing(tmp_path):
    photons, delay = _hbt(n_pulses=200_000)
    path = tmp_path / "hbt.h5"
    _t3_file(path, photons, 4.0)
    result = analyze_file(path, AnalyzeOptions(lifetime_bin_ps=2000, g2_delay_ps=int(delay)))
    assert len(result["lifetime"]["counts"]) == 7 and "must be at least 8" in result["lifetime"]["fit"]["error"]
    assert result["lifetime"]["detector_shifts_ps"] == {"0": 0, "1": 0}


def test_a_listed_detector_without_photons_gives_no_g2_number(tmp_path):
    import h5py

    rng = np.random.default_rng(9)
    photons = pulsed_emitter(rng, n_pulses=1_000_000, period_ps=12_500.0, p_photon=0.05, tau_ps=2_000,
                             irf_offset_ps={0: 1_500})
    path = tmp_path / "one_of_two.h5"
    _ps_file_with_nanotimes(path, photons)
    with h5py.File(path, "r+") as f:
        f["setup/detectors/id"] = np.array([0, 1])  # the setup lists two detectors; photons came on one
    result = analyze_file(path, AnalyzeOptions(g2_range_ps=500_000))
    assert result["g2"]["g2_zero"] is None and result["g2"]["delay_source"] == "none: detector 1 has no photons"
    assert any("detector 1 has no photons" in w for w in result["warnings"])
    assert "±" not in format_result(result).split("g2(0)")[1].split("\n")[0]


def test_a_fit_that_does_not_describe_the_data_says_so(tmp_path):
    rng = np.random.default_rng(12)
    fast = pulsed_emitter(rng, n_pulses=2_000_000, period_ps=25_000.0, p_photon=0.05, tau_ps=800,
                          irf_offset_ps={0: 1_500, 1: 1_500})
    slow = pulsed_emitter(rng, n_pulses=2_000_000, period_ps=25_000.0, p_photon=0.05, tau_ps=6_000,
                          irf_offset_ps={0: 1_500, 1: 1_500})
    t = np.concatenate([fast.times_ps, slow.times_ps])
    order = np.argsort(t, kind="stable")
    photons = type(fast)(t[order], np.concatenate([fast.detectors, slow.detectors])[order], 25_000.0)
    path = tmp_path / "bi.h5"
    _ps_file_with_nanotimes(path, photons)
    mono = analyze_file(path, AnalyzeOptions(g2_range_ps=500_000))
    assert mono["lifetime"]["reduced_chi2"] > 2
    assert any("reduced chi2" in w and "does not describe the data" in w for w in mono["warnings"])
    bi = analyze_file(path, AnalyzeOptions(g2_range_ps=500_000, fit="bi"))
    assert bi["lifetime"]["reduced_chi2"] < 1.3 and not any("reduced chi2" in w for w in bi["warnings"])
    assert sorted(bi["lifetime"]["fit"]["tau_ns"]) == [pytest.approx(0.8, rel=0.05), pytest.approx(6.0, rel=0.05)]

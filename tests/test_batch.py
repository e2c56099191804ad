"""Many QDs on Dask (labctl.analysis.batch): a batch = the single runs, number for number, byte for byte."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from labctl.analysis.analyze import AnalyzeOptions, analyze_file, dump_json
from labctl.analysis.batch import NANNY_ENVIRON_LEFT_OUT, blas_threads, local_cluster, output_names, run_batch, summary_row
from labctl.cli import main
from labctl.errors import ConfigError
from tests.test_analyze import write_foreign_file


@pytest.fixture(scope="module")
def qd_files(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("qds")
    files = []
    for i in range(4):
        path = folder / ("a" if i < 2 else "b") / f"qd{i % 2}.h5"  # two stems repeat: names get -2
        path.parent.mkdir(exist_ok=True)
        # seeds whose per-detector fit errors differ in the last bits between OpenBLAS thread counts
        write_foreign_file(path, seed=(5, 10, 11, 13)[i], seconds=0.5)
        files.append(path)
    return files


def test_batch_on_a_local_dask_cluster_equals_single_runs_byte_for_byte(qd_files, tmp_path):
    broken = tmp_path / "broken.h5"
    broken.write_bytes(b"not an HDF5 file")
    options = AnalyzeOptions(fit="bi", per_detector_fits=True)  # the fits' errors: BLAS-thread sensitive
    table = run_batch("analyze", [*qd_files, broken], tmp_path / "out", options, n_workers=2, progress=False)
    assert list(table["file"]) == [str(f) for f in [*qd_files, broken]]
    assert [Path(p).name for p in table["output"][:4]] == ["qd0.json", "qd1.json", "qd0-2.json", "qd1-2.json"]
    for i, path in enumerate(qd_files):
        single = tmp_path / f"single{i}.json"
        result = analyze_file(path, options)
        dump_json(result, single)
        assert Path(table["output"][i]).read_bytes() == single.read_bytes()
        expected = summary_row("analyze", result)
        for key, value in expected.items():
            got = table[key][i]
            assert (got is None or got != got) if value is None else got == value, (key, got, value)
    assert table["error"][:4].isna().all()
    assert "broken.h5" in table["file"][4] and table["error"][4]  # its row says why; the others went on
    csv = pd.read_csv(tmp_path / "out" / "summary.csv")
    parquet = pd.read_parquet(tmp_path / "out" / "summary.parquet")
    for frame in (csv, parquet):
        np.testing.assert_array_equal(frame["photons"][:4].to_numpy(), table["photons"][:4].to_numpy())
        np.testing.assert_allclose(frame["tau_ns"][:4], table["tau_ns"][:4], rtol=1e-12)
        np.testing.assert_allclose(frame["g2_zero"][:4], table["g2_zero"][:4], rtol=1e-12)
    assert {"file", "photons", "duration_s", "rate_cps", "g2_zero", "g2_zero_err", "tau_ns", "tau_err_ns",
            "tau_ns_2", "on_fraction", "error"} <= set(parquet.columns)


def test_cli_analyze_several_files_on_a_given_scheduler_writes_one_json_each_and_the_summary(
        qd_files, tmp_path, capfd):
    from dask.distributed import LocalCluster

    assert main(["analyze", str(qd_files[0]), "--json", str(tmp_path / "one.json"), "--workers", "3"]) == 0
    single_out, single_err = capfd.readouterr()
    assert single_err.splitlines()[0] == ("labctl analyze: one file runs here, as a single run: --scheduler/--workers "
                                          "not used (they apply to several files)")
    assert all(line.startswith("labctl analyze: warning: ") for line in single_err.splitlines()[1:])
    proc = subprocess.run([sys.executable, "-m", "labctl.cli", "analyze", str(qd_files[0]), str(qd_files[2]),
                           "--json", str(tmp_path / "many"), "--workers", "1"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    fits = AnalyzeOptions(fit="bi", per_detector_fits=True)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        # Dask's own workers (OPENBLAS_NUM_THREADS=1): the batch still equals a run here, to the byte
        table = run_batch("analyze", qd_files[1:3], tmp_path / "there", fits,
                          scheduler=cluster.scheduler_address, progress=False)
        assert len(cluster.scheduler.workers) == 1  # the tasks ran there, and the batch left it running
    for path, name in zip(qd_files[1:3], ["qd1", "qd0"]):
        dump_json(analyze_file(path, fits), tmp_path / "here.json")
        assert (tmp_path / "there" / f"{name}.json").read_bytes() == (tmp_path / "here.json").read_bytes()
    assert list(table["file"]) == [str(qd_files[1]), str(qd_files[2])]
    out, err = proc.stdout, proc.stderr
    assert err.splitlines() == ["[..............................] 0/2 files, 0 s",  # Dask's INFO lines: not here
                                f"[###############...............] 1/2 files, {err.splitlines()[1].split()[-2]} s",
                                f"[##############################] 2/2 files, {err.splitlines()[2].split()[-2]} s"]
    assert "photons" in single_out and "summary" not in single_out  # one file: today's printout
    assert (tmp_path / "many" / "qd0.json").read_bytes() == (tmp_path / "one.json").read_bytes()
    assert json.loads((tmp_path / "many" / "qd0-2.json").read_text())["file"] == str(qd_files[2])
    assert f"summary     {tmp_path / 'many' / 'summary.csv'}" in out
    assert len(pd.read_csv(tmp_path / "many" / "summary.csv")) == 2


def test_cli_several_files_without_json_folder_is_one_line_exit_2(qd_files, capsys):
    assert main(["analyze", str(qd_files[0]), str(qd_files[1])]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["labctl analyze: several files need --json DIR "
                                        "(a folder: one JSON per file + summary.csv/.parquet)"]


def test_missing_file_in_a_batch_is_refused_before_any_cluster(qd_files, tmp_path, capsys):
    assert main(["analyze", str(qd_files[0]), str(tmp_path / "nope.h5"), "--json", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"labctl analyze: FILE = '{tmp_path / 'nope.h5'}': no such file (1 of 2 missing)"


def test_report_kind_runs_report_file_and_write_report_per_file(qd_files, tmp_path, monkeypatch):
    """Stand-in for labctl.analysis.fig4 (built elsewhere), on an in-process cluster (threads share modules)."""
    fake = types.ModuleType("labctl.analysis.fig4")

    def report_file(path, options=None):
        return {"file": str(path), "on": {"fraction": 0.5 + options["k"], "threshold_counts": 40, "bin_ms": 10},
                "band_edge": {"tau_ns": 35.0, "tau_err_ns": 0.1, "peak_ev": 2.0, "fwhm_ev": 0.1},
                "trap": {"tau_ns": 57.5, "tau_err_ns": 0.2, "peak_ev": 1.9, "fwhm_ev": 0.12},
                "regimes": [{"lifetime_range_ns": [40, 50], "photons": 10, "trap_fraction": 0.1,
                             "spectrum": {"peak_ev": 2.0}}],
                "g2": {"g2_zero": 0.1, "g2_zero_err": 0.01}, "levels": [{"group": 0}, {"group": 1}, {"group": 0}]}

    def write_report(result, out_dir):
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / "report.json").write_text(json.dumps(result))

    fake.report_file, fake.write_report = report_file, write_report
    monkeypatch.setitem(sys.modules, "labctl.analysis.fig4", fake)
    table = run_batch("report", qd_files[:2], tmp_path / "rep", {"k": 0.25}, n_workers=1, processes=False,
                      progress=False)
    assert table["error"].isna().all(), table["error"]
    assert json.loads((tmp_path / "rep" / "qd1" / "report.json").read_text())["file"] == str(qd_files[1])
    assert list(table["on_fraction"]) == [0.75, 0.75]
    assert list(table["regime0_trap_fraction"]) == [0.1, 0.1] and list(table["level_groups"]) == [2, 2]
    assert list(table["trap_tau_ns"]) == [57.5, 57.5]


def test_a_scheduler_that_does_not_answer_is_a_config_error(qd_files, tmp_path):
    with pytest.raises(ConfigError, match=r"--scheduler = 'tcp://127.0.0.1:9': no Dask scheduler answers there"):
        run_batch("analyze", qd_files[:2], tmp_path / "o", AnalyzeOptions(), scheduler="tcp://127.0.0.1:9",
                  connect_timeout_s=0.5, progress=False)


def test_output_names_are_unique_stems():
    assert output_names(["x/a.h5", "y/a.h5", "a-2.h5", "b.h5"]) == ["a", "a-2", "a-2-b", "b"]


def test_an_option_no_file_can_satisfy_is_one_line_exit_2_before_any_cluster(qd_files, tmp_path, capsys):
    assert main(["analyze", str(qd_files[0]), str(qd_files[1]), "--json", str(tmp_path / "o"),
                 "--laser-period-ps", "0"]) == 2
    assert capsys.readouterr().err.strip() == ("labctl analyze: --laser-period-ps = 0: must be a period > 0 (ps)")
    assert not (tmp_path / "o").exists()


def test_local_workers_start_without_dasks_malloc_and_blas_settings(monkeypatch):
    """Dask's MALLOC_TRIM_THRESHOLD_ made the fits 2-3x slower in the workers; their BLAS starts as ours."""
    import os

    from dask.distributed import Client

    for key in NANNY_ENVIRON_LEFT_OUT:
        monkeypatch.delenv(key, raising=False)
    with local_cluster(1) as cluster, Client(cluster) as client:
        worker_env = client.run(lambda: {k: os.environ.get(k) for k in NANNY_ENVIRON_LEFT_OUT})
    threads = str(blas_threads())
    assert list(worker_env.values()) == [{"MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": None,
                                          "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads}]
    assert "MALLOC_TRIM_THRESHOLD_" not in os.environ and "OMP_NUM_THREADS" not in os.environ


def test_a_local_cluster_leaves_this_process_environment_as_it_was():
    import os

    from labctl.analysis.batch import local_cluster

    before = dict(os.environ)
    cluster = local_cluster(1)
    try:
        assert dict(os.environ) == before  # Dask's nanny sets MALLOC_TRIM_THRESHOLD_ etc. in os.environ
    finally:
        cluster.close()

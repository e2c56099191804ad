"""Many QDs at once: ``labctl analyze FILE...`` / ``labctl report FILE...`` as one Dask task per file.

Each file runs the very function of a single run (``labctl.analysis.analyze.analyze_file``
+ ``dump_json``, or ``labctl.analysis.fig4.report_file`` + ``write_report``) on a
worker, so its outputs are byte-identical to running it alone.  The tasks run on
a ``dask.distributed`` cluster: a ``LocalCluster`` of worker processes by default
(one thread each: the analysis uses its own threads), or the scheduler at
``scheduler`` (``tcp://host:8786``, e.g. one started by dask-jobqueue on SLURM;
its workers must import the same labctl and see the files at the same paths).

Outputs in ``out_dir``: per file ``<name>.json`` (analyze) or the folder
``<name>/`` (report), ``<name>`` being the file's stem (``-2``, ``-3`` ... added
when stems repeat); ``summary.csv`` and ``summary.parquet``: one row per file
with the headline numbers (columns: README, "Several files").
A file that fails gets its row with ``error`` (the message); the others go on.

Byte-identity needs the same machine type and the same BLAS threading: the fits'
linear algebra (OpenBLAS) rounds differently in the last bits with another number
of threads, and Dask starts its workers with ``OPENBLAS_NUM_THREADS=1`` (and leaves
that in this process's ``os.environ``).  So every task runs with the BLAS thread
count this process's BLAS has (``threadpoolctl``), as a single run here would.
The local workers also start without Dask's ``MALLOC_TRIM_THRESHOLD_`` (the fits
ran 2-3x slower with it); a lab cluster's workers are started by their own
configuration (``distributed.nanny.pre-spawn-environ``: leave it out there too).
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from labctl.errors import ConfigError

if TYPE_CHECKING:
    import pandas
    from dask.distributed import LocalCluster

__all__ = ["KINDS", "blas_threads", "local_cluster", "output_names", "run_batch", "run_reports", "summary_row", "run_one"]

KINDS = ("analyze", "report")

NANNY_ENVIRON_LEFT_OUT = ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
"""Variables Dask would set in the local workers (and in this process) that labctl leaves out (``run_batch``)."""



def output_names(files: Sequence[str | Path]) -> list[str]:
    """One output name per file: its stem, with ``-2``, ``-3`` ... when stems repeat (in the given order)."""
    seen: dict[str, int] = {}
    names = []
    for f in files:
        stem = Path(f).stem or "file"
        seen[stem] = seen.get(stem, 0) + 1
        names.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    taken = set()
    for i, name in enumerate(names):  # a "-2" suffix may clash with a real stem: add more
        while name in taken:
            name += "-b"
        names[i] = name
        taken.add(name)
    return names


def _get(d: Any, *keys: Any) -> Any:
    for k in keys:
        if not isinstance(d, dict) and not (isinstance(d, list) and isinstance(k, int) and -len(d) <= k < len(d)):
            return None
        d = d.get(k) if isinstance(d, dict) else d[k]
        if d is None:
            return None
    return d


def _first(x: Any) -> Any:
    return x[0] if isinstance(x, list) and x else (None if isinstance(x, list) else x)


def summary_row(kind: str, result: dict[str, Any]) -> dict[str, Any]:
    """Headline numbers of one file's result (``analyze_file``'s or ``report_file``'s dict)."""
    photons = result.get("photons") or {}
    rates = result.get("rates_cps") or {}
    row: dict[str, Any] = {
        "photons": int(sum(photons.values())) if photons else None,
        "duration_s": result.get("duration_s"),
        "rate_cps": float(sum(rates.values())) if rates else None,
    }
    for det, rate in rates.items():
        row[f"rate_cps_det{det}"] = rate
    g2 = result.get("g2")
    row["g2_zero"] = _get(g2, "g2_zero")
    row["g2_zero_err"] = _get(g2, "g2_zero_err")
    if kind == "analyze":
        fit = _get(result, "lifetime", "fit") or {}
        taus, errs = fit.get("tau_ns") or [], fit.get("tau_err_ns") or []
        for i, (tau, err) in enumerate(zip(taus, errs)):
            suffix = "" if i == 0 else f"_{i + 1}"
            row[f"tau_ns{suffix}"], row[f"tau_err_ns{suffix}"] = tau, err
        if not taus:
            row["tau_ns"] = row["tau_err_ns"] = None
        row["reduced_chi2"] = fit.get("reduced_chi2")
        row["on_fraction"] = _get(result, "trace", "on_fraction")
        row["on_threshold"] = _get(result, "trace", "on_threshold")
    else:
        row["on_fraction"] = _get(result, "on", "fraction")
        row["on_threshold_counts"] = _get(result, "on", "threshold_counts")
        for part in ("band_edge", "trap"):
            for key in ("tau_ns", "tau_err_ns", "peak_ev", "fwhm_ev"):
                row[f"{part}_{key}"] = _first(_get(result, part, key))
        for i, regime in enumerate(result.get("regimes") or []):
            lo_hi = _get(regime, "lifetime_range_ns") or [None, None]
            row[f"regime{i}_lo_ns"], row[f"regime{i}_hi_ns"] = lo_hi[0], lo_hi[-1]
            row[f"regime{i}_photons"] = _get(regime, "photons")
            row[f"regime{i}_trap_fraction"] = _first(_get(regime, "trap_fraction"))
            row[f"regime{i}_peak_ev"] = _get(regime, "spectrum", "peak_ev")
        levels = result.get("levels")
        if levels is not None:
            row["levels"] = len(levels)
            row["level_groups"] = len({lv.get("group") for lv in levels})
    row["warnings"] = len(result.get("warnings") or [])
    return row


def run_one(kind: str, path: str | Path, out_dir: str | Path, name: str, options: Any,
            plots_dir: str | Path | None = None, blas_threads: int | None = None) -> dict[str, Any]:
    """One file, as a single run would do it; returns its summary row (``error`` set if it failed).

    Runs on a Dask worker; imports lazily (the report's module only for reports).
    ``blas_threads``: BLAS thread count during the work (that of the submitting process)."""
    if blas_threads is not None and _blas_counts() != {blas_threads}:  # e.g. a Dask worker started with 1
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=blas_threads, user_api="blas"):
            return run_one(kind, path, out_dir, name, options, plots_dir)
    out_dir = Path(out_dir)
    row: dict[str, Any] = {"file": str(path), "output": None, "error": None}
    start = time.perf_counter()
    try:
        if kind == "analyze":
            from labctl.analysis.analyze import analyze_file, dump_json, write_plots

            result = analyze_file(path, options)
            target = out_dir / f"{name}.json"
            dump_json(result, target)
            if plots_dir is not None:
                write_plots(result, Path(plots_dir) / name)
        else:
            from labctl.analysis.fig4 import report_file, write_report

            result = report_file(path, options)
            target = out_dir / name
            write_report(result, target)
        row["output"] = str(target)
        row.update(summary_row(kind, result))
    except Exception as exc:  # noqa: BLE001 - one file's failure is its row's, the batch goes on
        row["error"] = f"{type(exc).__name__}: {exc}"
    row["seconds"] = time.perf_counter() - start
    return row


def local_cluster(n_workers: int, processes: bool = True) -> "LocalCluster":
    """A LocalCluster of ``n_workers`` (processes, one thread each) without Dask's worker environment.

    Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 and OMP/MKL/OPENBLAS_NUM_THREADS=1 in its
    workers (and, as it does so, in this process's os.environ, which is restored here).  The malloc setting fixes glibc's
    mmap threshold: every large temporary array is mapped and unmapped again, and the lifetime
    fits ran 2-3x slower (measured).  The workers' BLAS starts with this process's thread count
    (``OPENBLAS_NUM_THREADS``/``MKL_NUM_THREADS``): the fits round alike, and ``run_one`` need not
    raise the count per task (which made them 2-3x slower again, measured).
    """
    import dask
    from dask.distributed import LocalCluster

    environ = {k: v for k, v in dask.config.get("distributed.nanny.pre-spawn-environ", {}).items()
               if k not in NANNY_ENVIRON_LEFT_OUT}
    threads = blas_threads()
    if threads is not None:  # the workers' BLAS starts as this process's (raising it later, per task, is slow)
        environ["OPENBLAS_NUM_THREADS"] = environ["MKL_NUM_THREADS"] = str(threads)
    saved = dict(os.environ)  # the nanny's settings must not stay in this process (its malloc, its BLAS)
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
            return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=processes, dashboard_address=":0")
    finally:
        for key in set(os.environ) - set(saved):
            del os.environ[key]
        os.environ.update(saved)


def blas_threads() -> int | None:
    """Threads of this process's BLAS (the most over the BLAS libraries loaded with numpy and scipy)."""
    counts = _blas_counts()
    return max(counts) if counts else None


def _blas_counts() -> set[int]:
    from threadpoolctl import threadpool_info

    importlib.import_module("scipy.linalg")  # loads scipy's own BLAS, which the fits use
    return {int(i["num_threads"]) for i in threadpool_info() if i.get("user_api") == "blas"}


def _progress_line(done: int, total: int, failed: int, elapsed_s: float) -> str:
    width = 30
    filled = int(width * done / total) if total else width
    extra = f", {failed} failed" if failed else ""
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} files{extra}, {elapsed_s:.0f} s"


def run_batch(kind: str, files: Sequence[str | Path], out_dir: str | Path, options: Any,
              scheduler: str | None = None, progress: bool = True, n_workers: int | None = None,
              processes: bool = True, plots_dir: str | Path | None = None,
              connect_timeout_s: float = 10.0, quiet: bool = True) -> "pandas.DataFrame":
    """Run ``kind`` ("analyze" | "report") on every file, one Dask task per file; write and return the summary.

    ``scheduler``: address of a running Dask scheduler (waited for ``connect_timeout_s``); None: a LocalCluster of
    ``n_workers`` processes (default: min(files, CPUs)), one thread each, closed at
    the end.  ``progress``: a progress bar on stderr.  ``plots_dir`` (analyze): PNGs
    into ``plots_dir/<name>/``.  ``quiet``: Dask's own log only from ERROR up (its INFO
    lines about starting and stopping the cluster are noise here).  Returns the summary table (pandas DataFrame, rows
    in the order of ``files``), also written as ``summary.csv`` and ``summary.parquet``.
    """
    if kind not in KINDS:
        raise ConfigError("kind", kind, f"must be one of {list(KINDS)}")
    files = [Path(f) for f in files]
    if not files:
        raise ConfigError("FILE", [], "give at least one file")
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise ConfigError("FILE", missing[0], f"no such file ({len(missing)} of {len(files)} missing)")
    if kind == "analyze":
        from labctl.analysis.analyze import check_options

        check_options(options)  # a bad option fails every file: say it once, before the cluster starts
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError("--out" if kind == "report" else "--json", str(out_dir),
                          "with several files must name a folder (it is a file)")
    out_dir.mkdir(parents=True, exist_ok=True)
    names = output_names(files)

    import pandas as pd
    from dask.distributed import Client, as_completed

    if quiet:
        logging.getLogger("distributed").setLevel(logging.ERROR)

    cluster = None
    if scheduler is None:
        workers = n_workers or max(1, min(len(files), os.cpu_count() or 1))
        cluster = local_cluster(workers, processes)
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout=f"{connect_timeout_s}s")
        except (OSError, TimeoutError) as exc:
            raise ConfigError("--scheduler", scheduler, f"no Dask scheduler answers there ({exc})") from None
    rows: list[dict[str, Any] | None] = [None] * len(files)
    try:
        threads = blas_threads()
        futures = {client.submit(run_one, kind, f, out_dir, n, options, plots_dir, threads, pure=False): i
                   for i, (f, n) in enumerate(zip(files, names))}
        started, failed = time.perf_counter(), 0
        show: Callable[[str, bool], None] = _make_printer() if progress else (lambda line, last: None)
        show(_progress_line(0, len(files), 0, 0.0), False)
        for done, future in enumerate(as_completed(futures), start=1):
            try:
                row = future.result()
            except Exception as exc:  # noqa: BLE001 - the worker itself failed (killed, out of memory)
                row = {"file": str(files[futures[future]]), "output": None,
                       "error": f"worker: {type(exc).__name__}: {exc}"}
            rows[futures[future]] = row
            failed += row["error"] is not None
            show(_progress_line(done, len(files), failed, time.perf_counter() - started), done == len(files))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    table = pd.DataFrame([r for r in rows if r is not None])
    table.to_csv(out_dir / "summary.csv", index=False)
    table.to_parquet(out_dir / "summary.parquet", index=False)
    return table


def _make_printer() -> Callable[[str, bool], None]:
    tty = sys.stderr.isatty()

    def show(line: str, last: bool) -> None:
        if tty:
            print("\r" + line, end="\n" if last else "", file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr, flush=True)

    return show


def run_reports(files: Sequence[str | Path], out_dir: str | Path, options: Any,
                scheduler: str | None = None, progress: bool = True) -> "pandas.DataFrame":
    """``labctl report FILE... --out DIR``: ``run_batch("report", ...)``; each file's report in ``DIR/<name>/``."""
    return run_batch("report", files, out_dir, options, scheduler=scheduler, progress=progress)

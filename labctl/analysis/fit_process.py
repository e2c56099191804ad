"""The decay fits of ``labctl analyze``, in this process or in a worker process started at once.

The fits need scipy (``scipy.optimize``, ``scipy.special``): ~0.5 s of imports
(measured on bench_analysis.py's machine), which in this process hold the GIL
that the streaming of the file needs.  :class:`FitProcess` starts
``python -m labctl.analysis.fit_process`` at the very beginning of the
analysis: the worker imports the fit code on the other core while this process
reads the file, then receives the histograms (small arrays, pickled on its
stdin), fits them with the very same code (:func:`fit_histograms`, on one BLAS
thread as here) and sends the fit dicts back on its stdout.  While it waits it
fits a small made-up decay once (first-call costs) and keeps freed memory for
reuse (``process_memory``): its answer comes ~0.07 s after the request.

On any failure of the worker (it cannot start, dies, answers garbage or late,
its fit raised or warned) :meth:`FitProcess.fit` fits in this process instead:
the result is the same, and an error or warning of the fit is raised or shown
here as it would have been without a worker.  No worker outlives
:meth:`FitProcess.close` (a context manager closes it).
"""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy is imported by the time a fit is asked for: the worker starts before it
    import numpy as np

__all__ = ["FitProcess", "fit_process_if_useful", "fit_histograms", "one_blas_thread", "FIT_TIMEOUT_S",
           "BLAS_THREAD_VARIABLES"]

FIT_TIMEOUT_S = 120.0
"""Longest wait for the worker's answer (s, from the request); then it is killed and the fits run here."""

BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
"""Read by a child process's BLAS at its numpy import: "1" gives one thread, as ``one_blas_thread`` does here."""

_log = logging.getLogger("labctl.analysis.fit_process")

Request = tuple["list[np.ndarray]", "np.ndarray", str, int]
"""(histograms: counts per bin, int64; bin edges in ps, float64; model "mono"/"bi"; laser period in ps)."""


def one_blas_thread() -> Any:
    """A context in which BLAS runs on one thread: the fits' linear algebra is on a handful of
    parameters, where a second BLAS thread only adds waiting (the mono fit of bench_analysis.py's
    file: 0.03-0.04 s of CPU on one thread, 0.08-0.12 s on two; the same digits)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def fit_process_if_useful() -> FitProcess | None:
    """A started :class:`FitProcess`, or None where the fit code is loaded in this process already
    (a fit here then costs no imports: a worker would only add its start-up)."""
    return FitProcess() if "labctl.analysis.fit" not in sys.modules else None


def fit_histograms(histograms: Sequence[np.ndarray], edges_ps: np.ndarray, model: str,
                   period_ps: int) -> list[dict[str, Any]]:
    """``fit_decay(h, edges_ps, model, period_ps).as_dict()`` of each histogram, on one BLAS thread.

    Args:
        histograms: counts per bin (one row per decay).
        edges_ps: the bins' edges (ps after the laser sync), one more than bins.
        model: ``"mono"`` or ``"bi"``.
        period_ps: laser period (ps).

    A fit refused with ``ValueError`` (too few photons etc.) gives ``{"model", "error": why, "tau_ns": [],
    "tau_err_ns": [], "fractions": [], "reduced_chi2": None}`` in its place: the analysis goes on.
    """
    from labctl.analysis.fit import fit_decay

    out = []
    with one_blas_thread():
        for counts in histograms:
            try:
                out.append(fit_decay(counts, edges_ps, model=model, period_ps=period_ps).as_dict())
            except ValueError as exc:
                out.append({"model": model, "error": str(exc), "tau_ns": [], "tau_err_ns": [], "fractions": [],
                            "reduced_chi2": None})
    return out


class FitProcess:
    """A worker process that imports the fit code now and fits one request later.

    ``FitProcess()`` starts the worker (never raises: a worker that cannot start
    leaves :meth:`fit` to fit here); :meth:`fit` sends one request and returns
    the worker's fits, or fits here on any failure; :meth:`close` ends the worker.
    """

    def __init__(self, command: Sequence[str] | None = None) -> None:
        """Start the worker: ``command`` (default ``python -m labctl.analysis.fit_process``, this
        interpreter, importing this checkout's labctl) with pipes on its stdin and stdout."""
        self._process: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None
        """The worker's process id (None if it did not start); kept after it ended."""
        root = str(Path(__file__).resolve().parents[2])  # the folder holding labctl/: the child imports this code
        env = dict(os.environ, **{name: "1" for name in BLAS_THREAD_VARIABLES})
        env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])
        try:
            self._process = subprocess.Popen(
                list(command) if command is not None else [sys.executable, "-m", "labctl.analysis.fit_process"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
                close_fds=True)
            self.pid = self._process.pid
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            _log.debug("fit worker did not start (%r): the fits run in this process", exc)

    def fit(self, histograms: Sequence[np.ndarray], edges_ps: np.ndarray, model: str,
            period_ps: int) -> list[dict[str, Any]]:
        """``fit_histograms(histograms, edges_ps, model, period_ps)``, by the worker if it can (then it
        ends); else, or on any failure of it, here.  Units as in :func:`fit_histograms`."""
        import numpy as np

        request: Request = ([np.ascontiguousarray(h) for h in histograms], np.ascontiguousarray(edges_ps),
                            str(model), int(period_ps))
        answer = self._ask(request)
        if answer is not None:
            return answer
        return fit_histograms(*request)

    def _ask(self, request: Request) -> list[dict[str, Any]] | None:
        """The worker's fits, or None (and the worker ended) if it has none to give."""
        process = self._process
        if process is None:
            return None
        try:
            out, _ = process.communicate(pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL),
                                         timeout=FIT_TIMEOUT_S)
            kind, value = pickle.loads(out)
            if process.returncode != 0 or kind != "fits":
                raise RuntimeError(f"worker exit code {process.returncode}, answer {kind!r}: {value!r}")
            return value
        except Exception as exc:  # noqa: BLE001 - any failure of the worker: the fits run here instead
            _log.debug("fit worker failed (%r): the fits run in this process", exc)
            return None
        finally:
            self.close()

    def close(self) -> None:
        """End the worker (killed if still running) and reap it; safe to call again."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass
        process.wait()

    def __enter__(self) -> FitProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _serve() -> int:
    """The worker: import the fit code, read one pickled request on stdin, write ("fits", dicts) on stdout.

    A fit that raises or warns answers ("error", why): the caller then fits in its own process,
    where the error or warning shows as it would have without a worker.  EOF before a
    request (the caller needed no fit, or ended): exit quietly.
    """
    import warnings

    from labctl.analysis.process_memory import keep_freed_memory_for_reuse

    keep_freed_memory_for_reuse()  # the fit's 10^4-number arrays reuse memory instead of faulting in fresh pages
    answer_to = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed goes to stderr, never into the answer
    import labctl.analysis.fit  # noqa: F401 - the imports this worker exists for, done while the caller streams

    _warm_up()
    data = sys.stdin.buffer.read()
    if not data:
        return 0
    try:
        with warnings.catch_warnings(record=True) as seen:  # the filters stay those of a plain run
            fits = fit_histograms(*pickle.loads(data))
        answer: tuple[str, Any] = (("error", f"warnings: {[str(w.message) for w in seen]}") if seen
                                   else ("fits", fits))
    except Exception as exc:  # noqa: BLE001 - reported to the caller, which fits again itself
        answer = ("error", repr(exc))
    answer_to.write(pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL))
    answer_to.close()
    return 0


def _warm_up() -> None:
    """Fit a small made-up decay once: its first-call costs (threadpoolctl's scan of the loaded libraries,
    scipy's lazily loaded parts: ~0.05 s) are paid while the caller still streams.  Fits are pure
    functions: the fits that follow are the same without it.  Any failure is left to the real fit."""
    import warnings

    import numpy as np

    edges_ps = np.arange(0, 100_001, 500, dtype=np.float64)  # 200 bins over a 100 ns period
    t_ps = edges_ps[:-1]
    counts = (20 + 2000 * np.exp(-np.maximum(t_ps - 5_000, 0) / 5_000) * (t_ps >= 5_000)).astype(np.int64)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit_histograms([counts], edges_ps, "mono", 100_000)
    except Exception:  # noqa: BLE001 - the real fit meets and reports the same problem
        pass


if __name__ == "__main__":
    code = _serve()
    sys.stderr.flush()
    os._exit(code)  # the answer is out: skip the interpreter's teardown of scipy (~0.1 s the caller waits for)

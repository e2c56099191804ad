"""numba kernels, or their numpy versions on the first run after an install: one choice per process.

A numba kernel costs ~0.5 s of compiling per function on its first call (typing and
LLVM, whatever its size), ~5 s for the photon path and the simulated scene together;
from numba's on-disk cache it loads in milliseconds.  So each kernel is written twice,
as one job with one signature: the numba loop (:func:`kernel` makes it a :class:`Kernel`)
and a plain numpy version (``fallback``, which is also the numba loop's test oracle).

Once per process, just before the first kernel call (:func:`use_numba`), the choice is
made for every kernel of the process:

* every registered kernel is in numba's cache (the usual case): numba, loaded from the cache;
* any is missing (the first run after an install, or after a kernel's source changed):
  numpy for this whole process, and a background process (:func:`compile_in_background`,
  niced, detached) compiles the numba kernels into the cache for the next run.  Logged at
  INFO: "first run after install: numpy kernels for this run; compiling numba kernels for
  the next run in the background".

The environment variable ``LABCTL_KERNELS`` (``numba`` or ``numpy``) overrides the choice
(the test suite and the background compiler set ``numba``).

The background compiler is left running when this process exits (it is in a session of
its own, so Ctrl-C in the terminal does not reach it either): waiting would delay the
command by the compile's seconds, and killing it would throw the compiled kernels away.
numba writes each cache file to a temporary name and renames it, so a compiler killed
half-way (shutdown, kill -9) leaves the cache consistent, missing only what it had not
finished.  One compiler runs at a time per cache (a lock file): a run started while one
still works runs on numpy too, and the compiler it starts waits for the lock, then finds
in the cache what the first compiled (loading it takes a fraction of a second) and
compiles the rest.

A module of kernels registers the function that compiles them (``warm_up``: calls every
kernel with the types of a real run, since numba compiles one version per argument
types).  A module imported after the choice follows it; if the choice was numba and its
kernels are not cached, numba compiles them at their first call in this process, as
before (logged).
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import importlib
import logging
import os
import subprocess
import sys
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

log = logging.getLogger(__name__)

ENV_VAR = "LABCTL_KERNELS"
"""Environment variable forcing the kernels of every labctl process: ``numba`` or ``numpy``."""

FIRST_RUN_MESSAGE = ("first run after install: numpy kernels for this run; "
                     "compiling numba kernels for the next run in the background")
"""What the choice logs at INFO when it takes the numpy kernels."""

COMPILER_NICE = 10
"""Niceness the background compiler adds to itself: the run in the foreground keeps priority."""

_lock = threading.RLock()
_kernels: list["Kernel"] = []
_warm_ups: dict[str, None] = {}  # "module:function" entries, in registration order
_choice: bool | None = None  # True: numba
_compiling: list[str] = []  # warm-up entries handed to background compilers


class Kernel:
    """A numba kernel (compiled lazily, ``cache=True``) with its numpy ``fallback``; call it like either.

    ``numba`` and ``numpy`` give each version directly (the tests compare them).
    """

    def __init__(self, py_func: Callable[..., Any], fallback: Callable[..., Any], options: dict[str, Any]) -> None:
        functools.update_wrapper(self, py_func)
        self.py_func = py_func
        self.numpy = fallback
        self._options = options
        self._numba: Any = None
        self._impl: Callable[..., Any] | None = None

    @property
    def numba(self) -> Any:
        """The numba dispatcher (made on first use; compiles or loads at its first call)."""
        if self._numba is None:
            from numba import njit

            self._numba = njit(cache=True, **self._options)(self.py_func)
        return self._numba

    def cached(self) -> bool:
        """Whether numba's on-disk cache holds a version of this kernel for its current source.

        Reads numba's cache index (``FunctionCache``, not a public API); if that cannot be
        read the answer is True (numba then compiles at the first call, as it always did).
        """
        try:
            return bool(self.numba._cache._cache_file._load_index())
        except Exception:  # noqa: BLE001 - numba's internals changed
            return True

    def __call__(self, *args: Any) -> Any:
        impl = self._impl
        if impl is None:
            impl = self._impl = self.numba if use_numba() else self.numpy
        return impl(*args)

    def __repr__(self) -> str:
        return f"<kernel {self.__module__}.{self.__qualname__}>"


def kernel(fallback: Callable[..., Any], *, warm_up: str, **options: Any) -> Callable[[Callable[..., Any]], Kernel]:
    """Decorator: the function is a numba kernel (``njit(cache=True, **options)``) with numpy ``fallback``.

    Args:
        fallback: the numpy version: same signature, same results (the kernel's test oracle).
        warm_up: ``"module:function"`` that calls this kernel (with every other kernel of its
            module) with a real run's argument types; the background compiler runs it.
    """
    def wrap(py_func: Callable[..., Any]) -> Kernel:
        made = Kernel(py_func, fallback, options)
        _register(made, warm_up)
        return made
    return wrap


def _register(made: Kernel, warm_up: str) -> None:
    with _lock:
        _kernels.append(made)
        new_entry = warm_up not in _warm_ups
        _warm_ups[warm_up] = None
        if _choice is None:
            return
        if not _choice:  # numpy already chosen: compile this module's kernels for the next run too
            if new_entry:
                compile_in_background([warm_up])
        elif not made.cached():
            log.info("numba kernel %s is not in numba's cache: compiling it in this process", made.__qualname__)


def use_numba() -> bool:
    """The process's choice (made at the first call): True = numba kernels, False = numpy."""
    global _choice
    if _choice is None:
        with _lock:
            if _choice is None:
                _choice = _decide()
    return _choice


def _decide() -> bool:
    forced = os.environ.get(ENV_VAR, "").strip().lower()
    if forced in ("numba", "numpy"):
        log.debug("%s=%s: %s kernels", ENV_VAR, forced, forced)
        return forced == "numba"
    if forced:
        log.warning("%s = %r: must be numba or numpy; choosing from numba's cache", ENV_VAR, forced)
    try:
        import numba  # noqa: F401 - the cache check and the kernels need it
    except ImportError as exc:  # a broken install: the numpy versions still run
        log.warning("numba cannot be imported (%s): numpy kernels", exc)
        return False
    if all_cached():
        return True
    log.info(FIRST_RUN_MESSAGE)
    compile_in_background(list(_warm_ups))
    return False


@contextmanager
def chosen(numba: bool) -> Iterator[None]:
    """For tests: every kernel of this process runs its numba (True) or numpy (False) version inside the block."""
    global _choice
    with _lock:
        before = _choice
        _choice = bool(numba)
        for made in _kernels:
            made._impl = None
    try:
        yield
    finally:
        with _lock:
            _choice = before
            for made in _kernels:
                made._impl = None


def all_cached() -> bool:
    """Whether every kernel registered so far is in numba's cache (imports numba)."""
    with _lock:
        kernels = list(_kernels)
    return all(k.cached() for k in kernels)


def compile_in_background(warm_ups: list[str]) -> subprocess.Popen[bytes] | None:
    """Start ``python -m labctl.analysis.kernel_backend WARM_UP...``: niced, in a session of its own, output
    discarded; returns it (None if it could not start).  A thread reaps it and logs its end (DEBUG)."""
    warm_ups = [w for w in warm_ups if w not in _compiling]
    if not warm_ups:
        return None
    _compiling.extend(warm_ups)
    root = str(Path(__file__).resolve().parents[2])  # the same labctl, whatever sys.path the child gets
    env = {**os.environ, ENV_VAR: "numba",
           "PYTHONPATH": os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])}
    try:
        child = subprocess.Popen([sys.executable, "-m", "labctl.analysis.kernel_backend", *warm_ups],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 env=env, start_new_session=True, close_fds=True)
    except OSError as exc:
        log.info("compiling the numba kernels in the background failed to start (%s): numpy again next run", exc)
        return None
    log.debug("compiling numba kernels in the background: pid %d (%s)", child.pid, " ".join(warm_ups))

    def reap() -> None:
        code = child.wait()
        log.debug("background numba compiler (pid %d) ended with exit code %d", child.pid, code)

    threading.Thread(target=reap, name="labctl-kernel-compiler-reaper", daemon=True).start()
    return child


def compiler_lock_path() -> Path:
    """The lock file that lets one background compiler run at a time per numba cache."""
    key = "\0".join([os.environ.get("NUMBA_CACHE_DIR", ""), sys.executable, str(Path(__file__).resolve().parents[2])])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"labctl-numba-compile-{digest}.lock"


def compile_kernels(warm_ups: list[str]) -> int:
    """The background compiler's work: once no other compiler holds the lock, run each warm-up with numba
    (``LABCTL_KERNELS=numba``).

    Returns 0.  A warm-up that fails is skipped (that module's kernels then compile at their
    first call in a later run).
    """
    with open(compiler_lock_path(), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or when the process dies
        for entry in warm_ups:
            module, _, function = entry.partition(":")
            try:
                getattr(importlib.import_module(module), function)()
            except Exception as exc:  # noqa: BLE001 - the others still compile
                print(f"labctl kernel compiler: {entry} failed: {exc!r}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # compile_in_background's child
    os.nice(COMPILER_NICE)
    os.environ[ENV_VAR] = "numba"
    from labctl.analysis.kernel_backend import compile_kernels as _compile  # the registry the kernels use

    sys.exit(_compile(sys.argv[1:]))

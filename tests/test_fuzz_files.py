"""Fuzzing the input files of ``labctl info``, ``analyze`` and ``repair`` (hypothesis).

Generated damaged files: truncations at random offsets (of a closed file and of a
killed writer's file), random byte flips in a real labctl file, random bytes, and
HDF5 files holding a random subset of the Photon-HDF5 paths with random dtypes and
shapes.  Each must give exit 0 or 2 (one line on stderr, no traceback), within
``EXAMPLE_TIMEOUT_S``: the CLI's ``main()`` runs in this process, under
``faulthandler.dump_traceback_later(exit=True)``, so a hang ends the test run with
the hung stack instead of hanging CI.

Fast versions (a few examples per surface) run by default; ``-m slow`` runs 1,000
examples per surface.
"""

from __future__ import annotations

import contextlib
import faulthandler
import io
import itertools
import os
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labctl.cli import main
from labctl.storage import layout as L
from tests.test_storage import CRASH_SCRIPT, make_blocks, run_python, write_file

EXAMPLE_TIMEOUT_S = 120
SURFACES = ("info", "analyze", "repair")
_counter = itertools.count()
OUTCOMES: dict[str, dict[int, int]] = {s: {} for s in SURFACES}
"""Exit codes seen per surface (printed by the slow test, for the record)."""


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, bytes]:
    """The bytes of a closed labctl file (several photon chunks) and of a killed writer's file."""
    folder = tmp_path_factory.mktemp("fuzz-sources")
    closed = folder / "closed.h5"
    write_file(closed, make_blocks([900, 700, 400], seed=11), chunk_photons=256)
    crashed = folder / "crashed.h5"
    out = run_python(CRASH_SCRIPT, str(crashed), str(Path(__file__).parent))
    assert out.returncode == 1, out.stderr
    return {"closed": closed.read_bytes(), "crashed": crashed.read_bytes()}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def run_cli(surface: str, path: Path, workdir: Path) -> tuple[int, str]:
    """``labctl SURFACE path`` in this process: (exit code, stderr); an exception fails the test."""
    args = [surface, str(path)]
    if surface == "repair":
        args += ["--out", str(workdir / f"repaired-{next(_counter)}.h5")]
    if surface == "analyze":
        args += ["--g2-range-ps", "20000", "--g2-bin-ps", "1000"]
    err, out = io.StringIO(), io.StringIO()
    faulthandler.dump_traceback_later(EXAMPLE_TIMEOUT_S, exit=True, file=sys.__stderr__)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code = main(args)
    finally:
        faulthandler.cancel_dump_traceback_later()
        for extra in workdir.glob("repaired-*"):
            extra.unlink()
    return code, err.getvalue()


def check(surface: str, path: Path, workdir: Path) -> None:
    code, err = run_cli(surface, path, workdir)
    OUTCOMES[surface][code] = OUTCOMES[surface].get(code, 0) + 1
    assert code in (0, 2), (code, err)
    assert "Traceback" not in err, err
    if code == 2:  # one line saying why (after any warnings about the file)
        assert len([line for line in err.strip().splitlines() if ": warning: " not in line]) == 1, err
    leftovers = [p.name for p in workdir.iterdir() if p.name != path.name]
    assert not leftovers, leftovers  # no temporary file left behind


# ----------------------------------------------------------------- generated files
# Offsets come from a hypothesis-seeded random.Random: uniform over the file (hypothesis's own
# integers favour small values, i.e. the superblock, which a few examples would never get past).
@st.composite
def truncated(draw, sources: dict[str, bytes]) -> bytes:
    data = sources[draw(st.sampled_from(["closed", "crashed"]))]
    return data[:draw(st.randoms(use_true_random=False)).randrange(len(data) + 1)]


@st.composite
def flipped(draw, sources: dict[str, bytes]) -> bytes:
    data = bytearray(sources[draw(st.sampled_from(["closed", "crashed"]))])
    rnd = draw(st.randoms(use_true_random=False))
    for _ in range(rnd.randint(1, 20)):
        data[rnd.randrange(len(data))] = rnd.randrange(256)
    return bytes(data)


def random_bytes() -> st.SearchStrategy[bytes]:
    signature = b"\x89HDF\r\n\x1a\n"
    return st.one_of(st.binary(max_size=4096), st.binary(max_size=4096).map(lambda b: signature + b))


PHOTON_PATHS = (L.TIMESTAMPS, L.DETECTORS, L.NANOTIMES, L.TIMESTAMPS_UNIT, L.TCSPC_UNIT, L.TCSPC_NUM_BINS,
                L.LASER_REPETITION_RATE, L.ACQUISITION_DURATION, L.SETUP_DETECTOR_ID, L.SETUP_DETECTOR_LABEL,
                L.SETUP_LASER_REPETITION_RATES, L.RUN_ID, L.STATION_SNAPSHOT, L.MARKERS, L.LOSSES, L.RUN_LOG,
                L.WRITER_DONE, "/identity/software", "/user/labctl/run_end", "/user/labctl/repair")
VALUES = st.one_of(
    st.integers(-2**63, 2**63 - 1).map(np.int64),
    st.floats(allow_nan=True, allow_infinity=True).map(np.float64),
    st.binary(max_size=40).map(lambda b: np.bytes_(b or b"x")),
    st.lists(st.integers(-2**31, 2**31 - 1), max_size=50).map(lambda v: np.array(v, np.int64)),
    st.lists(st.integers(0, 255), max_size=50).map(lambda v: np.array(v, np.uint8)),
    st.lists(st.floats(allow_nan=True), max_size=20).map(lambda v: np.array(v, np.float64)),
    st.integers(0, 5).map(lambda n: np.zeros((n, 2), np.int32)),
    st.lists(st.integers(0, 10**12), max_size=50).map(lambda v: np.sort(np.array(v, np.int64))),
)


VALID = {L.TIMESTAMPS: np.arange(0, 400_000_000, 100_003, dtype=np.int64), L.TIMESTAMPS_UNIT: np.float64(1e-12),
         L.DETECTORS: (np.arange(3999) % 2).astype(np.uint8), L.NANOTIMES: (np.arange(3999) % 977).astype(np.int32),
         L.TCSPC_UNIT: np.float64(1e-12), L.TCSPC_NUM_BINS: np.int64(1000),
         L.LASER_REPETITION_RATE: np.float64(1e9), L.ACQUISITION_DURATION: np.float64(0.4),
         L.SETUP_DETECTOR_ID: np.array([0, 1], np.uint8)}
"""A small valid single-spot file (4 kHz-ish photons over 0.4 s), the starting point of the mutations."""


@st.composite
def photon_hdf5_like(draw) -> bytes:
    """An HDF5 file with a random subset of Photon-HDF5 paths: valid values, random ones, groups or none."""
    rnd = draw(st.randoms(use_true_random=False))
    fd, name = tempfile.mkstemp(suffix=".h5")
    os.close(fd)
    try:
        with h5py.File(name, "w") as f:
            for path in rnd.sample(PHOTON_PATHS, len(PHOTON_PATHS)):
                if path in f or any(p in f and isinstance(f[p], h5py.Dataset) for p in _parents(path)):
                    continue
                action = rnd.random()
                if path in VALID and action < 0.6:
                    f[path] = VALID[path]
                elif action < 0.75:
                    continue
                elif action < 0.8:
                    f.create_group(path)
                else:
                    f[path] = draw(VALUES)
            if rnd.random() < 0.5:
                f.attrs["format_name"] = np.bytes_(b"Photon-HDF5")
        return Path(name).read_bytes()
    finally:
        os.unlink(name)


def _parents(path: str) -> list[str]:
    parts = path.strip("/").split("/")
    return ["/" + "/".join(parts[:k]) for k in range(1, len(parts))]


def any_damaged_file(sources: dict[str, bytes]) -> st.SearchStrategy[bytes]:
    return st.one_of(truncated(sources), flipped(sources), random_bytes(), photon_hdf5_like())


def fuzz(surface: str, sources: dict[str, bytes], workdir: Path, examples: int) -> None:
    @settings(max_examples=examples, deadline=None, derandomize=examples < 100, database=None,
              suppress_health_check=list(HealthCheck))
    @given(data=any_damaged_file(sources))
    def one(data: bytes) -> None:
        path = workdir / "input.h5"
        path.write_bytes(data)
        check(surface, path, workdir)

    one()


# ----------------------------------------------------------------- the tests
@pytest.mark.parametrize("surface", SURFACES)
def test_fuzzed_input_files_never_crash_hang_or_print_a_traceback(surface, sources, workdir):
    fuzz(surface, sources, workdir, examples=17)
    assert OUTCOMES[surface].get(0, 0) >= 1 and OUTCOMES[surface].get(2, 0) >= 1, OUTCOMES[surface]  # both kinds met


@pytest.mark.slow
@pytest.mark.parametrize("surface", SURFACES)
def test_fuzzed_input_files_1000_examples_per_surface(surface, sources, workdir):
    fuzz(surface, sources, workdir, examples=1000)
    print(f"\n{surface}: exit codes {OUTCOMES[surface]}")


def test_the_guard_sees_a_failure(sources, workdir, monkeypatch):
    """The check is real: a command that raises (a bug), or exits 1, fails it."""
    path = workdir / "input.h5"
    path.write_bytes(sources["closed"])
    monkeypatch.setattr("labctl.storage.describe_file", lambda p: (_ for _ in ()).throw(AttributeError("bug")))
    with pytest.raises(AttributeError, match="bug"):
        check("info", path, workdir)
    monkeypatch.setattr("labctl.cli.cmd_info", lambda args: 1)
    with pytest.raises(AssertionError):
        check("info", path, workdir)
    path.unlink()

"""Start-up costs that the first run after an install, or every run, would pay (issue 13, "Faster start").

Speed itself is measured in ``benchmarks/bench_start.py``; these tests hold the causes.
"""

from __future__ import annotations

import ast
import copy
import gc
import importlib.metadata
import sys
from pathlib import Path

import pytest

from labctl.station.station import StationConfig

REPO = Path(__file__).resolve().parents[1]
KERNEL_FILES = ["labctl/acquisition/photon_kernels.py", "labctl/analysis/_kernels.py", "sim_backends/_kernels.py"]


def _njit_functions(path: Path) -> list[ast.FunctionDef]:
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for deco in node.decorator_list:
                target = deco.func if isinstance(deco, ast.Call) else deco
                name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
                if name in ("njit", "jit", "kernel"):
                    out.append(node)
    return out


def _expensive_constructs(fn: ast.FunctionDef) -> list[str]:
    """What in a numba kernel makes the first compile after an install seconds longer (measured)."""
    found = []
    for node in ast.walk(fn):
        if isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Subscript) and any(isinstance(n, ast.Slice) for n in ast.walk(target.slice)):
                    found.append(f"line {node.lineno}: slice assignment (numba compiles its shape-error message, ~3 s)")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in ("sort", "argsort"):
                found.append(f"line {node.lineno}: {node.func.attr} (numba's quicksort compiles in ~2 s)")
            if node.func.attr == "searchsorted":
                found.append(f"line {node.lineno}: searchsorted (~0.5 s to compile)")
    return found


@pytest.mark.parametrize("relative", KERNEL_FILES)
def test_numba_kernels_keep_to_constructs_that_compile_fast(relative):
    path = REPO / relative
    functions = _njit_functions(path)
    assert functions, f"{relative}: no numba kernels found (moved? update KERNEL_FILES)"
    problems = {fn.name: p for fn in functions if (p := _expensive_constructs(fn))}
    assert problems == {}, f"{relative}: {problems}"


def test_the_kernel_check_sees_a_slice_assignment_and_a_sort():
    fn = ast.parse("@njit(cache=True)\ndef k(a, b):\n    a[:3] = b\n    b.sort()\n    return np.searchsorted(a, 1)\n").body[0]
    assert len(_expensive_constructs(fn)) == 3


def test_resolving_a_station_file_reads_the_installed_packages_metadata_at_most_once(monkeypatch):
    calls = []
    real = importlib.metadata.entry_points

    def counting(*args, **kwargs):
        if str(kwargs.get("group")).startswith(("labctl", "None")):  # not other packages' (qcodes, networkx)
            calls.append(kwargs.get("group"))
        return real(*args, **kwargs)

    monkeypatch.setattr(importlib.metadata, "entry_points", counting)
    monkeypatch.syspath_prepend(str(REPO / "tests"))  # a new sys.path: what was read before may be stale
    StationConfig.from_dict(copy.deepcopy(StationConfig.load().data))
    assert len(calls) <= 1, f"importlib.metadata.entry_points called {len(calls)} times: {calls}"


def test_the_command_line_freezes_its_objects_before_the_interpreter_exits(monkeypatch, capsys):
    from labctl import cli

    frozen = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(True))
    monkeypatch.setattr(sys, "argv", ["labctl", "info", str(REPO / "no such file.h5")])
    assert cli.main() == 2  # the process's own command line: frozen once done
    assert frozen == [True]
    assert cli.main(["info", str(REPO / "no such file.h5")]) == 2  # called from Python (tests): not frozen
    assert frozen == [True]
    capsys.readouterr()


def test_a_core_command_runs_without_reading_the_plugin_entry_points(monkeypatch, capsys):
    from labctl import cli

    read = []
    monkeypatch.setattr(cli, "plugin_commands", lambda: read.append(True) or [])
    assert cli.main(["-v", "info", str(REPO / "no such file.h5")]) == 2
    assert read == []
    with pytest.raises(SystemExit):
        cli.main(["--help"])  # the help lists every command: plugins read
    assert read == [True]
    capsys.readouterr()

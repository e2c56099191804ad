"""The import contract of DESIGN.md ("Layout"), checked statically: every ``import`` statement in
every module, lazy ones inside functions included, so a layer crossing that runs only on some path
(``labctl gui`` once imported ``gui.main_window`` inside a function) still fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QT = {"PyQt6", "pyqtgraph"}
FORBIDDEN = {
    "labctl": QT | {"gui", "drivers", "sim_backends"},
    "drivers": QT | {"gui", "sim_backends"},
    "sim_backends": QT | {"gui", "drivers"},
}
"""Top-level packages each layer may not import (gui may import anything)."""


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in ``path``, at any depth of the syntax tree."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def crossings(package: str) -> list[str]:
    """``file:line imports module`` for every import of ``package`` that its layer forbids."""
    banned = FORBIDDEN[package]
    return [f"{path.relative_to(ROOT)}:{line} imports {module}"
            for path in sorted((ROOT / package).rglob("*.py"))
            for line, module in imported_modules(path) if module.split(".")[0] in banned]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_layer_imports_what_it_may_not(package: str) -> None:
    assert crossings(package) == []


def test_the_contract_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    module = tmp_path / "lazy.py"
    module.write_text("def run():\n    from gui.main_window import run_app\n    import PyQt6.QtCore\n")
    assert imported_modules(module) == [(2, "gui.main_window"), (3, "PyQt6.QtCore")]


SHARED = {"__init__", "errors", "blocks", "run", "interfaces", "signals"}
"""The only modules at labctl/'s top level: what every room uses (README, "Layout")."""
ROOMS = {
    "storage": set(),
    "analysis": {"storage"},
    "station": {"storage"},
    "acquisition": {"station", "storage", "analysis"},
    "formats": {"acquisition", "storage"},
    "processes": {"acquisition", "analysis", "station", "storage"},
    "cli": {"acquisition", "analysis", "formats", "processes", "station", "storage"},
}
"""The rooms of labctl/ and the rooms each may import (the shared top-level modules: all of them)."""


def room_crossings(core: Path) -> list[str]:
    """``file:line imports module`` for every import in ``core`` (a labctl/ tree) that its room may not make."""
    found = []
    for path in sorted(core.rglob("*.py")):
        parts = path.relative_to(core).parts
        room = parts[0] if len(parts) > 1 else None  # None: a shared top-level module
        allowed = SHARED if room is None else SHARED | ROOMS.get(room, set()) | {room}
        for line, module in imported_modules(path):
            names = module.split(".")
            if names[0] == "labctl" and len(names) > 1 and names[1] not in allowed:
                found.append(f"{path.relative_to(core.parent)}:{line} imports {module}")
    return found


def test_labctl_top_level_holds_only_the_shared_modules() -> None:
    """Everything else lives in its room, so a newcomer finds it from the tree."""
    core = ROOT / "labctl"
    assert sorted(p.stem for p in core.glob("*.py")) == sorted(SHARED)
    assert sorted(p.name for p in core.iterdir() if (p / "__init__.py").is_file()) == sorted(set(ROOMS) | {"stations"})


def test_each_room_imports_only_the_rooms_below_it() -> None:
    assert room_crossings(ROOT / "labctl") == []


def test_the_room_contract_sees_an_upward_import(tmp_path: Path) -> None:
    core = tmp_path / "labctl"
    (core / "station").mkdir(parents=True)
    (core / "station" / "station.py").write_text("def build():\n    from labctl.acquisition.engine import AcquisitionEngine\n")
    (core / "blocks.py").write_text("from labctl.station.station import Station\n")
    assert room_crossings(core) == ["labctl/blocks.py:1 imports labctl.station.station",
                                    "labctl/station/station.py:2 imports labctl.acquisition.engine"]


def test_driver_and_simulator_transcriptions_of_the_vendor_headers_agree() -> None:
    """Each simulated library holds its own copy of its header's facts (nothing from drivers/): where
    both copies name the same fact, they must agree, or one of them is wrong."""
    from drivers.andor.atmcd import CODE_OF_NAME, CONSTANTS as ANDOR
    from drivers.andor_shamrock import shamrock as S
    from drivers.qutag.tdcbase import CONSTANTS as QUTAG, LIMITS
    from sim_backends import atmcd_header as A, qutag_header as Q, shamrock_header as SH

    for name in ("DRV_SUCCESS", "DRV_ERROR_ACK", "DRV_NO_NEW_DATA", "DRV_GENERAL_ERRORS", "DRV_ACQUIRING", "DRV_IDLE",
                 "DRV_NOT_INITIALIZED", "DRV_INVALID_MODE"):
        assert getattr(A, name) == CODE_OF_NAME[name], name
    assert A.DRV_P_INVALID == {n: CODE_OF_NAME[f"DRV_P{n}INVALID"] for n in range(1, 7)}
    assert (A.SHUTTER_MODE_CLOSED, A.SHUTTER_TTL_HIGH_OPEN) == (ANDOR["shutter_modes"]["closed"], ANDOR["shutter_ttl_type"])
    assert Q.STREAM_CHANNEL_OF_INPUT == QUTAG["stream_channel_of_input"]
    assert Q.INPUTS == QUTAG["inputs"] and Q.DELAY_ARRAY_LENGTH == QUTAG["delay_array_length"]
    assert (Q.SYNC_DIVIDER_VALUES, Q.THRESHOLD_V, Q.DELAY_PS, Q.EXPOSURE_TIME_MS, Q.BUFFER_SIZE_TAGS, Q.CHANNEL_MASK_MAX,
            Q.DEAD_TIME_PS) == tuple(LIMITS[k] for k in ("sync_divider_values", "threshold_v", "delay_ps",
                                                          "exposure_time_ms", "buffer_size_tags", "channel_mask_max",
                                                          "dead_time_ps"))
    code_of_suffix = {suffix: code for code, suffix in S.STATUS_SUFFIXES.items()}
    assert set(SH.RETURN_DESCRIPTIONS) == set(S.STATUS_SUFFIXES)
    assert (SH.SUCCESS, SH.COMMUNICATION_ERROR, SH.ERROR, SH.NOT_INITIALIZED, SH.NOT_AVAILABLE) == (
        S.SUCCESS, *(code_of_suffix[n] for n in ("COMMUNICATION_ERROR", "ERROR", "NOT_INITIALIZED", "NOT_AVAILABLE")))
    assert SH.P_INVALID == {n: code_of_suffix[f"P{n}INVALID"] for n in range(1, 6)}
    assert SH.PREFIXES == S.PREFIXES
    assert {g: SH.RENAMED.get(g, {}) for g in S.RENAMED} == S.RENAMED
    assert (SH.SLIT_INDICES, SH.SHUTTER_MODES, SH.SLIT_WIDTH_UM, SH.FOCAL_LENGTH_UNIT_M) == (
        S.CONSTANTS["slit_indices"], S.CONSTANTS["shutter_modes"], S.LIMITS["slit_width_um"],
        S.CONSTANTS["focal_length_unit_m"])

"""The drivers' shared vendor layer: drivers without ctypes, one error base, one loader, one function check."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from drivers.andor.atmcd import AndorError, AndorSDK, load_atmcd
from drivers.andor.ixon import CameraSettingError
from drivers.andor_shamrock.shamrock import ShamrockError, ShamrockSDK, load_shamrock
from drivers.errors import DriverError
from drivers.function_generator import FunctionGeneratorError
from drivers.qutag.tdcbase import QuTAGError, TDCBase, load_tdcbase
from labctl.errors import InstrumentError, VendorLibraryNotFound

DRIVERS = Path(__file__).resolve().parent.parent / "drivers"
PLAIN_PYTHON_DRIVERS = [
    *sorted((DRIVERS / "andor").glob("ixon*.py")),
    DRIVERS / "qutag" / "driver.py",
    DRIVERS / "andor_shamrock" / "kymera.py",
]
CTYPES_NAMES = {"byref", "pointer", "POINTER", "create_string_buffer", "cast", "sizeof"}


def ctypes_uses(path: Path) -> list[str]:
    """Every import of ctypes, ``.ctypes`` attribute (numpy's) and ctypes helper name in a source file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            found += [f"line {node.lineno}: import {m}" for m in modules if m.split(".")[0] == "ctypes"]
        elif isinstance(node, ast.Attribute) and node.attr == "ctypes":
            found.append(f"line {node.lineno}: .ctypes")
        elif isinstance(node, ast.Name) and (node.id in CTYPES_NAMES or re.fullmatch(r"c_[a-z0-9_]+", node.id)):
            found.append(f"line {node.lineno}: {node.id}")
    return found


@pytest.mark.parametrize("path", PLAIN_PYTHON_DRIVERS, ids=lambda p: p.name)
def test_drivers_never_touch_ctypes(path):
    """STYLE.md: "a driver class in plain Python that never touches ctypes directly"."""
    assert ctypes_uses(path) == [], path


@pytest.mark.parametrize("cls", [AndorError, QuTAGError, ShamrockError, CameraSettingError, FunctionGeneratorError])
def test_every_driver_error_shares_one_base_that_shows_qcodes_context(cls):
    assert issubclass(cls, DriverError) and issubclass(cls, InstrumentError)
    assert "__str__" not in vars(cls), f"{cls.__name__} overrides __str__ again"
    error = DriverError("SetEMCCDGain: DRV_P1INVALID (20066)")
    error.args = error.args + ("setting cam_em_gain to 5",)  # what QCoDeS does on a failed set
    assert str(error) == "SetEMCCDGain: DRV_P1INVALID (20066); setting cam_em_gain to 5"


@pytest.mark.parametrize(
    ("load", "file_name", "env_var", "simulated"),
    [(load_atmcd, "libandor.so", "LABCTL_ANDOR_LIBRARY", "SimAndorSDK"),
     (load_tdcbase, "libtdcbase.so", "LABCTL_QUTAG_LIBRARY", "SimTDCBase"),
     (load_shamrock, "libatspectrograph.so", "LABCTL_SHAMROCK_LIBRARY", "SimShamrock")],
)
def test_the_three_loaders_are_one_and_say_how_to_fix_a_missing_library(load, file_name, env_var, simulated):
    path = f"/nonexistent/{file_name}"
    with pytest.raises(VendorLibraryNotFound) as info:
        load(path)
    pattern = (
        rf"^.* '{re.escape(file_name)}'.* could not be loaded: tried '{re.escape(path)}' \(.+\)\. Install .+, then pass "
        rf"library_path='/path/to/{re.escape(file_name)}', or set {env_var}=/path/to/{re.escape(file_name)}, or put "
        rf"its folder on the library search path; for a simulated instrument pass library={simulated}\(scene\)$"
    )
    assert re.match(pattern, str(info.value)), str(info.value)


@pytest.mark.parametrize(
    ("wrap", "message"),
    [(AndorSDK, r"^Andor library <.*Partial object at .*> lacks AbortAcquisition, CoolerOFF, .*: an Andor SDK2 library"),
     (TDCBase, r"^quTAG library \(standard generation\) <.*Partial object at .*> lacks TDC_checkFeatures, .*: a tdcbase library"),
     (ShamrockSDK, r"^spectrograph library \(shamrock\) <.*Partial object at .*> lacks ShamrockAutoSlitIsPresent, .*: a newer")],
)
def test_a_library_without_the_declared_functions_is_refused_by_the_one_check(wrap, message):
    class Partial:
        def Initialize(self, *args):  # noqa: N802 - vendor names
            return 0

        ShamrockInitialize = Initialize

    with pytest.raises(InstrumentError, match=message):
        wrap(Partial())

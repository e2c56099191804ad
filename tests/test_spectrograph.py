"""Kymera 193i driver on the simulated spectrograph SDK: calibration, settings, errors, loading."""

from __future__ import annotations

import copy
import math
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import drivers.andor_shamrock.kymera as kymera_module
from drivers.andor_shamrock import Kymera193i, ShamrockError
from drivers.andor_shamrock.shamrock import FUNCTIONS, vendor_names
from labctl.errors import InstrumentError, VendorLibraryNotFound
from labctl.interfaces import Spectrograph
from labctl.station.station import Station, StationConfig
from sim_backends.shamrock_sim import SimATSpectrograph, SimShamrock

# The Kymera 193i as the test sees it: focal length, full deviation angle (2 x 13 deg),
# the iXon Ultra 888's 1024 pixels of 13 um.
FOCAL_LENGTH_MM = 193.0
DEVIATION_DEG = 26.0
PIXELS = 1024
PIXEL_UM = 13.0
LINES_PER_MM = {1: 150.0, 2: 600.0, 3: 1200.0}


def grating_equation_axis_nm(lines_per_mm: float, center_nm: float, pixels: int = PIXELS,
                             pixel_um: float = PIXEL_UM) -> np.ndarray:
    """Independent Czerny-Turner calibration: m*lambda = d (sin a + sin b), a - b = D at the centre."""
    d_nm = 1e6 / lines_per_mm
    deviation = math.radians(DEVIATION_DEG)
    # sin(a) + sin(a - D) = lambda_c / d  <=>  2 sin(a - D/2) cos(D/2) = lambda_c / d
    incidence = deviation / 2 + math.asin(center_nm / d_nm / (2 * math.cos(deviation / 2)))
    out = []
    for i in range(pixels):
        x_mm = (i + 0.5 - pixels / 2) * pixel_um / 1000
        diffraction = incidence - deviation + math.atan2(x_mm, FOCAL_LENGTH_MM)
        out.append(d_nm * (math.sin(incidence) + math.sin(diffraction)))
    return np.array(out)


class SceneStub:
    """The shared scene as far as the spectrograph is concerned: an object that takes attributes."""


@dataclass
class Rig:
    kymera: Kymera193i
    sim: SimShamrock
    scene: SceneStub


@pytest.fixture
def make_rig():
    built: list[Kymera193i] = []

    def factory(library_cls: type = SimShamrock, **sim_options) -> Rig:
        scene = SceneStub()
        sim = library_cls(scene, **sim_options)
        kymera = Kymera193i(f"kymera_test_{len(built)}", library=sim)
        built.append(kymera)
        return Rig(kymera, sim, scene)

    yield factory
    for kymera in built:
        kymera.close()


@pytest.fixture
def rig(make_rig) -> Rig:
    return make_rig()


# --- calibration ------------------------------------------------------------------------------
@pytest.mark.parametrize(("grating", "center_nm"), [(1, 600.0), (1, 612.5), (2, 550.0), (3, 620.0), (3, 1000.0)])
def test_calibration_matches_the_grating_equation_per_pixel(rig, grating, center_nm):
    rig.kymera.grating(grating)
    rig.kymera.center_wavelength_nm(center_nm)
    axis = rig.kymera.wavelength_axis_nm()
    expected = grating_equation_axis_nm(LINES_PER_MM[grating], center_nm)
    assert axis.shape == (PIXELS,) and axis.dtype == np.float64
    np.testing.assert_allclose(axis, expected, rtol=0, atol=0.01)


def test_dispersion_is_about_0p4_nm_per_pixel_at_150_lines_near_600_nm(rig):
    rig.kymera.grating(1)
    rig.kymera.center_wavelength_nm(600)
    axis = rig.kymera.wavelength_axis_nm()
    per_pixel = np.diff(axis)[PIXELS // 2 - 10: PIXELS // 2 + 10].mean()
    assert 0.38 < per_pixel < 0.46, per_pixel
    assert np.all(np.diff(axis) > 0)  # wavelength grows with pixel index
    assert axis[PIXELS // 2 - 1] < 600 < axis[PIXELS // 2]


def test_dispersion_is_about_0p05_nm_per_pixel_at_1200_lines(rig):
    rig.kymera.grating(3)
    per_pixel = np.diff(rig.kymera.wavelength_axis_nm()).mean()
    assert 0.045 < per_pixel < 0.06, per_pixel  # ~4 nm/mm x 13 um


def test_energy_axis_is_hc_over_lambda(rig):
    np.testing.assert_allclose(rig.kymera.energy_axis_ev(), 1239.84198 / rig.kymera.wavelength_axis_nm())


def test_wavelength_axis_with_other_geometry_sets_it_first(rig):
    axis = rig.kymera.wavelength_axis_nm(512, 26.0)
    assert axis.shape == (512,)
    assert (rig.sim.number_pixels, rig.sim.pixel_width_um) == (512, 26.0)
    assert (rig.kymera.number_pixels(), rig.kymera.pixel_width_um()) == (512, 26.0)
    np.testing.assert_allclose(axis, grating_equation_axis_nm(150.0, 600.0, 512, 26.0), atol=0.01)


def test_construction_sets_the_camera_geometry_1024_pixels_of_13_um():
    sim = SimShamrock()
    sim.number_pixels, sim.pixel_width_um = 2000, 15.0
    kymera = Kymera193i("kymera_geometry", library=sim)
    try:
        assert (sim.number_pixels, sim.pixel_width_um) == (1024, 13.0)
        assert kymera.wavelength_axis_nm().shape == (1024,)
    finally:
        kymera.close()


def test_scene_gets_the_calibration_whenever_grating_wavelength_or_pixels_change(rig):
    k, scene = rig.kymera, rig.scene
    np.testing.assert_array_equal(scene.spectrograph_calibration_nm, k.wavelength_axis_nm())
    for change in (lambda: k.grating(2), lambda: k.center_wavelength_nm(640), lambda: k.number_pixels(256),
                   lambda: k.pixel_width_um(16.0)):
        before = scene.spectrograph_calibration_nm.copy()
        change()
        assert not np.array_equal(before, scene.spectrograph_calibration_nm)
        np.testing.assert_array_equal(scene.spectrograph_calibration_nm, k.wavelength_axis_nm())


def test_driver_satisfies_the_spectrograph_interface(rig):
    assert isinstance(rig.kymera, Spectrograph)
    assert rig.kymera.wavelength_axis_nm(1024, 13.0).shape == (1024,)


# --- settings -----------------------------------------------------------------------------------
def test_settings_reach_the_device_and_read_back(rig):
    k, sim = rig.kymera, rig.sim
    k.grating(2)
    k.center_wavelength_nm(655.5)
    k.slit_width_um(50)
    k.shutter("open")
    assert (sim.grating, sim.center_nm, sim.slit_width_um[2], sim.shutter_mode) == (2, pytest.approx(655.5), 50.0, 1)
    assert (k.grating(), k.center_wavelength_nm(), k.slit_width_um(), k.shutter()) == (2, 655.5, 50.0, "open")


def test_grating_info_and_optics_come_from_the_device(rig):
    info = rig.kymera.grating_info()
    assert {g: i["lines_per_mm"] for g, i in info.items()} == LINES_PER_MM
    assert info[1]["blaze"] == "500nm"
    assert rig.kymera.focal_length_mm() == FOCAL_LENGTH_MM
    assert rig.kymera.get_idn()["serial"] == "KY193-SIM01"


def test_grating_change_keeps_a_reachable_wavelength_and_clamps_one_beyond_reach(rig):
    k = rig.kymera
    k.center_wavelength_nm(610)
    k.grating(3)
    assert k.center_wavelength_nm.cache.get() == pytest.approx(610)
    k.grating(1)
    k.center_wavelength_nm(5000)
    k.grating(3)
    high = k.wavelength_limits_nm(3)[1]
    assert k.center_wavelength_nm.cache.get() == pytest.approx(high, abs=1e-3)


def test_snapshot_needs_no_device(rig):
    rig.sim._Close()  # from now on every vendor call would fail
    snapshot = rig.kymera.snapshot(update=False)
    assert snapshot["parameters"]["grating"]["value"] == 1
    assert snapshot["parameters"]["center_wavelength_nm"]["value"] == 600.0


# --- bad settings and vendor errors ----------------------------------------------------------------
def _sim_state(sim: SimShamrock) -> tuple:
    return sim.grating, sim.center_nm, dict(sim.slit_width_um), sim.shutter_mode, sim.number_pixels


OUT_OF_RANGE = [
    # (parameter, value, grating in force, regex for what is allowed)
    ("center_wavelength_nm", 2000, 3, r"2000 nm is outside the range of grating 3 \(1200 l/mm\): must be between 0 and 1043\.9 nm"),
    ("center_wavelength_nm", 9000, 1, r"grating 1 \(150 l/mm\): must be between 0 and 8350\.8 nm"),
    ("center_wavelength_nm", -5, 2, r"grating 2 \(600 l/mm\): must be between 0 and"),
    ("grating", 0, 1, r"0 is invalid: must be between 1 and 3"),
    ("grating", 4, 1, r"4 is invalid: must be between 1 and 3"),
    ("slit_width_um", 5, 1, r"5 is invalid: must be between 10(\.0)? and 2500(\.0)?"),
    ("slit_width_um", 3000, 1, r"must be between 10(\.0)? and 2500(\.0)?"),
    ("shutter", "ajar", 1, r"'ajar' is not in \{"),
]


@pytest.mark.parametrize(("name", "value", "grating", "allowed"), OUT_OF_RANGE,
                         ids=[f"{n}={v}" for n, v, *_ in OUT_OF_RANGE])
def test_out_of_range_setting_names_parameter_value_and_allowed_and_sends_nothing(rig, name, value, grating, allowed):
    rig.kymera.grating(grating)
    param = rig.kymera.parameters[name]
    before_cache, before_sim, n_calls = param.cache.get(), _sim_state(rig.sim), len(rig.sim.calls)
    with pytest.raises(ValueError) as info:
        param(value)
    message = str(info.value)
    assert param.full_name in message and re.search(allowed, message), message
    assert rig.sim.calls[n_calls:] == []  # nothing reached the library
    assert _sim_state(rig.sim) == before_sim
    assert param.cache.get() == before_cache


def test_injected_vendor_code_becomes_shamrock_error_with_its_name(rig):
    rig.sim.inject_error("SetGrating", 20267)
    with pytest.raises(ShamrockError) as info:
        rig.kymera.grating(2)
    error = info.value
    assert (error.function, error.code, error.code_name) == ("ShamrockSetGrating", 20267, "SHAMROCK_P2INVALID")
    assert "ShamrockSetGrating: SHAMROCK_P2INVALID (20267): The second parameter was out of range" in str(error)
    assert rig.kymera.grating.cache.get() == 1 and rig.sim.grating == 1


@pytest.mark.parametrize(
    ("function", "inputs", "code_name"),
    [("SetWavelength", (0, 99999.0), "SHAMROCK_P2INVALID"), ("SetAutoSlitWidth", (0, 2, 5.0), "SHAMROCK_P3INVALID"),
     ("SetGrating", (0, 9), "SHAMROCK_P2INVALID"), ("GetGrating", (3,), "SHAMROCK_P1INVALID"),
     ("GetCalibration", (0, 10), "SHAMROCK_P3INVALID")],
)
def test_sim_validates_like_the_device_when_the_driver_is_bypassed(rig, function, inputs, code_name):
    before = _sim_state(rig.sim)
    with pytest.raises(ShamrockError) as info:
        rig.kymera._sdk.call(function, *inputs)
    assert info.value.code_name == code_name
    assert _sim_state(rig.sim) == before


def test_sim_refuses_calls_before_initialize():
    sim = SimShamrock()
    assert sim.ShamrockSetGrating(0, 2) == 20275
    assert sim.grating == 1


def test_unknown_device_index_raises_and_registers_nothing():
    sim = SimShamrock()
    with pytest.raises(InstrumentError, match=r"device = 1: the spectrograph SDK found 1 spectrograph\(s\); allowed: 0..0"):
        Kymera193i("kymera_bad_device", library=sim, device=1)
    assert not Kymera193i.exist("kymera_bad_device")
    assert sim.initialized is False


def test_close_releases_the_sdk(make_rig):
    rig = make_rig()
    rig.kymera.close()
    assert rig.sim.initialized is False


def test_spectrograph_without_shutter_has_no_shutter_parameter(make_rig):
    rig = make_rig(has_shutter=False)
    assert "shutter" not in rig.kymera.parameters and "slit_width_um" in rig.kymera.parameters


# --- library generations and loading --------------------------------------------------------------
def test_atspectrograph_library_works_the_same_with_its_own_names(make_rig):
    rig = make_rig(SimATSpectrograph)
    assert rig.kymera.sdk_generation() == "atspectrograph"
    assert rig.kymera.grating_info()[2]["blaze"] == "500nm"
    rig.kymera.grating(2)
    assert rig.sim.grating == 2
    np.testing.assert_allclose(rig.kymera.wavelength_axis_nm(), grating_equation_axis_nm(600.0, 600.0), atol=0.01)
    rig.sim.inject_error("ATSpectrographSetWavelength", 20267)
    with pytest.raises(ShamrockError, match="ATSpectrographSetWavelength: ATSPECTROGRAPH_P2INVALID"):
        rig.kymera.center_wavelength_nm(610)


def test_atspectrograph_renamed_function_takes_an_injected_error_by_its_exported_name(make_rig):
    """``ATSpectrographSetSlitWidth`` is ``ShamrockSetAutoSlitWidth`` renamed (atspectrograph.h): an error
    injected under the exported name must reach that function (it once waited under "SetSlitWidth")."""
    rig = make_rig(SimATSpectrograph)
    rig.sim.inject_error("ATSpectrographSetSlitWidth", 20249)
    with pytest.raises(ShamrockError, match=r"ATSpectrographSetSlitWidth: ATSPECTROGRAPH_ERROR \(20249\)"):
        rig.kymera.slit_width_um(50)
    assert rig.sim.slit_width_um[2] == 100.0


def test_prototypes_sim_and_driver_use_the_same_function_names():
    source = Path(kymera_module.__file__).read_text()
    called = set(re.findall(r'call\(\s*"(\w+)"', source))
    for generation, sim_cls in (("shamrock", SimShamrock), ("atspectrograph", SimATSpectrograph)):
        assert called <= set(FUNCTIONS[generation]), called - set(FUNCTIONS[generation])
        sim_names = {n for n in dir(sim_cls) if n.startswith(("Shamrock", "ATSpectrograph"))}
        assert sim_names == vendor_names(generation), sim_names ^ vendor_names(generation)


def test_missing_vendor_library_raises_vendor_library_not_found_naming_it():
    with pytest.raises(VendorLibraryNotFound) as info:
        Kymera193i("spec", library_path="/nonexistent/ShamrockCIF64.dll")
    message = str(info.value)
    for text in ("ShamrockCIF64.dll", "/nonexistent/ShamrockCIF64.dll", "LABCTL_SHAMROCK_LIBRARY", "library_path"):
        assert text in message, (text, message)
    assert not Kymera193i.exist("spec")


def test_package_imports_without_the_vendor_library():
    env = {**os.environ, "LABCTL_SHAMROCK_LIBRARY": "/nonexistent/atspectrograph.so"}
    code = "import drivers.andor_shamrock as s; print(s.Kymera193i.__name__)"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["Kymera193i"]


# --- in a station -----------------------------------------------------------------------------------
def test_station_builds_the_simulated_kymera_on_the_shared_scene():
    data = copy.deepcopy(StationConfig.load().data)
    data["instruments"]["spectrograph"] = {
        "driver": "drivers.andor_shamrock.Kymera193i",
        "library": "sim_backends.shamrock_sim.SimShamrock",
        "settings": {"grating": 1, "center_wavelength_nm": 600.0, "slit_width_um": 50},
    }
    with Station(StationConfig.from_dict(data, source="<test station>")) as station:
        spectrograph = station.instruments["spectrograph"]
        axis = spectrograph.wavelength_axis_nm(1024, 13.0)
        np.testing.assert_array_equal(station.scene.spectrograph_calibration_nm, axis)
        assert station.snapshot()["instruments"]["spectrograph"]["parameters"]["slit_width_um"]["value"] == 50

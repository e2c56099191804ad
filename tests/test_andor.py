"""iXon Ultra 888 driver on the simulated SDK2 library: settings, guards, errors, cooling, frames."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from drivers.andor import AndorError, CameraSettingError, IXonUltra888
from drivers.andor.atmcd import PROTOTYPES, STATUS_NAMES, TEMPERATURE_STATES
from labctl.blocks import ChannelMap
from labctl.errors import VendorLibraryNotFound
from labctl.interfaces import Camera
from sim_backends.andor_sim import SimAndorSDK
from sim_backends.scene import Scene
from sim_backends.spectra import HC_EV_NM, default_wavelength_axis_nm

WIRING = ChannelMap(laser_sync=0, spad_a=1, spad_b=2, frame_marker=3)
PS_PER_S = 10**12
STEP_PS = PS_PER_S // 10  # the scene is advanced in 100 ms steps, as a tagger poll would
QD = {"emitter": {"blinking": {"enabled": False}, "p_trap": {"mode": "fixed", "value": 0.0}}}


class FakeClock:
    """The cooler's wall clock: advanced by hand, or by ``tick_s`` at every read, plus ``follow()`` if set."""

    def __init__(self, tick_s: float = 0.0) -> None:
        self.now_s = 100.0
        self.tick_s = tick_s
        self.follow: Callable[[], float] | None = None

    def __call__(self) -> float:
        self.now_s += self.tick_s
        return self.now_s + (self.follow() if self.follow is not None else 0.0)

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


@dataclass
class Rig:
    cam: IXonUltra888
    sim: SimAndorSDK
    scene: Scene
    clock: FakeClock

    def cool_down(self) -> None:
        self.cam.cooler(True)
        self.clock.advance(10.0)
        assert self.cam.temperature_state() == "stabilized"

    def record(self, duration_s: float, frame_rate_hz: float = 10.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Arm the camera, start the frame clock, advance the scene in 100 ms steps reading after each.

        Returns (marker times ps, frame indices, frames).
        """
        self.cam.start_frames()
        self.scene.set_frame_clock(frame_rate_hz, True)
        markers, indices, frames = [], [], []
        start = self.scene.generated_until_ps
        for k in range(1, int(round(duration_s * PS_PER_S / STEP_PS)) + 1):
            block = self.scene.generate(start + k * STEP_PS)
            markers.append(block.timestamps[block.channels == WIRING.frame_marker])
            idx, fr = self.cam.read_frames()
            indices.append(idx)
            frames.append(fr)
        return np.concatenate(markers), np.concatenate(indices), np.concatenate(frames)


@pytest.fixture
def make_rig():
    built: list[Rig] = []

    def factory(config: dict | None = None, seed: int = 1, **sim_options) -> Rig:
        scene = Scene(QD if config is None else config, wiring=WIRING, seed=seed)
        clock = FakeClock()
        sim = SimAndorSDK(scene, clock=clock, **sim_options)
        cam = IXonUltra888(f"ixon_test_{len(built)}", library=sim, warmup_poll_s=0.0, warmup_timeout_s=5.0)
        built.append(Rig(cam, sim, scene, clock))
        return built[-1]

    yield factory
    for rig in built:
        if IXonUltra888.is_valid(rig.cam):
            rig.clock.tick_s = 0.05  # let a cooled sensor warm up during close()
            rig.cam.close()


@pytest.fixture
def rig(make_rig) -> Rig:
    return make_rig()


def calls_of(sim: SimAndorSDK, name: str) -> list[tuple]:
    return [args for function, args in sim.calls if function == name]


# --- identity, interface, layer ---------------------------------------------------------
def test_driver_satisfies_the_camera_interface(rig):
    assert isinstance(rig.cam, Camera)


def test_sim_implements_every_declared_sdk_function():
    assert all(callable(getattr(SimAndorSDK, name, None)) for name in PROTOTYPES)


def test_status_table_names_success_and_the_temperature_states():
    assert STATUS_NAMES[20002] == "DRV_SUCCESS"
    assert STATUS_NAMES[20066] == "DRV_P1INVALID" and STATUS_NAMES[20990] == "DRV_ERROR_NOCAMERA"
    assert set(TEMPERATURE_STATES) == {20034, 20035, 20036, 20037, 20040}


def test_detector_facts_are_read_from_the_library(rig):
    assert rig.cam.detector_shape() == (1024, 1024)
    assert rig.cam.pixel_width_um() == 13.0
    assert rig.cam.temperature_range_c() == (-100, 30)
    assert rig.cam.IDN()["vendor"] == "Andor"


def test_construction_brings_the_camera_to_the_initial_values(rig):
    sim = rig.sim
    assert (sim.read_mode, sim.acquisition_mode, sim.trigger_mode) == (0, 5, 1)
    assert sim.exposure_s == pytest.approx(0.05)
    assert (sim.em_advanced, sim.em_gain, sim.shutter[1]) == (False, 1, 0)
    assert sim.image == (1, 1, 1, 1024, 1, 1024) and sim.single_track == (512, 20)
    assert sim.setpoint_c == -80 and sim.cooler_on is False  # the cooler is left as found


def test_missing_vendor_library_raises_naming_the_library():
    with pytest.raises(VendorLibraryNotFound) as info:
        IXonUltra888("cam_missing", library_path="/nonexistent/libandor.so")
    assert "/nonexistent/libandor.so" in str(info.value)
    assert "LABCTL_ANDOR_LIBRARY" in str(info.value)


# --- settings ---------------------------------------------------------------------------------
def test_settings_reach_the_library(rig):
    cam, sim = rig.cam, rig.sim
    cam.exposure_s(0.12)
    cam.kinetic_cycle_time_s(0.2)
    cam.number_kinetics(7)
    cam.frame_transfer(True)
    cam.acquisition_mode("kinetic")
    cam.trigger_mode("external_exposure")
    cam.shutter("closed")
    cam.read_mode("single_track")
    cam.single_track_centre_row(300)
    cam.single_track_height_rows(11)
    cam.set_image_area(hbin=4, vbin=2, hstart=1, hend=512, vstart=101, vend=200)
    cam.temperature_setpoint_c(-60)
    cam.cooler(True)
    assert sim.exposure_s == pytest.approx(0.12) and sim.kinetic_cycle_s == pytest.approx(0.2)
    assert (sim.number_kinetics, sim.frame_transfer, sim.acquisition_mode, sim.trigger_mode) == (7, True, 3, 7)
    assert sim.shutter == (1, 2, 0, 0)
    assert sim.read_mode == 3 and sim.single_track == (300, 11)
    assert sim.image == (4, 2, 1, 512, 101, 200)
    assert (sim.setpoint_c, sim.cooler_on) == (-60, True)
    cam.read_mode("image")
    assert cam.frame_shape() == (50, 128)


def test_em_gain_above_300_without_advanced_mode_is_refused_naming_the_reason(rig):
    rig.cam.em_gain(200)
    with pytest.raises(ValueError) as info:
        rig.cam.em_gain(1000)
    message = str(info.value)
    for text in ("em_gain", "1000", "300", "em_advanced", "damage", "nothing was sent"):
        assert text in message
    assert rig.sim.em_gain == 200 and rig.cam.em_gain() == 200
    assert calls_of(rig.sim, "SetEMCCDGain")[-1] == (200,)


def test_em_gain_above_300_is_allowed_once_advanced_mode_is_on(rig):
    rig.cam.em_advanced(True)
    rig.cam.em_gain(800)
    assert (rig.sim.em_advanced, rig.sim.em_gain) == (True, 800)
    with pytest.raises(ValueError, match="1001"):
        rig.cam.em_gain(1001)
    with pytest.raises(CameraSettingError, match="em_gain is 800"):
        rig.cam.em_advanced(False)
    assert rig.sim.em_advanced is True


@pytest.mark.parametrize("exposure_s", [0, 0.0, -0.1, float("nan"), True])
def test_exposure_of_zero_or_less_is_refused_and_nothing_sent(rig, exposure_s):
    sent = len(calls_of(rig.sim, "SetExposureTime"))
    with pytest.raises(ValueError, match="must be > 0"):
        rig.cam.exposure_s(exposure_s)
    assert len(calls_of(rig.sim, "SetExposureTime")) == sent
    assert rig.cam.exposure_s() == 0.05


def test_temperature_set_point_below_the_range_is_refused_and_nothing_sent(rig):
    sent = len(calls_of(rig.sim, "SetTemperature"))
    with pytest.raises(ValueError) as info:
        rig.cam.temperature_setpoint_c(-150)
    assert "-150" in str(info.value) and "-100" in str(info.value) and "temperature_setpoint_c" in str(info.value)
    assert len(calls_of(rig.sim, "SetTemperature")) == sent and rig.sim.setpoint_c == -80


def test_image_crop_that_is_not_a_multiple_of_the_binning_is_refused_and_nothing_sent(rig):
    sent = len(calls_of(rig.sim, "SetImage"))
    with pytest.raises(CameraSettingError, match="multiple of image_hbin = 3"):
        rig.cam.set_image_area(hbin=3, hstart=1, hend=100)
    with pytest.raises(CameraSettingError, match="image_vstart = 900 must be <= image_vend = 899"):
        rig.cam.set_image_area(vstart=900, vend=899)
    with pytest.raises(CameraSettingError, match="crop height 1024 must be a multiple of image_vbin = 3"):
        rig.cam.image_vbin(3)
    assert len(calls_of(rig.sim, "SetImage")) == sent
    assert (rig.cam.image_hbin(), rig.cam.image_vbin(), rig.cam.image_hend()) == (1, 1, 1024)
    assert rig.sim.image == (1, 1, 1, 1024, 1, 1024)


def test_single_track_must_fit_on_the_sensor(rig):
    with pytest.raises(CameraSettingError, match="must lie within 1..1024"):
        rig.cam.single_track_centre_row(1020)  # height 20 around row 1020 ends at 1029
    assert rig.sim.single_track == (512, 20)


def test_vendor_error_code_becomes_andor_error_carrying_its_name(rig):
    rig.sim.inject_error("SetExposureTime", 20066)
    with pytest.raises(AndorError) as info:
        rig.cam.exposure_s(0.2)
    assert info.value.code == 20066 and info.value.code_name == "DRV_P1INVALID"
    assert info.value.function == "SetExposureTime"
    assert "SetExposureTime: DRV_P1INVALID (20066)" in str(info.value)
    assert rig.cam.exposure_s() == 0.05 and rig.sim.exposure_s == pytest.approx(0.05)


def test_settings_during_an_acquisition_are_refused_by_the_camera(rig):
    rig.cam.start_frames()
    with pytest.raises(AndorError, match="DRV_ACQUIRING"):
        rig.cam.read_mode("image")
    rig.cam.em_gain(50)  # the EM gain may change while acquiring
    rig.cam.stop_frames()
    rig.cam.read_mode("image")
    assert rig.sim.read_mode == 4


# --- cooling ----------------------------------------------------------------------------------
def test_cooling_passes_through_not_reached_and_not_stabilized_to_stabilized(rig):
    cam = rig.cam
    assert cam.temperature_state() == "off" and cam.temperature_c() == 20
    cam.temperature_setpoint_c(-60)
    cam.cooler(True)
    states = []
    for _ in range(40):
        states.append(cam.temperature_state())
        rig.clock.advance(0.1)
    seen = [s for i, s in enumerate(states) if i == 0 or s != states[i - 1]]
    assert seen == ["not_reached", "not_stabilized", "stabilized"]
    assert cam.temperature_c() == -60


def test_a_set_point_colder_than_air_cooling_reaches_stays_not_reached(rig):
    rig.cam.temperature_setpoint_c(-95)
    rig.cam.cooler(True)
    rig.clock.advance(60.0)
    assert rig.cam.read_temperature() == (-80, "not_reached")


def test_a_stabilized_sensor_that_moves_off_its_set_point_reports_drift(rig):
    rig.cool_down()
    rig.sim.perturb_temperature(5.0)
    assert rig.cam.temperature_state() == "drift"
    rig.clock.advance(1.0)
    assert rig.cam.temperature_state() == "not_stabilized"


def test_a_temperature_read_error_is_an_error_not_a_state(rig):
    rig.sim.inject_error("GetTemperature", 20075)
    with pytest.raises(AndorError, match="GetTemperature: DRV_NOT_INITIALIZED"):
        rig.cam.temperature_c()


def test_close_warms_the_sensor_up_before_shutting_down(make_rig):
    rig = make_rig()
    rig.cool_down()
    rig.clock.tick_s = 0.05
    rig.cam.close()
    names = [name for name, _ in rig.sim.calls]
    assert names.index("CoolerOFF") < names.index("ShutDown")
    assert rig.sim.shutdown_temperature_c > -20.0
    assert not rig.sim.initialized


# --- frames ------------------------------------------------------------------------------------
def test_every_frame_has_its_marker_edge_over_2_s(rig):
    markers, indices, frames = rig.record(2.0)
    assert markers.size == 20
    np.testing.assert_array_equal(indices, np.arange(20))
    assert frames.shape == (20, 1024) and frames.dtype == np.uint16
    np.testing.assert_array_equal(markers, rig.scene.frame_edges_ps(0, 2 * PS_PER_S))
    assert rig.cam.frames_skipped() == 0 and rig.sim.ignored_triggers == 0


def test_a_dropped_frame_is_detected_and_reported_not_shifted(make_rig):
    _, ref_indices, ref_frames = make_rig(seed=4).record(2.0)
    rig = make_rig(seed=4, drop_frame_indices=(7,))
    markers, indices, frames = rig.record(2.0)
    np.testing.assert_array_equal(indices, np.delete(np.arange(20), 7))
    np.testing.assert_array_equal(frames, np.delete(ref_frames, 7, axis=0))  # frame i is still marker i's
    assert markers.size == 20
    assert rig.cam.frames_skipped() == 1
    np.testing.assert_array_equal(rig.cam.read_skipped_frames(), [7])
    assert rig.cam.read_skipped_frames().size == 0  # reported once
    np.testing.assert_array_equal(rig.cam.skipped_frame_indices(), [7])


def test_a_dropped_last_frame_is_detected_without_a_later_frame(make_rig):
    rig = make_rig(drop_frame_indices=(19,))
    _, indices, _ = rig.record(2.0)
    assert indices[-1] == 18
    np.testing.assert_array_equal(rig.cam.skipped_frame_indices(), [19])


def test_frames_overwritten_in_the_circular_buffer_are_counted(make_rig):
    rig = make_rig(circular_buffer_frames=4)
    rig.cam.start_frames()
    rig.scene.set_frame_clock(10.0, True)
    rig.scene.generate(2 * PS_PER_S)  # nobody reads for 2 s
    indices, frames = rig.cam.read_frames()
    np.testing.assert_array_equal(indices, [16, 17, 18, 19])
    np.testing.assert_array_equal(rig.cam.skipped_frame_indices(), np.arange(16))
    assert rig.cam.frames_skipped() == 16


def test_frames_are_deterministic_under_the_seed(make_rig):
    _, _, first = make_rig(seed=9).record(1.0)
    _, _, again = make_rig(seed=9).record(1.0)
    _, _, other = make_rig(seed=10).record(1.0)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_edges_that_come_while_the_camera_is_busy_are_not_frames(rig):
    rig.cam.exposure_s(0.15)  # longer than the 100 ms frame-clock period
    assert rig.cam.kinetic_cycle_s() > 0.1
    markers, indices, _ = rig.record(2.0)
    assert markers.size == 20 and indices.size == 10 and rig.sim.ignored_triggers == 10


def test_fvb_frames_show_the_band_edge_line_above_the_baseline(rig):
    rig.cool_down()
    rig.cam.em_gain(100)
    _, _, frames = rig.record(1.0)
    mean = frames.mean(axis=0) - 200.0
    axis_nm = default_wavelength_axis_nm()
    peak_ev = HC_EV_NM / axis_nm[np.argmax(np.convolve(mean, np.ones(9) / 9, mode="same"))]
    assert peak_ev == pytest.approx(2.064, abs=0.006)
    smooth = np.convolve(mean, np.ones(9) / 9, mode="same")
    assert np.median(mean[:100]) < 0.2 * smooth.max()  # far from the line only CIC and dark current


def test_the_camera_reads_the_spectrograph_calibration_from_the_scene(rig):
    rig.cool_down()
    rig.cam.em_gain(100)
    rig.scene.spectrograph_calibration_nm = default_wavelength_axis_nm(centre_nm=620.0)
    _, _, frames = rig.record(1.0)
    smooth = np.convolve(frames.mean(axis=0) - 200.0, np.ones(9) / 9, mode="same")
    assert HC_EV_NM / rig.scene.spectrograph_calibration_nm[np.argmax(smooth)] == pytest.approx(2.064, abs=0.006)


def test_a_warm_sensor_has_more_dark_counts_than_a_cooled_one(make_rig):
    dark = []
    for cool in (False, True):
        rig = make_rig()
        if cool:
            rig.cool_down()
        rig.cam.shutter("closed")
        _, _, frames = rig.record(0.5)
        dark.append(frames.mean())
    assert dark[0] > dark[1] + 100 and dark[1] == pytest.approx(200, abs=3)


def test_frames_exposed_while_the_sensor_cools_have_the_dark_charge_of_their_exposure_window(make_rig):
    """The first run right after the cooler goes on: the excess of each frame is dark current x exposure.

    The cooler's wall clock runs with the scene clock (tagger time_scale 1).  The sensor
    ramps from 20 degC at 100 degC/s to the -60 degC set point; frame k (FVB, gain 1,
    shutter closed, 0.09 s from frame-clock edge k) must carry 1024 rows x the dark
    current averaged over *its own* exposure window (not the colder temperature of the
    moment it is read, ~0.05 s later at the mid-ramp rate: ~1.8x too little), to 5 %.
    """
    rig = make_rig()
    m = rig.sim.model
    rig.clock.follow = lambda: rig.scene.generated_until_ps / PS_PER_S
    rig.cam.shutter("closed")
    rig.cam.exposure_s(0.09)
    rig.cam.temperature_setpoint_c(-60)
    on_s = rig.scene.generated_until_ps / PS_PER_S
    rig.cam.cooler(True)  # ramp starts now, on the scene clock
    markers, indices, frames = rig.record(1.5)
    np.testing.assert_array_equal(indices, np.arange(markers.size))

    def expected_dark_e(start_s: float) -> float:
        t = start_s + (np.arange(9000) + 0.5) * 1e-5  # the 0.09 s window, finely
        temperature = np.maximum(m.ambient_c - m.thermal_rate_c_per_s * (t - on_s), -60.0)
        return float(np.mean(m.dark_e_per_px_s(temperature))) * 0.09

    cold = frames[10:].mean()  # sensor at -60 degC: baseline + CIC + negligible dark
    excess = frames.mean(axis=1) - cold
    expected = np.array([m.height_px * expected_dark_e(t * 1e-12) / m.electrons_per_count for t in markers])
    assert expected[0] > 10.0  # the effect is there: the first frame is well above the rest
    assert cold == pytest.approx(m.baseline_counts + m.height_px * m.cic_e_per_px / m.electrons_per_count, abs=0.3)
    np.testing.assert_allclose(excess[:4], expected[:4], rtol=0.05, atol=0.15)


def test_image_frames_have_the_spectrum_along_x_and_the_spot_along_y(rig):
    rig.cool_down()
    rig.cam.em_gain(100)
    rig.cam.read_mode("image")
    rig.cam.set_image_area(hbin=2, vbin=1, hstart=1, hend=1024, vstart=481, vend=544)
    _, indices, frames = rig.record(0.5)
    assert frames.shape == (indices.size, 64, 512)
    signal = frames.astype(float).mean(axis=0) - 200.0
    rows = signal[:, 200:320].sum(axis=1)  # around the line
    assert 30 <= int(np.argmax(rows)) <= 32  # the spot is centred on sensor row 512 (0-based)
    assert rows[:10].mean() < 0.05 * rows.max()  # and is a few rows wide
    columns = signal.sum(axis=0)
    assert abs(int(np.argmax(np.convolve(columns, np.ones(5) / 5, mode="same"))) - 256) <= 4


def test_internal_trigger_kinetic_series_ends_by_itself(rig):
    cam = rig.cam
    cam.trigger_mode("internal")
    cam.acquisition_mode("kinetic")
    cam.number_kinetics(5)
    cam.kinetic_cycle_time_s(0.1)
    cam.start_frames()
    rig.scene.generate(PS_PER_S)
    indices, frames = cam.read_frames()
    np.testing.assert_array_equal(indices, np.arange(5))
    assert not rig.sim.acquiring
    cam.stop_frames()  # idle already: not an error

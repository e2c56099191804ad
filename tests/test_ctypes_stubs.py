"""The ctypes layers against real shared objects: C stubs with the vendor headers' signatures.

``tests/c_stubs/*.c`` export the functions of qutools' tdcbase, Andor SDK2 (atmcd) and
Andor's spectrograph SDK (ShamrockCIF / atspectrograph) with the exact C signatures of
the vendor headers (cited in each file), record every argument they receive and write
known values to the output pointers.  Each test loads one through the REAL loader
(``load_tdcbase`` / ``load_atmcd`` / ``load_shamrock``, which applies the prototypes),
drives the real QCoDeS driver, and checks what crossed the C boundary both ways:
values, 64-bit integers, floats, string lengths, buffer sizes, pointers and status
codes turned into the driver's exception with the vendor's name.

A C compiler (``cc``) is required: without it the tests FAIL (never skip), because
otherwise a wrong ``argtypes`` would go unnoticed until the lab's real DLL.
"""

from __future__ import annotations

import ctypes
import itertools
import re
import shutil
import subprocess
from ctypes import c_char_p, c_double, c_float, c_int, c_int64, c_longlong, c_uint8
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from drivers.andor import atmcd
from drivers.andor.atmcd import AndorError, load_atmcd
from drivers.andor.ixon import IXonUltra888
from drivers.andor_shamrock import shamrock
from drivers.andor_shamrock.kymera import Kymera193i
from drivers.andor_shamrock.shamrock import ShamrockError, load_shamrock
from drivers.qutag import tdcbase
from drivers.qutag.driver import QuTAG
from drivers.qutag.tdcbase import QuTAGError, load_tdcbase
from labctl.errors import InstrumentError

STUB_SOURCES = Path(__file__).parent / "c_stubs"
STUBS: dict[str, tuple[str, list[str]]] = {
    "tdcbase": ("qutag_stub.c", []),
    "tdcbase_mc": ("qutag_stub.c", ["-DQUTAG_MC"]),
    "atmcd": ("atmcd_stub.c", []),
    "shamrock": ("shamrock_stub.c", []),
    "atspectrograph": ("shamrock_stub.c", ["-DATSPECTROGRAPH"]),
}
_names = itertools.count()


@pytest.fixture(scope="session")
def stub_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Compile every stub once per session: ``{name: path of lib<name>_stub.so}``."""
    cc = shutil.which("cc")
    if cc is None:
        pytest.fail(
            "cc (a C compiler) is missing: the ctypes stub tests compile tests/c_stubs/*.c and cannot run "
            "without it; install one (apt-get install -y gcc). These tests are never skipped."
        )
    out = tmp_path_factory.mktemp("c_stubs")
    paths = {}
    for name, (source, flags) in STUBS.items():
        target = out / f"lib{name}_stub.so"
        command = [cc, *flags, "-shared", "-fPIC", "-O0", "-Wall", "-o", str(target), str(STUB_SOURCES / source)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            pytest.fail(f"compiling {source} failed: {' '.join(command)}\n{result.stderr}")
        paths[name] = str(target)
    return paths


class Recorder:
    """The stub's recorder (stub_common.h) on a loaded library: call log, return codes, output values."""

    def __init__(self, lib: Any) -> None:
        self.lib = lib
        lib.stub_log_line.restype = c_char_p
        lib.stub_log_line.argtypes = [c_int]
        lib.stub_log_count.restype = c_int
        lib.stub_set_return.argtypes = [c_char_p, c_int]
        lib.stub_set_value.argtypes = [c_char_p, c_longlong]
        lib.stub_set_double.argtypes = [c_char_p, c_double]
        lib.stub_reset()

    def calls(self, name: str) -> list[dict[str, str]]:
        """Arguments (as text) of every call of ``name`` received, in order."""
        found = []
        for i in range(self.lib.stub_log_count()):
            line = self.lib.stub_log_line(i).decode()
            function, _, rest = line.partition(" ")
            if function == name:
                found.append({k: v.strip('"') for k, v in re.findall(r'(\w+)=("[^"]*"|\S+)', rest)})
        return found

    def last(self, name: str) -> dict[str, str]:
        calls = self.calls(name)
        assert calls, f"{name} was never called"
        return calls[-1]

    def set_return(self, function: str, code: int) -> None:
        self.lib.stub_set_return(function.encode(), code)

    def set_value(self, key: str, value: int) -> None:
        self.lib.stub_set_value(key.encode(), value)


@pytest.fixture
def instruments() -> Iterator[list[Any]]:
    built: list[Any] = []
    yield built
    for instrument in built:
        instrument.close()


def f32(value: float) -> float:
    """``value`` rounded to a C float, as a Python float."""
    return float(np.float32(value))


@pytest.mark.parametrize(
    ("stub", "declared"),
    [
        ("tdcbase", lambda: {**tdcbase.PROTOTYPES, **tdcbase.GENERATION_PROTOTYPES["standard"]}),
        ("tdcbase_mc", lambda: {**tdcbase.PROTOTYPES, **tdcbase.GENERATION_PROTOTYPES["mc"]}),
        ("atmcd", lambda: atmcd.PROTOTYPES),
        ("shamrock", lambda: dict.fromkeys(shamrock.vendor_names("shamrock"))),
        ("atspectrograph", lambda: dict.fromkeys(shamrock.vendor_names("atspectrograph"))),
    ],
)
def test_every_declared_function_is_exported_by_its_stub(stub_paths, stub, declared):
    """The stubs cover each layer's whole prototype table, so every prototype meets a C function."""
    lib = ctypes.CDLL(stub_paths[stub])
    missing = sorted(name for name in declared() if not hasattr(lib, name))
    assert missing == []


# --- quTAG (tdcbase) --------------------------------------------------------------------------
def make_qutag(path: str, built: list[Any], **stub_values: int) -> tuple[QuTAG, Recorder]:
    lib = load_tdcbase(path)
    rec = Recorder(lib)
    for key, value in stub_values.items():
        rec.set_value(key, value)
    qutag = QuTAG(f"qutag_stub_{next(_names)}", library=lib)
    built.append(qutag)
    return qutag, rec


def check_threshold_marshalling(qutag: QuTAG, rec: Recorder, volts: float) -> None:
    """``threshold_v`` reaches TDC_configureSignalConditioning as the exact C double."""
    qutag.ch2.threshold_v(volts)
    call = rec.last("TDC_configureSignalConditioning")
    assert (call["channel"], call["conditioning"], call["edge"]) == ("2", "3", "1")
    assert float(call["threshold"]) == volts, f"stub received threshold {call['threshold']} V, sent {volts!r} V"


def test_qutag_connection_and_settings_cross_the_c_boundary_exactly(stub_paths, instruments):
    qutag, rec = make_qutag(stub_paths["tdcbase"], instruments)
    assert rec.last("TDC_init") == {"deviceId": "-1"}
    assert rec.last("TDC_getTimebase") == {"timebase": "ptr"}
    assert qutag.timebase_ps() == 1.0  # 1e-12 s written to the double*
    assert qutag.library_version() == 1.52  # double return value
    assert qutag.features() == 0x30  # Int32 return value
    assert qutag.library_generation() == "standard"
    # initial settings: one call per input, the mask, the divider, the exposure, five-channel mode
    conditioning = rec.calls("TDC_configureSignalConditioning")
    assert [c["channel"] for c in conditioning] == ["0", "1", "2", "3", "4"]
    assert {(c["conditioning"], c["edge"], float(c["threshold"])) for c in conditioning} == {("3", "1", 1.0)}
    assert rec.last("TDC_enableChannels") == {"channelMask": "31"}
    assert rec.last("TDC_configureSyncDivider") == {"divider": "1", "reconstruct": "0"}
    assert rec.last("TDC_setExposureTime") == {"expTime": "100"}
    assert rec.last("TDC_setFiveChannelMode") == {"on": "1"}

    check_threshold_marshalling(qutag, rec, -0.123456789012345)
    qutag.ch3.delay_ps(-99_999)
    qutag.ch1.delay_ps(100_000)
    delays = rec.last("TDC_setChannelDelays")
    assert [int(delays[f"d{i}"]) for i in range(8)] == [0, 100_000, 0, -99_999, 0, 0, 0, 0]
    qutag.ch4.dead_time_ps(77_000)
    assert rec.last("TDC_setDeadTime") == {"channel": "4", "dTime": "77000"}
    qutag.sync_divider(8)
    qutag.sync_reconstruct(True)
    assert rec.last("TDC_configureSyncDivider") == {"divider": "8", "reconstruct": "1"}
    qutag.exposure_time_ms(65535)
    assert rec.last("TDC_setExposureTime") == {"expTime": "65535"}


def test_qutag_stream_returns_64_bit_timestamps_and_channels_in_labctl_numbering(stub_paths, instruments):
    qutag, rec = make_qutag(stub_paths["tdcbase"], instruments)
    timestamps = np.array([1, 2**32 + 7, 2**53 + 1, 2**62 + 3, 2**63 - 1], np.int64)
    channels = np.array([0, 1, 4, 2, 104], np.uint8)  # vendor numbers: stop inputs 1, 2, start, 3; 1 ms tick
    rec.lib.stub_set_timestamps.argtypes = [ctypes.POINTER(c_int64), ctypes.POINTER(c_uint8), c_int]
    rec.lib.stub_set_timestamps(timestamps.ctypes.data_as(ctypes.POINTER(c_int64)),
                                channels.ctypes.data_as(ctypes.POINTER(c_uint8)), timestamps.size)
    qutag.buffer_size(8)
    qutag.start_stream()
    assert rec.last("TDC_setTimestampBufferSize") == {"size": "8"}
    assert rec.last("TDC_freezeBuffers") == {"freeze": "0"}
    assert rec.last("TDC_getDataLost") == {"lost": "ptr"}
    block = qutag.read_tags()
    assert rec.last("TDC_getLastTimestamps") == {"reset": "1", "timestamps": "ptr", "channels": "ptr", "valid": "ptr"}
    np.testing.assert_array_equal(block.timestamps, timestamps)  # exact beyond 2**32 and 2**53
    # tdcbase.h: "Range is 0...7 for channels 1...8"; five-channel mode: the start input is "channel 5"
    np.testing.assert_array_equal(block.channels, [1, 2, 0, 3, 104])
    assert qutag.data_lost() is False
    rec.set_value("data_lost", 1)  # the Bln32* output is read back
    assert qutag.data_lost() is True
    qutag.stop_stream()
    assert rec.last("TDC_freezeBuffers") == {"freeze": "1"}


def test_qutag_full_buffer_read_is_reported_as_loss(stub_paths, instruments):
    qutag, rec = make_qutag(stub_paths["tdcbase"], instruments)
    timestamps = np.arange(10, 14, dtype=np.int64)
    channels = np.ones(4, np.uint8)
    rec.lib.stub_set_timestamps.argtypes = [ctypes.POINTER(c_int64), ctypes.POINTER(c_uint8), c_int]
    rec.lib.stub_set_timestamps(timestamps.ctypes.data_as(ctypes.POINTER(c_int64)),
                                channels.ctypes.data_as(ctypes.POINTER(c_uint8)), 4)
    qutag.buffer_size(4)
    qutag.start_stream()
    assert qutag.read_tags().timestamps.size == 4  # valid = buffer size: the ring may have wrapped
    assert qutag.data_lost() is True


def test_qutag_status_code_becomes_quTAG_error_with_vendor_name_and_perror_text(stub_paths, instruments):
    qutag, rec = make_qutag(stub_paths["tdcbase"], instruments)
    rec.set_return("TDC_setExposureTime", 10)
    with pytest.raises(QuTAGError) as info:
        qutag.exposure_time_ms(5)
    assert (info.value.function, info.value.code, info.value.code_name) == ("TDC_setExposureTime", 10, "OutOfRange")
    assert info.value.text == "stub text of 10"  # const char* return of TDC_perror, decoded
    assert rec.last("TDC_perror") == {"rc": "10"}
    assert qutag.exposure_time_ms() == 100  # refused: cache unchanged


def test_qutag_refused_connection_deinitializes(stub_paths):
    lib = load_tdcbase(stub_paths["tdcbase"])
    rec = Recorder(lib)
    rec.set_return("TDC_init", 2)
    with pytest.raises(QuTAGError, match="TDC_init: NotConnected \\(2\\)"):
        QuTAG("qutag_stub_refused", library=lib, device_id=3)
    assert rec.last("TDC_init") == {"deviceId": "3"}
    assert len(rec.calls("TDC_deInit")) == 1
    assert not QuTAG.exist("qutag_stub_refused")


def test_qutag_mc_library_is_driven_with_its_own_functions(stub_paths, instruments):
    """quTAG MC/HR tdcbase.h v1.8: TDC_enableChannels(Bln32 enStart, Int32 mask) with bit 0 = stop input 1,
    per-channel TDC_setChannelDelay(Int32 channel, Int32 delay), and no TDC_setChannelDelays / TDC_setDeadTime."""
    qutag, rec = make_qutag(stub_paths["tdcbase_mc"], instruments)
    assert qutag.library_generation() == "mc"
    assert rec.last("TDC_enableChannels") == {"enStart": "1", "channelMask": "15"}
    assert [c["channel"] for c in rec.calls("TDC_setChannelDelay")] == ["0", "1", "2", "3", "4"]
    qutag.enabled_channels(0b00101)
    assert rec.last("TDC_enableChannels") == {"enStart": "1", "channelMask": "2"}
    qutag.ch3.delay_ps(-50_000)
    assert rec.last("TDC_setChannelDelay") == {"channel": "3", "delay": "-50000"}
    with pytest.raises(InstrumentError, match="dead_time_ps = 77000.*TDC_setDeadTime"):
        qutag.ch1.dead_time_ps(77_000)


def test_a_wrong_argtypes_is_caught_by_the_stub(stub_paths, instruments):
    """tdcbase.h: ``double threshold``. Declared as c_float, the stub receives another number."""
    qutag, rec = make_qutag(stub_paths["tdcbase"], instruments)
    check_threshold_marshalling(qutag, rec, 0.73)  # the real prototype passes
    func = qutag._sdk.lib.TDC_configureSignalConditioning
    func.argtypes = [ctypes.c_int32, c_int, ctypes.c_int32, c_float]  # the deliberate mistake
    with pytest.raises(AssertionError, match="stub received threshold") as info:
        check_threshold_marshalling(qutag, rec, 0.73)
    print(info.value)


# --- Andor SDK2 (atmcd) -----------------------------------------------------------------------
def make_ixon(path: str, built: list[Any], **kwargs: Any) -> tuple[IXonUltra888, Recorder]:
    lib = load_atmcd(path)
    rec = Recorder(lib)
    cam = IXonUltra888(f"ixon_stub_{next(_names)}", library=lib, warmup_poll_s=0.0, warmup_timeout_s=1.0, **kwargs)
    built.append(cam)
    return cam, rec


def check_exposure_marshalling(cam: IXonUltra888, rec: Recorder, seconds: float) -> None:
    """``exposure_s`` reaches SetExposureTime as the C float nearest to it."""
    cam.exposure_s(seconds)
    received = float(rec.last("SetExposureTime")["time"])
    assert received == f32(seconds), f"stub received exposure {received!r} s, sent {seconds!r} s"


def test_ixon_connection_and_settings_cross_the_c_boundary_exactly(stub_paths, instruments):
    cam, rec = make_ixon(stub_paths["atmcd"], instruments, init_dir="/opt/andor/etc")
    assert rec.last("Initialize") == {"dir": "/opt/andor/etc", "dir_len": "14"}
    assert cam.detector_shape() == (1024, 1024)
    assert cam.pixel_width_um() == 13.0
    assert cam.head_model() == "DU888_BV_STUB"
    assert cam.temperature_range_c() == (-100, 20)
    assert rec.last("SetImage") == {"hbin": "1", "vbin": "1", "hstart": "1", "hend": "1024", "vstart": "1", "vend": "1024"}
    assert rec.last("SetShutter") == {"typ": "1", "mode": "0", "closingtime": "0", "openingtime": "0"}
    assert rec.last("SetTemperature") == {"temperature": "-80"}
    assert rec.last("SetSingleTrack") == {"centre": "512", "height": "20"}
    check_exposure_marshalling(cam, rec, 0.0123)
    cam.kinetic_cycle_time_s(0.25)
    assert float(rec.last("SetKineticCycleTime")["time"]) == 0.25
    assert cam.actual_exposure_s() == f32(0.05)
    assert cam.kinetic_cycle_s() == 0.0625
    cam.em_advanced(True)
    cam.em_gain(750)
    assert (rec.last("SetEMAdvanced"), rec.last("SetEMCCDGain")) == ({"state": "1"}, {"gain": "750"})
    cam.trigger_mode("software")
    assert rec.last("SetTriggerMode") == {"mode": "10"}
    cam.cooler(True)
    assert cam.read_temperature() == (-80, "stabilized")  # int* output and the state as the status


def test_ixon_frames_by_image_number_with_the_buffer_size_in_pixels(stub_paths, instruments):
    cam, rec = make_ixon(stub_paths["atmcd"], instruments)
    cam.read_mode("image")
    cam.set_image_area(hstart=1, hend=4, vstart=1, vend=2)
    cam.start_frames()
    for key, value in (("total", 5), ("first", 3), ("last", 5)):
        rec.set_value(key, value)
    indices, frames = cam.read_frames()
    call = rec.last("GetImages16")
    assert call == {"first": "3", "last": "5", "arr": "ptr", "size": "24", "validfirst": "ptr", "validlast": "ptr"}
    np.testing.assert_array_equal(indices, [2, 3, 4])
    expected = np.array([[n * 1000 + p for p in range(8)] for n in (3, 4, 5)], np.uint16).reshape(3, 2, 4)
    np.testing.assert_array_equal(frames, expected)
    np.testing.assert_array_equal(cam.read_skipped_frames(), [0, 1])  # images 1, 2 never delivered


def test_ixon_series_overwritten_between_the_two_calls_is_read_again(stub_paths, instruments):
    """SDK2 manual, GetImages16: an overwritten series is DRV_GENERAL_ERRORS "The series is out of range"
    (not DRV_P1INVALID): the driver asks GetNumberNewImages again and counts the lost images."""
    cam, rec = make_ixon(stub_paths["atmcd"], instruments)
    cam.start_frames()
    for key, value in (("total", 6), ("first", 2), ("last", 6), ("out_of_range_calls", 1), ("first_after", 4)):
        rec.set_value(key, value)
    indices, frames = cam.read_frames()
    assert [(c["first"], c["last"]) for c in rec.calls("GetImages16")] == [("2", "6"), ("4", "6")]
    np.testing.assert_array_equal(indices, [3, 4, 5])
    assert frames.shape == (3, 1024)
    assert frames[0, 7] == 4 * 1000 + 7
    np.testing.assert_array_equal(cam.skipped_frame_indices(), [0, 1, 2])
    assert cam.frames_skipped() == 3


def test_ixon_status_code_becomes_andor_error_with_vendor_name(stub_paths, instruments):
    cam, rec = make_ixon(stub_paths["atmcd"], instruments)
    rec.set_return("SetEMCCDGain", 20066)
    with pytest.raises(AndorError) as info:
        cam.em_gain(5)
    assert (info.value.function, info.value.code, info.value.code_name) == ("SetEMCCDGain", 20066, "DRV_P1INVALID")
    assert cam.em_gain() == 1


def test_ixon_temperature_during_a_run_keeps_the_last_reading(stub_paths, instruments):
    """SDK2 manual, GetTemperature: DRV_ACQUIRING "Acquisition in progress" is one of its returns
    (docs/vendor_facts.md): a monitor polling during a run gets the last reading, not an error."""
    cam, rec = make_ixon(stub_paths["atmcd"], instruments)
    rec.set_return("GetTemperature", 20072)
    with pytest.raises(AndorError, match="DRV_ACQUIRING"):  # nothing read yet: nothing to report
        cam.read_temperature()
    rec.lib.stub_reset()
    cam.cooler(True)
    assert cam.read_temperature() == (-80, "stabilized")
    rec.set_return("GetTemperature", 20072)
    rec.set_value("temperature", -30)  # what the int* would hold: not trusted while acquiring
    assert cam.read_temperature() == (-80, "stabilized")
    assert (cam.temperature_c(), cam.temperature_state()) == (-80, "stabilized")
    assert len(rec.calls("GetTemperature")) == 4


def test_a_wrong_float_argtypes_is_caught_by_the_stub(stub_paths, instruments):
    """atmcdLXd.h: ``SetExposureTime(float time)``. Declared as c_double, the stub receives garbage."""
    cam, rec = make_ixon(stub_paths["atmcd"], instruments)
    check_exposure_marshalling(cam, rec, 0.05)
    cam._sdk.lib.SetExposureTime.argtypes = [c_double]
    with pytest.raises(AssertionError, match="stub received exposure"):
        check_exposure_marshalling(cam, rec, 0.05)


# --- Andor spectrograph (ShamrockCIF / atspectrograph) --------------------------------------------
@pytest.mark.parametrize("generation", ["shamrock", "atspectrograph"])
def test_kymera_calls_cross_the_c_boundary_exactly(stub_paths, instruments, generation):
    prefix = {"shamrock": "Shamrock", "atspectrograph": "ATSpectrograph"}[generation]
    lib = load_shamrock(stub_paths[generation])
    rec = Recorder(lib)
    kymera = Kymera193i(f"kymera_stub_{next(_names)}", library=lib)
    instruments.append(kymera)
    assert kymera.sdk_generation() == generation
    assert rec.last(f"{prefix}Initialize") == {"IniPath": "", "IniPath_len": "0"}
    info = rec.calls(f"{prefix}GetGratingInfo")
    assert [c["Grating"] for c in info] == ["1", "2", "3"]
    if generation == "atspectrograph":  # the buffer sizes the newer header asks for
        assert {c["maxBlazeStrLen"] for c in info} == {"64"}
        assert rec.last("ATSpectrographGetSerialNumber")["maxSerialStrLen"] == "64"
    assert kymera.serial_number() == "KY193-STUB-0042"
    assert [g["lines_per_mm"] for g in kymera.grating_info().values()] == [150.0, 600.0, 1200.0]
    assert [g["blaze"] for g in kymera.grating_info().values()] == ["500nm"] * 3
    assert [(g["home"], g["offset"]) for g in kymera.grating_info().values()] == [(1000, -1), (2000, -2), (3000, -3)]
    assert kymera.focal_length_mm() == 193.0
    assert kymera.angular_deviation_deg() == 30.5
    assert kymera.wavelength_limits_nm(2) == (0.0, 6000.0)

    kymera.center_wavelength_nm(612.345)
    assert float(rec.last(f"{prefix}SetWavelength")["wavelength"]) == f32(612.345)
    assert kymera.center_wavelength_nm() == round(f32(612.345), 4)
    slit = rec.last(f"{prefix}{'AutoSlitIsPresent' if generation == 'shamrock' else 'SlitIsPresent'}")
    assert slit == {"device": "0", "index": "2", "present": "ptr"}
    kymera.slit_width_um(37.5)
    assert kymera.slit_width_um() == 37.5
    kymera.shutter("open")
    assert rec.last(f"{prefix}SetShutter") == {"device": "0", "mode": "1"}
    axis = kymera.wavelength_axis_nm()
    assert rec.last(f"{prefix}GetCalibration") == {"device": "0", "CalibrationValues": "ptr", "NumberPixels": "1024"}
    expected = np.float32(612.345) + (np.arange(1024) - 512).astype(np.float32) * np.float32(0.25)
    np.testing.assert_array_equal(axis, expected.astype(np.float64))


@pytest.mark.parametrize("generation", ["shamrock", "atspectrograph"])
def test_kymera_status_code_becomes_shamrock_error_with_vendor_name_and_description(stub_paths, instruments, generation):
    prefix = {"shamrock": "Shamrock", "atspectrograph": "ATSpectrograph"}[generation]
    lib = load_shamrock(stub_paths[generation])
    rec = Recorder(lib)
    kymera = Kymera193i(f"kymera_stub_{next(_names)}", library=lib)
    instruments.append(kymera)
    rec.set_return(f"{prefix}SetGrating", 20267)
    with pytest.raises(ShamrockError) as info:
        kymera.grating(2)
    assert info.value.code_name == f"{prefix.upper()}_P2INVALID"
    assert info.value.text == "stub description of 20267"
    assert rec.last(f"{prefix}GetFunctionReturnDescription") == {
        "error": "20267", "description": "ptr", "MaxDescStrLen": "64"
    }
    assert kymera.grating() == 1


def test_a_buffer_that_does_not_fit_its_c_type_is_refused_before_the_call(stub_paths):
    """The layer passes the caller's numpy array as ``WORD*``; an int32 array would be read as pairs of pixels."""
    lib = load_atmcd(stub_paths["atmcd"])
    rec = Recorder(lib)
    sdk = atmcd.AndorSDK(lib)
    with pytest.raises(TypeError, match=r"GetImages16: argument 3 must be a C-contiguous numpy array of 2-byte "
                                        r"elements \(c_ushort\); got int32 array"):
        sdk.call_status("GetImages16", 1, 2, np.empty(8, np.int32))
    with pytest.raises(TypeError, match="GetImages16: argument 3 must be a C-contiguous"):
        sdk.call_status("GetImages16", 1, 2, np.empty((4, 4), np.uint16)[:, ::2])  # strided view
    assert rec.calls("GetImages16") == []
    frames = np.zeros(6, np.uint16)
    assert sdk.call_status("GetImages16", 1, 2, frames) == (atmcd.DRV_SUCCESS, (1, 2))
    assert rec.last("GetImages16")["size"] == "6"  # the layer passes the array's size itself

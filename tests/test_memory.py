"""Memory stays flat over a long run: the structures that grew per block are bounded (issue 9, finding 9).

A 3-minute default run grew ~0.15 MB/s.  The causes, found with tracemalloc
(``benchmarks/soak.py`` prints the RSS figures):

* the simulated quTAG and iXon copied each read into the caller's buffer through
  ``np.ctypeslib.as_array(pointer, shape=(n,))``: every new ``n`` creates two ctypes
  types (``c_int64 * n`` and a pointer to it) that ctypes caches for ever;
* the simulated iXon's call log kept every argument object, so the driver's frame
  buffers (behind ``ndarray.ctypes.data_as`` pointers) stayed alive for 10,000 calls;
* the scene's emission log kept one row per 10 ms segment for the whole run;
* the file writer's HDF5 chunk cache (8 MiB per dataset) filled with finished chunks
  over the first ten minutes or so (bounded, but not flat);
* glibc's dynamic mmap threshold kept the per-poll buffers in the heap after the first
  large block was freed: its high-water mark and fragmentation grew for minutes;
* the simulated iXon's circular buffer was a dict of one array per frame, filled for the
  first 100 s of a run and then churned (heap growth in the tagger-call thread's arena);
* transparent huge pages: numpy madvises arrays of 4 MiB or more, so the doubling live
  trace and FLID stores became resident up to 2 MiB ahead of their rows (2-4 MiB steps
  at minutes ~11, 22 and 44 of the 1-hour soak).
"""

from __future__ import annotations

import ctypes
import gc
import os
import subprocess
import sys
import tracemalloc
import weakref
from ctypes import POINTER, byref, c_int32, c_uint16
from pathlib import Path

import numpy as np
import pytest

from drivers.qutag import QuTAG
from labctl.blocks import ChannelMap, TagBlock
from sim_backends.andor_sim import SimAndorSDK
from sim_backends.qutag_sim import SimTDCBase
from sim_backends.scene import EMISSION_LOG_KEEP_PS, Scene

PS_PER_S = 10**12
WIRING = ChannelMap(laser_sync=0, spad_a=1, spad_b=2, frame_marker=3)


class SyncScene:
    """Sync tags every microsecond on channel 0 (enough for a tagger that only copies them out)."""

    def __init__(self) -> None:
        self._until_ps = 0

    def generate(self, t_stop_ps: int) -> TagBlock:
        first = -(-self._until_ps // 1_000_000) * 1_000_000
        ts = np.arange(first, t_stop_ps, 1_000_000, dtype=np.int64)
        self._until_ps = t_stop_ps
        return TagBlock(ts, np.zeros(ts.size, np.uint8))


class Clock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


def test_reads_of_the_simulated_tagger_create_no_ctypes_type_per_read_length():
    clock = Clock()
    sim = SimTDCBase(SyncScene(), clock=clock)
    qutag = QuTAG("qutag_memory_test", library=sim)
    try:
        qutag.buffer_size(100_000)
        qutag.start_stream()
        qutag.read_tags()
        cached = len(ctypes._pointer_type_cache)
        n_read = 0
        for k in range(200):  # 200 reads of 1001..1200 tags: 200 different lengths
            clock.now_s += (1001 + k) * 1e-6
            n_read += len(qutag.read_tags())
        assert n_read == sum(range(1001, 1201))
        assert len(ctypes._pointer_type_cache) - cached <= 2  # was +200: one pointer type per length
    finally:
        qutag.close()


def test_the_simulated_camera_keeps_no_reference_to_the_callers_buffers():
    scene = Scene({"emitter": {"blinking": {"enabled": False}}}, wiring=WIRING, seed=1)
    sim = SimAndorSDK(scene, circular_buffer_frames=4)
    sim.Initialize(b"")
    sim.SetReadMode(0)
    sim.SetAcquisitionMode(5)
    sim.SetExposureTime(ctypes.c_float(0.01))
    sim.StartAcquisition()
    scene.generate(PS_PER_S // 10)
    first, last = c_int32(), c_int32()
    assert sim.GetNumberNewImages(byref(first), byref(last)) == 20002
    buffer = np.zeros(1024 * (last.value - first.value + 1), np.uint16)
    out_first, out_last = c_int32(), c_int32()
    rc = sim.GetImages16(first.value, last.value, buffer.ctypes.data_as(POINTER(c_uint16)), buffer.size,
                         byref(out_first), byref(out_last))
    assert rc == 20002 and buffer.any()
    alive = weakref.ref(buffer)
    del buffer
    gc.collect()
    assert alive() is None  # the call log held the pointer, and the pointer the frame buffer
    assert sim.calls[-1][0] == "GetImages16" and sim.calls[-1][1][:2] == (first.value, last.value)


def test_the_scenes_emission_log_keeps_a_bounded_recent_window():
    config = {"laser": {"repetition_rate_hz": 1.0e4}, "segment_ms": 10.0}
    scene = Scene(config, wiring=WIRING, seed=3)
    scene.set_excitation(True)
    step_ps = 5 * PS_PER_S
    for k in range(1, 61):  # 300 s of scene time: 30,000 segments
        scene.generate(k * step_ps)
    log = scene.emission_log
    end_ps = scene.generated_until_ps
    kept_s = (end_ps - int(log["start_ps"][0])) / PS_PER_S
    assert EMISSION_LOG_KEEP_PS / PS_PER_S <= kept_s <= EMISSION_LOG_KEEP_PS / PS_PER_S + 60  # was 300 s: all of it
    assert np.all(log["start_ps"][1:] == log["stop_ps"][:-1])  # what is kept still tiles time
    recent = scene.emitted_counts(end_ps - PS_PER_S, end_ps)
    assert recent["band_edge"] > 0
    with pytest.raises(ValueError, match="no longer kept"):
        scene.emitted_counts(0, PS_PER_S)


def test_each_growing_dataset_caches_one_of_its_own_chunks(tmp_path):
    """The default chunk cache (8 MiB per dataset) filled with finished chunks: ~10 MB over ten minutes.
    One 3 MiB size for all still held 12 detector chunks (full after ~3 minutes) and 96 marker or
    frame-time chunks (filling for hours at 10 frames/s); no cache at all cost `labctl repair` its
    photons.  Each growing dataset holds one of its own chunks, never two."""
    from labctl.storage import PhotonHDF5Writer
    from tests.test_storage import make_blocks, make_run, make_summary

    writer = PhotonHDF5Writer(tmp_path / "run.h5", flush_interval_s=0.01, min_free_bytes=0)
    writer.open(make_run())
    try:
        for block in make_blocks([5000] * 3):
            writer.write(block)
        checked = []
        for path, dataset in writer._ds.items():
            if dataset.chunks is None:
                continue
            chunk_bytes = int(np.prod(dataset.chunks)) * dataset.dtype.itemsize
            cache_bytes = dataset.id.get_access_plist().get_chunk_cache()[1]
            assert chunk_bytes <= cache_bytes < 2 * chunk_bytes, (path, chunk_bytes, cache_bytes)
            checked.append(path)
        assert {"/photon_data/timestamps", "/photon_data/detectors", "/user/labctl/markers"} <= set(checked)
    finally:
        writer.close(make_summary())


ALLOCATOR_PROBE = """
import os, sys
import numpy as np
def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
if sys.argv[1] == "fixed":
    from labctl.acquisition.malloc_tuning import fix_mmap_threshold
    assert fix_mmap_threshold()
big = np.ones(8 << 20, np.uint8); del big  # glibc raises its mmap threshold to 8 MiB (unless fixed)
buffers, small = [], []
for _ in range(64):  # 1 MiB buffers, as the engine's per-poll arrays, between small long-lived ones
    buffers.append(np.ones(1 << 20, np.uint8))
    small.append(np.ones(1000))
before = rss_mib(); del buffers
print(before - rss_mib())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_large_buffers_freed_during_a_run_go_back_to_the_system():
    """The engine fixes glibc's mmap threshold (``labctl.acquisition.malloc_tuning``): without it, 1 MiB
    buffers freed after an 8 MiB one stay in the heap (its high-water mark grew for minutes)."""
    freed = {}
    for mode in ("fixed", "dynamic"):
        env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}  # glibc's defaults (Dask sets some)
        result = subprocess.run([sys.executable, "-c", ALLOCATOR_PROBE, mode], capture_output=True, text=True,
                                timeout=60, env={**env, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
        assert result.returncode == 0, result.stderr
        freed[mode] = float(result.stdout)
    assert freed["fixed"] > 60  # MiB of the 64 returned
    assert freed["dynamic"] < 8  # the glibc default keeps them


def _resident_fraction(array: np.ndarray) -> float:
    """Fraction of the memory pages under ``array`` that are resident (Linux ``mincore``)."""
    page = os.sysconf("SC_PAGE_SIZE")
    start = array.ctypes.data // page * page
    n_pages = -(-(array.ctypes.data + array.nbytes - start) // page)
    vec = (ctypes.c_ubyte * n_pages)()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    assert libc.mincore(ctypes.c_void_p(start), ctypes.c_size_t(n_pages * page), vec) == 0, ctypes.get_errno()
    return sum(v & 1 for v in vec) / n_pages


def _camera_held_bytes() -> int:
    """Bytes still allocated from a call that went through the simulated camera head (tracemalloc)."""
    snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(True, "*andor_camera.py", all_frames=True)])
    return sum(stat.size for stat in snapshot.statistics("filename"))


def test_the_simulated_cameras_circular_buffer_is_allocated_whole_at_arm():
    """A real camera's circular buffer exists whole once armed.  The simulated one kept one new array per
    frame until it held its 1000 frames (2 MB over the first 100 s of a 10 Hz run: heap churn in the soak);
    now the arm allocates it and frames are written into it."""
    scene = Scene({"laser": {"repetition_rate_hz": 1.0e4}, "emitter": {"blinking": {"enabled": False}}},
                  wiring=WIRING, seed=1)  # few photons: the scene is quick to generate
    sim = SimAndorSDK(scene, circular_buffer_frames=40)
    sim.Initialize(b"")
    sim.SetReadMode(0)  # full vertical binning: one row of width_px pixels
    sim.SetAcquisitionMode(5)
    sim.SetExposureTime(ctypes.c_float(0.01))
    size = c_int32()
    assert sim.GetSizeOfCircularBuffer(byref(size)) == 20002 and size.value == 40
    ring_bytes = 40 * sim.model.width_px * 2
    tracemalloc.start(30)
    try:
        sim.StartAcquisition()  # a first short acquisition fills the scene's and numpy's one-time caches
        scene.generate(PS_PER_S // 5)
        assert sim.AbortAcquisition() == 20002
        start_ps = scene.generated_until_ps
        sim.StartAcquisition()
        armed = _camera_held_bytes()
        for k in range(1, 21):  # 2 s of scene: > 100 frames, the ring overwritten twice
            scene.generate(start_ps + k * PS_PER_S // 10)
            total = c_int32()
            sim.GetTotalNumberImagesAcquired(byref(total))
        held = _camera_held_bytes()
    finally:
        tracemalloc.stop()
    assert total.value > 100
    assert armed >= ring_bytes  # was 0: nothing allocated at arm
    assert held - armed < ring_bytes / 4  # was +ring_bytes: one array per frame kept
    first, last = c_int32(), c_int32()
    assert sim.GetNumberNewImages(byref(first), byref(last)) == 20002
    assert (first.value, last.value) == (total.value - 39, total.value)  # the last 40 frames, contiguous
    buffer = np.zeros(40 * sim.model.width_px, np.uint16)
    out_first, out_last = c_int32(), c_int32()
    assert sim.GetImages16(first.value, last.value, buffer.ctypes.data_as(POINTER(c_uint16)), buffer.size,
                           byref(out_first), byref(out_last)) == 20002
    frames = buffer.reshape(40, -1)
    assert (out_first.value, out_last.value) == (first.value, last.value)
    assert np.all(frames.min(axis=1) > 0) and len({row.tobytes() for row in frames}) == 40  # 40 distinct frames


HUGE_PAGE_PROBE = """
import sys
import numpy as np
def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20
if sys.argv[1] == "tuned":
    from labctl.acquisition.malloc_tuning import tune_for_long_runs
    assert tune_for_long_runs() == (True, True)
else:  # the kernel's default: THP on (a process inherits the setting: pytest ran engines before)
    import ctypes
    assert ctypes.CDLL(None).prctl(41, 0, 0, 0, 0) == 0
before = rss_mib()
rows = np.zeros(16 << 20, np.uint8)  # a 16 MiB row store (numpy madvises >= 4 MiB for huge pages)
rows[:: 2 << 20] = 1  # one byte written in each 2 MiB
print(rss_mib() - before)
"""


def _transparent_huge_pages_mode() -> str:
    try:
        text = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return "never"
    return text[text.index("[") + 1:text.index("]")] if "[" in text else "never"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux prctl")
def test_large_stores_are_resident_only_where_written():
    """The engine turns transparent huge pages off (``labctl.acquisition.malloc_tuning``).  With them (THP
    ``madvise`` mode, numpy's ``madvise`` on arrays >= 4 MiB), one byte written in a 2 MiB region made all
    2 MiB resident: the live trace and FLID stores (doubling, written front to back) ran up to 2 MiB each
    ahead of their rows, the 2-4 MiB steps of the 1-hour soak."""
    grew = {}
    for mode in ("tuned", "default"):
        result = subprocess.run([sys.executable, "-c", HUGE_PAGE_PROBE, mode], capture_output=True, text=True,
                                timeout=60, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
        assert result.returncode == 0, result.stderr
        grew[mode] = float(result.stdout)
    assert grew["tuned"] < 1.0  # MiB: 8 pages of 4 KiB written (was 16 MiB here: 8 huge pages)
    if _transparent_huge_pages_mode() != "never":
        assert grew["default"] > 2.0  # the kernel's huge pages (unless it found no free 2 MiB at all)


ENGINE_PROBE = """
import ctypes
prctl = ctypes.CDLL(None).prctl
assert prctl(41, 0, 0, 0, 0) == 0  # THP on, as in a new process (the setting is inherited from pytest)
from labctl.acquisition.engine import AcquisitionEngine
from labctl.station.station import Station
from tests.conftest import sim_config
with Station(sim_config()) as station:
    summary = AcquisitionEngine(station, None).run(0.2)
print(summary.clean, prctl(42, 0, 0, 0, 0))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux prctl")
def test_a_run_turns_transparent_huge_pages_off_for_its_process():
    result = subprocess.run([sys.executable, "-c", ENGINE_PROBE], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["True", "1"]  # a clean run; PR_GET_THP_DISABLE: 1 (was 0)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux mincore")
def test_the_simulated_cameras_circular_buffer_is_resident_once_armed():
    """Written at arm: the process's RSS does not grow over the first 100 s of a run as the 2 MB ring fills
    (zeroed pages from ``mmap`` stay unmapped until written)."""
    scene = Scene({"emitter": {"blinking": {"enabled": False}}}, wiring=WIRING, seed=1)
    sim = SimAndorSDK(scene)
    sim.Initialize(b"")
    sim.SetReadMode(0)
    sim.SetAcquisitionMode(5)
    size = c_int32()
    sim.GetSizeOfCircularBuffer(byref(size))
    assert size.value == 1000
    assert sim.StartAcquisition() == 20002
    assert sim._ring.nbytes == 1000 * sim.model.width_px * 2
    assert _resident_fraction(sim._ring) == 1.0  # was 0.0 with np.zeros (mmap: unmapped until written)

"""Simulated quTAG vendor library: the ``TDC_*`` functions of ``tdcbase`` over a scene.

``SimTDCBase`` (standard quTAG, library v1.5) and ``SimTDCBaseMC`` (quTAG MC/HR
library) implement the same function names, ctypes-level argument conventions
and status codes as the real library, so ``drivers.qutag.QuTAG`` runs unchanged
on them.  Outputs are written through the ctypes objects the caller passes
(``byref(c_double())``, ``POINTER(c_int64)`` from ``ndarray.ctypes.data_as``).

Behaviour (what a test can rely on):

* **Device clock.** Device time (ps) = (clock() - origin) x time_scale x 1e12,
  where origin is taken the first time the timestamp buffer is enabled
  (``TDC_setTimestampBufferSize`` with size > 0) after ``TDC_init``.  It keeps
  running afterwards: a later ``TDC_setTimestampBufferSize`` clears the buffer but
  does not restart time.  Scene time never goes back: after a re-``TDC_init`` the
  device time continues from where the scene was.
* **Processing.** On every call that reads or changes the stream, the library asks
  the scene for the tags up to the current device time and applies, in order: the
  sync divider on input 0 (keeps syncs whose global index is a multiple of D, so
  it is deterministic; with ``reconstruct`` every sync is kept, an ideal
  reconstruction); the enabled-channel mask (input 0 also needs five-channel mode
  on the standard quTAG, whose start events are otherwise not transmitted);
  channel delays (then a stable re-sort; tags that a later, negatively delayed tag
  could still precede are held back, so the output is sorted across reads); silent
  drop windows in device seconds (tags vanish WITHOUT raising the data-lost flag:
  a test hook for the quTAG's unflagged overload above ~1 Mcps).  Dead times are
  stored and validated but not applied (the scene's detectors have their own).
* **Ring buffer.** The buffer keeps the LAST ``buffer_size`` tags since the last
  reset; if more arrived, the oldest are overwritten and the data-lost flag is
  latched.  ``TDC_getLastTimestamps(reset=1)`` returns the content and clears it;
  ``reset=0`` returns it and keeps it.  While frozen (``TDC_freezeBuffers(1)``) or
  with no buffer, tags are dropped without a flag, as on the device.
* **Data lost.** ``TDC_getDataLost`` returns "latched or current" and clears the
  latch.  "Current" means an overflow during the processing this very call did,
  so a second call right after the first reports only losses in between: "call
  twice for the current state", as the vendor documents.
* **Errors.** Out-of-range arguments return 10 (OutOfRange), calls before
  ``TDC_init`` return 12 (NotInitialized), an unknown device id 9 (NoDevice);
  ``TDC_perror(rc)`` returns bytes.  ``inject_error(name, code)`` makes the next
  call of ``name`` return ``code`` without touching any state.
* **Faults** (option ``faults``, settable from a station file's
  ``library_options``; :mod:`sim_backends.faults`): ``[{after_s: 1.0, function:
  TDC_getLastTimestamps, code: 2}]`` makes every call of ``function`` return ``code``
  once ``after_s`` device seconds have passed since the timestamp buffer was last
  (re)started (``TDC_setTimestampBufferSize``, i.e. the start of a stream): a device
  that drops off the bus mid-run.  Before the first stream the fault clock reads 0, so
  ``after_s: 0`` fires at the first call of any function, set-up calls included
  (``TDC_init``, ``TDC_setTimestampBufferSize``...).  ``mode: once`` fails one call,
  ``mode: hang`` blocks the call (``hang_s`` seconds, default until the process ends).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from labctl.blocks import TagBlock
from sim_backends.ctypes_out import copy_out, num as _num, store as _store
from sim_backends import qutag_header as H
from sim_backends.faults import FaultSchedule, nonzero_status
from sim_backends.qutag_header import NO_DEVICE, NOT_INITIALIZED, OK, OUT_OF_RANGE, PERROR_TEXTS
from sim_backends.vendor_entry import SimVendorLibrary, status_function

SIM_DEVICE_ID = 0
"""Device id of the simulated quTAG (``TDC_init(-1)`` also finds it)."""
N_INPUTS = len(H.INPUTS)
MAX_STEP_PS = 50_000_000_000
"""Device time (50 ms) pulled from the scene per step when the reader falls behind."""

def _stream_channel_tables() -> tuple[np.ndarray, np.ndarray]:
    """``(labctl_of_vendor, vendor_of_labctl)``: uint8 lookup tables (256 entries) between the
    stream's channel numbers (``H.STREAM_CHANNEL_OF_INPUT``) and the scene's input numbers."""
    labctl_of_vendor = np.arange(256, dtype=np.uint8)
    vendor_of_labctl = np.arange(256, dtype=np.uint8)
    for labctl_channel, vendor_channel in H.STREAM_CHANNEL_OF_INPUT.items():
        labctl_of_vendor[vendor_channel] = labctl_channel
        vendor_of_labctl[labctl_channel] = vendor_channel
    return labctl_of_vendor, vendor_of_labctl


class Scene(Protocol):
    """What the simulated library needs of the shared scene."""

    def generate(self, t_stop_ps: int) -> TagBlock:
        """Tags in [previous t_stop, t_stop), sorted; deterministic whatever the t_stop sequence."""


def _vendor(requires_init: bool = True) -> Callable[[Callable[..., int]], Callable[..., int]]:
    """The common entry of every status-returning function (:mod:`sim_backends.vendor_entry`)."""
    return status_function(requires_init)


def _returns_value(func: Callable[..., Any]) -> Callable[..., Any]:
    """Entry of a function that returns a value, not a status: only a scheduled hang applies."""

    @functools.wraps(func)
    def wrapper(self: "_SimTDCCore", *args: Any) -> Any:
        self._fault_schedule.enter(func.__name__)
        return func(self, *args)

    wrapper.returns_status = False  # type: ignore[attr-defined]
    return wrapper


class _SimTDCCore(SimVendorLibrary):
    """Functions common to both library generations (see the module docstring)."""

    generation = "standard"
    NOT_INITIALIZED = NOT_INITIALIZED
    version = 1.5
    features = 0x1 | 0x2 | 0x20
    """Feature flags returned by TDC_checkFeatures (HBT, LIFETIME, MARKERS)."""

    def __init__(
        self,
        scene: Scene,
        *,
        time_scale: float = 1.0,
        silent_drop_windows_s: Sequence[tuple[float, float]] = (),
        faults: Sequence[dict[str, Any]] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if time_scale <= 0:
            raise ValueError(f"SimTDCBase: time_scale = {time_scale!r}: must be > 0")
        self._stream_start_ps: int | None = None  # device time of the last buffer (re)start: the fault clock
        kinds = {name: getattr(getattr(type(self), name), "returns_status", None) for name in dir(type(self))
                 if name.startswith("TDC_")}
        self._fault_schedule = FaultSchedule(
            faults,
            status_functions=[name for name, status in kinds.items() if status],
            value_functions=[name for name, status in kinds.items() if status is False],
            check_code=nonzero_status(OK, "2 (no connection)"),
            elapsed_s=self._fault_clock_s,
        )
        self._scene = scene
        self._time_scale = float(time_scale)
        self._drop_windows_ps = [(int(round(a * 1e12)), int(round(b * 1e12))) for a, b in silent_drop_windows_s]
        self._clock = clock
        self._lock = threading.RLock()
        self._injected: dict[str, int] = {}
        self._origin_s: float | None = None
        self._time_offset_ps = 0
        self._t_generated_ps = 0
        self._sync_index = 0
        self._labctl_of_vendor, self._vendor_of_labctl = _stream_channel_tables()
        self.initialized = False
        self._reset_device()

    # --- test hooks and read-only views ------------------------------------------
    def _fault_clock_s(self) -> float:
        """Device seconds since the timestamp buffer was last (re)started; 0 before it ever was."""
        if self._stream_start_ps is None:
            return 0.0
        return (self.device_time_ps() - self._stream_start_ps) / 1e12

    def device_time_ps(self) -> int:
        """Current device time in ps (0 before the buffer was first enabled)."""
        if self._origin_s is None:
            return self._time_offset_ps
        elapsed_ps = int(round((self._clock() - self._origin_s) * self._time_scale * 1e12))
        return max(self._time_offset_ps + elapsed_ps, self._t_generated_ps)

    def _reset_device(self) -> None:
        """Power-on state of the settings (what TDC_init establishes)."""
        self.channel_mask = 0
        """Enabled inputs, bit N = input N (bit 0 = start input), for both generations."""
        self.five_channel_mode = False
        self.sync_divider = 1
        self.sync_reconstruct = False
        self.conditioning = {ch: (3, 1, 1.0) for ch in range(N_INPUTS)}
        """Per input: (conditioning code, edge 1 = rising, threshold V); vendor defaults MISC, rising, 1 V."""
        self.delays_ps = np.zeros(H.DELAY_ARRAY_LENGTH[self.generation], np.int32)
        self.dead_times_ps: dict[int, int] = {}
        self.exposure_time_ms = 100
        self.buffer_size = 0
        self.frozen = False
        self._lost_latched = False
        self._ring_ts = np.empty(0, np.int64)
        self._ring_ch = np.empty(0, np.uint8)
        self._pending_ts = np.empty(0, np.int64)
        self._pending_ch = np.empty(0, np.uint8)

    # --- the stream -----------------------------------------------------------------
    def _start_in_stream(self) -> bool:
        return True

    def _advance(self) -> None:
        """Pull the scene's tags up to now through divider, mask, delays, drops, ring."""
        if self._origin_s is None:
            return
        t_now = self.device_time_ps()
        # In steps: a reader that fell far behind costs time, not memory (the ring keeps
        # only the last buffer_size tags of each step).
        while self._t_generated_ps < t_now:
            self._advance_to(min(t_now, self._t_generated_ps + MAX_STEP_PS))

    def _advance_to(self, t_now: int) -> None:
        """Process the scene's tags in [generated, t_now)."""
        block = self._scene.generate(t_now)
        self._t_generated_ps = t_now
        ts, ch = block.timestamps, block.channels
        is_sync = ch == 0
        keep = np.ones(ts.shape, bool)
        if self.sync_divider > 1 and not self.sync_reconstruct:
            index = self._sync_index + np.cumsum(is_sync) - 1
            keep &= ~is_sync | (index % self.sync_divider == 0)
        self._sync_index += int(is_sync.sum())
        enabled = np.ones(256, bool)
        enabled[:N_INPUTS] = [(self.channel_mask >> i) & 1 for i in range(N_INPUTS)]
        enabled[0] &= self._start_in_stream()
        keep &= enabled[ch]
        if not keep.all():
            ts, ch = ts[keep], ch[keep]
        delay_of = np.zeros(256, np.int64)
        delay_of[:N_INPUTS] = self.delays_ps[:N_INPUTS]
        if delay_of.any() or self._pending_ts.size:
            ts = np.concatenate([self._pending_ts, ts + delay_of[ch]])
            ch = np.concatenate([self._pending_ch, ch])
            order = np.argsort(ts, kind="stable")
            ts, ch = ts[order], ch[order]
            # A later tag arrives no earlier than t_now + (most negative delay).
            n_final = int(np.searchsorted(ts, t_now + min(0, int(delay_of.min())), side="left"))
            self._pending_ts, self._pending_ch = ts[n_final:], ch[n_final:]
            ts, ch = ts[:n_final], ch[:n_final]
        for start_ps, stop_ps in self._drop_windows_ps:
            outside = (ts < start_ps) | (ts >= stop_ps)
            ts, ch = ts[outside], ch[outside]
        if self.buffer_size > 0 and not self.frozen and ts.size:
            self._push(ts, self._vendor_of_labctl[ch])

    def _push(self, ts: np.ndarray, ch: np.ndarray) -> None:
        ring_ts = np.concatenate([self._ring_ts, ts])
        ring_ch = np.concatenate([self._ring_ch, ch])
        if ring_ts.size > self.buffer_size:
            self._lost_latched = True
            ring_ts, ring_ch = ring_ts[-self.buffer_size :], ring_ch[-self.buffer_size :]
        self._ring_ts, self._ring_ch = ring_ts, ring_ch

    def _clear_ring(self) -> None:
        self._ring_ts = np.empty(0, np.int64)
        self._ring_ch = np.empty(0, np.uint8)

    # --- vendor functions --------------------------------------------------------
    @_returns_value
    def TDC_getVersion(self) -> float:
        return self.version

    @_returns_value
    def TDC_perror(self, rc: Any) -> bytes:
        return PERROR_TEXTS.get(int(_num(rc)), f"Unknown return code {int(_num(rc))}").encode()

    @_vendor(requires_init=False)
    def TDC_init(self, device_id: int) -> int:
        if device_id not in (-1, SIM_DEVICE_ID):
            return NO_DEVICE
        self._time_offset_ps = self._t_generated_ps
        self._origin_s = None
        self._reset_device()
        self.initialized = True
        return OK

    @_vendor(requires_init=False)
    def TDC_deInit(self) -> int:
        self._advance()
        self.initialized = False
        self.buffer_size = 0
        self._clear_ring()
        return OK

    @_vendor()
    def TDC_getTimebase(self, timebase_s: Any) -> int:
        _store(timebase_s, 1e-12)
        return OK

    @_returns_value
    def TDC_checkFeatures(self) -> int:
        return self.features if self.initialized else 0

    @_vendor()
    def TDC_configureSignalConditioning(self, channel: int, conditioning: int, edge: int, threshold_v: float) -> int:
        low, high = H.THRESHOLD_V
        if not (0 <= channel < N_INPUTS and conditioning in (1, 2, 3) and low <= threshold_v <= high):
            return OUT_OF_RANGE
        self.conditioning[channel] = (conditioning, 1 if edge else 0, float(threshold_v))
        return OK

    @_vendor()
    def TDC_configureSyncDivider(self, divider: int, reconstruct: int) -> int:
        if divider not in H.SYNC_DIVIDER_VALUES:
            return OUT_OF_RANGE
        self._advance()
        self.sync_divider, self.sync_reconstruct = int(divider), bool(reconstruct)
        return OK

    @_vendor()
    def TDC_setExposureTime(self, exposure_ms: int) -> int:
        low, high = H.EXPOSURE_TIME_MS
        if not low <= exposure_ms <= high:
            return OUT_OF_RANGE
        self.exposure_time_ms = int(exposure_ms)
        return OK

    @_vendor()
    def TDC_setTimestampBufferSize(self, size: int) -> int:
        low, high = H.BUFFER_SIZE_TAGS
        if not low <= size <= high:
            return OUT_OF_RANGE
        self._advance()
        if self._origin_s is None:
            self._origin_s = self._clock()
        self.buffer_size = int(size)
        self._clear_ring()
        self._stream_start_ps = self.device_time_ps()
        return OK

    @_vendor()
    def TDC_getLastTimestamps(self, reset: int, timestamps: Any, channels: Any, valid: Any) -> int:
        self._advance()
        n = int(self._ring_ts.size)
        if n and timestamps:
            copy_out(timestamps, self._ring_ts)
        if n and channels:
            copy_out(channels, self._ring_ch)
        _store(valid, n)
        if reset:
            self._clear_ring()
        return OK

    @_vendor()
    def TDC_getDataLost(self, lost: Any) -> int:
        self._advance()
        _store(lost, 1 if self._lost_latched else 0)
        self._lost_latched = False
        return OK

    @_vendor()
    def TDC_freezeBuffers(self, freeze: int) -> int:
        self._advance()
        self.frozen = bool(freeze)
        return OK


class SimTDCBase(_SimTDCCore):
    """Simulated standard quTAG library (v1.5): ``TDC_enableChannels(mask)``, five-channel mode.

    As on the device (four-channel mode by default), start-input events reach the
    stream only in five-channel mode; with it on, bit 0 of the mask gates them.
    """

    generation = "standard"
    features = 0x1 | 0x2 | 0x4 | 0x8 | 0x10 | 0x20
    """HBT, LIFETIME, 3_CHAN, 4_CHAN, 5_CHAN (five-channel mode), MARKERS."""

    def _start_in_stream(self) -> bool:
        return self.five_channel_mode

    @_vendor()
    def TDC_enableChannels(self, channel_mask: int) -> int:
        if not 0 <= channel_mask <= H.CHANNEL_MASK_MAX:
            return OUT_OF_RANGE
        self._advance()
        self.channel_mask = int(channel_mask)
        return OK

    @_vendor()
    def TDC_setFiveChannelMode(self, on: int) -> int:
        self._advance()
        self.five_channel_mode = bool(on)
        return OK

    @_vendor()
    def TDC_setChannelDelays(self, delays: Any) -> int:
        n = self.delays_ps.size
        values = np.zeros(n, np.int32) if not delays else np.ctypeslib.as_array(delays, shape=(n,)).copy()
        low, high = H.DELAY_PS
        if np.any(values < low) or np.any(values > high):
            return OUT_OF_RANGE
        self._advance()
        self.delays_ps = values.astype(np.int32)
        return OK

    @_vendor()
    def TDC_setDeadTime(self, channel: int, dead_time_ps: int) -> int:
        low, high = H.DEAD_TIME_PS
        if not (0 <= channel < N_INPUTS and low <= dead_time_ps <= high):
            return OUT_OF_RANGE
        self.dead_times_ps[channel] = int(dead_time_ps)
        return OK


class SimTDCBaseMC(_SimTDCCore):
    """Simulated quTAG MC/HR library: ``TDC_enableChannels(enStart, mask)`` with mask bit 0 = stop input 1."""

    generation = "mc"
    version = 2.0

    @_vendor()
    def TDC_enableChannels(self, enable_start: int, stop_mask: int) -> int:
        if not 0 <= stop_mask <= H.CHANNEL_MASK_MAX:
            return OUT_OF_RANGE
        self._advance()
        self.channel_mask = (1 if enable_start else 0) | (int(stop_mask) << 1)
        return OK

    @_vendor()
    def TDC_setChannelDelay(self, channel: int, delay_ps: int) -> int:
        """MC/HR library (header v1.8): one input's delay per call (the standard library sets all at once)."""
        low, high = H.DELAY_PS
        if not (0 <= channel < N_INPUTS and low <= delay_ps <= high):
            return OUT_OF_RANGE
        self._advance()
        self.delays_ps[channel] = int(delay_ps)
        return OK

    @_returns_value
    def TDC_getChannelCount(self) -> int:
        return N_INPUTS


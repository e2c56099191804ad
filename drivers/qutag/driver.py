"""QCoDeS driver of the qutools quTAG time-to-digital converter.

The driver calls the vendor's ``TDC_*`` functions through
:class:`drivers.qutag.tdcbase.TDCBase` with Python values and numpy arrays; its library
object is injected (the real ``tdcbase``, loaded by
:func:`drivers.qutag.tdcbase.load_tdcbase`, or ``sim_backends.qutag_sim.SimTDCBase``),
and it never knows which.

Settings are QCoDeS parameters whose value is cached: a set sends the value to
the device and, only if the device accepts it, stores it; a get returns the
cached value, so a snapshot never talks to the device.  At construction the
driver brings the device to the parameters' initial values.

Streaming (the :class:`labctl.interfaces.TimeTagger` protocol): ``start_stream``
enables (and clears) the library's ring buffer of ``buffer_size`` tags;
``read_tags`` fetches and clears it; ``data_lost`` reports the vendor's latched
flag or a read that came back full.  The ring buffer keeps the LAST
``buffer_size`` tags: poll it before it wraps.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np
from qcodes.instrument import Instrument, InstrumentChannel
from qcodes.parameters import Parameter
from qcodes.validators import Bool, Enum, Ints, Numbers

from drivers.qutag import tdcbase
from drivers.qutag.tdcbase import CONSTANTS, LIMITS, QuTAGError, TDCBase, load_tdcbase, stream_channel_tables
from labctl.blocks import CHANNEL_DTYPE, TIMESTAMP_DTYPE, TagBlock
from labctl.errors import InstrumentError

log = logging.getLogger(__name__)

ALL_INPUTS_MASK = (1 << len(CONSTANTS["inputs"])) - 1


class QuTAGInput(InstrumentChannel):
    """One quTAG input: 0 = start input (laser sync), 1..4 = stop inputs."""

    def __init__(self, parent: "QuTAG", name: str, input_number: int) -> None:
        super().__init__(parent, name)
        self.input_number = input_number
        self._qutag = parent

        self.signal_conditioning = Parameter(
            "signal_conditioning", instrument=self, label=f"Input {input_number} signal type",
            val_mapping=CONSTANTS["signal_conditioning_codes"], initial_cache_value="MISC",
            get_cmd=None, set_cmd=lambda code: self._configure(conditioning=code),
        )
        """Signal type: LVTTL (2 V rising, preset), NIM (-0.6 V falling, preset) or MISC (edge and threshold_v apply)."""

        self.edge = Parameter(
            "edge", instrument=self, label=f"Input {input_number} edge",
            val_mapping={"rising": 1, "falling": 0}, initial_cache_value="rising",
            get_cmd=None, set_cmd=lambda code: self._configure(edge=code),
        )
        """Signal edge that makes an event (used with signal_conditioning MISC)."""

        self.threshold_v = Parameter(
            "threshold_v", instrument=self, label=f"Input {input_number} threshold", unit="V",
            vals=Numbers(*LIMITS["threshold_v"]), initial_cache_value=1.0,
            get_cmd=None, set_cmd=lambda volts: self._configure(threshold_v=volts),
        )
        """Discriminator threshold in V, -2..3 V in 1.47 mV steps (used with signal_conditioning MISC)."""

        self.delay_ps = Parameter(
            "delay_ps", instrument=self, label=f"Input {input_number} delay", unit="ps",
            vals=Ints(*LIMITS["delay_ps"]), initial_cache_value=0,
            get_cmd=None, set_cmd=lambda ps: parent._send_delays({input_number: ps}),
        )
        """Delay added to this input's timestamps in ps (+-100 ns), compensated in hardware with re-sorting."""

        self.dead_time_ps = Parameter(
            "dead_time_ps", instrument=self, label=f"Input {input_number} dead time", unit="ps",
            vals=Ints(*LIMITS["dead_time_ps"]),
            get_cmd=None, set_cmd=lambda ps: parent._send_dead_time(input_number, int(ps)),
        )
        """Events on this input within this time (ps) after an event are ignored; None = device default, never set.
        Standard quTAG only: the MC/HR library has no dead-time function."""

    def _configure(self, **change: Any) -> None:
        """Send conditioning, edge and threshold together (one vendor call), with one of them changed."""
        conditioning = change.get("conditioning", self.signal_conditioning.cache.raw_value)
        edge = change.get("edge", self.edge.cache.raw_value)
        threshold_v = change.get("threshold_v", self.threshold_v.cache.get())
        self._qutag._call(
            "TDC_configureSignalConditioning", self.input_number, int(conditioning), int(edge), float(threshold_v)
        )


class QuTAG(Instrument):
    """qutools quTAG time tagger (standard, or MC/HR library), a labctl ``TimeTagger``.

    Args:
        name: QCoDeS instrument name.
        library: the tdcbase library object (real or ``SimTDCBase``); None loads the
            real library with :func:`load_tdcbase` (``library_path``).
        device_id: device to connect (``TDC_init``); -1 = the first one found.
        library_path: path of ``tdcbase.dll`` / ``libtdcbase.so`` when ``library`` is None.

    Raises:
        VendorLibraryNotFound: ``library`` is None and the vendor library is absent.
        QuTAGError: the device refused to connect or to take the initial settings.
    """

    vendor_library_functions = {
        generation: (*tdcbase.PROTOTYPES, *table) for generation, table in tdcbase.GENERATION_PROTOTYPES.items()
    }
    """Functions a ``library`` object must define, per library generation (checked by the station)."""

    def __init__(
        self,
        name: str,
        library: object | None = None,
        device_id: int = -1,
        library_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        if library is None:
            library = load_tdcbase(library_path)
        sdk = TDCBase(library)
        # Connect before registering with QCoDeS, so a failure leaves nothing behind.
        try:
            sdk.call("TDC_init", int(device_id))
        except QuTAGError:
            sdk.value("TDC_deInit")
            raise
        super().__init__(name, **kwargs)
        self._sdk = sdk
        self._lock = threading.RLock()
        self._generation = sdk.generation
        self._streaming = False
        self._ts_buffer: np.ndarray | None = None
        self._ch_buffer: np.ndarray | None = None
        self._full_read_since_check = False
        self._labctl_of_vendor, _ = stream_channel_tables()
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    # --- construction -----------------------------------------------------------------
    def _build(self) -> None:
        timebase_s = self._call("TDC_getTimebase")
        timebase_ps = round(timebase_s * 1e12, 9)
        self._ps_per_unit: int | float = int(timebase_ps) if timebase_ps == int(timebase_ps) else timebase_ps
        features = int(self._sdk.value("TDC_checkFeatures"))
        has_five_channel_mode = self._generation == "standard" and bool(
            features & CONSTANTS["feature_flags"]["5_CHAN"]
        )

        self.timebase_ps = Parameter(
            "timebase_ps", instrument=self, label="Timebase", unit="ps",
            initial_cache_value=timebase_ps, get_cmd=None, set_cmd=False,
        )
        """Duration of one timestamp unit in ps (1 on a quTAG), read from the device at connection."""

        self.library_version = Parameter(
            "library_version", instrument=self, initial_cache_value=float(self._sdk.value("TDC_getVersion")),
            get_cmd=None, set_cmd=False,
        )
        """Version of the tdcbase library (TDC_getVersion)."""

        self.library_generation = Parameter(
            "library_generation", instrument=self, initial_cache_value=self._generation,
            get_cmd=None, set_cmd=False,
        )
        """"standard" (quTAG, TDC_enableChannels(mask)) or "mc" (quTAG MC/HR library)."""

        self.features = Parameter(
            "features", instrument=self, initial_cache_value=features, get_cmd=None, set_cmd=False,
        )
        """Feature flags of TDC_checkFeatures (0x10 = five-channel mode, 0x20 = markers, ...)."""

        if self._generation == "standard":
            self.five_channel_mode = Parameter(
                "five_channel_mode", instrument=self, vals=Bool(), initial_cache_value=has_five_channel_mode,
                get_cmd=None, set_cmd=lambda on: self._call("TDC_setFiveChannelMode", int(on)),
            )
            """Start input as a regular channel whose events reach the stream (off: they only reset the clock)."""

        self.enabled_channels = Parameter(
            "enabled_channels", instrument=self, label="Enabled inputs (bit N = input N)",
            vals=Ints(0, ALL_INPUTS_MASK), initial_cache_value=ALL_INPUTS_MASK,
            get_cmd=None, set_cmd=self._send_enabled_channels,
        )
        """Bit mask of the inputs whose tags are streamed: bit 0 = start input, bit N = input N."""

        self.sync_divider = Parameter(
            "sync_divider", instrument=self, label="Start-input divider",
            vals=Enum(*LIMITS["sync_divider_values"]), initial_cache_value=1,
            get_cmd=None, set_cmd=lambda divider: self._send_sync_divider(divider=divider),
        )
        """Only every N-th event of the start input (laser sync) is kept: 1, 2, 4 or 8."""

        self.sync_reconstruct = Parameter(
            "sync_reconstruct", instrument=self, vals=Bool(), initial_cache_value=False,
            get_cmd=None, set_cmd=lambda on: self._send_sync_divider(reconstruct=on),
        )
        """Let the library re-create the syncs skipped by sync_divider (in software)."""

        self.buffer_size = Parameter(
            "buffer_size", instrument=self, label="Timestamp ring buffer", unit="tags",
            vals=Ints(*LIMITS["buffer_size_tags"]), initial_cache_value=LIMITS["buffer_size_tags"][1],
            get_cmd=None, set_cmd=self._check_buffer_size_change,
        )
        """Size of the library's ring buffer in tags, applied by start_stream; keep > rate x poll interval."""

        self.exposure_time_ms = Parameter(
            "exposure_time_ms", instrument=self, label="Counter exposure", unit="ms",
            vals=Ints(*LIMITS["exposure_time_ms"]), initial_cache_value=100,
            get_cmd=None, set_cmd=lambda ms: self._call("TDC_setExposureTime", int(ms)),
        )
        """Integration time of the device's built-in counters in ms (does not affect the tag stream)."""

        self.inputs: dict[int, QuTAGInput] = {}
        for number in CONSTANTS["inputs"]:
            module = QuTAGInput(self, f"ch{number}", number)
            self.add_submodule(f"ch{number}", module)
            self.inputs[number] = module

        # Bring the device to the cached values (five-channel mode first: it changes input 0).
        settings = [self.enabled_channels, self.sync_divider, self.exposure_time_ms]
        if has_five_channel_mode:
            settings.insert(0, self.five_channel_mode)
        for module in self.inputs.values():
            settings += [module.signal_conditioning, module.delay_ps]
        for param in settings:
            param.set(param.cache.get())

    # --- vendor calls -----------------------------------------------------------------
    def _call(self, function: str, *inputs: Any) -> Any:
        """Call a status-returning vendor function; return its outputs; raise QuTAGError on a non-zero status."""
        with self._lock:
            return self._sdk.call(function, *inputs)

    def _send_enabled_channels(self, mask: int) -> None:
        if self._generation == "mc":
            self._call("TDC_enableChannels", mask & 1, mask >> 1)
        else:
            self._call("TDC_enableChannels", int(mask))

    def _send_sync_divider(self, divider: int | None = None, reconstruct: bool | None = None) -> None:
        divider = self.sync_divider.cache.get() if divider is None else divider
        reconstruct = self.sync_reconstruct.cache.get() if reconstruct is None else reconstruct
        self._call("TDC_configureSyncDivider", int(divider), int(bool(reconstruct)))

    def _send_dead_time(self, number: int, dead_time_ps: int) -> None:
        if self._generation == "mc":
            raise InstrumentError(
                f"{self.name}.ch{number}.dead_time_ps = {dead_time_ps}: the quTAG MC/HR library has no "
                f"dead-time function (TDC_setDeadTime is in the standard quTAG library only); nothing was sent"
            )
        self._call("TDC_setDeadTime", number, dead_time_ps)

    def _send_delays(self, change: dict[int, int]) -> None:
        if self._generation == "mc":  # MC/HR header: TDC_setChannelDelay(channel, delay), 0 = start input
            for number, delay_ps in change.items():
                self._call("TDC_setChannelDelay", number, int(delay_ps))
            return
        delays = np.zeros(CONSTANTS["delay_array_length"][self._generation], np.int32)
        for number, module in self.inputs.items():
            delays[number] = change.get(number, module.delay_ps.cache.get())
        self._call("TDC_setChannelDelays", delays)

    def _check_buffer_size_change(self, size: int) -> None:
        if self._streaming:
            raise InstrumentError(
                f"{self.name}.buffer_size = {size!r}: cannot change while streaming (it would clear "
                f"the buffer and lose tags); call stop_stream() first"
            )

    def _read_vendor_lost(self) -> bool:
        return bool(self._call("TDC_getDataLost"))

    # --- labctl.interfaces.TimeTagger -----------------------------------------------------
    def start_stream(self) -> None:
        """Enable the ring buffer (``buffer_size`` tags), clear it and the loss flags.

        Tags detected before this call are discarded.
        """
        with self._lock:
            size = int(self.buffer_size.cache.get())
            self._ts_buffer = np.empty(size, np.int64)
            self._ch_buffer = np.empty(size, np.uint8)
            self._call("TDC_freezeBuffers", 0)
            self._call("TDC_setTimestampBufferSize", size)
            self._read_vendor_lost()  # clear a latch left from before this stream
            self._full_read_since_check = False
            self._streaming = True

    def read_tags(self) -> TagBlock:
        """Every tag buffered since the previous read (sorted), as ``int64`` ps and ``uint8`` channels.

        Clears the library's buffer.  Allowed after ``stop_stream`` (drains what is left).
        """
        with self._lock:
            if self._ts_buffer is None or self._ch_buffer is None:
                raise InstrumentError(f"{self.name}.read_tags: the stream is not started; call start_stream() first")
            n = int(self._call("TDC_getLastTimestamps", 1, self._ts_buffer, self._ch_buffer))
            if n >= self._ts_buffer.size:
                self._full_read_since_check = True
            if isinstance(self._ps_per_unit, int):
                timestamps = self._ts_buffer[:n] * np.int64(self._ps_per_unit)
            else:
                timestamps = np.rint(self._ts_buffer[:n] * self._ps_per_unit).astype(TIMESTAMP_DTYPE)
            channels = self._labctl_of_vendor[self._ch_buffer[:n]].astype(CHANNEL_DTYPE, copy=False)
        return TagBlock(timestamps.astype(TIMESTAMP_DTYPE, copy=False), channels)

    def data_lost(self) -> bool:
        """True if tags were lost since the previous call; clears the condition.

        True when the device's data-lost flag was raised (it is latched by the
        device until read; this call reads and so clears it) or when a read since
        the previous call returned a full buffer (the ring may have wrapped and
        overwritten its oldest tags).  Losses the quTAG does not flag (overload
        above ~1 Mcps) are not seen here: check the sync stream for gaps.
        """
        with self._lock:
            lost = self._read_vendor_lost() or self._full_read_since_check
            self._full_read_since_check = False
            return lost

    def stop_stream(self) -> None:
        """Freeze the buffer: no more tags are added; what it holds can still be read."""
        with self._lock:
            self._streaming = False
            self._call("TDC_freezeBuffers", 1)

    # --- QCoDeS --------------------------------------------------------------------------
    def get_idn(self) -> dict[str, str | None]:
        """Identification from the library (the quTAG has no *IDN? query)."""
        return {
            "vendor": "qutools",
            "model": f"quTAG ({self._generation} library)",
            "serial": None,
            "firmware": f"tdcbase {self.library_version.cache.get()}",
        }

    def close(self) -> None:
        """Disconnect (``TDC_deInit``) and release the QCoDeS instrument."""
        if getattr(self, "_sdk", None) is not None:
            try:
                self._call("TDC_deInit")
            except QuTAGError as exc:
                log.warning("%s: TDC_deInit failed on close: %s", getattr(self, "name", "quTAG"), exc)
        super().close()

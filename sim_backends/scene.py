"""The shared simulated scene: the time-tag stream a quTAG would record on the microscope.

One physical scene — pulsed laser, one emitter (single QD, Poissonian source or none),
HBT beam splitter, two SPADs — produces laser sync tags and the detections of SPAD A and
SPAD B, deterministically under a seed.

Generation runs in fixed internal segments of tagger time (``segment_ms``), in order;
segment k draws from its own random stream (derived from the seed and k only), and the
slow emitter state (blinking, P_trap) from streams of its own.  Whatever crosses a segment boundary
(late emission, afterpulses, dead time) is carried over.  ``generate`` only slices the
buffered result, so the output never depends on how the caller chunks ``t_stop``
(chunk invariance).  Settings (excitation, repetition rate, frame clock) take effect at
the next segment boundary not yet generated.

Two additions serve the spectral path (camera + spectrograph):

* **Frame clock** (function generator ch2, :mod:`sim_backends.frame_clock`): each edge
  triggers a camera frame and appears in the tag stream as a marker tag on
  ``wiring.frame_marker`` (none if that is ``None``).  ``frame_edges_ps`` lists the edges.
* **Spectra**: ``emitted_spectrum`` turns the emission log of a time window into
  expected photons per pixel at the spectrograph (``sim_backends.spectra``; the log:
  :mod:`sim_backends.emission_log`).  The
  simulated spectrograph publishes its pixel calibration in
  ``spectrograph_calibration_nm``; the simulated camera reads it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import numpy as np

from labctl.blocks import ChannelMap, TagBlock
from labctl.errors import ConfigError
from sim_backends._kernels import merge_tags
from sim_backends.emitter_state import EmitterState
from sim_backends.emission_log import EMISSION_LOG_KEEP_PS, EmissionLog
from sim_backends.emitters import LOG_COLUMNS, PoissonianSource, SingleQd, pulsed_poisson
from sim_backends.frame_clock import FrameClock, pulse_times_ps
from sim_backends.scene_config import (
    check_frame_clock_rate_hz,
    check_repetition_rate_hz,
    check_wiring,
    default_scene_config,
    validate_scene_config,
)
from sim_backends.spad_physics import Spad
from sim_backends.spectra import SPECTRAL_KINDS, SpectralModel, prorated_counts

_EMPTY = np.empty(0, np.int64)


class Scene:
    """Generator of the quTAG tag stream of the simulated microscope.

    Args:
        config: the ``scene:`` section of a station file (nested dicts); ``None`` or ``{}``
            means all defaults (see ``Scene.default_config``).  Validated fully here.
        wiring: tagger channel of each signal (``laser_sync``, ``spad_a``, ``spad_b``, and
            ``frame_marker`` for the frame-clock markers, or ``None`` for none).
        seed: non-negative integer; same seed and config give the same stream.

    Raises:
        ConfigError: invalid config, wiring or seed (key path from ``scene.``).
    """

    def __init__(self, config: Mapping[str, Any] | None = None, *, wiring: ChannelMap, seed: int = 0) -> None:
        params = validate_scene_config(config)
        check_wiring(wiring)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigError("seed", seed, "must be an integer >= 0")
        self._params = params
        self._seed = int(seed)
        self._channels = (wiring.laser_sync, wiring.spad_a, wiring.spad_b)
        laser = params["laser"]
        self._excitation = bool(laser["enabled"])
        self._shutter_open = True  # excitation shutter (SimShutter): closed, no laser light on the sample
        self._spad_gate_on = True  # SPAD gate inputs (a generator output): off, the SPADs detect nothing
        self._rate_hz = float(laser["repetition_rate_hz"])
        self._sync_delay_ps = int(laser["sync_delay_ps"])
        self._background_cps = float(laser["background_cps"])
        self._segment_ps = int(round(params["segment_ms"] * 1e9))
        self._spads = (Spad(params["spads"]["a"]), Spad(params["spads"]["b"]))
        hbt = [0.5 * spad.detection_efficiency for spad in self._spads]
        self._register_hbt = hbt
        emitter = params["emitter"]
        self._kind = emitter["kind"]
        self._state = EmitterState(emitter, self._seed)
        collect = params["collection_efficiency"]
        self._qd = SingleQd(emitter, laser["mean_excitations_per_pulse"], collect * hbt[0], collect * hbt[1])
        self._poisson = PoissonianSource(emitter["poissonian"], hbt[0], hbt[1])
        self._horizon_offset_ps = min(0, *(spad.earliest_offset_ps for spad in self._spads))
        # generation state
        self._next_segment = 0
        self._segment_settings: tuple[bool, float] | None = None
        self._grid_origin_ps = 0
        self._sync_carry = _EMPTY
        self._released_until_ps = self._horizon_offset_ps
        self._buffer: list[tuple[np.ndarray, np.ndarray]] = []
        self._until_ps = 0
        self._log = EmissionLog()
        self._streams = _SegmentStreams(self._seed)
        # frame clock (function generator ch2) and spectra
        frame_clock = params["frame_clock"]
        self._frame_clock = FrameClock(frame_clock["enabled"], frame_clock["rate_hz"], wiring.frame_marker)
        self._spectra = SpectralModel(emitter, params["spectrometer_collection_efficiency"])
        # Simulated instruments may be polled from different threads (tagger, camera):
        # generation and the readers of what it produced take this lock.
        self._lock = threading.RLock()
        self.spectrograph_calibration_nm: np.ndarray | None = None
        """Wavelength (nm) of each camera pixel column, set by a simulated spectrograph; None = not set
        (the simulated camera then uses ``spectra.default_wavelength_axis_nm``)."""
        _warm_up_kernels(wiring)

    @staticmethod
    def default_config() -> dict[str, Any]:
        """The full nested default config (every number documented in ``scene_config``)."""
        return default_scene_config()

    @property
    def config(self) -> dict[str, Any]:
        """The validated config in force (defaults filled in); a copy."""
        return validate_scene_config(self._params)

    @property
    def seed(self) -> int:
        """The scene's seed (simulated instruments derive their own random streams from it)."""
        return self._seed

    @property
    def generated_until_ps(self) -> int:
        """End (exclusive, ps) of what ``generate`` has returned so far."""
        return self._until_ps

    def generate(self, t_stop_ps: int) -> TagBlock:
        """All tags with timestamp in ``[generated_until_ps, t_stop_ps)``.

        Sorted by timestamp, ties by channel ascending.

        Raises:
            ValueError: ``t_stop_ps`` is before the end of the previous call.
        """
        if isinstance(t_stop_ps, bool) or not isinstance(t_stop_ps, (int, np.integer)):
            raise TypeError(f"t_stop_ps = {t_stop_ps!r}: must be an integer (ps)")
        t_stop = int(t_stop_ps)
        with self._lock:
            if t_stop < self._until_ps:
                raise ValueError(
                    f"t_stop_ps = {t_stop} is before the end of the previous call ({self._until_ps} ps): "
                    "must be >= it"
                )
            while self._released_until_ps < t_stop:
                self._generate_segment()
            if not self._buffer:
                self._until_ps = t_stop
                return TagBlock.empty()
            if len(self._buffer) == 1:
                times, channels = self._buffer[0]
            else:
                times = np.concatenate([b[0] for b in self._buffer])
                channels = np.concatenate([b[1] for b in self._buffer])
            lo, hi = np.searchsorted(times, [self._until_ps, t_stop])
            self._buffer = [(times[hi:], channels[hi:])]
            self._until_ps = t_stop
            return TagBlock(times[lo:hi], channels[lo:hi])

    def set_excitation(self, enabled: bool) -> None:
        """Switch the laser pulsing on/off from the next segment boundary not yet generated."""
        if not isinstance(enabled, (bool, np.bool_)):
            raise ConfigError("scene.laser.enabled", enabled, "must be true or false")
        self._excitation = bool(enabled)

    def set_shutter_open(self, is_open: bool) -> None:
        """Open/close the excitation shutter from the next segment boundary not yet generated.  Closed: no
        laser light reaches the sample (no emission, no scattered laser); the laser's sync tags go on."""
        self._shutter_open = bool(is_open)

    def set_spad_gate(self, enabled: bool) -> None:
        """Gate both SPADs on/off from the next segment boundary not yet generated.  Off: the diodes sit
        below breakdown and detect nothing, dark counts included (MPD PDM gate input)."""
        self._spad_gate_on = bool(enabled)

    def excitation_enabled(self) -> bool:
        """True if the laser is (or will be, from the next segment) pulsing."""
        return self._excitation

    def set_repetition_rate_hz(self, rate_hz: float) -> None:
        """Set the pulse rate (1e3..8e7 Hz) from the next segment boundary not yet generated."""
        self._rate_hz = check_repetition_rate_hz(rate_hz)

    def repetition_rate_hz(self) -> float:
        """Pulse repetition rate in Hz (the latest setting)."""
        return self._rate_hz

    def set_frame_clock(self, rate_hz: float, enabled: bool) -> None:
        """Set the frame clock (function generator ch2) from the next segment boundary not yet generated.

        Its edge grid restarts at that boundary whenever the rate or the on/off state changes.

        Raises:
            ConfigError: rate outside 1e-3..1e5 Hz or ``enabled`` not a bool; nothing changes.
        """
        rate = check_frame_clock_rate_hz(rate_hz)
        if not isinstance(enabled, (bool, np.bool_)):
            raise ConfigError("scene.frame_clock.enabled", enabled, "must be true or false")
        self._frame_clock.setting = (bool(enabled), rate)

    def frame_clock(self) -> tuple[float, bool]:
        """``(rate_hz, enabled)`` of the frame clock (the latest setting)."""
        enabled, rate = self._frame_clock.setting
        return rate, enabled

    def frame_edges_ps(self, t0_ps: int, t1_ps: int) -> np.ndarray:
        """Frame-clock rising edges in ``[t0, t1)`` (int64 ps) among the segments generated so far.

        Generation runs ahead of ``generated_until_ps`` by up to a segment: edges there are
        listed too; ask only up to ``generated_until_ps`` for edges that have "happened".
        """
        with self._lock:
            return self._frame_clock.edges_ps(t0_ps, t1_ps)

    def emitted_counts(self, t0_ps: int, t1_ps: int) -> dict[str, float]:
        """Photons emitted in ``[t0, t1)`` by kind: the emission-log columns ``band_edge``,
        ``trap``, ``off``, ``biexciton``, ``poissonian``, as floats.

        Log rows that overlap the window partly are pro-rated by time.

        Raises:
            ValueError: the window is reversed, negative, not generated yet, or older than the
                emission log keeps (``EMISSION_LOG_KEEP_PS``).
        """
        with self._lock:
            t0, t1 = self._check_window(t0_ps, t1_ps)
            start, stop, counts = self._log.window(t0, t1)
        values = prorated_counts(start, stop, counts, t0, t1)
        return {name: float(values[i]) for i, name in enumerate(LOG_COLUMNS)}

    def emitted_spectrum(self, t0_ps: int, t1_ps: int, energy_ev: np.ndarray) -> np.ndarray:
        """Expected number of photons reaching the spectrograph in each pixel during ``[t0, t1)``.

        Args:
            t0_ps, t1_ps: window on the tagger clock (ps); must lie within generated segments.
            energy_ev: photon energy (eV) of each pixel CENTRE, monotonic (either direction).

        Returns:
            float64, same shape as ``energy_ev``: for each pixel, the photons whose energy
            falls between the midpoints to its neighbours (``sim_backends.spectra``), i.e.
            per pixel with the pixel's own energy width.  Band-edge, OFF and biexciton
            photons on the band-edge line, trap photons on the trap line, each count taken
            from the emission log (pro-rated at the window's ends) times
            ``scene.spectrometer_collection_efficiency``.  The Poissonian test source and
            the 405 nm laser (blocked by the dichroic) are not included.

        Raises:
            ValueError: bad window (see ``emitted_counts``) or axis (not monotonic, < 2 pixels).
        """
        counts = self.emitted_counts(t0_ps, t1_ps)
        return self._spectra.photons_per_pixel({k: counts[k] for k in SPECTRAL_KINDS}, energy_ev)

    def _check_window(self, t0_ps: int, t1_ps: int) -> tuple[int, int]:
        t0, t1 = int(t0_ps), int(t1_ps)
        logged_until = self._next_segment * self._segment_ps
        if not 0 <= t0 <= t1 or t1 > logged_until:
            raise ValueError(
                f"window [{t0}, {t1}) ps: must satisfy 0 <= t0 <= t1 <= {logged_until} ps "
                "(the end of the generated segments; call generate first)"
            )
        if t0 < self._log.kept_from_ps:
            raise ValueError(
                f"window [{t0}, {t1}) ps: the emission log before {self._log.kept_from_ps} ps is no longer kept "
                f"(it keeps the last {EMISSION_LOG_KEEP_PS / 1e12:g} s of generated segments)"
            )
        return t0, t1

    def truth(self) -> dict[str, np.ndarray]:
        """Emitter state intervals tiling ``[0, generated_until_ps)``.

        Keys: ``start_ps``, ``stop_ps`` (int64), ``on`` (bool), ``p_trap`` (float64);
        piecewise constant.  For a Poissonian source ``on`` is True, for ``none`` False.
        """
        return self._state.intervals(self._until_ps)

    @property
    def emission_log(self) -> dict[str, np.ndarray]:
        """Photons emitted per row, over the generated segments kept (past ``generated_until_ps`` too).

        Rows tile time from 0, or, after a long run, from the oldest row kept (at least the
        last ``EMISSION_LOG_KEEP_PS`` are kept): each segment cut where the emitter state changes.  Keys:
        ``start_ps``, ``stop_ps``, ``pulses`` (laser pulses in the row), ``band_edge``,
        ``trap``, ``off``, ``biexciton`` (QD photons emitted, by kind; a photon counts in
        the row of its excitation pulse), ``poissonian`` (photons at the HBT input).
        """
        return self._log.table()

    # ---------------------------------------------------------------- generation

    def _generate_segment(self) -> None:
        k = self._next_segment
        start, stop = k * self._segment_ps, (k + 1) * self._segment_ps
        settings = (self._excitation, self._rate_hz)
        if settings != self._segment_settings:  # the laser (re)starts its pulse grid here
            self._grid_origin_ps = start
            self._segment_settings = settings
        excitation, rate_hz = settings
        rng = self._streams.segment(k)
        pulses = pulse_times_ps(start, stop, self._grid_origin_ps, rate_hz) if excitation else _EMPTY
        light = pulses if self._shutter_open else _EMPTY  # pulses that reach the sample
        self._state.ensure(stop)
        edges, on, p_trap = self._state.rows(start, stop)
        photons_a, photons_b, log_rows = self._photons(rng, excitation and self._shutter_open, light, rate_hz, edges, on, p_trap)
        horizon = stop + self._horizon_offset_ps
        det_a = self._spads[0].detect(rng, photons_a, start, stop, horizon)
        det_b = self._spads[1].detect(rng, photons_b, start, stop, horizon)
        if not self._spad_gate_on:
            det_a = det_b = _EMPTY
        ch_sync, ch_a, ch_b = self._channels
        times, channels = merge_tags(self._syncs_before(pulses, horizon), ch_sync, det_a, ch_a, det_b, ch_b)
        frame_edges = self._frame_clock.segment_edges(start, stop)
        times, channels = self._frame_clock.add_markers(times, channels, frame_edges, horizon)
        self._buffer.append((times, channels))
        self._released_until_ps = horizon
        self._next_segment = k + 1
        n_pulses = [light.size] if len(on) == 1 else np.diff(np.searchsorted(light, edges)).tolist()
        self._log.add(edges, n_pulses, log_rows)

    def _photons(
        self,
        rng: np.random.Generator,
        excitation: bool,
        pulses: np.ndarray,
        rate_hz: float,
        edges: list[int],
        on: list[bool],
        p_trap: list[float],
    ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, ...]]]:
        """Photons registered by SPAD A and B in one segment (emitter + laser background), log rows."""
        if self._kind == "single_qd":
            photons_a, photons_b, counts = self._qd.sample(rng, pulses, edges, on, p_trap)
            log_rows = [(*c, 0) for c in counts]
        elif self._kind == "poissonian":
            photons_a, photons_b, counts = self._poisson.sample(
                rng, excitation, pulses, rate_hz, edges[0], edges[-1], len(on)
            )
            log_rows = [(0, 0, 0, 0, *c) for c in counts]
        else:
            photons_a, photons_b, log_rows = _EMPTY, _EMPTY, [(0, 0, 0, 0, 0)] * len(on)
        if self._background_cps > 0 and pulses.size:
            mean = self._background_cps / rate_hz
            background_a = pulsed_poisson(rng, pulses, mean * self._register_hbt[0])
            background_b = pulsed_poisson(rng, pulses, mean * self._register_hbt[1])
            if background_a.size:
                photons_a = np.concatenate((photons_a, background_a))
            if background_b.size:
                photons_b = np.concatenate((photons_b, background_b))
        return photons_a, photons_b, log_rows

    def _syncs_before(self, pulses: np.ndarray, horizon_ps: int) -> np.ndarray:
        """Sync tags (carried + this segment's) before the horizon; keep the rest for later."""
        syncs = pulses + self._sync_delay_ps if self._sync_delay_ps else pulses
        if self._sync_carry.size:
            syncs = np.concatenate((self._sync_carry, syncs))
        if syncs.size and syncs[-1] >= horizon_ps:
            cut = int(np.searchsorted(syncs, horizon_ps))
            syncs, self._sync_carry = syncs[:cut], syncs[cut:]
        else:
            self._sync_carry = _EMPTY
        return syncs


class _SegmentStreams:
    """Random stream of segment k: a PCG64DXSM seeded from (seed, 0), advanced k golden-ratio steps.

    Segment k starts ``k * JUMP (mod 2**128)`` draws into the stream, JUMP being the
    golden-ratio step of numpy's ``jumped()``: far apart for any k.  (Advancing plain
    PCG64 by k * 2**64 gave visibly correlated streams; a Philox counter per segment
    draws 3x slower.)  Re-positioning one generator costs ~3 us, creating one ~20 us.
    """

    JUMP = 0x9E3779B97F4A7C15F39CC0605CEDC835

    def __init__(self, seed: int) -> None:
        self._bit_generator = np.random.PCG64DXSM(np.random.SeedSequence(seed, spawn_key=(0,)))
        self._origin = self._bit_generator.state
        self._generator = np.random.Generator(self._bit_generator)

    def segment(self, k: int) -> np.random.Generator:
        """The generator positioned at the start of segment ``k``'s stream (same object each call)."""
        self._bit_generator.state = self._origin
        self._bit_generator.advance((k * self.JUMP) % (1 << 128))
        return self._generator


_kernels_warm = False


def compile_kernels() -> None:
    """Every kernel of the scene called once with a run's types (the background compiler's warm-up:
    :mod:`labctl.analysis.kernel_backend`)."""
    _warm_up_kernels(ChannelMap(laser_sync=0, spad_a=1, spad_b=2, frame_marker=3))


def _warm_up_kernels(wiring: ChannelMap) -> None:
    """Load the numba kernels (or compile them) once per process, at build time.

    Without this the first ``generate`` takes ~0.5 s, and a simulated tagger
    running faster than real time would overflow its buffer on the first read.
    On the first run after an install (numpy kernels) it costs a few ms.
    """
    global _kernels_warm
    if _kernels_warm:
        return
    _kernels_warm = True
    scratch = Scene(None, wiring=wiring, seed=0)
    scratch.set_excitation(True)
    scratch.generate(2 * scratch._segment_ps)


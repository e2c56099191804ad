"""Photon sources of the scene: the single QD, a Poissonian source, the laser background.

Each ``sample`` call turns one segment's laser pulses into the photons that SPAD A and
SPAD B will register (collection, the 50:50 HBT split and detection efficiency already
applied, before jitter/delay/dead time), plus the emission-log counts of that segment.
Only the few registered photons are drawn one by one (``_kernels.qd_photons``): the
pulses that give one are found by the geometric gaps of a Bernoulli process, and the many
unregistered emitted photons are counted per log row with binomials.  Emission-log rows
are the segment cut at the emitter's state changes; a photon is logged in the row of its
excitation pulse.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from sim_backends._kernels import qd_photons

LOG_COLUMNS = ("band_edge", "trap", "off", "biexciton", "poissonian")
"""Emission-log counts: photons emitted by the QD by kind, and Poissonian photons at the HBT input."""

KIND_BAND_EDGE, KIND_TRAP, KIND_OFF = 0, 1, 2
"""Per-photon kind codes of exciton photons (see ``_kernels.qd_photons``)."""

_EMPTY = np.empty(0, np.int64)


def uniform_times_ps(rng: np.random.Generator, start_ps: int, stop_ps: int, count: int) -> np.ndarray:
    """``count`` times uniform in ``[start, stop)``, unsorted (faster than ``rng.integers``;
    exact for spans up to 1e12 ps)."""
    return start_ps + (rng.random(count) * (stop_ps - start_ps)).astype(np.int64)


def pulsed_poisson(rng: np.random.Generator, pulses_ps: np.ndarray, mean_per_pulse: float) -> np.ndarray:
    """Times of Poisson(``mean_per_pulse``) photons at each pulse (unsorted).

    A Poisson total spread uniformly over the pulses is exactly Poisson per pulse.
    """
    if pulses_ps.size == 0 or mean_per_pulse <= 0:
        return _EMPTY
    count = rng.poisson(mean_per_pulse * pulses_ps.size)
    if count == 0:
        return _EMPTY
    return pulses_ps[(rng.random(count) * pulses_ps.size).astype(np.intp)]


class SingleQd:
    """Pulsed single quantum dot with biexciton cascade, hot-carrier trapping and blinking.

    Per pulse N ~ Poisson(n̄) excitations.  ON: the exciton emits at most one photon
    (yield ``quantum_yield_on``), from the trap state with probability P_trap(t), else
    band edge; if N >= 2 a biexciton photon comes first (yield ``biexciton_quantum_yield``)
    and the exciton photon follows it (cascade).  OFF: one dim, fast photon at most, no
    biexciton photon (Auger-quenched charged state).

    Args:
        emitter: validated ``scene.emitter`` section.
        mean_excitations: n̄ per pulse.
        register_a, register_b: probability that an emitted photon is registered by SPAD
            A / B (collection x 1/2 x detection efficiency).
    """

    def __init__(
        self, emitter: Mapping[str, Any], mean_excitations: float, register_a: float, register_b: float
    ) -> None:
        nbar = mean_excitations
        self.p1 = -np.expm1(-nbar)  # P(N >= 1)
        self.p2 = self.p1 - nbar * np.exp(-nbar)  # P(N >= 2)
        self.q_on = emitter["quantum_yield_on"]
        blink = emitter["blinking"]
        self.q_off = blink["off_quantum_yield"] if blink["enabled"] else 0.0
        self.q_xx = emitter["biexciton_quantum_yield"]
        eta = register_a + register_b
        self.eta = eta
        self.fraction_a = register_a / eta if eta > 0 else 0.5
        lifetimes_ns = [emitter["band_edge"]["lifetime_ns"], emitter["trap"]["lifetime_ns"], blink["off_lifetime_ns"]]
        lifetimes_ns.append(emitter["biexciton_lifetime_ns"])
        self.lifetimes_ps = np.array(lifetimes_ns, np.float64) * 1e3  # by kind, then biexciton
        # P(pulse registers its biexciton photon), ON only
        self.r_xx = self.p2 * self.q_xx * eta
        # P(pulse registers its exciton photon | biexciton photon not registered)
        self.r_x_on = (self.p1 - self.r_xx) * self.q_on * eta / (1.0 - self.r_xx)
        self.r_x_off = self.p1 * self.q_off * eta
        self.x_given_xx = self.q_on * eta  # exciton registered, given the pulse had N >= 2

    def sample(
        self,
        rng: np.random.Generator,
        pulses_ps: np.ndarray,
        edges: list[int],
        on: list[bool],
        p_trap: list[float],
    ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int, int, int]]]:
        """Photons registered at A and at B, and log counts per row: band_edge, trap, off, biexciton.

        Args:
            pulses_ps: the segment's laser pulse times (sorted).
            edges, on, p_trap: the segment's log rows (state constant within a row).
        """
        rows = len(edges) - 1
        if pulses_ps.size == 0:
            return _EMPTY, _EMPTY, [(0, 0, 0, 0)] * rows
        if rows == 1:
            a, b, counts = self._sample_row(rng, pulses_ps, on[0], p_trap[0])
            return a, b, [counts]
        bounds = np.searchsorted(pulses_ps, edges).tolist()
        parts_a, parts_b, counts = [], [], []
        for row in range(rows):
            a, b, c = self._sample_row(rng, pulses_ps[bounds[row] : bounds[row + 1]], on[row], p_trap[row])
            parts_a.append(a)
            parts_b.append(b)
            counts.append(c)
        return np.concatenate(parts_a), np.concatenate(parts_b), counts

    def _sample_row(
        self, rng: np.random.Generator, pulses_ps: np.ndarray, on: bool, p_trap: float
    ) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
        """One stretch of constant state: registered photons at A, at B, emitted counts by kind.

        Per pulse the events are "biexciton photon registered" (probability r_xx) and
        "exciton photon registered" (r_x if not, ``x_given_xx`` if so).  The pulses with
        either (probability p_any) are drawn as one Bernoulli process, then split.
        """
        n = pulses_ps.size
        r_xx, r_x, q = (self.r_xx, self.r_x_on, self.q_on) if on else (0.0, self.r_x_off, self.q_off)
        p_any = r_xx + (1.0 - r_xx) * r_x
        expected = n * p_any
        pool = int(expected + 6.0 * np.sqrt(expected) + 16)
        while True:
            photons_a, photons_b, n_x, n_trap, n_xx, complete = qd_photons(
                pulses_ps, p_any, rng.random((8, pool)), on, p_trap, r_xx / p_any if p_any > 0 else 0.0,
                self.x_given_xx, self.fraction_a, self.lifetimes_ps,
            )  # fmt: skip
            if complete:
                break
            pool *= 2
        # emitted but not registered, given not registered (first-order consistent counts)
        unreg = rng.binomial(n - n_x, self.p1 * q * (1.0 - self.eta) / (1.0 - self.p1 * q * self.eta))
        if not on:
            return photons_a, photons_b, (0, 0, n_x + unreg, 0)
        unreg_trap = rng.binomial(unreg, p_trap)
        p_xx = self.p2 * self.q_xx
        xx_total = n_xx + rng.binomial(n - n_xx, p_xx * (1.0 - self.eta) / (1.0 - p_xx * self.eta))
        band_edge = n_x - n_trap + unreg - unreg_trap
        return photons_a, photons_b, (band_edge, n_trap + unreg_trap, 0, xx_total)


class PoissonianSource:
    """Photons at the HBT input as a Poisson process (g2 = 1 at every lag).

    CW: uniform in time over the segment.  Pulsed: Poisson number per laser pulse, at the
    pulse time, with the same mean rate.

    Args:
        params: validated ``scene.emitter.poissonian`` section.
        register_a, register_b: probability a photon at the HBT input is registered by A / B.
    """

    def __init__(self, params: Mapping[str, Any], register_a: float, register_b: float) -> None:
        self.rate_cps = float(params["rate_cps"])
        self.pulsed = bool(params["pulsed"])
        self.register = (register_a, register_b)

    def sample(
        self,
        rng: np.random.Generator,
        excitation: bool,
        pulses_ps: np.ndarray,
        rate_hz: float,
        start_ps: int,
        stop_ps: int,
        rows: int,
    ) -> tuple[np.ndarray, np.ndarray, list[tuple[int]]]:
        """(photons at A, photons at B, log counts per row: photons at the HBT input, all in row 0)."""
        counts = [(0,)] * rows
        if not excitation or self.rate_cps <= 0 or (self.pulsed and pulses_ps.size == 0):
            return _EMPTY, _EMPTY, counts
        duration_s = pulses_ps.size / rate_hz if self.pulsed else (stop_ps - start_ps) * 1e-12
        out = []
        for register in self.register:
            if self.pulsed:
                out.append(pulsed_poisson(rng, pulses_ps, self.rate_cps * register / rate_hz))
            else:
                count = rng.poisson(self.rate_cps * register * duration_s)
                out.append(uniform_times_ps(rng, start_ps, stop_ps, count))
        unregistered = rng.poisson(self.rate_cps * duration_s * (1.0 - sum(self.register)))
        counts[0] = (out[0].size + out[1].size + unregistered,)
        return out[0], out[1], counts

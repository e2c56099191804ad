"""g(2)(0) and the biexciton quantum yield (Nair, Zhao & Bawendi, Nano Lett. 11, 1136 (2011): the paper's ref. 43).

For one QD under weak pulsed excitation (mean excitations per pulse << 1) the zero-delay
peak of the pulsed g(2), relative to the side peaks, is the ratio of the biexciton to the
exciton quantum yield: g2(0) ~ QY_BX / QY_X.  Time gating checks it: the biexciton
photon comes first and fast (Auger, ~147 ps in the paper's Fig. 1c), so leaving out
photons within ``gate_ns`` of the rise removes the cascade's first photon and the gated
g2(0) falls towards 0 for a single emitter; a gated g2(0) that stays high points to
background or a second emitter instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from labctl.analysis.analyze_parts import g2_result
from labctl.analysis.g2 import G2Accumulator
from labctl.blocks import PhotonBlock

CHUNK = 1 << 20


def _g2(timestamps_ps: np.ndarray, detectors: np.ndarray, nanotimes_ps: np.ndarray, pair: tuple[int, int],
        period_ps: int, period_source: str, options: Any, warnings: list[str]) -> dict[str, Any]:
    acc = G2Accumulator(pair[0], pair[1], bin_width_ps=options.g2_bin_ps, range_ps=options.g2_range_ps,
                        period_ps=period_ps, delay_ps=options.g2_delay_ps or 0)
    for i in range(0, timestamps_ps.size, CHUNK):
        acc.update(PhotonBlock(timestamps_ps[i:i + CHUNK], detectors[i:i + CHUNK], nanotimes_ps[i:i + CHUNK]))
    acc.finalize()
    return g2_result(acc.snapshot(), options, period_ps, period_source, warnings)


def g2_and_biexciton(timestamps_ps: np.ndarray, detectors: np.ndarray, nanotimes_ps: np.ndarray,
                     dt_ps: np.ndarray, pair: tuple[int, int] | None, period_ps: int, period_source: str,
                     options: Any) -> dict[str, Any]:
    """The ``g2`` section of report.json: g2(0) ± sigma, gated g2(0), biexciton QY (ratio and absolute)."""
    if pair is None:
        return {"g2_zero": None, "g2_zero_err": None, "note": "one detector: g(2) needs two (HBT)"}
    warnings: list[str] = []
    full = _g2(timestamps_ps, detectors, nanotimes_ps, pair, period_ps, period_source, options, warnings)
    gate = (nanotimes_ps >= 0) & (dt_ps >= options.gate_ns * 1e3)
    gated = _g2(timestamps_ps[gate], detectors[gate], nanotimes_ps[gate], pair, period_ps, period_source, options,
                [])
    g0, err = full["g2_zero"], full["g2_zero_err"]
    out: dict[str, Any] = {
        "g2_zero": g0, "g2_zero_err": err,
        "gated_g2_zero": gated["g2_zero"], "gated_g2_zero_err": gated["g2_zero_err"],
        "gate_ns": options.gate_ns,
        "biexciton_qy_ratio": g0, "biexciton_qy_ratio_err": err,
        "biexciton_qy": None if g0 is None or options.exciton_qy is None else g0 * options.exciton_qy,
        "biexciton_qy_err": None if err is None or options.exciton_qy is None else err * options.exciton_qy,
        "method": "QY_BX / QY_X = g2(0) (Nair, Zhao & Bawendi 2011; weak pulsed excitation)",
        "period_ps": full["period_ps"], "delay_ps": full["delay_ps"], "delay_source": full["delay_source"],
        "detectors": full["detectors"], "lag_edges_ps": full["lag_edges_ps"], "counts": full["counts"],
        "warnings": warnings,
    }
    if options.exciton_qy is None:
        out["note"] = "biexciton_qy needs the exciton QY (--exciton-qy); biexciton_qy_ratio = QY_BX / QY_X"
    return out

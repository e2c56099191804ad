"""Analysis of photon streams: live accumulators (no Qt) for the views of the paper's Fig. 4.

Each accumulator is a labctl ``Sink`` (``open(run)``, ``write(block)``,
``close(summary)``) and works standalone (``update(block)``, ``finalize()``);
``snapshot()`` returns a frozen dataclass of numpy copies and may be called
from another thread (a GUI timer) while ``update`` runs.  Results are exact
integer counts and do not depend on how the stream is cut into blocks.

* ``G2Accumulator``: g(2) cross-correlation of two detectors, with pulsed
  (g2(0) from peak areas) and continuous normalisations (``g2.py``).
* ``LifetimeAccumulator``: TCSPC nanotime histograms per detector (``lifetime.py``).
* ``IntensityTrace``: counts per time bin (blinking trace) (``trace.py``).
* ``FlidAccumulator``: average-lifetime trace and the intensity x lifetime
  2-D histogram (FLID) (``trace.py``).

For ``labctl analyze`` of finished files: ``g2_comb`` (period, phase and
zero-delay tooth of the pulsed g(2) comb), ``lifetime_align`` (partial last
bin, per-detector IRF alignment), ``analyze_parts`` (the JSON of each view,
with sources and left-out counts), ``report`` (printout and plots).

Levels: ``changepoint`` (Watkins & Yang change points on the photon times,
``find_levels``, the level table and selection by level group) and
``level_groups`` (the levels' intensity states by clustering, EM and BIC).

The accumulators are imported on first use of their names here (PEP 562): importing
a module of this package that needs none of them (``fit``, the fit worker
``fit_process``) loads no numba.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from labctl.analysis.flid import FlidAccumulator, FlidSnapshot
    from labctl.analysis.g2 import G2Accumulator, G2Snapshot
    from labctl.analysis.lifetime import LifetimeAccumulator, LifetimeSnapshot
    from labctl.analysis.trace import IntensityTrace, TraceSnapshot

_HOMES = {
    "G2Accumulator": "g2", "G2Snapshot": "g2",
    "LifetimeAccumulator": "lifetime", "LifetimeSnapshot": "lifetime",
    "FlidAccumulator": "flid", "FlidSnapshot": "flid",
    "IntensityTrace": "trace", "TraceSnapshot": "trace",
}
"""Each public name's module in this package."""

__all__ = [
    "G2Accumulator",
    "G2Snapshot",
    "LifetimeAccumulator",
    "LifetimeSnapshot",
    "IntensityTrace",
    "TraceSnapshot",
    "FlidAccumulator",
    "FlidSnapshot",
]


def __getattr__(name: str) -> Any:
    """The accumulator classes, imported from their modules on first use."""
    if name in _HOMES:
        value = getattr(importlib.import_module(f"labctl.analysis.{_HOMES[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'labctl.analysis' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])


def live_set() -> list:
    """The standard live views as engine sinks (detectors and laser period come from the run)."""
    from labctl.analysis.flid import FlidAccumulator
    from labctl.analysis.g2 import G2Accumulator
    from labctl.analysis.lifetime import LifetimeAccumulator
    from labctl.analysis.trace import IntensityTrace

    return [G2Accumulator(), LifetimeAccumulator(), IntensityTrace(), FlidAccumulator()]

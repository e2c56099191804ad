"""A simulated shutter in the excitation path, wired to the shared scene (``labctl.interfaces.Shutter``).

Closed, no laser light reaches the sample: no emission and no scattered laser at the SPADs (dark
counts only) or at the camera; the laser's sync tags go on (``Scene.set_shutter_open``).  It
stands for any shutter a lab puts after the laser (a TTL-driven or controller-driven one): a real
one gets its own driver with the same two methods.
"""

from __future__ import annotations

from typing import Any

from qcodes.instrument import Instrument
from qcodes.validators import Enum


class SimShutter(Instrument):
    """Simulated excitation shutter.

    Args:
        name: instrument name.
        scene: the shared scene (needs ``set_shutter_open``); None = a shutter wired to nothing.

    It starts closed, as a normally-closed shutter does without power.
    """

    def __init__(self, name: str, scene: Any = None, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        if scene is not None and not callable(getattr(scene, "set_shutter_open", None)):
            raise TypeError(f"SimShutter: the scene ({type(scene).__name__}) lacks set_shutter_open(is_open)")
        self._scene = scene
        self.state = self.add_parameter(
            "state", label="Shutter", vals=Enum("open", "closed"), initial_value="closed",
            set_cmd=self._move, get_cmd=None,
        )
        """Shutter position: "open" (light on the sample) or "closed"."""

    def _move(self, state: str) -> None:
        if self._scene is not None:
            self._scene.set_shutter_open(state == "open")

    # -- labctl.interfaces.Shutter ----------------------------------------------------------
    def set_open(self, is_open: bool) -> None:
        """Open (True) or close (False) the shutter."""
        self.state("open" if is_open else "closed")

    def is_open(self) -> bool:
        """True while the shutter is open."""
        return self.state() == "open"

    def get_idn(self) -> dict[str, str | None]:
        return {"vendor": "labctl", "model": "simulated shutter", "serial": None, "firmware": None}

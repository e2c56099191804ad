"""The base of the drivers' own errors (vendor status codes, refused settings, instrument error queues)."""

from __future__ import annotations

from labctl.errors import InstrumentError


class DriverError(InstrumentError):
    """An error raised by a driver; its text shows the context QCoDeS appends.

    When a parameter's set fails, QCoDeS appends ``"setting <name> to <value>"`` to the
    exception's ``args``; the default ``str`` would then show a tuple.  This one joins
    the parts with "; ".
    """

    def __str__(self) -> str:
        return "; ".join(str(a) for a in self.args)

"""The simulated Andor SDK2 library's own transcription of the vendor's header.

Values from Andor's ``atmcdLXd.h`` (public copies, e.g. in areaDetector/ADAndor), written
down here a second time on purpose: the driver (``drivers/andor/atmcd.py``) has its own
copy, and a test of driver against simulator can then catch a mistake in either
(DESIGN.md).  Nothing here is imported from ``drivers``.
"""

from __future__ import annotations

DRV_SUCCESS = 20002
DRV_ERROR_ACK = 20013
DRV_NO_NEW_DATA = 20024
DRV_GENERAL_ERRORS = 20049
DRV_ACQUIRING = 20072
DRV_IDLE = 20073
DRV_NOT_INITIALIZED = 20075
DRV_INVALID_MODE = 20078
DRV_P_INVALID = {1: 20066, 2: 20067, 3: 20068, 4: 20069, 5: 20076, 6: 20077}
"""DRV_P1INVALID .. DRV_P6INVALID (P5 and P6 come after DRV_NOT_INITIALIZED in the header)."""

SHUTTER_MODE_CLOSED = 2
"""SetShutter(typ, mode, ...): mode 0 = fully auto, 1 = permanently open, 2 = permanently closed."""

SHUTTER_TTL_HIGH_OPEN = 1
"""SetShutter typ: 1 = TTL high signals the shutter to open (0: TTL low opens)."""

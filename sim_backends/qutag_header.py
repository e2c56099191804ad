"""The simulated quTAG library's own transcription of the vendor's header.

Facts from qutools' ``tdcbase.h`` (standard library v1.15 / 1.5.2, 2019; MC/HR
library v1.8, 2022; see ``docs/vendor_facts.md`` and
``../shared/reference/instruments.md``), written down here a second time on
purpose: the driver (``drivers/qutag/tdcbase.py``) has its own copy, and a test
of driver against simulator can then catch a mistake in either (DESIGN.md).
Nothing here is imported from ``drivers``.
"""

from __future__ import annotations

OK, OUT_OF_RANGE, NO_DEVICE, NOT_INITIALIZED = 0, 10, 9, 12
"""Status codes: TDC_Ok, TDC_OutOfRange, TDC_NoDevice, TDC_NotInitialized."""

PERROR_TEXTS: dict[int, str] = {
    0: "Success",
    -1: "Unspecified error",
    1: "Receive timed out",
    2: "No connection was established",
    3: "Error accessing the USB driver",
    7: "Can't connect device because already in use",
    8: "Unknown error",
    9: "Invalid device number used in call",
    10: "Parameter in function call is out of range",
    11: "Failed to open specified file",
    12: "Library has not been initialized",
    13: "Requested feature is not enabled",
    14: "Requested feature is not available",
}
"""Texts returned by the simulated ``TDC_perror`` (the real library's wording may differ)."""

INPUTS = (0, 1, 2, 3, 4)
"""Physical inputs of the standard quTAG: 0 = start, 1..4 = stop inputs (TDC_QUTAG_CHANNELS 5)."""

SYNC_DIVIDER_VALUES = (1, 2, 4, 8)
"""TDC_configureSyncDivider: "Only the following values are allowed: 1, 2, 4, 8" (input 0)."""

THRESHOLD_V = (-2.0, 3.0)
"""TDC_configureSignalConditioning: "Allowed range: -2 ... 3V"."""

DELAY_PS = (-100_000, 100_000)
"""TDC_setChannelDelays: "Range=-100ns ... 100ns"."""

EXPOSURE_TIME_MS = (0, 65535)
"""TDC_setExposureTime: "Range = 0 ... 65535"."""

BUFFER_SIZE_TAGS = (1, 1_000_000)
"""TDC_setTimestampBufferSize: "Range = 1 ... 1000000"."""

CHANNEL_MASK_MAX = 0xFF
"""TDC_enableChannels: a bit field over the inputs (8 bits)."""

DEAD_TIME_PS = (0, 1_000_000)
"""TDC_setDeadTime: the header only says "Must be positive"; the upper end is assumed."""

DELAY_ARRAY_LENGTH = {"standard": 8, "mc": 33}
"""Delays held per generation: TDC_getChannelDelays "at least 8 elements"; MC/HR: 32 stops + start."""

STREAM_CHANNEL_OF_INPUT = {1: 0, 2: 1, 3: 2, 4: 3, 0: 4}
"""Channel number of input N in the TDC_getLastTimestamps stream: "Range is 0...7 for channels
1...8" (stop input N arrives as N-1); the start input is "output channel 5" (TDC_setDeadTime:
"use 0 for output channel 5"; TDC_getCoincCounters: "0(5)"), i.e. 4.  Markers keep 100..104."""

"""The simulated spectrograph library's own transcription of the vendor's headers.

Values from Andor's two spectrograph SDK headers (see ``docs/vendor_facts.md`` and
``../shared/reference/instruments.md``):

* [SR] ``ShamrockCIF.h`` (``ShamrockCIF64.dll``; public copy in areaDetector/ADAndor
  ``andorSupport/ShamrockCIF.h``): ``#define SHAMROCK_...`` constants.
* [ATS] ``atspectrograph.h`` (``atspectrograph.dll``; indexed public copy): the enums
  ``eATSpectrographReturnCodes``, ``eATSpectrographSlitIndex``,
  ``eATSpectrographShutterMode`` with their ``<summary>`` texts.

Written down here a second time on purpose: the driver
(``drivers/andor_shamrock/shamrock.py``) has its own copy, and a test of driver against
simulator (``tests/test_layers.py``) can then catch a mistake in either (DESIGN.md).
Nothing here is imported from ``drivers``.
"""

from __future__ import annotations

SUCCESS = 20202
"""[SR] SHAMROCK_SUCCESS, [ATS] ATSPECTROGRAPH_SUCCESS."""
COMMUNICATION_ERROR = 20201
ERROR = 20249
"""[ATS] only: ATSPECTROGRAPH_ERROR ("The command failed")."""
P_INVALID = {1: 20266, 2: 20267, 3: 20268, 4: 20269, 5: 20270}
"""P1INVALID .. P5INVALID (both headers)."""
NOT_INITIALIZED = 20275
NOT_AVAILABLE = 20292

RETURN_DESCRIPTIONS: dict[int, str] = {
    COMMUNICATION_ERROR: "A general communication error occurred",
    SUCCESS: "The command succeeded",
    ERROR: "The command failed",
    P_INVALID[1]: "The first parameter was out of range",
    P_INVALID[2]: "The second parameter was out of range",
    P_INVALID[3]: "The third parameter was out of range",
    P_INVALID[4]: "The fourth parameter was out of range",
    P_INVALID[5]: "The fifth parameter was out of range",
    NOT_INITIALIZED: "The requested spectrograph was not initialized",
    NOT_AVAILABLE: "The requested spectrograph was not available",
}
"""Every return code of the headers, with [ATS]'s ``<summary>`` text (first sentence, no final
full stop) as the simulated ``GetFunctionReturnDescription`` gives it; the real library's
wording may differ."""

ERRORLENGTH = 64
"""[SR] SHAMROCK_ERRORLENGTH, [ATS] ATSPECTROGRAPH_ERRORLENGTH: description buffer bytes."""

PREFIXES = {"shamrock": "Shamrock", "atspectrograph": "ATSpectrograph"}
"""Exported-name prefix per library: [SR] ``unsigned int WINAPI Shamrock...``, [ATS]
``DLL_DEF eATSpectrographReturnCodes WINAPI ATSpectrograph...``."""

RENAMED = {
    "atspectrograph": {
        "AutoSlitIsPresent": "SlitIsPresent",
        "SetAutoSlitWidth": "SetSlitWidth",
        "GetAutoSlitWidth": "GetSlitWidth",
    },
}
"""[SR]'s slit functions (``ShamrockAutoSlitIsPresent(int device, int index, int *present)`` ...)
as [ATS] names them (``ATSpectrographSlitIsPresent(int device, eATSpectrographSlitIndex slit,
int *present)`` ...); every other function keeps [SR]'s suffix."""

SLIT_INDICES = {"input_side": 1, "input_direct": 2, "output_side": 3, "output_direct": 4}
"""[SR] SHAMROCK_INPUT_SLIT_SIDE 1 .. SHAMROCK_OUTPUT_SLIT_DIRECT 4; [ATS] INPUT_SIDE .. OUTPUT_DIRECT."""

SLIT_WIDTH_UM = (10.0, 2500.0)
"""[SR] SHAMROCK_SLITWIDTHMIN 10, SHAMROCK_SLITWIDTHMAX 2500 (µm)."""

SHUTTER_MODES = {"closed": 0, "open": 1}
"""[SR] SHAMROCK_SHUTTERMODEMIN 0 .. SHAMROCK_SHUTTERMODEMAX 1; [ATS] SHUTTER_CLOSED 0, SHUTTER_OPEN 1
(its SHUTTER_BNC 2, "TTL high on the external shutter BNC", is outside [SR]'s range: not offered)."""

GRATING_MIN = 1
"""[SR] SHAMROCK_GRATINGMIN: gratings are numbered from 1."""

FOCAL_LENGTH_UNIT_M = 1.0
"""Unit of ``EepromGetOpticalParams``' ``float *FocalLength``: neither header says; metres is
*unverified* (public wrappers pass the value on without a unit)."""

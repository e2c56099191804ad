"""QCoDeS driver of the Andor Kymera 193i spectrograph (Shamrock / ATSpectrograph SDK).

The driver calls the SDK through :class:`drivers.andor_shamrock.shamrock.ShamrockSDK`
by logical function name; its library object is injected (the real one, loaded by
:func:`drivers.andor_shamrock.shamrock.load_shamrock`, or
``sim_backends.shamrock_sim.SimShamrock``), and it never knows which.

Settings are QCoDeS parameters read from and written to the device; a set that the
validator refuses sends nothing, and one that the device refuses raises
:class:`ShamrockError` and leaves the cached value as it was.  ``center_wavelength_nm``
is validated against ``GetWavelengthLimits`` of the grating in force (read once per
grating at connection).

The wavelength axis (the labctl ``Spectrograph`` interface) comes from the SDK's own
calibration (``GetCalibration``) for the detector geometry set in ``number_pixels``
and ``pixel_width_um`` (at connection: the iXon Ultra 888's 1024 pixels of 13 um).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from qcodes.instrument import Instrument
from qcodes.parameters import Parameter
from qcodes.validators import Ints, Numbers, Validator

from drivers.andor_shamrock.shamrock import (
    CONSTANTS,
    FUNCTIONS,
    HC_EV_NM,
    LIMITS,
    ShamrockError,
    ShamrockSDK,
    load_shamrock,
    vendor_names,
)
from labctl.errors import InstrumentError

log = logging.getLogger(__name__)


class CenterWavelengthRange(Validator[float]):
    """A centre wavelength (nm) within the limits of the grating currently in force.

    The limits are those ``GetWavelengthLimits`` reported at connection; the grating is
    the cached value of the instrument's ``grating`` parameter.
    """

    is_numeric = True

    def __init__(self, instrument: "Kymera193i") -> None:
        self._instrument = instrument

    def validate(self, value: float, context: str = "") -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"{value!r} is not a number (nm); {context}")
        grating = self._instrument.grating.cache.get(get_if_invalid=False)
        low, high = self._instrument.wavelength_limits_nm(grating)
        lines = self._instrument.grating_info.cache.get()[grating]["lines_per_mm"]
        if not low <= value <= high:
            raise ValueError(
                f"{value!r} nm is outside the range of grating {grating} ({lines:g} l/mm): "
                f"must be between {low:g} and {high:g} nm; {context}"
            )

    @property
    def valid_values(self) -> tuple[float, ...]:
        grating = self._instrument.grating.cache.get(get_if_invalid=False)
        return self._instrument.wavelength_limits_nm(grating)

    def __repr__(self) -> str:
        try:
            grating = self._instrument.grating.cache.get(get_if_invalid=False)
            low, high = self._instrument.wavelength_limits_nm(grating)
        except Exception:  # noqa: BLE001 - repr must not fail
            return "<centre wavelength within the current grating's limits (nm)>"
        return f"<centre wavelength within the limits of grating {grating}: {low:g} to {high:g} nm>"


class Kymera193i(Instrument):
    """Andor Kymera 193i spectrograph, a labctl ``Spectrograph``.

    Args:
        name: QCoDeS instrument name.
        library: the spectrograph library (real or ``SimShamrock``); None loads the real
            one with :func:`load_shamrock` (``library_path``).
        library_path: path of ``atspectrograph.dll`` / ``ShamrockCIF64.dll`` when ``library`` is None.
        device: index of the spectrograph among those the SDK finds (0-based).
        slit_index: SDK index of the motorised slit the light enters through
            (1 input side, 2 input direct, 3 output side, 4 output direct).
        number_pixels / pixel_width_um: detector geometry given to the SDK at connection
            (defaults: the iXon Ultra 888, 1024 pixels of 13 um).

    Raises:
        VendorLibraryNotFound: ``library`` is None and the vendor library is absent.
        ShamrockError: the SDK refused to initialise or to report the device.
        InstrumentError: no spectrograph with index ``device``.
    """

    vendor_library_functions = {generation: tuple(sorted(vendor_names(generation))) for generation in FUNCTIONS}
    """Functions a ``library`` object must define, per SDK generation (checked by the station)."""

    def __init__(
        self,
        name: str,
        library: object | None = None,
        library_path: str | None = None,
        device: int = 0,
        *,
        slit_index: int = CONSTANTS["default_slit_index"],
        number_pixels: int = CONSTANTS["camera_number_pixels"],
        pixel_width_um: float = CONSTANTS["camera_pixel_width_um"],
        **kwargs: Any,
    ) -> None:
        if library is None:
            library = load_shamrock(library_path)
        sdk = ShamrockSDK(library)
        # Connect before registering with QCoDeS, so a failure leaves nothing behind.
        try:
            sdk.call("Initialize", b"")
            n_devices = sdk.call("GetNumberDevices")
            if not 0 <= device < n_devices:
                raise InstrumentError(
                    f"{name}: device = {device!r}: the spectrograph SDK found {n_devices} "
                    f"spectrograph(s); allowed: 0..{n_devices - 1}"
                )
        except BaseException:
            _close_quietly(sdk, name)
            raise
        super().__init__(name, **kwargs)
        self._sdk = sdk
        self._device = int(device)
        self._slit_index = int(slit_index)
        self._limits_nm: dict[int, tuple[float, float]] = {}
        try:
            self._build(number_pixels, pixel_width_um)
        except BaseException:
            self.close()
            raise

    # --- construction -----------------------------------------------------------------
    def _build(self, number_pixels: int, pixel_width_um: float) -> None:
        dev = self._device
        n_gratings = int(self._sdk.call("GetNumberGratings", dev))
        info: dict[int, dict[str, Any]] = {}
        for grating in range(1, n_gratings + 1):
            lines, blaze, home, offset = self._sdk.call("GetGratingInfo", dev, grating)
            info[grating] = {"lines_per_mm": round(float(lines), 3), "blaze": blaze, "home": home, "offset": offset}
            low, high = self._sdk.call("GetWavelengthLimits", dev, grating)
            self._limits_nm[grating] = (round(float(low), 3), round(float(high), 3))
        focal_length, deviation_deg, tilt_deg = self._sdk.call("EepromGetOpticalParams", dev)

        self.serial_number = Parameter(
            "serial_number", instrument=self, initial_cache_value=self._sdk.call("GetSerialNumber", dev),
            get_cmd=None, set_cmd=False,
        )
        """Serial number read from the spectrograph."""

        self.sdk_generation = Parameter(
            "sdk_generation", instrument=self, initial_cache_value=self._sdk.generation, get_cmd=None, set_cmd=False,
        )
        """"atspectrograph" (atspectrograph.dll) or "shamrock" (ShamrockCIF64.dll)."""

        self.focal_length_mm = Parameter(
            "focal_length_mm", instrument=self, unit="mm", get_cmd=None, set_cmd=False,
            initial_cache_value=round(float(focal_length) * CONSTANTS["focal_length_unit_m"] * 1e3, 3),
        )
        """Focal length from the EEPROM (193 mm on a Kymera 193i; unit of the SDK value *unverified*)."""

        self.angular_deviation_deg = Parameter(
            "angular_deviation_deg", instrument=self, unit="deg", get_cmd=None, set_cmd=False,
            initial_cache_value=round(float(deviation_deg), 4),
        )
        """Angular deviation from the EEPROM, as the SDK reports it (unit *unverified*)."""

        self.focal_tilt_deg = Parameter(
            "focal_tilt_deg", instrument=self, unit="deg", get_cmd=None, set_cmd=False,
            initial_cache_value=round(float(tilt_deg), 4),
        )
        """Detector focal tilt from the EEPROM, as the SDK reports it (unit *unverified*)."""

        self.grating_info = Parameter(
            "grating_info", instrument=self, initial_cache_value=info, get_cmd=None, set_cmd=False,
        )
        """Per grating (1-based): lines_per_mm, blaze (text), home and offset (motor steps)."""

        self.grating = Parameter(
            "grating", instrument=self, label="Grating", vals=Ints(1, n_gratings),
            get_cmd=lambda: int(self._sdk.call("GetGrating", self._device)),
            set_cmd=self._set_grating,
        )
        """Grating in the beam, 1-based (see grating_info); the centre wavelength stays if the new grating reaches it."""

        self.center_wavelength_nm = Parameter(
            "center_wavelength_nm", instrument=self, label="Centre wavelength", unit="nm",
            vals=CenterWavelengthRange(self),
            get_cmd=lambda: round(float(self._sdk.call("GetWavelength", self._device)), 4),
            set_cmd=lambda nm: self._sdk.call("SetWavelength", self._device, float(nm)),
        )
        """Wavelength at the detector centre in nm, within the current grating's limits (wavelength_limits_nm)."""

        if self._sdk.call("AutoSlitIsPresent", dev, self._slit_index):
            self.slit_width_um = Parameter(
                "slit_width_um", instrument=self, label="Slit width", unit="um",
                vals=Numbers(*LIMITS["slit_width_um"]),
                get_cmd=lambda: round(float(self._sdk.call("GetAutoSlitWidth", self._device, self._slit_index)), 3),
                set_cmd=lambda um: self._sdk.call("SetAutoSlitWidth", self._device, self._slit_index, float(um)),
            )
            """Width of the entrance slit in um (10-2500); wider passes more light at lower resolution."""

        if self._sdk.call("ShutterIsPresent", dev):
            self.shutter = Parameter(
                "shutter", instrument=self, label="Shutter", val_mapping=CONSTANTS["shutter_modes"],
                get_cmd=lambda: int(self._sdk.call("GetShutter", self._device)),
                set_cmd=lambda mode: self._sdk.call("SetShutter", self._device, int(mode)),
            )
            """Spectrograph shutter: "open" or "closed"."""

        self.number_pixels = Parameter(
            "number_pixels", instrument=self, label="Detector pixels", vals=Ints(*LIMITS["number_pixels"]),
            get_cmd=lambda: int(self._sdk.call("GetNumberPixels", self._device)),
            set_cmd=lambda n: self._sdk.call("SetNumberPixels", self._device, int(n)),
        )
        """Number of detector pixels along the dispersion (1024 on the iXon Ultra 888), used by the calibration."""

        self.pixel_width_um = Parameter(
            "pixel_width_um", instrument=self, label="Pixel width", unit="um", vals=Numbers(*LIMITS["pixel_width_um"]),
            get_cmd=lambda: round(float(self._sdk.call("GetPixelWidth", self._device)), 4),
            set_cmd=lambda um: self._sdk.call("SetPixelWidth", self._device, float(um)),
        )
        """Detector pixel width in um (13 on the iXon Ultra 888), used by the calibration."""

        self.number_pixels(int(number_pixels))
        self.pixel_width_um(float(pixel_width_um))
        for param in (self.grating, self.center_wavelength_nm, *self._optional_parameters()):
            param.get()

    def _optional_parameters(self) -> list[Parameter]:
        return [self.parameters[n] for n in ("slit_width_um", "shutter") if n in self.parameters]

    def _set_grating(self, grating: int) -> None:
        self._sdk.call("SetGrating", self._device, int(grating))
        # The drive may have moved to stay within the new grating's range: read it back.
        self.grating.cache.set(int(grating))
        self.center_wavelength_nm.get()

    # --- labctl.interfaces.Spectrograph -------------------------------------------------
    def wavelength_limits_nm(self, grating: int | None = None) -> tuple[float, float]:
        """(min, max) centre wavelength in nm of a grating (default: the one in force)."""
        if grating is None:
            grating = self.grating.cache.get(get_if_invalid=False)
        try:
            return self._limits_nm[int(grating)]
        except KeyError:
            raise InstrumentError(
                f"{self.name}: grating = {grating!r}: allowed 1..{len(self._limits_nm)}"
            ) from None

    def wavelength_axis_nm(self, num_pixels: int | None = None, pixel_width_um: float | None = None) -> np.ndarray:
        """Wavelength (nm, float64) of each detector pixel for the current grating and centre wavelength.

        From the SDK's calibration (``GetCalibration``).  ``num_pixels`` / ``pixel_width_um``,
        if given and different, are first set as the detector geometry (parameters
        ``number_pixels`` / ``pixel_width_um``).
        """
        if num_pixels is not None and num_pixels != self.number_pixels.cache.get():
            self.number_pixels(int(num_pixels))
        if pixel_width_um is not None and pixel_width_um != self.pixel_width_um.cache.get():
            self.pixel_width_um(float(pixel_width_um))
        n = int(self.number_pixels.cache.get())
        return np.asarray(self._sdk.call("GetCalibration", self._device, n), dtype=np.float64)

    def energy_axis_ev(self, num_pixels: int | None = None, pixel_width_um: float | None = None) -> np.ndarray:
        """Photon energy (eV) of each detector pixel: 1239.84198 / wavelength_axis_nm."""
        wavelength_nm = self.wavelength_axis_nm(num_pixels, pixel_width_um)
        with np.errstate(divide="ignore"):
            return HC_EV_NM / wavelength_nm

    # --- QCoDeS --------------------------------------------------------------------------
    def get_idn(self) -> dict[str, str | None]:
        """Identification from the SDK (serial number from the EEPROM)."""
        serial = self.parameters["serial_number"].cache.get() if "serial_number" in self.parameters else None
        return {"vendor": "Andor", "model": "Kymera 193i", "serial": serial, "firmware": None}

    def close(self) -> None:
        """Release the SDK (``Close``) and the QCoDeS instrument."""
        sdk = getattr(self, "_sdk", None)
        if sdk is not None:
            _close_quietly(sdk, self.name)
            self._sdk = None
        super().close()


def _close_quietly(sdk: ShamrockSDK, name: str) -> None:
    try:
        sdk.call("Close")
    except ShamrockError as exc:
        log.warning("%s: spectrograph SDK Close failed: %s", name, exc)

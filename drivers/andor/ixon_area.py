"""Where on the iXon's sensor a frame comes from: the single track, or a binned image crop.

:class:`ReadoutArea` adds the parameters ``single_track_centre_row``,
``single_track_height_rows`` and ``image_hbin`` .. ``image_vend`` to the camera,
checks that the track fits on the sensor and that the crop is a multiple of the
binning before anything is sent (``SetSingleTrack``, ``SetImage``; 1-based, inclusive),
and gives the shape of one frame for a read mode.
"""

from __future__ import annotations

from typing import Any

from qcodes.instrument import Instrument
from qcodes.parameters import Parameter
from qcodes.validators import Ints

from drivers.andor.ixon_settings import CameraSettingError

IMAGE_KEYS = ("hbin", "vbin", "hstart", "hend", "vstart", "vend")
"""The arguments of SetImage, in order."""

_IMAGE_DOCS = {
    "hbin": "Columns binned per image pixel (read_mode image); must divide the crop width.",
    "vbin": "Rows binned per image pixel (read_mode image); must divide the crop height.",
    "hstart": "First column of the image crop (1-based, inclusive).",
    "hend": "Last column of the image crop (1-based, inclusive).",
    "vstart": "First row of the image crop (1-based, inclusive).",
    "vend": "Last row of the image crop (1-based, inclusive).",
}


class ReadoutArea:
    """The single-track and image-crop parameters of a camera and their checks.

    Args:
        camera: the camera instrument; it must have ``_call(function, *inputs)`` and ``name``.
        width / height: sensor columns and rows (GetDetector).
    """

    def __init__(self, camera: Instrument, width: int, height: int) -> None:
        self._camera: Any = camera
        self._width, self._height = int(width), int(height)

        camera.single_track_centre_row = Parameter(
            "single_track_centre_row", instrument=camera, unit="row", vals=Ints(1, height),
            initial_cache_value=height // 2, get_cmd=None,
            set_cmd=lambda row: self.send_single_track(centre=row),
        )
        """Centre row (1-based) of the single track binned in read_mode single_track."""

        camera.single_track_height_rows = Parameter(
            "single_track_height_rows", instrument=camera, unit="rows", vals=Ints(1, height),
            initial_cache_value=20, get_cmd=None,
            set_cmd=lambda rows: self.send_single_track(height=rows),
        )
        """Height (rows) of the single track; it must fit on the sensor around its centre."""

        limits = {"hbin": width, "vbin": height, "hstart": width, "hend": width, "vstart": height, "vend": height}
        initial = {"hbin": 1, "vbin": 1, "hstart": 1, "hend": width, "vstart": 1, "vend": height}
        self.image_params: dict[str, Parameter] = {}
        for key in IMAGE_KEYS:
            param = Parameter(
                f"image_{key}", instrument=camera, unit="px", vals=Ints(1, limits[key]),
                initial_cache_value=initial[key], docstring=_IMAGE_DOCS[key], get_cmd=None,
                set_cmd=lambda value, key=key: self.send_image(**{key: value}),
            )
            setattr(camera, f"image_{key}", param)
            self.image_params[key] = param

    def send_single_track(self, centre: int | None = None, height: int | None = None) -> None:
        """SetSingleTrack with the cached centre and height, one of them changed.

        Raises:
            CameraSettingError: the track does not fit on the sensor; nothing is sent.
        """
        camera = self._camera
        centre = camera.single_track_centre_row.cache.get() if centre is None else int(centre)
        height = camera.single_track_height_rows.cache.get() if height is None else int(height)
        top = centre - height // 2
        if top < 1 or top + height - 1 > self._height:
            raise CameraSettingError(
                f"{camera.name}: single track centre row {centre}, height {height}: rows {top}..{top + height - 1} "
                f"must lie within 1..{self._height}; nothing was sent to the camera"
            )
        camera._call("SetSingleTrack", centre, height)

    def send_image(self, **change: int) -> None:
        """SetImage with the cached area, the given keys changed.

        Raises:
            CameraSettingError: start after end, or a crop not a multiple of its binning; nothing is sent.
        """
        area = {key: int(change.get(key, self.image_params[key].cache.get())) for key in IMAGE_KEYS}
        problems = []
        for axis, start, end, binning in (("h", "hstart", "hend", "hbin"), ("v", "vstart", "vend", "vbin")):
            size = area[end] - area[start] + 1
            if size < 1:
                problems.append(f"image_{start} = {area[start]} must be <= image_{end} = {area[end]}")
            elif size % area[binning]:
                problems.append(f"crop {'width' if axis == 'h' else 'height'} {size} must be a multiple of "
                                f"image_{binning} = {area[binning]}")
        if problems:
            raise CameraSettingError(
                f"{self._camera.name}: image area {area}: " + "; ".join(problems) + "; nothing was sent to the camera"
            )
        self._camera._call("SetImage", *(area[key] for key in IMAGE_KEYS))

    def set_image_area(self, **area: int) -> None:
        """Set several of hbin, vbin, hstart, hend, vstart, vend at once (one SetImage call).

        Raises:
            CameraSettingError / ValueError: unknown key, value out of range, or crop not a
                multiple of the binning; nothing is sent and no parameter changes.
        """
        unknown = set(area) - set(IMAGE_KEYS)
        if unknown:
            raise CameraSettingError(
                f"{self._camera.name}.set_image_area: unknown {sorted(unknown)}; allowed: {IMAGE_KEYS}"
            )
        for key, value in area.items():
            self.image_params[key].validate(value)
        self.send_image(**area)
        for key, value in area.items():
            self.image_params[key].cache.set(int(value))

    def frame_shape(self, read_mode: str) -> tuple[int, ...]:
        """Shape of one frame: ``(columns,)``, or ``(rows, columns)`` after binning in read mode ``image``."""
        if read_mode != "image":
            return (self._width,)
        p = {key: self.image_params[key].cache.get() for key in IMAGE_KEYS}
        return ((p["vend"] - p["vstart"] + 1) // p["vbin"], (p["hend"] - p["hstart"] + 1) // p["hbin"])

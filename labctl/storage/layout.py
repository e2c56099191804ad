"""The labctl data file: every HDF5 path and dtype, in one place.

The file is Photon-HDF5 v0.5 (https://photon-hdf5.readthedocs.io), so that
phconvert, FRETBursts and tttrlib read it.  labctl's own data live under
``/user/labctl/``.  The paths below are a public contract: the writer, the
reader, the GUI and ``labctl info`` all use these names.

Units and conventions
---------------------
- ``/photon_data/timestamps``: int64, unit 1 ps (``timestamps_unit`` = 1e-12 s),
  on the time tagger's clock.
- ``/photon_data/detectors``: uint8, the tagger channel number of each photon
  (``/setup/detectors/id`` lists them; ``label`` says which SPAD is which).
- ``/photon_data/nanotimes``: int32, unit 1 ps (``tcspc_unit`` = 1e-12 s): delay
  of the photon after the preceding laser sync.  **-1 means the photon came
  before the first laser sync of the run** (no nanotime); other values are
  expected in [0, ``tcspc_num_bins``), ``tcspc_num_bins`` = the nominal laser
  period in ps.
- ``/user/labctl/run_id``: the run's id (here, not in ``/identity``: phconvert's
  validator rejects fields that the spec does not define outside ``/user``).
- ``/user/labctl/station_snapshot``: JSON ``{"run": ..., "station": ...}``.
- ``/user/labctl/markers``: int64 ps timestamps of frame-marker tags.
- ``/user/labctl/losses``: one row per stretch of lost data (see ``LOSS_DTYPE``).
- ``/user/labctl/run_log``: one row per log message (see ``RUN_LOG_DTYPE``).
- ``/user/labctl/writer_done``: int8, 0 while streaming; 1 once every dataset is
  flushed for the last time (a follower then reopens the file for ``run_end``).
- ``/user/labctl/run_end``: a group whose attributes are the end-of-run record.
  It exists only if the writer closed the file (cleanly or after an error);
  a file without it was not closed (crash, kill -9, power loss).

Compatibility notes: strings are scalar fixed-length byte strings and scalar
datasets carry ``FLAVOR = "python"``, as in files phconvert writes (PyTables
reads them as bytes/numbers), and every node outside ``/user`` has a ``TITLE``
attribute with the specification's description (``spec_titles.py``), which
phconvert's validator checks word for word.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import h5py
import numpy as np

import labctl
from labctl.blocks import CHANNEL_DTYPE, NANOTIME_DTYPE, TIMESTAMP_DTYPE, LossRecord
from labctl.run import RunInfo
from labctl.storage.spec_titles import SPEC_TITLES

LIBVER = ("v110", "v110")
"""HDF5 file-format bounds for ``h5py.File(..., libver=LIBVER)``.

SWMR needs the 1.10 format as the lower bound.  The upper bound is NOT
"latest": with HDF5 2.0, "latest" encodes some objects (e.g. compound
datatypes) in the 2.0 format, which HDF5 1.x readers (PyTables and so
phconvert/FRETBursts, most conda h5py builds) cannot open.  1.10 is enough
for everything the file uses and readable by HDF5 >= 1.10.
"""

FORMAT_NAME = "Photon-HDF5"
FORMAT_VERSION = "0.5"
FORMAT_URL = "http://photon-hdf5.org/"
SOFTWARE = "labctl"

# --- root ---------------------------------------------------------------
DESCRIPTION = "/description"
ACQUISITION_DURATION = "/acquisition_duration"  # float64 s

# --- /photon_data -------------------------------------------------------
PHOTON_DATA = "/photon_data"
TIMESTAMPS = "/photon_data/timestamps"
DETECTORS = "/photon_data/detectors"
NANOTIMES = "/photon_data/nanotimes"
TIMESTAMPS_UNIT = "/photon_data/timestamps_specs/timestamps_unit"  # s
TCSPC_UNIT = "/photon_data/nanotimes_specs/tcspc_unit"  # s
TCSPC_NUM_BINS = "/photon_data/nanotimes_specs/tcspc_num_bins"
TCSPC_RANGE = "/photon_data/nanotimes_specs/tcspc_range"  # s
MEASUREMENT_TYPE = "/photon_data/measurement_specs/measurement_type"
LASER_REPETITION_RATE = "/photon_data/measurement_specs/laser_repetition_rate"  # Hz
DETECTORS_SPECS = "/photon_data/measurement_specs/detectors_specs"
SPLIT_CH1 = DETECTORS_SPECS + "/split_ch1"  # SPAD A of the HBT beam splitter
SPLIT_CH2 = DETECTORS_SPECS + "/split_ch2"  # SPAD B

# --- /setup -------------------------------------------------------------
SETUP = "/setup"
SETUP_DETECTORS = "/setup/detectors"
SETUP_DETECTOR_ID = "/setup/detectors/id"
SETUP_DETECTOR_ID_HARDWARE = "/setup/detectors/id_hardware"
SETUP_DETECTOR_LABEL = "/setup/detectors/label"
SETUP_DETECTOR_COUNTS = "/setup/detectors/counts"  # photons per id, as in /photon_data
SETUP_LASER_REPETITION_RATES = "/setup/laser_repetition_rates"  # Hz

# --- /identity, /provenance ---------------------------------------------
IDENTITY = "/identity"
PROVENANCE = "/provenance"

# --- /user/labctl -------------------------------------------------------
LABCTL = "/user/labctl"
RUN_ID = "/user/labctl/run_id"
STATION_SNAPSHOT = "/user/labctl/station_snapshot"  # UTF-8 JSON text
MARKERS = "/user/labctl/markers"  # int64 ps
LOSSES = "/user/labctl/losses"  # LOSS_DTYPE rows
RUN_LOG = "/user/labctl/run_log"  # RUN_LOG_DTYPE rows
WRITER_DONE = "/user/labctl/writer_done"  # int8: 0 while streaming, 1 once all data are flushed
RUN_END = "/user/labctl/run_end"  # group; attributes = end-of-run record

# --- /user/labctl/spectra: camera frames on the photon clock ----------------
SPECTRA = "/user/labctl/spectra"
SPECTRA_FRAMES = SPECTRA + "/frames"  # uint16, frames x pixels (FVB) or frames x rows x pixels (image)
SPECTRA_FRAME_INDEX = SPECTRA + "/frame_index"  # int64, index of each stored frame in the run
SPECTRA_WAVELENGTH = SPECTRA + "/wavelength_nm"  # float64 per pixel column
SPECTRA_ENERGY = SPECTRA + "/energy_ev"  # float64 per pixel column
SPECTRA_EXPOSURE_START = SPECTRA + "/exposure_start_ps"  # int64 per frame, tagger clock (same as timestamps)
SPECTRA_EXPOSURE_STOP = SPECTRA + "/exposure_stop_ps"  # int64 per frame
SPECTRA_SKIPPED = SPECTRA + "/skipped_frames"  # int64 indices of frames the camera lost
SPECTRA_CAMERA_SNAPSHOT = SPECTRA + "/camera_snapshot"  # JSON text
SPECTRA_SPECTROGRAPH_SNAPSHOT = SPECTRA + "/spectrograph_snapshot"  # JSON text
FRAMES_DTYPE = np.dtype(np.uint16)
NO_CAMERA_FRAME_SHAPE = (1024,)
"""Frame shape of the (empty) spectra datasets of a run without a camera."""
SPECTRA_FRAME_PATHS = (SPECTRA_FRAMES, SPECTRA_FRAME_INDEX, SPECTRA_EXPOSURE_START, SPECTRA_EXPOSURE_STOP)

STREAM_PATHS = (TIMESTAMPS, DETECTORS, NANOTIMES)
"""The per-photon datasets: always the same length in a closed file."""

REQUIRED_PATHS = (
    DESCRIPTION, ACQUISITION_DURATION, TIMESTAMPS, DETECTORS, NANOTIMES,
    TIMESTAMPS_UNIT, TCSPC_UNIT, TCSPC_NUM_BINS, TCSPC_RANGE,
    MEASUREMENT_TYPE, LASER_REPETITION_RATE, SPLIT_CH1, SPLIT_CH2,
    "/setup/num_pixels", "/setup/num_spots", "/setup/num_spectral_ch",
    "/setup/num_polarization_ch", "/setup/num_split_ch",
    "/setup/modulated_excitation", "/setup/excitation_alternated", "/setup/lifetime",
    "/setup/excitation_wavelengths", "/setup/excitation_cw", SETUP_LASER_REPETITION_RATES,
    "/setup/detection_wavelengths", SETUP_DETECTOR_ID, SETUP_DETECTOR_COUNTS,
    "/identity/software", "/identity/software_version", "/identity/creation_time",
    "/identity/format_name", "/identity/format_version", "/identity/format_url",
    "/provenance/software", "/provenance/creation_time",
    RUN_ID, STATION_SNAPSHOT, MARKERS, LOSSES, RUN_LOG, WRITER_DONE,
    SPECTRA_FRAMES, SPECTRA_FRAME_INDEX, SPECTRA_WAVELENGTH, SPECTRA_ENERGY,
    SPECTRA_EXPOSURE_START, SPECTRA_EXPOSURE_STOP, SPECTRA_SKIPPED,
    SPECTRA_CAMERA_SNAPSHOT, SPECTRA_SPECTROGRAPH_SNAPSHOT,
)
"""Every path that ``PhotonHDF5Writer.open`` creates (``RUN_END`` comes at close)."""

# --- dtypes -------------------------------------------------------------
TIMESTAMPS_DTYPE = TIMESTAMP_DTYPE  # int64 ps
DETECTORS_DTYPE = CHANNEL_DTYPE  # uint8 tagger channel
NANOTIMES_DTYPE = NANOTIME_DTYPE  # int32 ps, -1 = before the first sync
MARKERS_DTYPE = TIMESTAMP_DTYPE  # int64 ps

LOSS_SOURCE_BYTES = 32
LOSS_DTYPE = np.dtype([
    ("start_ps", "<i8"),  # last good timestamp before the loss (ps)
    ("stop_ps", "<i8"),  # first good timestamp after the loss (ps)
    ("missing_syncs", "<i8"),  # laser syncs missing in the range, -1 = unknown
    ("source", f"S{LOSS_SOURCE_BYTES}"),  # UTF-8, e.g. b"tagger_flag", b"queue_full:file"
])

LOG_LEVEL_BYTES = 8
LOG_MESSAGE_BYTES = 240
RUN_LOG_DTYPE = np.dtype([
    ("time_s", "<f8"),  # seconds since the writer opened the file (time.monotonic)
    ("level", f"S{LOG_LEVEL_BYTES}"),  # b"INFO", b"WARNING", ...
    ("message", f"S{LOG_MESSAGE_BYTES}"),  # UTF-8, longer messages end with "…"
])

# Attributes of the RUN_END group (the Bluesky-style stop document).
RUN_END_ATTRS = (
    "clean",  # uint8 0/1 (a bool): the run ended as asked
    "end_reason",  # str: "duration", "stopped", "error: ...", "disk space", ...
    "duration_ps",  # int: tagger time covered by the run
    "photons_written",  # int: photons in /photon_data
    "counts",  # JSON {channel: tags seen}, all tagger channels (syncs included)
    "losses",  # int: rows in LOSSES
    "measured_sync_period_ps",  # float, NaN if unknown
    "errors",  # JSON list of error messages
    "safe_state_actions",  # JSON list: what the end's safe state switched (laser trigger, SPAD gate, shutter)
    "safe_state_warnings",  # JSON list: what it could not make safe (e.g. laser on its own clock, nothing cut its light)
)

# --- the microscope (Photon-HDF5 /setup values) ---------------------------
EXCITATION_WAVELENGTH_M = 405e-9
"""LDH-D-C-405 laser head."""

DETECTION_WAVELENGTH_M = 600e-9
"""Reference detection wavelength: InP QD band-edge emission near 2.06 eV (~600 nm)."""

MARKER_CHUNK = 4096
TABLE_CHUNK = 64


def create_spectra_layout(f: h5py.File, run: RunInfo) -> None:
    """The camera datasets, created up front like everything else (empty when there is no camera)."""
    spectra = run.spectra
    shape = tuple(spectra.frame_shape) if spectra is not None else NO_CAMERA_FRAME_SHAPE
    group = f.require_group(SPECTRA)
    group.attrs["camera"] = np.uint8(spectra is not None)
    group.attrs["exposure_s"] = float(spectra.exposure_s) if spectra is not None else float("nan")
    group.attrs["frame_rate_hz"] = float(spectra.frame_rate_hz) if spectra is not None else float("nan")
    rows_per_chunk = max(1, (1 << 20) // (FRAMES_DTYPE.itemsize * int(np.prod(shape))))
    frames = f.create_dataset(SPECTRA_FRAMES, shape=(0, *shape), maxshape=(None, *shape),
                              chunks=(rows_per_chunk, *shape), dtype=FRAMES_DTYPE)
    frames.attrs["unit"] = "counts"
    for path in (SPECTRA_FRAME_INDEX, SPECTRA_EXPOSURE_START, SPECTRA_EXPOSURE_STOP, SPECTRA_SKIPPED):
        ds = f.create_dataset(path, shape=(0,), maxshape=(None,), chunks=(MARKER_CHUNK,), dtype=np.int64)
        if path != SPECTRA_FRAME_INDEX and path != SPECTRA_SKIPPED:
            ds.attrs["unit"] = "ps"
    wavelength = (np.asarray(spectra.wavelength_nm, np.float64) if spectra is not None
                  else np.full(shape[-1], np.nan))
    f[SPECTRA_WAVELENGTH] = wavelength
    f[SPECTRA_WAVELENGTH].attrs["unit"] = "nm"
    f[SPECTRA_ENERGY] = 1239.841984 / wavelength
    f[SPECTRA_ENERGY].attrs["unit"] = "eV"
    instruments = (run.station_snapshot or {}).get("instruments", {})
    for path, role in ((SPECTRA_CAMERA_SNAPSHOT, "camera"), (SPECTRA_SPECTROGRAPH_SNAPSHOT, "spectrograph")):
        f[path] = text_scalar(json.dumps(instruments.get(role), default=_json_default))


# --- encoding and decoding the labctl records -------------------------------
def text(value: Any) -> str:
    """A stored string (bytes, numpy bytes or str) as str."""
    if isinstance(value, np.ndarray):
        value = value[()]
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def loss_rows(losses: list[LossRecord]) -> np.ndarray:
    """Loss records as ``LOSS_DTYPE`` rows (source cut to 32 bytes)."""
    return np.array([(x.start_ps, x.stop_ps, x.missing_syncs, fit_utf8(x.source, LOSS_SOURCE_BYTES))
                     for x in losses], LOSS_DTYPE)


def loss_records(rows: np.ndarray) -> list[LossRecord]:
    return [LossRecord(int(r["start_ps"]), int(r["stop_ps"]), text(r["source"]), int(r["missing_syncs"]))
            for r in rows]


def log_rows(lines: list[tuple[float, str, str]]) -> np.ndarray:
    """(time_s, level, message) lines as ``RUN_LOG_DTYPE`` rows; long messages end with "…"."""
    return np.array([(t, fit_utf8(level.upper(), LOG_LEVEL_BYTES), fit_utf8(msg, LOG_MESSAGE_BYTES))
                     for t, level, msg in lines], RUN_LOG_DTYPE)


def log_lines(rows: np.ndarray) -> list[tuple[float, str, str]]:
    return [(float(r["time_s"]), text(r["level"]), text(r["message"])) for r in rows]


def write_run_end(group: h5py.Group, end: dict[str, Any]) -> None:
    """Store the end record (keys: ``RUN_END_ATTRS``) as attributes of ``group``."""
    a = group.attrs
    a["clean"] = np.uint8(bool(end["clean"]))  # 0/1: PyTables cannot read h5py's bool enum
    a["end_reason"] = str(end["end_reason"])
    a["duration_ps"] = np.int64(end["duration_ps"])
    a["photons_written"] = np.int64(end["photons_written"])
    a["counts"] = json.dumps({str(k): int(v) for k, v in end["counts"].items()})
    a["losses"] = np.int64(end["losses"])
    period = end["measured_sync_period_ps"]
    a["measured_sync_period_ps"] = np.float64(np.nan if period is None else period)
    a["errors"] = json.dumps(list(end["errors"]))
    a["safe_state_actions"] = json.dumps(list(end.get("safe_state_actions", [])))
    a["safe_state_warnings"] = json.dumps(list(end.get("safe_state_warnings", [])))


def read_run_end(group: h5py.Group) -> dict[str, Any]:
    """The end record stored by ``write_run_end`` (NaN period -> None, counts keyed by int)."""
    a = group.attrs
    period = float(a.get("measured_sync_period_ps", np.nan))
    return {
        "clean": bool(a["clean"]),
        "end_reason": text(a["end_reason"]),
        "duration_ps": int(a["duration_ps"]),
        "photons_written": int(a["photons_written"]),
        "counts": {int(k): int(v) for k, v in json.loads(text(a["counts"])).items()},
        "losses": int(a["losses"]),
        "measured_sync_period_ps": None if np.isnan(period) else period,
        "errors": list(json.loads(text(a["errors"]))),
        "safe_state_actions": list(json.loads(text(a.get("safe_state_actions", "[]")))),  # [] in files before them
        "safe_state_warnings": list(json.loads(text(a.get("safe_state_warnings", "[]")))),
    }


# --- building it ----------------------------------------------------------
def fit_utf8(text: str, max_bytes: int) -> bytes:
    """Encode ``text`` as UTF-8 in at most ``max_bytes`` bytes; a cut text ends with "…"."""
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return raw
    ellipsis = "…".encode("utf-8")
    return raw[: max_bytes - len(ellipsis)].decode("utf-8", errors="ignore").encode("utf-8") + ellipsis


def text_scalar(value: str) -> np.ndarray:
    """A scalar fixed-length UTF-8 byte string: how Photon-HDF5 stores strings."""
    raw = value.encode("utf-8")
    return np.array(raw, dtype=f"S{max(1, len(raw))}")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def detector_ids(run: RunInfo) -> list[int]:
    """The file's detector ids (``/setup/detectors/id``): the channel map's SPADs and every
    channel in ``run.detector_labels`` (an imported file may have any number of detectors)."""
    return sorted(set(run.channels.detectors) | {int(ch) for ch in run.detector_labels})


def create_layout(f: h5py.File, run: RunInfo, *, chunk_photons: int, author: str, description: str,
                  excitation_wavelength_m: float = EXCITATION_WAVELENGTH_M,
                  detection_wavelength_m: float = DETECTION_WAVELENGTH_M) -> None:
    """Create every group, dataset and attribute of a labctl file (before SWMR mode).

    Streaming datasets start empty, chunked by ``chunk_photons`` (markers and
    tables by their own small chunks), resizable, uncompressed.  Booleans in
    ``/setup`` are stored as 0/1 integers, as phconvert does.
    """
    period_ps = int(run.nominal_sync_period_ps)
    rate_hz = 1e12 / period_ps if period_ps > 0 else 0.0
    now = time.strftime("%Y-%m-%d %H:%M:%S")
    ids = detector_ids(run)
    for key, value in (("format_name", FORMAT_NAME), ("format_version", FORMAT_VERSION),
                       ("format_url", FORMAT_URL)):
        f.attrs[key] = np.bytes_(value.encode())
    f[DESCRIPTION] = text_scalar(description)
    f[ACQUISITION_DURATION] = np.float64(0.0)
    streams = ((TIMESTAMPS, TIMESTAMPS_DTYPE, "ps"), (DETECTORS, DETECTORS_DTYPE, "tagger channel"),
               (NANOTIMES, NANOTIMES_DTYPE, "ps; -1 = photon before the first laser sync of the run"))
    for path, dtype, unit in streams:
        ds = f.create_dataset(path, shape=(0,), maxshape=(None,), chunks=(chunk_photons,), dtype=dtype)
        ds.attrs["unit"] = unit
    f[TIMESTAMPS_UNIT] = np.float64(1e-12)
    f[TCSPC_UNIT] = np.float64(1e-12)
    f[TCSPC_NUM_BINS] = np.int64(period_ps)
    f[TCSPC_RANGE] = np.float64(period_ps * 1e-12)
    f[MEASUREMENT_TYPE] = text_scalar("generic")
    f[LASER_REPETITION_RATE] = np.float64(rate_hz)
    f[SPLIT_CH1] = np.array([run.channels.spad_a], DETECTORS_DTYPE)
    f[SPLIT_CH2] = np.array([run.channels.spad_b], DETECTORS_DTYPE)
    setup = f.create_group(SETUP)
    for key, value in (("num_pixels", 2), ("num_spots", 1), ("num_spectral_ch", 1),
                       ("num_polarization_ch", 1), ("num_split_ch", 2),
                       ("modulated_excitation", 0), ("lifetime", 1)):
        setup[key] = np.int64(value)
    setup["excitation_alternated"] = np.array([0], np.uint8)
    setup["excitation_wavelengths"] = np.array([excitation_wavelength_m])
    setup["excitation_cw"] = np.array([0], np.uint8)
    setup["laser_repetition_rates"] = np.array([rate_hz])
    setup["detection_wavelengths"] = np.array([detection_wavelength_m])
    setup["detection_split_ch_ratios"] = np.array([0.5, 0.5])
    f[SETUP_DETECTOR_ID] = np.array(ids, DETECTORS_DTYPE)
    f[SETUP_DETECTOR_ID_HARDWARE] = np.array(ids, DETECTORS_DTYPE)
    f[SETUP_DETECTOR_LABEL] = np.array([run.detector_labels.get(i, f"ch{i}").encode() for i in ids])
    f[SETUP_DETECTOR_COUNTS] = np.zeros(len(ids), np.int64)
    identity = {"author": author, "creator": author or SOFTWARE, "software": SOFTWARE,
                "software_version": labctl.__version__, "format_name": FORMAT_NAME,
                "format_version": FORMAT_VERSION, "format_url": FORMAT_URL,
                "filename": os.path.basename(f.filename), "filename_full": os.path.abspath(f.filename),
                "creation_time": now}
    for key, value in identity.items():
        f[f"{IDENTITY}/{key}"] = text_scalar(value)
    for key, value in (("software", SOFTWARE), ("software_version", labctl.__version__), ("creation_time", now)):
        f[f"{PROVENANCE}/{key}"] = text_scalar(value)
    f[RUN_ID] = text_scalar(run.run_id)
    info = {"run_id": run.run_id, "start_time_iso": run.start_time_iso, "channels": run.channels.as_dict(),
            "detector_labels": run.detector_labels, "nominal_sync_period_ps": period_ps,
            "sync_divider": run.sync_divider, "duration_s": run.duration_s, "seed": run.seed,
            "description": run.description}
    snapshot = {"run": info, "station": run.station_snapshot}
    f[STATION_SNAPSHOT] = text_scalar(json.dumps(snapshot, default=_json_default))
    markers = f.create_dataset(MARKERS, shape=(0,), maxshape=(None,), chunks=(MARKER_CHUNK,), dtype=MARKERS_DTYPE)
    markers.attrs["unit"] = "ps"
    for path, dtype in ((LOSSES, LOSS_DTYPE), (RUN_LOG, RUN_LOG_DTYPE)):
        f.create_dataset(path, shape=(0,), maxshape=(None,), chunks=(TABLE_CHUNK,), dtype=dtype)
    f[WRITER_DONE] = np.int8(0)
    create_spectra_layout(f, run)
    # PyTables (hence phconvert, FRETBursts) reads a scalar dataset as a 0-d array unless it
    # carries FLAVOR = "python", as the scalars that phconvert writes do; then it gets bytes/int/float.
    scalars: list[str] = []
    f.visit(lambda name: scalars.append(name) if f.get(name, getclass=True) is h5py.Dataset else None)
    for name in scalars:
        ds = f[name]
        if ds.shape == ():
            ds.attrs["FLAVOR"] = np.bytes_(b"python")
    # Every node outside /user carries the specification's description as TITLE (phconvert's check).
    for path, title in SPEC_TITLES.items():
        node = f.get(path)
        if node is not None:
            node.attrs["TITLE"] = np.bytes_(title.encode())

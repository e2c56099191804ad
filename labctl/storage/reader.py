"""Read Photon-HDF5 files (labctl's and other tools') as ``PhotonBlock`` streams, also while they grow.

Any single-spot Photon-HDF5 file with ``/photon_data/timestamps`` is read:
timestamps become int64 ps: exact for a unit of whole picoseconds; any other
unit of at least 1 ps (e.g. the laser-sync period of a T3 file, 1 / 76.2 MHz =
13123.36 ps) as ``rint(ticks x unit)`` per photon, without float64's loss on
large tick counts (``units.times_unit_ps``); units below 1 ps are refused
(rounding would merge distinct ticks).  Nanotimes become
int32 ps (``tcspc_unit`` -- else ``tcspc_range / tcspc_num_bins`` -- times the
stored value, rounded to the nearest ps if the unit is not a whole number of ps).  A file
without nanotimes gives nanotimes of -1.  labctl's own extras (markers,
losses, run log, snapshot, end record) live under ``/user/labctl``.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator
from typing import Any

import h5py
import numpy as np

from labctl.blocks import LossRecord, PhotonBlock
from labctl.errors import DataFileError
from labctl.storage import layout as L
from labctl.storage.hdf5_open import (check_photon_datasets, h5py_message, length_warnings, lookup, open_hdf5,
                                      positive_number, readable_photons, shares_a_writer)
from labctl.storage.repair_record import read_repair_record
from labctl.storage.units import INT32_RANGE, UINT8_RANGE, whole_ps, dtype_within, stored_to_ps

HANDOVER_TIMEOUT_S = 10.0
"""How long ``iter_blocks(follow=True)`` waits for the writer's end record once all data are flushed."""



class PhotonHDF5Reader:
    """Read a Photon-HDF5 file; a context manager.

    Args:
        path: the file.
        swmr: open in SWMR-read mode (default): works on files being written and on
            files whose writer crashed; ``False`` only opens closed files.
    """

    def __init__(self, path: str | os.PathLike[str], *, swmr: bool = True) -> None:
        self._path = os.path.abspath(os.fspath(path))
        self._allow_swmr = swmr
        self._swmr = False
        self._datasets: dict[str, h5py.Dataset | None] = {}
        self._file = self._open()
        try:
            self._check_layout()
        except BaseException:
            self._file.close()
            raise

    def _open(self) -> h5py.File:
        """Open the file (``hdf5_open``: no hang on damage); SWMR only if a writer has it open."""
        f, opened_swmr = open_hdf5(self._path, swmr=self._allow_swmr)
        self._swmr = opened_swmr and not shares_a_writer(f)
        self._datasets = {}
        return f

    def _check_layout(self) -> None:
        """Refuse a file whose photon datasets cannot be read as photons (``check_photon_datasets``)."""
        try:
            check_photon_datasets(self._file, self._path)
            self._readable = readable_photons(self._file, self._dataset, self._swmr)
        except (OSError, RuntimeError, KeyError, TypeError) as exc:
            raise DataFileError(f"{self._path}: damaged HDF5 file: {h5py_message(exc)}") from None

    @property
    def stream_lengths(self) -> dict[str, int]:
        """Length of each photon dataset present (equal in a sound closed file)."""
        self._refresh(*L.STREAM_PATHS)
        return {path: ds.shape[0] for path, ds in zip(L.STREAM_PATHS, map(self._dataset, L.STREAM_PATHS))
                if ds is not None}

    def warnings(self) -> list[str]:
        """What is wrong but still readable: photon datasets of unequal length, data past a truncation."""
        return length_warnings(self.stream_lengths, self._readable, os.path.basename(self._path))

    def __enter__(self) -> PhotonHDF5Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file (idempotent)."""
        self._file.close()

    def reopen(self) -> None:
        """Close and open again: shows groups written since (e.g. ``run_end`` after the run)."""
        self._file.close()
        self._file = self._open()

    # ----------------------------------------------------------------- small helpers
    def _dataset(self, path: str) -> h5py.Dataset | None:
        """The one handle this reader keeps per dataset.

        Never open a second one: with HDF5 2.0 (h5py 3.16), ``refresh()`` on one
        handle while another handle to the same dataset is open makes both read
        wrong data (the last chunk comes back as a copy of the first).
        """
        if path not in self._datasets:
            obj = lookup(self._file, path)
            self._datasets[path] = obj if isinstance(obj, h5py.Dataset) else None
        return self._datasets[path]

    def _get(self, path: str, default: Any = None) -> Any:
        ds = self._dataset(path)
        if ds is None:
            return default
        if self._swmr:
            ds.refresh()
        return ds[()]

    def _refresh(self, *paths: str) -> None:
        if self._swmr:
            for path in paths:
                ds = self._dataset(path)
                if ds is not None:
                    ds.refresh()

    # ----------------------------------------------------------------- metadata
    @property
    def path(self) -> str:
        return self._path

    @property
    def is_labctl_file(self) -> bool:
        """True if the file has labctl's ``/user/labctl`` group."""
        return L.LABCTL in self._file

    @property
    def format_version(self) -> str | None:
        """Photon-HDF5 version string (root attribute, else ``/identity/format_version``)."""
        if "format_version" in self._file.attrs:
            return L.text(self._file.attrs["format_version"])
        value = self._get(f"{L.IDENTITY}/format_version")
        return None if value is None else L.text(value)

    @property
    def run_id(self) -> str | None:
        """labctl's run id, or None for other files."""
        value = self._get(L.RUN_ID)
        return None if value is None else L.text(value)

    def identity(self) -> dict[str, str]:
        """The string fields of ``/identity`` (author, software, creation_time, ...)."""
        group = self._file.get(L.IDENTITY)
        if not isinstance(group, h5py.Group):
            return {}
        return {k: L.text(v[()]) for k, v in group.items() if isinstance(v, h5py.Dataset) and v.ndim == 0}

    @property
    def num_photons(self) -> int:
        """Photons readable now (refreshed: grows while the file is being written)."""
        n = min(self.stream_lengths.values())
        if self._readable is not None and self._readable < n:  # grown since (a live writer), or truncated
            self._readable = readable_photons(self._file, self._dataset, self._swmr)
        return n if self._readable is None else min(n, self._readable)

    @property
    def timestamps_unit_s(self) -> float:
        """Duration of one stored timestamp unit (s)."""
        return float(self._get(L.TIMESTAMPS_UNIT, math.nan))

    @property
    def nanotimes_unit_s(self) -> float | None:
        """TCSPC bin width (s) of the stored nanotimes, or None without nanotimes."""
        if L.NANOTIMES not in self._file:
            return None
        unit = self._get(L.TCSPC_UNIT)
        if unit is None:  # some writers give only the range and the number of bins
            span, bins = self._get(L.TCSPC_RANGE), self._get(L.TCSPC_NUM_BINS)
            if span is not None and bins is not None and float(bins) > 0 and float(span) > 0:
                unit = float(span) / float(bins)
        if unit is None:  # v0.5 allows per-detector TCSPC specs instead
            units = self._get(f"{L.SETUP_DETECTORS}/tcspc_unit", self._get(f"{L.SETUP_DETECTORS}/tcspc_units"))
            units = None if units is None else np.unique(np.asarray(units)[np.asarray(units) > 0])
            if units is None or len(units) != 1:
                raise ValueError(f"{self._path}: nanotimes without one common tcspc_unit "
                                 f"(per-detector units {units}): not supported")
            unit = units[0]
        return float(unit)

    @property
    def tcspc_num_bins(self) -> int | None:
        """Number of TCSPC bins, or None if not recorded."""
        value = positive_number(self._get(L.TCSPC_NUM_BINS))
        return None if value is None else int(value)

    @property
    def laser_repetition_rate_hz(self) -> float | None:
        """Laser repetition rate (Hz), or None if not recorded."""
        value = self._get(L.LASER_REPETITION_RATE)
        if value is None:
            rates = self._get(L.SETUP_LASER_REPETITION_RATES)
            value = None if rates is None or np.size(rates) == 0 else np.ravel(rates)[0]
        return positive_number(value)

    @property
    def acquisition_duration_s(self) -> float | None:
        """``/acquisition_duration`` (s), None if absent or not a finite time > 0; labctl updates it at every flush."""
        return positive_number(self._get(L.ACQUISITION_DURATION))

    @property
    def detector_ids(self) -> tuple[int, ...]:
        """Detector ids: ``/setup/detectors/id``, else the values found in ``/photon_data/detectors``."""
        ids = self._setup_ids()
        return tuple(int(i) for i in ids) if ids is not None else tuple(k for k, n in self.photon_counts().items() if n)

    @property
    def detector_labels(self) -> dict[int, str]:
        """Detector id -> label (from ``/setup/detectors/label``; empty if absent)."""
        labels = self._get(L.SETUP_DETECTOR_LABEL)
        ids = self._get(L.SETUP_DETECTOR_ID)
        if labels is None or ids is None:
            return {}
        return {int(i): L.text(s) for i, s in zip(np.asarray(ids).ravel(), labels)}

    def first_last_ps(self) -> tuple[int, int] | None:
        """Timestamps (ps) of the first and the last photon, or None without photons."""
        n = self.num_photons
        if not n:
            return None
        read = self._photon_reader()
        return int(read(0, 1).timestamps[0]), int(read(n - 1, n).timestamps[0])

    def photon_counts(self, chunk_photons: int = 1 << 22) -> dict[int, int]:
        """Photons per detector id, counted in the data (read in slices)."""
        n = self.num_photons
        det = self._dataset(L.DETECTORS)
        if det is None:
            return {self._single_detector_id(): n} if n else {}
        counts = np.zeros(0, np.int64)
        for i in range(0, n, chunk_photons):
            c = np.bincount(np.asarray(det[i:min(i + chunk_photons, n)], np.int64))
            counts = np.pad(counts, (0, max(0, len(c) - len(counts))))
            counts[:len(c)] += c
        return {i: int(c) for i, c in enumerate(counts) if c}

    def _single_detector_id(self) -> int:
        ids = self._setup_ids()
        return int(ids[0]) if ids is not None and ids.size == 1 else 0

    def _setup_ids(self) -> np.ndarray | None:
        """``/setup/detectors/id`` as a 1-D integer array, or None if absent."""
        ids = self._get(L.SETUP_DETECTOR_ID)
        if ids is not None and np.asarray(ids).dtype.kind not in "iu":
            raise DataFileError(f"{self._path}: {L.SETUP_DETECTOR_ID} ({np.asarray(ids).dtype}): must be integer ids")
        return None if ids is None else np.asarray(ids).ravel()

    # ----------------------------------------------------------------- labctl extras
    def markers(self) -> np.ndarray:
        """Frame-marker timestamps (int64 ps); empty for non-labctl files."""
        raw = np.asarray(self._get(L.MARKERS, np.empty(0, L.MARKERS_DTYPE)))
        if raw.dtype.kind not in "iu":
            raise DataFileError(f"{self._path}: {L.MARKERS} ({raw.dtype}): must be integer timestamps (ps)")
        return raw.astype(L.MARKERS_DTYPE)

    def losses(self) -> list[LossRecord]:
        """Every recorded stretch of lost data."""
        return L.loss_records(self._get(L.LOSSES, np.empty(0, L.LOSS_DTYPE)))

    def run_log(self) -> list[tuple[float, str, str]]:
        """Run-log lines: (seconds since the writer opened the file, level, message)."""
        return L.log_lines(self._get(L.RUN_LOG, np.empty(0, L.RUN_LOG_DTYPE)))

    def station_snapshot(self) -> dict[str, Any] | None:
        """``{"run": run info, "station": instrument snapshot}``, or None for non-labctl files."""
        text = self._get(L.STATION_SNAPSHOT)
        return None if text is None else json.loads(L.text(text))

    def run_end(self) -> dict[str, Any] | None:
        """The end-of-run record, or None: the writer never closed the file (crash?).

        Opened during the run, this handle does not see the record written at its
        end: call ``reopen()`` first (``iter_blocks(follow=True)`` does).
        """
        group = self._file.get(L.RUN_END)
        return L.read_run_end(group) if isinstance(group, h5py.Group) else None

    def repair_record(self) -> dict[str, Any] | None:
        """The record ``labctl repair`` leaves in ``/user/labctl/repair``, or None (README, "labctl repair")."""
        return read_repair_record(self._file)

    # ----------------------------------------------------------------- photons
    def iter_blocks(self, chunk_photons: int = 1 << 20, *, follow: bool = False, poll_s: float = 0.5,
                    timeout_s: float | None = None) -> Iterator[PhotonBlock]:
        """Yield the photons as ``PhotonBlock``s of at most ``chunk_photons``, reading slice by slice.

        Markers and loss records ride in the block whose time span contains them
        (``span_ps`` = previous block's stop .. last timestamp + 1); whatever is
        left comes in a last block.  ``sync_count`` is 0 (syncs are not stored).

        With ``follow=True`` on a labctl file being written, keep polling every
        ``poll_s`` seconds for new photons until the writer has flushed everything
        (then reopen to pick up the end record) or ``timeout_s`` has passed (a file
        whose writer crashed never ends: give a timeout).  Other files end at once.

        Raises:
            ValueError: the timestamps or nanotimes cannot be converted to ps exactly.
        """
        if chunk_photons < 1:
            raise ValueError(f"chunk_photons = {chunk_photons}: must be >= 1")
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        live = follow and self.is_labctl_file
        pos, prev_stop = 0, None
        markers, markers_read = np.empty(0, L.MARKERS_DTYPE), 0
        losses: list[LossRecord] = []
        losses_read = 0
        read = self._photon_reader()
        while True:
            if live and self._get(L.WRITER_DONE, 0):
                self._handover(deadline)
                read, live = self._photon_reader(), False
            n = self.num_photons  # side tables are flushed before photons: read them after
            new_markers = self._tail(L.MARKERS, markers_read)
            markers, markers_read = np.concatenate([markers, new_markers]), markers_read + len(new_markers)
            new_losses = self._tail(L.LOSSES, losses_read)
            losses, losses_read = losses + L.loss_records(new_losses), losses_read + len(new_losses)
            while pos < n:
                stop = min(pos + chunk_photons, n)
                block = read(pos, stop)
                hi = int(block.timestamps[-1]) + 1
                block.span_ps = (int(block.timestamps[0]) if prev_stop is None else prev_stop, hi)
                k = int(np.searchsorted(markers, hi))
                block.markers, markers = markers[:k], markers[k:]
                block.losses = [x for x in losses if x.start_ps < hi]
                losses = [x for x in losses if x.start_ps >= hi]
                prev_stop, pos = hi, stop
                yield block
            if not live or (deadline is not None and time.monotonic() >= deadline):
                break
            time.sleep(poll_s)
        if len(markers) or losses:
            start = prev_stop if prev_stop is not None else int(markers[0]) if len(markers) else 0
            stop = max([start, int(markers[-1]) + 1 if len(markers) else start] + [x.stop_ps for x in losses])
            tail = PhotonBlock.empty()
            tail.markers, tail.losses, tail.span_ps = markers, losses, (start, stop)
            yield tail

    def _tail(self, path: str, start: int) -> np.ndarray:
        """Rows ``start:`` of a growing labctl table (empty if the file has none)."""
        ds = self._dataset(path)
        if ds is None:
            return np.empty(0, L.MARKERS_DTYPE if path == L.MARKERS else L.LOSS_DTYPE)
        self._refresh(path)
        return ds[start:]

    def _handover(self, deadline: float | None) -> None:
        """The writer has flushed everything and is closing: reopen once its end record is there."""
        limit = time.monotonic() + HANDOVER_TIMEOUT_S
        if deadline is not None:
            limit = min(limit, deadline)
        self._file.close()
        self._datasets = {}
        while True:
            try:
                f, swmr = open_hdf5(self._path, swmr=self._allow_swmr)
            except (OSError, DataFileError):  # the writer holds it open "r+" for a few ms
                if time.monotonic() >= limit:
                    self._file = self._open()
                    return
            else:
                if L.RUN_END in f or time.monotonic() >= limit:
                    self._file, self._swmr = f, swmr and not shares_a_writer(f)
                    return
                f.close()
            time.sleep(0.02)

    def _photon_reader(self) -> Any:
        """A function ``(start, stop) -> PhotonBlock`` with the unit conversions worked out once."""
        ts_unit, nt_unit = self.timestamps_unit_s, self.nanotimes_unit_s
        single_id = self._single_detector_id()
        ts_ds, det_ds, nt_ds = map(self._dataset, L.STREAM_PATHS)

        # Stored nanotimes in whole ps (unit 1 ps) of a type within int32 are used as they are.
        nt_as_is = (nt_ds is not None and nt_unit is not None and whole_ps(nt_unit) == 1
                    and dtype_within(nt_ds.dtype, INT32_RANGE))

        def read(start: int, stop: int) -> PhotonBlock:
            ts = self._to_ps(ts_ds[start:stop], ts_unit, L.TIMESTAMPS, L.TIMESTAMPS_UNIT, exact=ts_unit < 1e-12)
            if det_ds is not None:
                det = det_ds[start:stop]
                if det.ndim != 1 or det.dtype.kind not in "iu" or (
                        len(det) and not dtype_within(det.dtype, UINT8_RANGE) and (det.min() < 0 or det.max() > 255)):
                    raise ValueError(f"{self._path}: {L.DETECTORS} ({det.dtype}, shape {det.shape}) must hold "
                                     "detector ids 0..255 (one per photon)")
                det = det.astype(L.DETECTORS_DTYPE, copy=False)
            else:
                det = np.full(len(ts), single_id, L.DETECTORS_DTYPE)
            if nt_as_is:
                nt = nt_ds[start:stop].astype(L.NANOTIMES_DTYPE, copy=False)
            elif nt_ds is not None:
                nt = self._to_ps(nt_ds[start:stop], nt_unit, L.NANOTIMES, L.TCSPC_UNIT, exact=False)
                if len(nt) and (nt.min() < INT32_RANGE.min or nt.max() > INT32_RANGE.max):
                    raise ValueError(f"{self._path}: nanotimes up to {nt.max()} ps do not fit int32 ps")
                nt = nt.astype(L.NANOTIMES_DTYPE)
            else:
                nt = np.full(len(ts), -1, L.NANOTIMES_DTYPE)
            return PhotonBlock(ts, det, nt)

        return read

    def _to_ps(self, raw: np.ndarray, unit_s: float, data_path: str, unit_path: str, *,
               exact: bool) -> np.ndarray:
        """Stored integers times ``unit_s``, as int64 ps (``labctl.storage.units.stored_to_ps``)."""
        return stored_to_ps(raw, unit_s, self._path, data_path, unit_path, exact=exact)

"""Every write the Photon-HDF5 writer makes into its file goes through one of these functions.

One place per kind of write, so that a test can make any of them fail (a full disk at every write
site) and so that the writer's error handling covers them all.
"""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np


def append_rows(ds: h5py.Dataset, rows: np.ndarray) -> None:
    n = ds.shape[0]
    ds.resize(n + len(rows), axis=0)  # along the first axis: also for frames (n x pixels)
    ds[n:] = rows


def set_extent(ds: h5py.Dataset, length: int) -> None:
    ds.id.set_extent((length,))  # = ds.resize, without h5py's Python-side checks


def write_chunk(ds: h5py.Dataset, offset: int, data: np.ndarray) -> None:
    ds.id.write_direct_chunk((offset,), data)


def assign(ds: h5py.Dataset, value: Any) -> None:
    ds[...] = value


def flush_dataset(ds: h5py.Dataset) -> None:
    ds.flush()


def close_file(f: h5py.File) -> None:
    f.close()

"""Live views across the process boundary: each poll carries only what changed.

The station child turns each live accumulator's snapshot into a *view*: the
snapshot's fields minus the ones no live view draws (:data:`LEFT_OUT`).  A
:class:`ViewSender` numbers each view's content with a version (a new number
whenever any field differs from the content sent before) and keeps that content.
A poll names the version the client holds per view; for each view the answer is

* nothing, if the client holds the current version;
* a delta against the client's version, field by field: an unchanged field is
  omitted; an array is sent as the smallest of its new rows (a rolling window:
  ``new == old[k:] + tail``), its changed elements (flat indices and new values),
  its element-wise increase (counts that only grew), or all of it;
* the full content otherwise (the first poll, a new run, another client in between).

Integer arrays, and float arrays whose values are all whole numbers (a camera
spectrum), cross in the smallest integer dtype that holds their values and are
restored to their own dtype: a :class:`ViewReceiver`'s arrays equal, element for
element and in dtype, the fields of the full snapshot.  No physics here: only
equality tests and integer subtraction.
"""

from __future__ import annotations

import dataclasses
import types
from typing import Any, Mapping

import numpy as np

LEFT_OUT: dict[str, tuple[str, ...]] = {
    "G2Snapshot": ("g2_cw", "g2_cw_err"),  # the continuous-wave normalisation (floats of every bin): not drawn live
}
"""Snapshot fields that do not cross to the window (None in the views it receives)."""

_INT_DTYPES = tuple(np.dtype(t) for t in ("uint8", "int8", "uint16", "int16", "uint32", "int32", "int64", "uint64"))


def _snapshot_classes() -> dict[str, type]:
    from labctl.analysis import FlidSnapshot, G2Snapshot, LifetimeSnapshot, TraceSnapshot
    from labctl.analysis.spectrum_live import SpectrumSnapshot

    return {cls.__name__: cls for cls in (G2Snapshot, LifetimeSnapshot, TraceSnapshot, FlidSnapshot, SpectrumSnapshot)}


def view_fields(snapshot: Any) -> tuple[str, dict[str, Any]]:
    """(class name, {field: value}) of a snapshot dataclass, without the fields in :data:`LEFT_OUT`."""
    kind = type(snapshot).__name__
    if not dataclasses.is_dataclass(snapshot):
        raise TypeError(f"live view: {kind} is not a snapshot dataclass")
    left_out = LEFT_OUT.get(kind, ())
    return kind, {f.name: getattr(snapshot, f.name) for f in dataclasses.fields(snapshot) if f.name not in left_out}


# ----------------------------------------------------------------------------- array coding
def compact(array: np.ndarray) -> np.ndarray:
    """``array`` in the smallest dtype that holds its values exactly (integers, or floats that are all
    whole numbers below 2**53); other arrays as they are.  ``restore(compact(a), a.dtype)`` equals ``a``."""
    if array.size == 0 or array.dtype.kind not in "iuf":
        return array
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)):
            return array
        low, high = float(array.min()), float(array.max())
        if max(abs(low), abs(high)) >= 2.0 ** 53 or not np.array_equal(array, np.trunc(array)):
            return array
        low, high = int(low), int(high)
    else:
        low, high = int(array.min()), int(array.max())
    for dtype in _INT_DTYPES:
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return array.astype(dtype) if dtype.itemsize < array.dtype.itemsize or array.dtype.kind == "f" else array
    return array


def restore(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """An array sent by :func:`compact`, back in its own ``dtype``."""
    return np.asarray(array).astype(dtype, copy=False)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)) or a.dtype != b.dtype or a.shape != b.shape:
            return False
        return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    try:
        return bool(a == b) and type(a) is type(b)
    except (TypeError, ValueError):
        return False


def _encode_array(new: np.ndarray, old: Any, shift: int | None) -> tuple:
    """The smallest of: ("full", compact), ("tail", k, rows), ("sparse", indices, values), ("add", increase)."""
    full = compact(new)
    best: tuple = ("full", full, new.dtype.str, new.shape)
    size = full.nbytes
    if not isinstance(old, np.ndarray) or old.dtype != new.dtype or old.ndim != new.ndim or new.ndim == 0:
        return best
    if shift is not None and 0 <= shift <= old.shape[0] and old.shape[1:] == new.shape[1:]:
        kept = old.shape[0] - shift
        if 0 <= kept <= new.shape[0] and np.array_equal(new[:kept], old[shift:], equal_nan=new.dtype.kind == "f"):
            tail = compact(new[kept:])
            if tail.nbytes < size:
                best, size = ("tail", shift, tail, new.dtype.str), tail.nbytes
    if old.shape == new.shape:
        changed = np.flatnonzero(new.ravel() != old.ravel()) if new.dtype.kind != "f" else \
            np.flatnonzero(~((new.ravel() == old.ravel()) | (np.isnan(new.ravel()) & np.isnan(old.ravel()))))
        index = changed.astype(np.uint16 if new.size <= 65536 else np.uint32)
        values = compact(new.ravel()[changed])
        if index.nbytes + values.nbytes < size:
            best, size = ("sparse", index, values, new.dtype.str), index.nbytes + values.nbytes
        if new.dtype.kind in "iu":
            increase = compact(new - old)
            if increase.nbytes < size:
                best, size = ("add", increase, new.dtype.str), increase.nbytes
    return best


def _decode_array(code: tuple, old: Any) -> np.ndarray:
    how = code[0]
    if how == "full":
        return restore(code[1], np.dtype(code[2])).reshape(code[3])
    if how == "tail":
        _, shift, tail, dtype = code
        return np.concatenate([old[shift:], restore(tail, np.dtype(dtype))])
    if how == "sparse":
        _, index, values, dtype = code
        out = old.copy()
        out.ravel()[index.astype(np.int64)] = restore(values, np.dtype(dtype))
        return out
    if how == "add":
        return old + restore(code[1], np.dtype(code[2]))
    raise ValueError(f"live view: unknown array coding {how!r}")


# ----------------------------------------------------------------------------- both ends
ROLLING: dict[str, tuple[str, tuple[str, ...]]] = {
    "TraceSnapshot": ("first_bin", ("total", "counts")),
    "FlidSnapshot": ("first_bin", ("intensity", "nanotime_counts", "mean_lifetime_ns")),
    "SpectrumSnapshot": ("first_index", ("waterfall",)),
}
"""Per snapshot class: the field that counts rows dropped at the front, and the arrays that roll with it."""


class ViewSender:
    """The station's side: per view name, the version and content last numbered (one per client stream)."""

    def __init__(self) -> None:
        self._counter = 0
        self._sent: dict[str, tuple[int, str, dict[str, Any]]] = {}  # name: (version, kind, fields)
        self._objects: dict[str, Any] = {}  # name: the snapshot object those fields came from

    def encode(self, snapshots: Mapping[str, Any], have: Mapping[str, int | None]) -> dict[str, Any]:
        """{name: message or None}; None: the client's version ``have[name]`` is the current content.

        A message is ``{"version", "kind", "base", "fields"}``: ``base`` None carries every field in
        full; otherwise the changes from version ``base`` (fields left out did not change).
        """
        out: dict[str, Any] = {}
        for name, snapshot in snapshots.items():
            if snapshot is None:
                out[name] = None if have.get(name) is None else {"version": None, "kind": None, "base": None,
                                                                   "fields": {}}
                self._sent.pop(name, None)
                self._objects.pop(name, None)
                continue
            previous = self._sent.get(name)
            if previous is not None and snapshot is self._objects.get(name):  # the station's cached snapshot
                version, kind, fields = previous
            else:
                kind, fields = view_fields(snapshot)
                if previous is not None and previous[1] == kind and all(
                        _same(value, previous[2].get(key)) for key, value in fields.items()):
                    version = previous[0]
                else:
                    self._counter += 1
                    version = self._counter
            self._objects[name] = snapshot
            if have.get(name) == version:
                out[name] = None
            elif previous is not None and previous[1] == kind and have.get(name) == previous[0]:
                out[name] = {"version": version, "kind": kind, "base": previous[0],
                             "fields": self._delta(kind, fields, previous[2])}
            else:
                out[name] = {"version": version, "kind": kind, "base": None,
                             "fields": {k: self._code(v, None, None) for k, v in fields.items()}}
            self._sent[name] = (version, kind, fields)
        return out

    def _delta(self, kind: str, fields: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
        shift = None
        if kind in ROLLING:
            counter = ROLLING[kind][0]
            shift = int(fields[counter]) - int(old[counter])
        rolling = ROLLING.get(kind, ("", ()))[1]
        return {key: self._code(value, old.get(key), shift if key in rolling else None)
                for key, value in fields.items() if not _same(value, old.get(key))}

    @staticmethod
    def _code(value: Any, old: Any, shift: int | None) -> tuple:
        if isinstance(value, np.ndarray):
            return _encode_array(value, old, shift)
        return ("value", value)


class ViewReceiver:
    """The window's side: the views as of the versions received; a view object is new only when it changed."""

    def __init__(self) -> None:
        self._classes = _snapshot_classes()
        self.versions: dict[str, int | None] = {}
        self.views: dict[str, Any] = {}
        self._fields: dict[str, dict[str, Any]] = {}

    def have(self) -> dict[str, int | None]:
        """{name: version held}: what the next poll asks to be sent against."""
        return dict(self.versions)

    def apply(self, messages: Mapping[str, Any]) -> set[str]:
        """Apply a poll's messages; returns the names of the views that changed.

        Raises:
            ValueError: a delta against a version this receiver does not hold.
        """
        changed = set()
        for name, message in messages.items():
            if message is None:
                continue
            changed.add(name)
            if message["version"] is None:
                self.versions.pop(name, None)
                self._fields.pop(name, None)
                self.views[name] = None
                continue
            base = message["base"]
            if base is None:
                old: dict[str, Any] = {}
            elif base == self.versions.get(name):
                old = self._fields[name]
            else:
                raise ValueError(f"live view {name}: a delta against version {base}, but version "
                                 f"{self.versions.get(name)} is held")
            fields = dict(old)
            for key, code in message["fields"].items():
                fields[key] = code[1] if code[0] == "value" else _decode_array(code, old.get(key))
            cls = self._classes.get(message["kind"], types.SimpleNamespace)  # another sink's dataclass
            self._fields[name] = fields
            self.versions[name] = message["version"]
            self.views[name] = cls(**{**{k: None for k in LEFT_OUT.get(message["kind"], ())}, **fields})
        return changed

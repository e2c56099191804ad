"""Exceptions raised by labctl.  Every message names the thing, the value and what is allowed."""

from __future__ import annotations


class LabctlError(Exception):
    """Base class of labctl's own errors (and of the drivers' vendor errors).

    Subclasses take their own constructor arguments (function, vendor code, key
    path...), which plain exception pickling does not know: it calls the class with
    ``self.args``.  These errors record what they were built with, so they cross
    process boundaries (the station process) with their type, attributes and message.
    """

    def __new__(cls, *args: object, **kwargs: object) -> "LabctlError":
        self = super().__new__(cls, *args)
        self._init_args = (args, kwargs)
        return self

    def __reduce__(self) -> tuple:
        args, kwargs = getattr(self, "_init_args", (self.args, {}))
        return (_rebuild, (type(self), args, kwargs, self.args))


def _rebuild(cls: type, args: tuple, kwargs: dict, final_args: tuple) -> LabctlError:
    """Unpickle a LabctlError: construct it again, then restore ``args`` (QCoDeS may append context)."""
    error = cls(*args, **kwargs)
    error.args = final_args
    return error


class ConfigError(LabctlError, ValueError):
    """A station file, scene or engine setting is invalid.

    The message has the form ``<source>: <key.path> = <value>: <what is allowed>``.
    """

    def __init__(self, key_path: str, value: object, allowed: str, source: str = "") -> None:
        self.key_path = key_path
        self.value = value
        self.allowed = allowed
        self.source = source
        prefix = f"{source}: " if source else ""
        super().__init__(f"{prefix}{key_path} = {value!r}: {allowed}")


class InstrumentError(LabctlError, RuntimeError):
    """An instrument or its vendor library reported an error."""


class VendorLibraryNotFound(InstrumentError):
    """The vendor library of a real instrument could not be loaded."""


class DiskSpaceError(LabctlError, OSError):
    """Free disk space fell below the guard margin; the file was closed cleanly."""


class AcquisitionError(LabctlError, RuntimeError):
    """The acquisition stopped because of an error (in a sink, the tagger, ...)."""


class DataFileError(LabctlError, ValueError):
    """An input data file is missing, not Photon-HDF5, truncated or damaged (the message names it and why)."""

"""Exceptions raised by labctl.  Every message names the thing, the value and what is allowed."""

from __future__ import annotations


class LabctlError(Exception):
    """Base class of labctl's own errors."""


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

    def __reduce__(self) -> tuple:
        # Rebuilt from its parts, so that it crosses process boundaries (the station process) intact.
        return (type(self), (self.key_path, self.value, self.allowed, self.source))


class InstrumentError(LabctlError, RuntimeError):
    """An instrument or its vendor library reported an error."""


class VendorLibraryNotFound(InstrumentError):
    """The vendor library of a real instrument could not be loaded."""


class DiskSpaceError(LabctlError, OSError):
    """Free disk space fell below the guard margin; the file was closed cleanly."""


class AcquisitionError(LabctlError, RuntimeError):
    """The acquisition stopped because of an error (in a sink, the tagger, ...)."""

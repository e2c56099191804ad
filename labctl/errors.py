"""Exceptions raised by labctl.  Every message names the thing, the value and what is allowed."""

from __future__ import annotations

import reprlib


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


MAX_VALUE_CHARS = 80
"""A value shown in a ConfigError message is cut to this many characters."""

MAX_KEY_CHARS = 60
"""A key path in a ConfigError message is cut to this many characters."""

MAX_ALLOWED_CHARS = 150
"""The "what is allowed" text of a ConfigError message is cut to this many characters."""


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict, _REPR.maxset = 3, 6, 6, 6, 6
_REPR.maxstring, _REPR.maxother = MAX_VALUE_CHARS, MAX_VALUE_CHARS


def short_text(text: str, limit: int) -> str:
    """``text`` on one line (control characters escaped), cut to ``limit`` characters with "...". """
    if not text.isprintable():
        text = text.encode("unicode_escape").decode("ascii")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def short_repr(value: object, limit: int = MAX_VALUE_CHARS) -> str:
    """``repr(value)`` on one line, cut to ``limit`` characters (a huge value must not make a huge message)."""
    try:
        text = _REPR.repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not hide the configuration error
        text = f"<{type(value).__name__}>"
    return short_text(text, limit)


class ConfigError(LabctlError, ValueError):
    """A station file, scene or engine setting is invalid.

    The message has the form ``<source>: <key.path> = <value>: <what is allowed>``, on
    one line: the value's repr is cut to :data:`MAX_VALUE_CHARS` characters, the key
    path to :data:`MAX_KEY_CHARS`, the allowed text to :data:`MAX_ALLOWED_CHARS`
    (the attributes keep them whole).
    """

    def __init__(self, key_path: str, value: object, allowed: str, source: str = "") -> None:
        self.key_path = key_path
        self.value = value
        self.allowed = allowed
        self.source = source
        prefix = f"{short_text(str(source), 10**4)}: " if source else ""
        super().__init__(
            f"{prefix}{short_text(str(key_path), MAX_KEY_CHARS)} = {short_repr(value)}: "
            f"{short_text(' '.join(str(allowed).split()), MAX_ALLOWED_CHARS)}"
        )


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

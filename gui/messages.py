"""Error and status texts for people: which instrument, in plain words, once, wrappable.

Presentation only: the texts come from the station's own errors
(:class:`labctl.errors.ConfigError` names the key path, the value and what is
allowed); this module says them with the instrument's title instead of the key
path, removes repeats, and lets a label wrap long dotted names.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

from labctl.errors import ConfigError

ZERO_WIDTH_SPACE = "\u200b"

ROLE_TITLES = {
    "laser": "Excitation",
    "tagger": "Time tagger",
    "spad_a": "SPAD A",
    "spad_b": "SPAD B",
    "camera": "Camera",
    "spectrograph": "Spectrograph",
    "function_generator": "Function generator",
}
"""Instrument titles by station role, in the order the panels are shown."""

FAULT_SOURCES: tuple[tuple[str, str], ...] = (
    ("instruments.laser", "laser"), ("TDC_", "tagger"), ("tagger", "tagger"), ("quTAG", "tagger"),
    ("instruments.camera", "camera"), ("camera", "camera"), ("Andor", "camera"),
    ("Shamrock", "spectrograph"), ("spectrograph", "spectrograph"),
    ("function_generator", "function_generator"), ("generator", "function_generator"),
    ("spad_a", "spad_a"), ("spad_b", "spad_b"), ("laser", "laser"), ("PDL", "laser"),
)
"""Words in an error that say which instrument it came from (first match wins)."""

_PREFIX_RE = re.compile(r"instruments\.(\w+)\.settings\.")


LONG_WORD = 24
"""Words longer than this (characters) get break points."""


def breakable(text: str) -> str:
    """``text`` with zero-width spaces after ``. _ / , =`` in words longer than LONG_WORD, so a
    word-wrapping label can break long key paths and file names (a QLabel breaks only at spaces)."""
    def split(word: re.Match) -> str:
        return re.sub(r"([._/,=])(?=\S)", lambda m: m.group(1) + ZERO_WIDTH_SPACE, word.group(0))

    return re.sub(rf"\S{{{LONG_WORD + 1},}}", split, text)


def fault_role(text: str) -> str | None:
    """The station role an error text names, if any."""
    match = _PREFIX_RE.search(text)
    if match is not None and match.group(1) in ROLE_TITLES:
        return match.group(1)
    for word, role in FAULT_SOURCES:
        if word in text:
            return role
    return None


def field_error(error: BaseException, role: str) -> str:
    """What a refused panel value shows under its field: the value and what is allowed
    (the field's own name is beside it), without the key path."""
    prefix = f"instruments.{role}.settings."
    if isinstance(error, ConfigError) and error.key_path.startswith(prefix):
        return f"{error.value!r} refused: {error.allowed}"
    return str(error).replace(prefix, "")


def setting_error(error: BaseException, role: str, label: str) -> str:
    """A refused setting for the message line: ``"<Instrument>: <label> = <value> refused: <allowed>"``."""
    title = ROLE_TITLES.get(role, role)
    prefix = f"instruments.{role}.settings."
    if isinstance(error, ConfigError) and error.key_path.startswith(prefix):
        return f"{title}: {label} = {error.value!r} refused: {error.allowed}"
    text = str(error)
    start = text.find(prefix)
    return f"{title}: {text[start + len(prefix):] if start >= 0 else text}"


def unique(texts: Iterable[str]) -> list[str]:
    """The texts without repeats, also dropping a text contained in another one."""
    kept: list[str] = []
    for text in (t.strip() for t in texts):
        if not text or any(text in other for other in kept):
            continue
        kept = [other for other in kept if other not in text] + [text]
    return kept


def run_problems(summary: Any) -> str:
    """A run's end for the message line ("" for a clean run without losses): which instrument
    failed, in plain words, each error once."""
    errors = unique([text.removeprefix("error: ") for text in
                     [*summary.errors, *([] if summary.clean else [summary.end_reason])]])
    if summary.clean and not errors and not summary.losses:
        return ""
    role = next((r for r in map(fault_role, errors) if r is not None), None)
    head = f"{ROLE_TITLES[role]} failed" if role is not None else "The run ended with an error"
    if summary.clean:
        head = "Run ended"
    text = f"{head}: {'; '.join(errors)}" if errors else head
    if summary.losses:
        text += f" ({len(summary.losses)} loss record(s))"
    return text


def settings_key_path(error: BaseException, role: str) -> str | None:
    """The parameter path (``"ch1.threshold_v"``) an error names, if it names one of ``role``."""
    prefix = f"instruments.{role}.settings."
    text = error.key_path if isinstance(error, ConfigError) else str(error)
    start = text.find(prefix)
    if start < 0:
        return None
    return text[start + len(prefix):].split(" ")[0].split(":")[0] or None


def station_failure(message: str) -> str:
    """The station process's failure (it could not be built, or it is gone) for the message line,
    headed by the instrument it names: ``"Spectrograph failed: the station could not be built: …"``."""
    role = fault_role(message)
    return f"{ROLE_TITLES[role]} failed: {message}" if role is not None else message

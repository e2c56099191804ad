"""The info file of an SSTT data set (PHAST's writer, libtimetag's reader): parse, find, resolve.

Layout (``../shared/reference/formats.md`` §5; PHAST ``writer_coord.cpp``):
line 1 ``Simple Small Time Tagged (V2)`` (``Simple Small Time Tagged`` for v1);
``EXPERIMENT_HEADER``, a tab-separated title row (``Time_unit_seconds``,
``device_type``, ``experiment_start_timestamp_UTC``) and one value row;
``CHANNEL_HEADER``, a title row and one row per channel (rows end ``\\t``)
until an empty line.  Channel columns: ChannelID, Filename (double-quoted),
NumPhotons, NumOverflows, Filesize, HardwareSyncDivider,
AdditionalSyncDivider, TotalSyncDivider, IsPulsesChannel, HasPulsesChannel,
CorrespondingPulsesChannel.  Only ChannelID is required (libtimetag's Python
reader needs no more); missing values take libtimetag's defaults, as does a
missing experiment header (81e-12 s, ``qutau``).
The data file of channel N is the Filename column, beside the info file, or
``<info file name>.c<N>`` (libtimetag's Python reader uses only the latter).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labctl.formats.common import FormatError

MAGIC_V2 = "Simple Small Time Tagged (V2)"
MAGIC_V1 = "Simple Small Time Tagged"
DEFAULT_TIME_UNIT_TEXT = "81e-12"
DEFAULT_DEVICE = "qutau"
INT_COLUMNS = ("NumPhotons", "NumOverflows", "Filesize", "HardwareSyncDivider",
               "AdditionalSyncDivider", "TotalSyncDivider", "CorrespondingPulsesChannel")
BOOL_COLUMNS = ("IsPulsesChannel", "HasPulsesChannel", "HasMicrotimes")
DATA_NAME = re.compile(r"^(?P<info>.+)\.c(?P<channel>\d+)$")


@dataclass
class SsttInfo:
    """What an SSTT info file says.

    ``channels``: one dict per row, keys = column titles; ints and bools parsed,
    Filename unquoted.  ``experiment``: title -> text of the experiment row.
    """

    path: Path
    version: int
    experiment: dict[str, str]
    channels: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    @property
    def time_unit_text(self) -> str:
        """The time unit in seconds, as written (libtimetag's default if absent)."""
        return self.experiment.get("Time_unit_seconds", DEFAULT_TIME_UNIT_TEXT)


def is_info_file(path: Path) -> bool:
    """True if the file's first line is an SSTT info magic line."""
    try:
        with open(path, "rb") as fh:
            first = fh.readline(80)
    except OSError:
        return False
    return first.rstrip(b"\r\n") in (MAGIC_V2.encode(), MAGIC_V1.encode())


def find_info_file(paths: list[Path]) -> Path:
    """The one info file among ``paths`` or beside the data files given (``<info>.c<N>``)."""
    found: list[Path] = [p for p in paths if p.is_file() and is_info_file(p)]
    if not found:
        for p in paths:
            match = DATA_NAME.match(p.name)
            if match and is_info_file(p.with_name(match["info"])):
                found.append(p.with_name(match["info"]))
    unique = sorted({p.resolve(): p for p in found}.values())
    if len(unique) == 1:
        return unique[0]
    if not unique:
        for p in paths:  # an info file with a wrong first line: say what the line is
            if p.is_file() and not DATA_NAME.match(p.name):
                parse_info(p)
        missing = [str(p) for p in paths if not p.exists()]
        hint = f" (not found: {', '.join(missing)})" if missing else ""
        raise FormatError(
            f"{', '.join(map(str, paths)) or 'no paths'}: no SSTT info file{hint}; allowed: the "
            f"info file (first line {MAGIC_V2!r}) and/or its data files <info file>.c<ChannelID>")
    raise FormatError(f"several SSTT info files given ({', '.join(map(str, unique))}); "
                      "allowed: one data set per import")


def parse_info(path: Path) -> SsttInfo:
    """Parse an info file; ``FormatError`` names the file, the line and what is allowed."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise FormatError(f"{path}: cannot read SSTT info file ({exc.strerror or exc})") from exc
    first = lines[0] if lines else ""
    if first not in (MAGIC_V2, MAGIC_V1):
        raise FormatError(f"{path}: first line is {first[:60]!r}; allowed: {MAGIC_V2!r} "
                          f"(SSTT v2) or {MAGIC_V1!r} (v1)")
    version = 2 if first == MAGIC_V2 else 1
    notes: list[str] = []
    experiment: dict[str, str] = {}
    if "EXPERIMENT_HEADER" in lines:
        i = lines.index("EXPERIMENT_HEADER")
        titles = _fields(lines, i + 1)
        values = _fields(lines, i + 2)
        if len(titles) != len(values):
            raise FormatError(f"{path}: line {i + 3}: {len(values)} experiment values for "
                              f"{len(titles)} titles {titles}; allowed: one value per title")
        experiment = dict(zip(titles, values))
    for key, default in (("Time_unit_seconds", DEFAULT_TIME_UNIT_TEXT), ("device_type", DEFAULT_DEVICE)):
        if key not in experiment:
            notes.append(f"{path.name}: no {key} in the info file: using libtimetag's default {default}")
    if "CHANNEL_HEADER" not in lines:
        raise FormatError(f"{path}: no CHANNEL_HEADER line; allowed: an SSTT info file with a "
                          "CHANNEL_HEADER line, a title row and one row per channel")
    j = lines.index("CHANNEL_HEADER")
    titles = _fields(lines, j + 1)
    if "ChannelID" not in titles:
        raise FormatError(f"{path}: line {j + 2}: channel columns {titles} lack ChannelID; "
                          "allowed: ChannelID, Filename, NumPhotons, ... (PHAST's columns)")
    channels = []
    for k in range(j + 2, len(lines)):
        if not lines[k].strip():
            break
        values = _fields(lines, k)
        if len(values) != len(titles):
            raise FormatError(f"{path}: line {k + 1}: {len(values)} values for {len(titles)} "
                              f"channel columns {titles}; allowed: one value per column")
        channels.append(_channel_row(path, k + 1, dict(zip(titles, values))))
    if not channels:
        raise FormatError(f"{path}: no channel rows after CHANNEL_HEADER; allowed: one row per channel")
    ids = [c["ChannelID"] for c in channels]
    if len(set(ids)) != len(ids):
        raise FormatError(f"{path}: ChannelID values {ids} repeat; allowed: one row per channel")
    return SsttInfo(path=path, version=version, experiment=experiment, channels=channels, notes=notes)


def _fields(lines: list[str], index: int) -> list[str]:
    """Tab-separated fields of a line, without the empty field after the trailing tab."""
    if index >= len(lines):
        return []
    fields = lines[index].split("\t")
    while fields and not fields[-1].strip():
        fields.pop()
    return [f.strip() for f in fields]


def _channel_row(path: Path, line_no: int, row: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = dict(row)
    for key in ("ChannelID", *INT_COLUMNS, *BOOL_COLUMNS):
        if key in row:
            try:
                value = int(row[key])
            except ValueError:
                raise FormatError(f"{path}: line {line_no}: {key} = {row[key]!r}; allowed: "
                                  "an integer") from None
            out[key] = bool(value) if key in BOOL_COLUMNS else value
    if not -32768 <= out["ChannelID"] <= 32767:
        raise FormatError(f"{path}: line {line_no}: ChannelID = {out['ChannelID']}; allowed: "
                          "-32768..32767 (int16 channel numbers)")
    if "Filename" in row:
        out["Filename"] = row["Filename"].strip('"')
    return out


def data_file_candidates(info: SsttInfo, channel: dict[str, Any], given: list[Path]) -> list[Path]:
    """Where channel's data file may be: a given path of that name, Filename, <info>.c<ID>."""
    names = []
    if channel.get("Filename"):
        names.append(Path(channel["Filename"]).name)
    names.append(f"{info.path.name}.c{channel['ChannelID']}")
    out: list[Path] = []
    for name in dict.fromkeys(names):
        out += [p for p in given if p.name == name]
        out.append(info.path.with_name(name))
    return list(dict.fromkeys(out))

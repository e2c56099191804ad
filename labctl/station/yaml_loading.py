"""Reading a station file as data: UTF-8, bounded in size, no aliases, no duplicate keys.

A station file is plain data typed by a person.  :func:`load_station_yaml` turns its
bytes into Python values (mappings, lists, strings, numbers, booleans, None, dates)
and refuses, with a one-line :class:`labctl.errors.ConfigError`, anything that is not
that:

* more than :data:`MAX_DOCUMENT_BYTES` bytes (a station file is a few kB);
* bytes that are not UTF-8 text (the message names the offset of the first bad byte);
* YAML anchors/aliases (``&name`` / ``*name``): they allow "billion laughs" documents
  that expand to gigabytes; a station file never needs them;
* the same key twice in one mapping (YAML would silently keep the last): the message
  names the key path and both line numbers;
* more than one document, nesting deeper than :data:`MAX_DEPTH`, or more than
  :data:`MAX_NODES` values;
* any YAML syntax error, reported as one line with its line and column.
"""

from __future__ import annotations

from typing import Any

import yaml

from labctl.errors import ConfigError
from labctl.station.validation import key_path as join_key

MAX_DOCUMENT_BYTES = 1_000_000
"""Largest station file accepted (bytes)."""

MAX_DEPTH = 32
"""Deepest nesting of mappings/lists accepted."""

MAX_NODES = 100_000
"""Most YAML values (scalars, mappings, lists) accepted in one file."""

_KEY = "station file"


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing anchors and aliases as they are parsed."""

    def compose_node(self, parent: Any, index: Any) -> Any:  # noqa: D401 - PyYAML hook
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _Refused(f"uses the YAML alias *{event.anchor} (line {event.start_mark.line + 1}); "
                           "aliases and anchors are not allowed in a station file: write the values out")
        event = self.peek_event()
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            raise _Refused(f"uses the YAML anchor &{anchor} (line {event.start_mark.line + 1}); "
                           "aliases and anchors are not allowed in a station file: write the values out")
        if len(self._depth_stack) >= MAX_DEPTH:
            raise _Refused(f"nests values deeper than {MAX_DEPTH} levels (line {event.start_mark.line + 1})")
        self._depth_stack.append(None)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth_stack.pop()

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth_stack: list[None] = []


class _Refused(Exception):
    """Raised inside the loader; turned into a ConfigError with the file's name."""

    def __init__(self, allowed: str, key_path: str = _KEY, value: Any = None) -> None:
        super().__init__(allowed)
        self.key_path = key_path
        self.value = value


def _check_nodes(node: yaml.Node, path: str) -> int:
    """Refuse duplicate keys (naming the key path and both lines); return the number of nodes."""
    count = 1
    stack: list[tuple[yaml.Node, str]] = [(node, path)]
    while stack:
        current, where = stack.pop()
        if isinstance(current, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, value_node in current.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
                line = key_node.start_mark.line + 1
                key_path = join_key(where, key)
                if key is not None:
                    ident = (key_node.tag, key)
                    if ident in seen:
                        raise _Refused(f"appears twice in one mapping (lines {seen[ident]} and {line}); "
                                       "YAML would silently keep the last: keep one", key_path, key)
                    seen[ident] = line
                stack.append((key_node, key_path))
                stack.append((value_node, key_path))
                count += 2
        elif isinstance(current, yaml.SequenceNode):
            for i, item in enumerate(current.value):
                stack.append((item, f"{where}[{i}]"))
                count += 1
        if count > MAX_NODES:
            raise _Refused(f"holds more than {MAX_NODES} values")
    return count


def _one_line_yaml_error(exc: yaml.YAMLError) -> str:
    """A PyYAML error as one line: what is wrong and where."""
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"is not valid YAML: {problem}{where}"


def parse_station_text(data: bytes | str, source: str) -> Any:
    """Parse the bytes (or text) of a station file into plain Python data.

    Args:
        data: the file's content.
        source: the file's name, used in error messages.

    Raises:
        ConfigError: with key path ``station file`` (or the repeated key's path), the
            source, and what is allowed; see the module docstring for the rules.
    """
    size = len(data.encode("utf-8")) if isinstance(data, str) else len(data)
    if size > MAX_DOCUMENT_BYTES:
        raise ConfigError(_KEY, source, f"is more than {MAX_DOCUMENT_BYTES} bytes; a station file may be at most that")
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ConfigError(_KEY, source, f"is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                                            "save it as UTF-8") from None
    else:
        text = data
    if "\x00" in text:
        raise ConfigError(_KEY, source, "contains a NUL character; a station file is UTF-8 text")
    loader = None
    try:
        loader = _NoAliasLoader(text)
        node = loader.get_single_node()
        if node is None:
            return None
        _check_nodes(node, "")
        return loader.construct_document(node)
    except _Refused as exc:
        if exc.key_path == _KEY:
            raise ConfigError(_KEY, source, str(exc)) from None
        raise ConfigError(exc.key_path, exc.value, str(exc), source) from None
    except yaml.YAMLError as exc:
        raise ConfigError(_KEY, source, _one_line_yaml_error(exc)) from None
    except RecursionError:
        raise ConfigError(_KEY, source, f"nests values too deeply (at most {MAX_DEPTH} levels)") from None
    finally:
        if loader is not None:
            loader.dispose()

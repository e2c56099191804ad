"""Resolving the dotted class paths of a station file, safely: data never names code to run.

A station file names classes (``driver``, ``library``, ``trigger_output``) by dotted
path.  Before anything is imported or called, each path must:

1. be a dotted path of Python identifiers whose top-level package is allowed:
   ``labctl``, ``drivers``, ``sim_backends``, plus packages a lab registers *outside*
   the station file (see :func:`allowed_packages`);
2. resolve to a **class** defined in an allowed package (not a function such as
   ``os.system``, not a re-exported foreign class);
3. be of the kind its key expects:

   * ``driver``: a subclass of QCoDeS ``Instrument`` that implements the role's
     interface (:data:`labctl.station.station.ROLES`, e.g. ``TimeTagger`` for the tagger);
   * ``library``: the driver must declare ``vendor_library_functions`` (see
     :mod:`labctl.interfaces`) and the class must define every function of one of
     the declared flavours (e.g. all ``TDC_*`` functions of ``tdcbase``);
   * ``trigger_output``: a class implementing :class:`labctl.interfaces.TriggerOutput`.

Options given to a class (``options``, ``library_options``) are checked against its
signature before it is called: unknown names are refused, and a value must have the
type its annotation names (``float``, ``int``, ``bool``, ``str``, a list, a mapping;
a ``Path`` must name an existing file).  A class is only ever called with values that
passed these checks.
"""

from __future__ import annotations

import importlib
import inspect
import numbers
import os
import re
from pathlib import Path
from typing import Any, Mapping

from labctl.station.entry_point_cache import entry_points
from labctl.errors import ConfigError, short_text
from labctl.station.validation import key_path as join_key

BUILTIN_PACKAGES = ("labctl", "drivers", "sim_backends")
"""Top-level packages a station file may always name classes from."""

ENTRY_POINT_GROUP = "labctl.instrument_packages"
"""Entry-point group of installed packages that add allowed top-level packages.

A lab's driver package declares, in its ``pyproject.toml``::

    [project.entry-points."labctl.instrument_packages"]
    mylab = "mylab_drivers"

(the value is the top-level package name).  Installing a package is already trusting it.
"""

ENV_VAR = "LABCTL_INSTRUMENT_PACKAGES"
"""Environment variable: extra allowed top-level packages, comma-separated (e.g. for a
lab's drivers that are not installed as a package)."""

VENDOR_LIBRARY_ATTR = "vendor_library_functions"
"""Class attribute of a driver that takes a vendor ``library``: ``{flavour: function names}``."""

import_module = importlib.import_module
"""How a checked module path is imported (a name tests can watch)."""

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def allowed_packages() -> tuple[str, ...]:
    """Top-level packages whose classes a station file may name: built-in, entry points, environment."""
    extra: list[str] = []
    try:
        for entry in entry_points(ENTRY_POINT_GROUP):
            extra.append(entry.value.strip())
    except Exception:  # noqa: BLE001 - broken package metadata must not stop the built-in station
        pass
    extra += [p.strip() for p in os.environ.get(ENV_VAR, "").split(",")]
    return BUILTIN_PACKAGES + tuple(sorted({p for p in extra if _IDENTIFIER.match(p) and p not in BUILTIN_PACKAGES}))


def _top(module_name: str) -> str:
    return module_name.split(".")[0]


def resolve_class(dotted: Any, key_path: str, source: str, what: str) -> type:
    """Import the class named by ``dotted`` if it is allowed (steps 1 and 2 of the module docstring).

    Args:
        dotted: the station file's value.
        key_path: e.g. ``instruments.tagger.driver``.
        source: the station file's name.
        what: what the key expects, for the message (e.g. "a TimeTagger driver class").
    """
    allowed = allowed_packages()
    hint = f"{what} from the packages {', '.join(allowed)} (others: see {ENV_VAR})"
    if not isinstance(dotted, str):
        raise ConfigError(key_path, dotted, f"must be a dotted class path (a string): {hint}", source)
    parts = dotted.split(".")
    if len(parts) < 2 or not all(_IDENTIFIER.match(p) for p in parts):
        raise ConfigError(key_path, dotted, f"must be a dotted path like package.module.ClassName: {hint}", source)
    if parts[0] not in allowed:
        raise ConfigError(key_path, dotted, f"package {parts[0]!r} is not allowed: {hint}", source)
    if parts[-1].startswith("_"):
        raise ConfigError(key_path, dotted, f"names a private object: {hint}", source)
    module_name, attr = ".".join(parts[:-1]), parts[-1]
    try:
        module = import_module(module_name)
    except ImportError as exc:
        raise ConfigError(key_path, dotted, f"module {module_name!r} cannot be imported ({short_text(str(exc), 100)})", source) from exc
    if not hasattr(module, attr):
        raise ConfigError(key_path, dotted, f"module {module_name!r} has no {attr!r}", source)
    obj = getattr(module, attr)
    if not inspect.isclass(obj):
        raise ConfigError(key_path, dotted, f"is a {type(obj).__name__}, not a class: {hint}", source)
    if _top(getattr(obj, "__module__", "") or "") not in allowed:
        raise ConfigError(key_path, dotted, f"is defined in {obj.__module__!r}, outside the allowed packages: {hint}", source)
    return obj


def check_driver_class(cls: type, interface: type | None, key_path: str, dotted: str, source: str) -> None:
    """A driver must be a QCoDeS Instrument of the role's kind (checked on the class, before it is called).

    Members of the interface may be QCoDeS parameters, which exist only once the driver
    is built (e.g. ``QuTAG.sync_divider``), so the class must define at least one of the
    interface's own methods; the built instrument is then checked in full
    (:func:`check_instance`).
    """
    from qcodes.instrument import Instrument

    name = interface.__name__ if interface is not None else "an instrument"
    if not issubclass(cls, Instrument):
        raise ConfigError(key_path, dotted, f"is not a QCoDeS Instrument: must be a driver class implementing {name}", source)
    if interface is None:
        return
    own = [m for m in _protocol_members(interface) if m not in ("snapshot", "close")]
    if own and not any(callable(getattr(cls, m, None)) for m in own):
        raise ConfigError(key_path, dotted, f"is not a {name} driver: it has none of {', '.join(own)}", source)


def check_instance(instrument: Any, interface: type | None, key_path: str, dotted: str, source: str) -> None:
    """The built instrument must implement its role's interface in full; it is closed if not."""
    if interface is None:
        return
    missing = missing_members(instrument, interface)
    if not missing:
        return
    try:
        instrument.close()
    finally:
        raise ConfigError(key_path, dotted, f"does not implement {interface.__name__} (missing {', '.join(missing)})", source)


def missing_members(obj: Any, interface: type) -> list[str]:
    """Members of the Protocol ``interface`` that ``obj`` lacks (a method must be callable, a data member present)."""
    methods = set(_protocol_members(interface))
    return [m for m in protocol_members(interface)
            if not hasattr(obj, m) or (m in methods and not callable(getattr(obj, m)))]


def protocol_members(interface: type) -> list[str]:
    """Every public member of a Protocol and its Protocol bases: methods and annotated data members."""
    names: set[str] = set()
    for base in interface.__mro__:
        if base.__module__ in ("typing", "builtins"):
            continue
        names.update(n for n in (*vars(base), *getattr(base, "__annotations__", {})) if not n.startswith("_"))
    return sorted(names)


def check_library_class(lib_cls: type, driver_cls: type, key_path: str, dotted: str, source: str) -> None:
    """A vendor library must define every function of one flavour the driver declares it needs."""
    flavours: Mapping[str, Any] = getattr(driver_cls, VENDOR_LIBRARY_ATTR, None) or {}
    if not flavours:
        raise ConfigError(key_path, dotted, f"the driver {driver_cls.__name__} takes no vendor library (no library: key)", source)
    shortfall: list[str] = []
    for flavour, names in flavours.items():
        missing = [n for n in names if not callable(getattr(lib_cls, n, None))]
        if not missing:
            return
        shortfall.append(f"{flavour}: lacks {', '.join(missing[:3])}{'...' if len(missing) > 3 else ''}")
    raise ConfigError(key_path, dotted, f"is not a vendor library for {driver_cls.__name__} ({'; '.join(shortfall)})", source)


def check_class_implements(cls: type, interface: type, key_path: str, dotted: str, source: str) -> None:
    """``cls`` must define every method of ``interface`` (a runtime-checkable Protocol)."""
    if not issubclass(cls, interface):
        missing = [m for m in _protocol_members(interface) if not callable(getattr(cls, m, None))]
        raise ConfigError(key_path, dotted, f"does not implement {interface.__name__} (missing {', '.join(missing)})", source)


def _protocol_members(interface: type) -> list[str]:
    return sorted(n for n in dir(interface) if not n.startswith("_") and callable(getattr(interface, n, None)))


# --- options ---------------------------------------------------------------------------------
_SIMPLE_TYPES: dict[str, tuple[str, Any]] = {
    "float": ("a number", lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool)),
    "int": ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "bool": ("true or false", lambda v: isinstance(v, bool)),
    "str": ("a string", lambda v: isinstance(v, str)),
    "Path": ("the path of an existing file", lambda v: isinstance(v, str) and Path(v).expanduser().is_file()),
    "None": ("null", lambda v: v is None),
    "Sequence": ("a list", lambda v: isinstance(v, list)),
    "list": ("a list", lambda v: isinstance(v, list)),
    "tuple": ("a list", lambda v: isinstance(v, list)),
    "Iterable": ("a list", lambda v: isinstance(v, list)),
    "dict": ("a mapping", lambda v: isinstance(v, dict)),
    "Mapping": ("a mapping", lambda v: isinstance(v, dict)),
}
_ANY = ("Any", "object")


def _split_union(annotation: str) -> list[str]:
    """``"str | Path | None"`` -> ``["str", "Path", "None"]``; ``Optional[X]`` -> ``[X, "None"]`` (top level only)."""
    text = annotation.strip()
    if text.startswith("Optional[") and text.endswith("]"):
        return _split_union(text[len("Optional["):-1]) + ["None"]
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch == "["
        depth -= ch == "]"
        if ch == "|" and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return [p.split("[")[0].split(".")[-1].strip("'\"") for p in parts]


def check_option(value: Any, parameter: inspect.Parameter, owner: str, key_path: str, source: str) -> None:
    """A station-file value for one constructor parameter must have the annotated type."""
    annotation = parameter.annotation
    if annotation is inspect.Parameter.empty:
        return
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    members = _split_union(str(text))
    if any(m in _ANY for m in members):
        return
    known = [m for m in members if m in _SIMPLE_TYPES]
    if "Path" in known and isinstance(value, str) and not Path(value).expanduser().is_file():
        raise ConfigError(key_path, value, f"no such file: must be the path of an existing file ({owner}'s {parameter.name})", source)
    if any(_SIMPLE_TYPES[m][1](value) for m in known):
        return
    if not known:
        raise ConfigError(key_path, value, f"{owner}'s option {parameter.name} takes a {text}, which a station file cannot give", source)
    words = " or ".join(dict.fromkeys(_SIMPLE_TYPES[m][0] for m in known))
    raise ConfigError(key_path, value, f"must be {words} ({owner}'s {parameter.name}: {text})", source)


def check_options(cls: type, options: Mapping[str, Any], key_path: str, source: str,
                  supplied: tuple[str, ...] = ()) -> None:
    """Check the station's options for ``cls(**options)`` against its signature, without calling it.

    Args:
        supplied: parameters the station fills itself (``name``, ``library``, ``scene``...),
            which the file may not set.
    """
    params = _signature(cls, key_path, source)
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    settable = [n for n, p in params.items()
                if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD) and n not in supplied]
    for key, value in options.items():
        path = join_key(key_path, key)
        if not isinstance(key, str) or key in supplied or (key not in params and not takes_any):
            raise ConfigError(path, value, f"unknown option of {cls.__name__}; allowed: {', '.join(settable) or 'none'}", source)
        if key in params:
            check_option(value, params[key], cls.__name__, path, source)


def _signature(cls: type, key_path: str, source: str) -> Mapping[str, inspect.Parameter]:
    """The keyword parameters ``cls(...)`` takes.

    QCoDeS instruments hide theirs behind a metaclass ``__call__(*args, **kwargs)``: then
    the ``__init__`` chain is read instead, following ``**kwargs`` into base classes
    (``Keysight33500B`` -> ``VisaInstrument`` -> ... -> ``InstrumentBase``), so an option no
    class of the chain takes is refused before anything is called.
    """
    try:
        params = dict(inspect.signature(cls).parameters)
        if any(p.kind is not inspect.Parameter.VAR_POSITIONAL and p.kind is not inspect.Parameter.VAR_KEYWORD
               for p in params.values()):
            return params
        merged: dict[str, inspect.Parameter] = {}
        for base in cls.__mro__:
            if base is object or "__init__" not in base.__dict__:
                continue
            own = list(inspect.signature(base.__dict__["__init__"]).parameters.values())[1:]
            forwards = False
            for p in own:
                if p.kind is inspect.Parameter.VAR_KEYWORD:
                    forwards = True
                elif p.kind is not inspect.Parameter.VAR_POSITIONAL:
                    merged.setdefault(p.name, p)
            if not forwards:
                return merged
        return params if not merged else {**merged, "kwargs": inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD)}
    except (TypeError, ValueError) as exc:
        raise ConfigError(key_path, cls.__name__, f"its constructor cannot be inspected ({exc})", source) from None


def construct(cls: type, options: Mapping[str, Any], key_path: str, source: str, *,
              given: Mapping[str, Any] | None = None, scene: Any = None) -> Any:
    """Call ``cls(**given, **options)`` once ``options`` passed :func:`check_options`.

    Args:
        options: the station file's options for the class (checked here).
        given: arguments the station supplies itself (``name``, ``library``, ...).
        scene: the simulated scene, passed as ``scene`` if the class takes one.

    Raises:
        ConfigError: a bad option, or the class refused its options (one line, naming ``key_path``).
    """
    given = dict(given or {})
    params = _signature(cls, key_path, source)
    if scene is not None and "scene" in params:
        given["scene"] = scene
    check_options(cls, options, key_path, source, supplied=tuple(given) + ("scene",))
    try:
        return cls(**given, **options)
    except ConfigError as exc:
        path = exc.key_path if exc.key_path.startswith(key_path) else f"{key_path}.{exc.key_path}"
        raise ConfigError(path, exc.value, exc.allowed, source) from None
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, OSError) as exc:
        raise ConfigError(key_path, dict(options), f"rejected by {cls.__name__}: {_exception_line(exc)}", source) from exc


def takes_scene(cls: type) -> bool:
    """True if ``cls(...)`` takes a ``scene`` argument (a class simulated on the shared scene)."""
    try:
        return "scene" in _signature(cls, "", "")
    except ConfigError:
        return False


def _exception_line(exc: BaseException) -> str:
    """One short line saying why a constructor refused its options."""
    if isinstance(exc, OSError) and (exc.filename or exc.strerror):
        return f"{exc.strerror or type(exc).__name__}: {exc.filename}"
    text = str(exc)
    if "Traceback (most recent call last)" in text:  # a library re-raised with a whole traceback as its message
        text = text.replace("\\n", "\n")
        lines = [line.strip(" '\"") for line in text.splitlines() if line.strip(" '\"")]
        line = lines[-1] if lines else type(exc).__name__
    else:
        line = " ".join(text.split()) or type(exc).__name__
    return short_text(line, 160)

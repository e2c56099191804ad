"""Property-based fuzzing of station files and run-time settings (issue 9: "none crashes, hangs or prints a traceback").

Surfaces:

* station files as bytes: random YAML documents, random text, random bytes;
* mutations of the built-in ``default.yaml``: a key deleted, a value replaced by one of
  the wrong type / out of range / a random string (also as a dotted class path), an
  unknown key added;
* run-time settings: ``Station.configure(role, settings)`` with random roles and settings.

Every refusal must be a :class:`ConfigError` (run-time: or another ``LabctlError``)
whose message is one line, under 300 characters besides the file name, and starts with a
key path; validation never calls a constructor (no instrument is built from a refused
file) and never imports a module outside the allowed packages.

The default run keeps ~60 examples per surface; ``-m slow`` runs 1,000 or more.
"""

from __future__ import annotations

import copy
import math
import re
import time
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import labctl.station.station as station_module
import labctl.station.classes as station_classes
from labctl.errors import ConfigError, LabctlError
from labctl.station.station import Station, StationConfig
from labctl.station.yaml_loading import parse_station_text

SOURCE = "s.yaml"
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MESSAGE = re.compile(r"^(?P<key>\S.*?) = .+: .+$")
DEFAULT = copy.deepcopy(StationConfig.load().data)
ALLOWED_TOP = set(station_classes.BUILTIN_PACKAGES)
TOP_KEYS = ("station file", "<top level>", "station", "channels", "scene", "engine", "instruments")


# --- checks ------------------------------------------------------------------------------------------------
def assert_clear(error: BaseException, source: str = SOURCE) -> None:
    """One line, short, starting with the source and a key path."""
    message = str(error)
    assert "\n" not in message and "\r" not in message, message
    prefix = f"{source}: " if source else ""
    assert message.startswith(prefix), message
    body = message[len(prefix):]
    assert len(body) < 300, (len(body), message)
    assert MESSAGE.match(body), message


class Recorder:
    """Records constructor calls, and the modules a station file made labctl import, while a check runs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        self.imported: list[str] = []
        original = station_classes.construct
        import_module = station_classes.import_module

        def recording(cls: type, *args: Any, **kwargs: Any) -> Any:
            self.calls.append(cls.__name__)
            return original(cls, *args, **kwargs)

        def importing(name: str, package: str | None = None) -> Any:
            self.imported.append(name)
            return import_module(name, package)

        monkeypatch.setattr(station_classes, "construct", recording)
        monkeypatch.setattr(station_module, "construct", recording)
        monkeypatch.setattr(station_classes, "import_module", importing)

    def new_foreign_modules(self) -> set[str]:
        """Modules named by the file whose package is not allowed (their own imports are theirs)."""
        return {name for name in self.imported if name.split(".")[0] not in ALLOWED_TOP}


MAX_CHECK_S = 10.0
"""No validation may take this long (a hang or an exponential blow-up); typical: milliseconds."""


def load_checked(data: bytes | str | Any, recorder: Recorder) -> StationConfig | None:
    """Parse (if bytes/text) and validate; a refusal must be a clear ConfigError; nothing is built."""
    start = time.perf_counter()
    try:
        parsed = parse_station_text(data, SOURCE) if isinstance(data, (bytes, str)) else data
        config = StationConfig.from_dict(parsed, source=SOURCE)
    except ConfigError as exc:
        message = str(exc)
        source = SOURCE if message.startswith(f"{SOURCE}: ") else ""
        assert_clear(exc, source)
        top = str(exc.key_path).split(".")[0]
        event(f"refused at load: {top if top in TOP_KEYS else 'other key'}")
        config = None
    else:
        event("accepted at load")
    assert time.perf_counter() - start < MAX_CHECK_S
    assert recorder.calls == []
    assert recorder.new_foreign_modules() == set()
    return config


# --- strategies -----------------------------------------------------------------------------------------------
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
    st.sampled_from(["fast", "1e6", "os.system", "drivers.spad.SPAD", "sim_backends.qutag_sim.SimTDCBase",
                     "labctl.station.station.Station", "..", "", "\x00", "é", "-1", ".nan"]),
)
structures = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=5), st.dictionaries(st.text(max_size=12), children, max_size=5)),
    max_leaves=25,
)
dotted_paths = st.one_of(
    st.text(max_size=60),
    st.lists(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True), min_size=1, max_size=4).map(".".join),
    st.builds(lambda top, rest: f"{top}.{rest}", st.sampled_from(["labctl", "drivers", "sim_backends", "os", "subprocess", "builtins"]),
              st.sampled_from(["system", "station.Station", "qutag.QuTAG", "spad.SPAD", "scene.Scene", "errors.ConfigError",
                               "qutag_sim.SimTDCBase", "andor_sim.SimAndorSDK", "storage.writer.PhotonHDF5Writer",
                               "function_generator.LIMITS", "replay_tagger.ReplayTriggerOutput", "cli.main", "path.join"])),
)
bad_values = st.one_of(
    scalars, structures, dotted_paths,
    st.floats(min_value=-1e12, max_value=1e12), st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([1e300, -1e300, 8e7, 3e7, 0, -1, 2**63, 0.5, True, [], {}, [0.1, 0.2], [0.1, 2.0]]),
)


def key_paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path of the default station (mappings only)."""
    paths: list[tuple] = []
    if isinstance(node, dict):
        for key, value in node.items():
            paths.append(prefix + (key,))
            paths.extend(key_paths(value, prefix + (key,)))
    return paths


DEFAULT_PATHS = key_paths(DEFAULT)
DOTTED_KEYS = [p for p in DEFAULT_PATHS if p[-1] in ("driver", "library", "trigger_output")]


@st.composite
def mutated_defaults(draw: st.DrawFn) -> dict:
    """The default station with 1-3 mutations."""
    data = copy.deepcopy(DEFAULT)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["delete", "replace", "replace", "dotted", "add"]))
        path = draw(st.sampled_from(DOTTED_KEYS if kind == "dotted" else DEFAULT_PATHS))
        parent = data
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if not isinstance(parent, dict):
            continue
        if kind == "delete":
            parent.pop(path[-1], None)
        elif kind == "add":
            parent[draw(st.text(min_size=1, max_size=15))] = draw(bad_values)
        elif kind == "dotted":
            parent[path[-1]] = draw(dotted_paths)
        else:
            parent[path[-1]] = draw(bad_values)
    return data


SETTING_PATHS = [p for p in DEFAULT_PATHS if ("settings" in p or p[0] == "scene") and len(p) > 2]
near_valid = st.one_of(
    st.floats(min_value=-10, max_value=1e8, allow_nan=False), st.integers(min_value=-5, max_value=10**7),
    st.sampled_from([0, 1, 2, 4, 8, 1e6, 2e7, 3e7, 4e7, 8e7, -60, -100, 0.05, 0.5, True, False, "SQU", "PULS", "external",
                     "internal", "fvb", "image", "single", "run_till_abort", "software", "INF", None]),
)


@st.composite
def mutated_settings(draw: st.DrawFn) -> dict:
    """The default station with 1-2 settings (or scene values) replaced by near-valid values."""
    data = copy.deepcopy(DEFAULT)
    for _ in range(draw(st.integers(1, 2))):
        path = draw(st.sampled_from(SETTING_PATHS))
        parent = data
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if isinstance(parent, dict):  # (an earlier mutation may have replaced a section)
            parent[path[-1]] = draw(near_valid)
    return data


# --- station files ----------------------------------------------------------------------------------------------
def check_random_documents(data: Any, as_yaml: bool) -> None:
    text = yaml.safe_dump(data, allow_unicode=True) if as_yaml else data
    with pytest.MonkeyPatch.context() as patch:
        load_checked(text, Recorder(patch))


def check_mutated_default(data: dict, through_yaml: bool) -> None:
    try:
        document = yaml.safe_dump(data, allow_unicode=True).encode() if through_yaml else data
    except yaml.YAMLError:
        return
    with pytest.MonkeyPatch.context() as patch:
        load_checked(document, Recorder(patch))


documents = st.one_of(
    st.tuples(structures, st.just(True)),
    st.tuples(st.dictionaries(st.sampled_from(["station", "channels", "scene", "engine", "instruments", "x"]), structures,
                              max_size=5), st.just(True)),
    st.tuples(st.text(alphabet=st.sampled_from(list("abc:{}[]-&*!|>'\"#,.?% \n\t0123456789e+<")), max_size=200), st.just(False)),
    st.tuples(st.binary(max_size=200), st.just(False)),
)


@FAST
@given(case=documents)
def test_random_station_documents_are_refused_clearly(case):
    check_random_documents(*case)


@FAST
@given(data=mutated_defaults(), through_yaml=st.booleans())
def test_mutated_default_stations_are_refused_clearly_without_building_anything(data, through_yaml):
    check_mutated_default(data, through_yaml)


@pytest.mark.slow
@SLOW
@given(case=documents)
def test_random_station_documents_are_refused_clearly_many(case):
    check_random_documents(*case)


@pytest.mark.slow
@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated_defaults(), through_yaml=st.booleans())
def test_mutated_default_stations_are_refused_clearly_many(data, through_yaml):
    check_mutated_default(data, through_yaml)


# --- building what validation accepted ------------------------------------------------------------------------
def check_build(data: dict) -> None:
    """A mutated file that passed validation builds, or is refused before any setting is applied."""
    try:
        config = StationConfig.from_dict(data, source=SOURCE)
    except ConfigError as exc:
        assert_clear(exc)
        event("refused at load")
        return
    applied: list[str] = []
    original = station_module.apply_settings

    def recording(instrument: Any, values: Any, *args: Any) -> None:
        applied.append(instrument.name)
        original(instrument, values, *args)

    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(station_module, "apply_settings", recording)
            station = Station(config)
    except ConfigError as exc:
        assert_clear(exc)
        event("refused at build (validation of settings): nothing applied" if applied == [] else "refused when applied")
        if "refused when applied" not in str(exc):
            assert applied == []
        return
    except LabctlError as exc:  # the (simulated) device refused: one line too
        assert "\n" not in str(exc), str(exc)
        event(f"instrument error at build: {type(exc).__name__}")
        return
    event("built")
    station.close()


@pytest.mark.slow
@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(mutated_defaults(), mutated_settings()))
def test_mutated_stations_that_pass_validation_build_or_apply_nothing(data):
    check_build(data)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated_settings())
def test_mutated_settings_build_or_are_refused_before_anything_is_applied(data):
    check_build(data)


# --- run-time settings ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def built_station():
    from tests.conftest import sim_config

    station = Station(sim_config())
    yield station
    station.close()


def setting_names(station: Station) -> list[str]:
    names = []
    for role, instrument in station.instruments.items():
        names += [f"{role}:{n}" for n, p in instrument.parameters.items() if p.settable]
        for sub_name, sub in instrument.submodules.items():
            names += [f"{role}:{sub_name}.{n}" for n, p in getattr(sub, "parameters", {}).items() if p.settable]
    return names


SAFE_TO_APPLY = ("tagger", "spad_a", "spad_b", "laser", "function_generator", "spectrograph")


def check_configure(station: Station, role: Any, settings_: Any) -> None:
    laser_rate = station.laser.external_rate_hz()
    try:
        station.configure(role, settings_)
        event("applied")
    except ConfigError as exc:
        assert_clear(exc, "runtime")
        if "refused when applied" in str(exc):
            event("refused when applied")
        else:
            event("refused by validation")
            assert station.laser.external_rate_hz() == laser_rate  # nothing applied
    except LabctlError as exc:
        assert "\n" not in str(exc), str(exc)
        event(f"instrument error: {type(exc).__name__}")
    finally:
        station.safe_state()


@st.composite
def configure_calls(draw: st.DrawFn, names: list[str]) -> tuple[Any, Any]:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.one_of(st.text(max_size=10), scalars, st.lists(st.text(max_size=3), max_size=2))), draw(structures)
    picks = draw(st.lists(st.sampled_from(names), min_size=1, max_size=3))
    role = picks[0].split(":")[0]
    values: dict[Any, Any] = {}
    for pick in picks:
        r, name = pick.split(":")
        if r != role:
            continue
        value = draw(bad_values) if draw(st.integers(0, 3)) == 0 else draw(near_valid)
        if "." in name:
            sub, leaf = name.split(".")
            values.setdefault(sub, {}) if isinstance(values.get(sub, {}), dict) else None
            if isinstance(values.get(sub, {}), dict):
                values.setdefault(sub, {})[leaf] = value
        else:
            values[name] = value
    if draw(st.integers(0, 4)) == 0:
        values[draw(st.text(max_size=8))] = draw(scalars)
    return role, values


def _runtime_names(station: Station) -> list[str]:
    return [n for n in setting_names(station) if n.split(":")[0] in SAFE_TO_APPLY]


@FAST
@given(data=st.data())
def test_random_run_time_settings_are_refused_clearly(built_station, data):
    check_configure(built_station, *data.draw(configure_calls(_runtime_names(built_station))))


@pytest.mark.slow
@SLOW
@given(data=st.data())
def test_random_run_time_settings_are_refused_clearly_many(built_station, data):
    check_configure(built_station, *data.draw(configure_calls(_runtime_names(built_station))))


def test_the_fuzz_strategies_reach_valid_and_invalid_files():
    """The mutation strategy is not vacuous: the default passes, and a known mutation is refused."""
    assert StationConfig.from_dict(copy.deepcopy(DEFAULT), source=SOURCE).data["instruments"]
    data = copy.deepcopy(DEFAULT)
    data["engine"]["poll_interval_ms"] = math.nan
    with pytest.raises(ConfigError) as info:
        StationConfig.from_dict(data, source=SOURCE)
    assert_clear(info.value)
    assert len(DOTTED_KEYS) >= 8 and len(DEFAULT_PATHS) > 40

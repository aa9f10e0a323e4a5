"""Fuzzing the readers: settings and thresholds TOML, the legacy file, AT-style times, globs.

Each reader may refuse its input only with its documented error (ConfigError in one line, TimeSpecError,
GlobError or a one-line problem); any other exception is a bug. bench/fuzz_long.sh runs them 10,000 times.
"""

from __future__ import annotations

import functools
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from fuzzing import AT_SPEC, NASTY, NUMBERS, TEXT, fuzz, unexpected
from hypothesis import given
from hypothesis import strategies as st

from rrdalarm.config import settings as settings_module
from rrdalarm.config.legacy import parse_legacy
from rrdalarm.config.lines import read_config_text
from rrdalarm.config.settings import load_settings
from rrdalarm.config.thresholds import MAX_ID, parse_thresholds_file
from rrdalarm.model.errors import ConfigError
from rrdalarm.rules import quieting, timespec
from rrdalarm.sources.rrd_index import GlobError, compile_glob, glob_problem

# TOML values of every type: the right one for a field, or a wrong one.
SCALARS = st.one_of(TEXT, NUMBERS, st.booleans(), st.sampled_from(["now-1h", "now", "80M", "10min", "above"]))
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3), st.dictionaries(TEXT, SCALARS, max_size=2))


def toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def toml_value(value: Any) -> str:
    """One TOML value; texts escaped as JSON does (a lone surrogate makes the file invalid TOML: also a case)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return "nan" if value != value else ("inf" if value > 0 else "-inf") if abs(value) == float("inf") \
            else repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(value) if isinstance(value, str) else str(value)


def table(header: str, fields: dict[str, Any]) -> str:
    return header + "\n" + "".join(f"{toml_key(k)} = {toml_value(v)}\n" for k, v in fields.items())


def fields_of(names: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Some of `names` (and now and then an unknown one), each with a value of any type."""
    return st.dictionaries(st.one_of(st.sampled_from(names), TEXT), VALUES, max_size=len(names))


THRESHOLD_FIELDS = ["id", "name", "glob", "ds", "cf", "type", "value", "repetitions", "start", "end", "rearm",
                    "enabled", "source", "severity", "labels", "description", "runbook", "unit", "scale", "within",
                    "clear_value", "keep_firing_for", "no_data", "stale_after", "flap_changes", "flap_window",
                    "schema", "query", "metric", "ifid"]
VALID_THRESHOLD = st.fixed_dictionaries({
    "id": st.integers(0, MAX_ID + 1), "glob": st.sampled_from(["a.rrd", "**/x.rrd", "h/*/b.rrd"]) | TEXT,
    "type": st.sampled_from(["above", "below"]), "value": NUMBERS | st.sampled_from(["80M", "1.5G", "64Ki", "x"]),
    "start": AT_SPEC, "end": AT_SPEC,
})
ACTION = st.fixed_dictionaries({"type": st.sampled_from(["log", "email", "webhook", "script", "nope"]) | TEXT},
                               optional={"file": TEXT, "to": TEXT, "url": TEXT, "on": VALUES, "secret": TEXT})
MAINTENANCE = fields_of(["name", "schedule", "duration", "comment", "threshold", "series", "ds", "labels",
                         "severity"]) | st.fixed_dictionaries({
    "name": TEXT, "schedule": st.sampled_from(["0 3 * * *", "* * * * *", "61 * * * *", "0 0 31 2 *"]) | TEXT,
    "duration": st.sampled_from(["1h", "10min", 0, -1, "999999999d"]) | VALUES, "comment": TEXT,
}, optional={"series": NASTY | TEXT, "ds": TEXT, "threshold": NUMBERS, "labels": VALUES})


@st.composite
def thresholds_text(draw: st.DrawFn) -> str:
    parts = []
    for _ in range(draw(st.integers(0, 3))):
        fields = draw(VALID_THRESHOLD) | draw(fields_of(THRESHOLD_FIELDS))
        parts.append(table("[[threshold]]", fields))
        parts += [table("[[threshold.action]]", a) for a in draw(st.lists(ACTION, max_size=2))]
    parts += [table("[[maintenance]]", m) for m in draw(st.lists(MAINTENANCE, max_size=2))]
    return "".join(parts)


def one_line(exc: ConfigError) -> None:
    assert "\n" not in str(exc) and "\r" not in str(exc), repr(str(exc))


@fuzz("thresholds file")
@given(st.one_of(thresholds_text(), TEXT, st.text(max_size=300)))
def test_thresholds_file(text: str) -> None:
    try:
        parse_thresholds_file(text, "thresholds.toml", ("rrd", "ntopng"))
    except ConfigError as exc:
        one_line(exc)
    except Exception as exc:
        raise unexpected(exc, f"parse_thresholds_file({text!r})") from exc


SETTINGS_TABLES = {
    "smtp": ["host", "port", "security", "user", "password", "sender", "timeout"],
    "delivery": ["max_attempts", "retry_for", "backoff", "timeout", "max_per_check", "lease"],
    "service": ["listen", "check_interval", "deliver_interval", "min_start_interval", "api_token", "thresholds_dir",
                "request_timeout", "connection_limit", "session_idle", "page_refresh"],
    "ntopng": ["url", "user", "password", "token", "verify_tls", "timeout"],
}


@st.composite
def settings_text(draw: st.DrawFn) -> str:
    top = draw(fields_of(["rrd_root", "thresholds", "data_dir", "log_dir", "database_url", "workers", "lock_wait",
                          "scripts_dir", "rrdcached"]))
    text = "".join(f"{toml_key(k)} = {toml_value(v)}\n" for k, v in top.items())
    for name in draw(st.lists(st.sampled_from(sorted(SETTINGS_TABLES)), unique=True)):
        text += table(f"[{name}]", draw(fields_of(SETTINGS_TABLES[name])))
    return text


@pytest.fixture(scope="module")
def folder() -> Any:
    """A folder for the fuzzed files, which are read at once: a file written a moment ago is otherwise
    watched for 0.1 s in case its writer is not done (tests/integration/test_config_reading.py covers that)."""
    with tempfile.TemporaryDirectory() as d, pytest.MonkeyPatch.context() as mp:
        mp.setattr(settings_module, "read_config_text", functools.partial(read_config_text, quiet=0))
        yield Path(d)


@fuzz("settings file")
@given(st.one_of(settings_text(), TEXT))
def test_settings_file(folder: Path, text: str) -> None:
    path = folder / "rrdalarm.toml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        load_settings(path)
    except ConfigError as exc:
        one_line(exc)
    except Exception as exc:
        raise unexpected(exc, f"load_settings({text!r})") from exc


LEGACY_FIELD = st.one_of(TEXT, AT_SPEC, NUMBERS.map(str), st.sampled_from(["above", "below", "None", "savelog",
                                                                           "sendmail", "a.rrd", "*/x.rrd"]))


@fuzz("legacy file")
@given(st.one_of(
    st.lists(st.lists(LEGACY_FIELD, min_size=9, max_size=11).map("\t".join), max_size=4).map("\n".join),
    TEXT, st.text(max_size=300)))
def test_legacy_file(text: str) -> None:
    try:
        parse_legacy(text, "rrdAlarmConfig.txt", ("rrd", "ntopng"))
    except ConfigError as exc:
        one_line(exc)
    except Exception as exc:
        raise unexpected(exc, f"parse_legacy({text!r})") from exc


NOW = st.one_of(st.integers(0, 253402300799), st.integers(-(2**63), 2**63))


@fuzz("AT-style times")
@given(AT_SPEC, AT_SPEC, NOW)
def test_time_specs(start: str, end: str, now: int) -> None:
    for call in (lambda: timespec.validate(start), lambda: timespec.resolve_time(start, now),
                 lambda: timespec.resolve_window(start, end, now)):
        try:
            result = call()
        except timespec.TimeSpecError as exc:
            assert "\n" not in str(exc)
            continue
        except Exception as exc:
            raise unexpected(exc, f"timespec({start!r}, {end!r}, {now})") from exc
        if isinstance(result, tuple):
            assert result[0] < result[1]


GLOB_PARTS = st.sampled_from(["*", "?", "**", "[a-z]", "[z-a]", "[!a]", "[]]", "[!]", "[", "]", "[\\]", "\\",
                              ".", "..", "/", "a", "b.rrd", "*.rrd", "{a,b}", "(", ")", "+", "$", "^", "|"])
GLOBS = st.one_of(st.lists(st.one_of(GLOB_PARTS, NASTY), max_size=8).map("".join), TEXT)


@fuzz("globs")
@given(GLOBS, st.text(max_size=20))
def test_globs(glob: str, name: str) -> None:
    try:
        problem = glob_problem(glob)
        if problem is None:
            compile_glob(glob).name_re.match(name)
        assert problem is None or "\n" not in problem
        if quieting.series_glob_problem(glob) is None:
            quieting.matches(quieting.Matchers(series=glob), 1, name, "ds", {}, "warning")
    except GlobError:
        raise AssertionError(f"glob_problem passed {glob!r} that compile_glob refuses") from None
    except Exception as exc:
        raise unexpected(exc, f"glob {glob!r}") from exc

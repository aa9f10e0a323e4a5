"""Fuzzing the readers: settings and thresholds TOML, the legacy file, AT-style times, globs.

Each reader may refuse its input only with its documented error (ConfigError in one line, TimeSpecError,
GlobError or a one-line problem); any other exception is a bug. bench/fuzz_long.sh runs them 10,000 times.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Any

import pytest
from fuzzing import (
    AT_SPEC,
    LEGACY_FIELD,
    NASTY,
    TEXT,
    fields_of,
    fuzz,
    table,
    thresholds_text,
    toml_key,
    toml_value,
    unexpected,
)
from hypothesis import given
from hypothesis import strategies as st

from rrdalarm.config import settings as settings_module
from rrdalarm.config.legacy import parse_legacy
from rrdalarm.config.lines import read_config_text
from rrdalarm.config.settings import load_settings
from rrdalarm.config.thresholds import parse_thresholds_file
from rrdalarm.model.control import Matchers
from rrdalarm.model.errors import ConfigError
from rrdalarm.rules import quieting, timespec
from rrdalarm.sources.rrd_index import GlobError, compile_glob, glob_problem


def one_line(exc: ConfigError) -> None:
    text = str(exc)
    assert "\n" not in text and "\r" not in text, repr(text)


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
            problem = str(exc)
            assert "\n" not in problem
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
            quieting.matches(Matchers(series=glob), 1, name, "ds", {}, "warning")
    except GlobError:
        raise AssertionError(f"glob_problem passed {glob!r} that compile_glob refuses") from None
    except Exception as exc:
        raise unexpected(exc, f"glob {glob!r}") from exc

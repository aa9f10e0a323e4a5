"""Shared pieces of the fuzz tests: how many cases a run makes, the seed, a tally per target, strategies.

The normal run (scripts/test.sh) makes a few hundred cases per target; RRDALARM_FUZZ_EXAMPLES=10000 (what
bench/fuzz_long.sh sets) makes the long run. RRDALARM_FUZZ_SEED replays a run; a failing case names its
seed. With RRDALARM_FUZZ_REPORT=DIR each test process writes its tally (cases, failures, tracebacks,
exit-70s per target) to DIR, for bench/fuzz_long.sh to add up.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import HypothesisException

from rrdalarm.config.thresholds import MAX_ID

EXAMPLES = int(os.environ.get("RRDALARM_FUZZ_EXAMPLES") or 500)
SEED = int(os.environ.get("RRDALARM_FUZZ_SEED") or random.SystemRandom().randrange(2**32))
LONG = EXAMPLES >= 10_000

TALLY: defaultdict[str, Counter[str]] = defaultdict(Counter)

F = TypeVar("F", bound=Callable[..., Any])


class Internal(AssertionError):
    """An exception the product let through: a traceback a user would see (or an exit 70)."""


def _write_tally() -> None:
    folder = os.environ.get("RRDALARM_FUZZ_REPORT")
    if folder and TALLY:
        out = Path(folder) / f"tally-{os.getpid()}.json"
        out.write_text(json.dumps({k: dict(v) for k, v in TALLY.items()}), encoding="utf-8")


atexit.register(_write_tally)


def fuzz(target: str, share: float = 1.0) -> Callable[[F], F]:
    """Hypothesis settings for one target, its seed, and a tally of its cases.

    `share` scales the short run only (a target that starts a whole app per case makes fewer); the long
    run makes EXAMPLES cases for every target. Put it above @given.
    """
    examples = EXAMPLES if LONG else max(20, int(EXAMPLES * share))

    def decorate(test: F) -> F:
        handle: Any = test
        inner = handle.hypothesis.inner_test

        @functools.wraps(inner)
        def counted(*args: Any, **kwargs: Any) -> Any:
            TALLY[target]["cases"] += 1
            try:
                return inner(*args, **kwargs)
            except HypothesisException:
                TALLY[target]["cases"] -= 1  # Hypothesis's own control flow (a case it set aside)
                raise
            except Exception as exc:
                # Internal: the product let an exception out (or exited 70); another assertion is a
                # wrong answer; anything else escaped the test's own handling.
                kind = "failures" if type(exc) is AssertionError else "tracebacks"
                if isinstance(exc, Internal) and "exit 70" in str(exc):
                    kind = "exit70"
                TALLY[target][kind] += 1
                exc.add_note(f"fuzz target {target}: RRDALARM_FUZZ_SEED={SEED} replays this run")
                raise
            except BaseException:
                # Hypothesis stops a case that ran out of data with a BaseException: not a case run.
                TALLY[target]["cases"] -= 1
                raise

        handle.hypothesis.inner_test = counted
        configured = settings(
            max_examples=examples, deadline=None, derandomize=False, print_blob=True, database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                                   HealthCheck.function_scoped_fixture],
        )(test)
        return seed(SEED)(configured)

    return decorate


def unexpected(exc: BaseException, what: str) -> Internal:
    """An Internal error naming the exception a fuzzed input raised."""
    return Internal(f"{what}: {exc.__class__.__name__}: {exc}")


# Text a user can type or paste, and what they should not: NULs, lone surrogates, controls, huge numbers.
NASTY = st.sampled_from([
    "", " ", "\x00", "\ud800", "\udfff", "\n", "\r\n", "\u2028", "\t", "..", "../..", "/etc/passwd", "%2e%2e",
    "%252e%252e", "\\", "*", "**", "[", "[z-a]", "[!]", "{", "}", "'", '"', "`", "$(id)", ";", "|", "<script>",
    "&amp;", "9" * 40, "-" + "9" * 25, "1e999", "nan", "inf", "-inf", "0x10", "1_000", "é", "日本", "\U0001f600",
])
TEXT = st.one_of(NASTY, st.text(max_size=40), st.text(alphabet=st.characters(codec="utf-8"), max_size=20),
                 st.lists(NASTY, max_size=4).map("".join))
NUMBERS = st.one_of(st.integers(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(),
                    st.sampled_from([0, -1, 1, 2**31 - 1, 2**31, 2**63, 2**64, 10**30]))
AT_WORDS = st.sampled_from(["now", "end", "start", "e", "s", "n", "midnight", "noon", "today", "epoch", ""])
AT_UNITS = st.sampled_from(["s", "sec", "m", "min", "minutes", "h", "hours", "d", "days", "w", "weeks", "mon",
                            "months", "y", "years", "", "x", "ms", "M"])
AT_SPEC = st.one_of(
    st.builds(lambda w, parts: w + "".join(parts), AT_WORDS, st.lists(
        st.builds(lambda sign, n, u: f"{sign}{n}{u}", st.sampled_from(["+", "-", "", "--", " - "]),
                  st.one_of(st.integers(0, 10**6), st.integers(0, 10**25)), AT_UNITS), max_size=4)),
    st.integers(-(2**40), 2**70).map(str),
    TEXT,
)


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


LEGACY_FIELD = st.one_of(TEXT, AT_SPEC, NUMBERS.map(str), st.sampled_from(["above", "below", "None", "savelog",
                                                                           "sendmail", "a.rrd", "*/x.rrd"]))

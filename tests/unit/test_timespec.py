"""Tests for rrdalarm.rules.timespec, including cross-checks against librrd itself."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import rrdtool
from hypothesis import given, settings
from hypothesis import strategies as st

from rrdalarm.rules.timespec import TimeSpecError, resolve_window, validate

NOW = 1_700_000_000  # 2023-11-14T22:13:20Z
FAR = "4000000000"  # an end later than every start resolved below


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp())


def at(spec: str, now: int = NOW) -> int:
    """Resolve a single spec by using it as the start of a window."""
    return resolve_window(spec, FAR, now)[0]


# --------------------------------------------------------------------------
# Tables

RESOLVE_CASES: list[tuple[str, int, int]] = [
    # references
    ("now", NOW, NOW),
    ("n", NOW, NOW),
    ("NOW", NOW, NOW),
    ("  now\t", NOW, NOW),
    ("1700000000", 0, 1_700_000_000),
    ("315360001", NOW, 315_360_001),
    ("1700000000-1h", 0, 1_699_996_400),
    (" 1700000000 + 1 d ", 0, 1_700_086_400),
    # bare offsets are relative to now
    ("-3h", NOW, NOW - 3 * 3600),
    ("+1h", NOW, NOW + 3600),
    ("-300", NOW, NOW - 300),
    # every unit spelling
    ("now-3h", NOW, NOW - 3 * 3600),
    ("now-30min", NOW, NOW - 30 * 60),
    ("now-1s", NOW, NOW - 1),
    ("now-1sec", NOW, NOW - 1),
    ("now-1second", NOW, NOW - 1),
    ("now-2seconds", NOW, NOW - 2),
    ("now-1minute", NOW, NOW - 60),
    ("now-2minutes", NOW, NOW - 120),
    ("now-1hr", NOW, NOW - 3600),
    ("now-1hour", NOW, NOW - 3600),
    ("now-2hours", NOW, NOW - 7200),
    ("now-1d", NOW, NOW - 86400),
    ("now-1day", NOW, NOW - 86400),
    ("now-2days", NOW, NOW - 2 * 86400),
    ("now-1w", NOW, NOW - 7 * 86400),
    ("now-1wk", NOW, NOW - 7 * 86400),
    ("now-1week", NOW, NOW - 7 * 86400),
    ("now-2weeks", NOW, NOW - 14 * 86400),
    ("now-1mon", NOW, utc(2023, 10, 14, 22, 13, 20)),
    ("now-1month", NOW, utc(2023, 10, 14, 22, 13, 20)),
    ("now-2months", NOW, utc(2023, 9, 14, 22, 13, 20)),
    ("now-1y", NOW, utc(2022, 11, 14, 22, 13, 20)),
    ("now-1yr", NOW, utc(2022, 11, 14, 22, 13, 20)),
    ("now-1year", NOW, utc(2022, 11, 14, 22, 13, 20)),
    ("now-2years", NOW, utc(2021, 11, 14, 22, 13, 20)),
    ("now+1mon", NOW, utc(2023, 12, 14, 22, 13, 20)),
    ("now+2mon", NOW, utc(2024, 1, 14, 22, 13, 20)),
    ("now-13mon", NOW, utc(2022, 10, 14, 22, 13, 20)),
    ("now-11mon", NOW, utc(2022, 12, 14, 22, 13, 20)),
    # chains after one sign, and several signed groups
    ("now-1d12h", NOW, NOW - 36 * 3600),
    ("now-1h30min", NOW, NOW - 90 * 60),
    ("now-1h-30min", NOW, NOW - 90 * 60),
    ("now-2h+30min", NOW, NOW - 90 * 60),
    ("-7h+1h30m-15min", NOW, NOW - (5 * 3600 + 45 * 60)),  # rrdfetch(1) example
    ("now-1d 12", NOW, NOW - 86400 - 12),
    ("now-1h30", NOW, NOW - 3600 - 30),
    # the ambiguous 'm' (rrd_parsetime.c heuristics)
    ("now-6m", NOW, NOW - 6 * 60),
    ("now-10m", NOW, NOW - 10 * 60),
    ("now-5m", NOW, utc(2023, 6, 14, 22, 13, 20)),
    ("now-1m", NOW, utc(2023, 10, 14, 22, 13, 20)),
    ("now-0m", NOW, NOW),
    ("now-05m", NOW, utc(2023, 6, 14, 22, 13, 20)),
    ("now-1h30m", NOW, NOW - 90 * 60),
    ("now-1h1m", NOW, NOW - 61 * 60),
    ("now-5s2m", NOW, NOW - 125),
    ("now-1min1m", NOW, NOW - 120),
    ("now-1y6m", NOW, utc(2022, 5, 14, 22, 13, 20)),
    ("now-1w1m", NOW, utc(2023, 10, 7, 22, 13, 20)),
    ("now-1d10m", NOW, utc(2023, 1, 13, 22, 13, 20)),
    ("now-1m1m", NOW, utc(2023, 9, 14, 22, 13, 20)),
    ("now-10m1m", NOW, NOW - 11 * 60),
    ("now-1y+6m", NOW, utc(2022, 11, 14, 22, 19, 20)),  # a sign resets context
    ("now-1d+5m", NOW, utc(2024, 4, 13, 22, 13, 20)),
    # calendar overflow like mktime(): no clamping to the month's last day
    ("now-1mon", utc(2023, 3, 31), utc(2023, 3, 3)),
    ("now-1mon", utc(2024, 3, 31), utc(2024, 3, 2)),
    ("now-1mon", utc(2023, 5, 31, 8), utc(2023, 5, 1, 8)),  # rrdfetch(1) NOTE3
    ("now+1mon", utc(2024, 1, 31), utc(2024, 3, 2)),
    ("now-1y", utc(2024, 2, 29, 6), utc(2023, 3, 1, 6)),
    ("now+4y", utc(2024, 2, 29), utc(2028, 2, 29)),
    ("now-1mon-5d", utc(2023, 3, 31), utc(2023, 2, 26)),
    ("now-1mon+1d", utc(2023, 3, 31), utc(2023, 3, 4)),
    # calendar offsets first, then seconds, whatever the written order
    ("now-1h-1mon", utc(2024, 3, 1, 0, 30), utc(2024, 1, 31, 23, 30)),
    ("now-1mon-1h", utc(2024, 3, 1, 0, 30), utc(2024, 1, 31, 23, 30)),
    ("now-24h-1mon", utc(2023, 3, 1, 12), utc(2023, 1, 31, 12)),
    # case, whitespace and rrdtool's other separators
    ("NOW-3H", NOW, NOW - 3 * 3600),
    ("Now - 1 Day 12 Hours", NOW, NOW - 36 * 3600),
    ("now_-_1h", NOW, NOW - 3600),
    ("now,-1d,12h", NOW, NOW - 36 * 3600),
    ("\tnow\n-\n3h ", NOW, NOW - 3 * 3600),
    # days and weeks across the epoch and before it
    ("now-1d", 0, -86400),
    ("now+1mon", -1, utc(1970, 1, 31, 23, 59, 59)),
]


@pytest.mark.parametrize(("spec", "now", "expected"), RESOLVE_CASES)
def test_resolve(spec: str, now: int, expected: int) -> None:
    assert at(spec, now) == expected
    validate(spec)


WINDOW_CASES: list[tuple[str, str, int, tuple[int, int]]] = [
    ("now-1h", "now", NOW, (NOW - 3600, NOW)),
    ("-1d", "-1h", NOW, (NOW - 86400, NOW - 3600)),
    ("end-3h", "1700000000", 0, (1_699_989_200, 1_700_000_000)),
    ("e-1d", "now", NOW, (NOW - 86400, NOW)),
    ("end-1h", "now-1h", NOW, (NOW - 7200, NOW - 3600)),
    ("1700000000", "start+1d", 0, (1_700_000_000, 1_700_086_400)),
    ("now-1h", "s+30min", NOW, (NOW - 3600, NOW - 1800)),
    ("end-1mon", str(utc(2023, 3, 31)), 0, (utc(2023, 3, 3), utc(2023, 3, 31))),
    (str(utc(2023, 1, 31)), "start+1mon", 0, (utc(2023, 1, 31), utc(2023, 3, 3))),
    ("end-1y", "now", utc(2024, 2, 29), (utc(2023, 3, 1), utc(2024, 2, 29))),
]


@pytest.mark.parametrize(("start", "end", "now", "expected"), WINDOW_CASES)
def test_resolve_window(start: str, end: str, now: int, expected: tuple[int, int]) -> None:
    assert resolve_window(start, end, now) == expected


INVALID_SPECS: list[tuple[str, str]] = [
    ("", "empty time specification"),
    ("  _, ", "empty time specification"),
    ("yesterday", "'yesterday' is not supported"),
    ("noon", "'noon' is not supported"),
    ("midnight", "'midnight' is not supported"),
    ("teatime", "'teatime' is not supported"),
    ("today", "'today' is not supported"),
    ("tomorrow-1h", "'tomorrow' is not supported"),
    ("monday", "'monday' is not supported"),
    ("Jan 5", "'jan' is not supported"),
    ("epoch+1700000000s", "'epoch' is not supported"),
    ("20:00", "times of day and dates"),
    ("12/31/99", "times of day and dates"),
    ("31.12.1999", "times of day and dates"),
    ("now-1.5h", "times of day and dates"),
    ("20231114", "20231114 is not read as epoch seconds"),
    ("0", "0 is not read as epoch seconds"),
    ("315360000", "315360000 is not read as epoch seconds"),
    ("12", "12 is not read as epoch seconds"),
    ("teatime-1h", "not supported"),
    ("foo", "unknown word 'foo'"),
    ("h-1h", "unknown word 'h'"),
    ("now-", "expected a number after '-'"),
    ("+", "expected a number after '+'"),
    ("now-h", "expected a number after '-'"),
    ("now--1h", "expected a number after '-'"),
    ("now-1h+", "expected a number after '+'"),
    ("now-5mins", "unknown time unit 'mins'"),
    ("now-2hrs", "unknown time unit 'hrs'"),
    ("now-5x", "unknown time unit 'x'"),
    ("now-5+3h", "number 5 needs a time unit"),
    ("now 5h", "'now' may only be followed by a +/- offset, not '5'"),
    ("now5h", "'now' may only be followed by a +/- offset"),
    ("nowh", "unknown word 'nowh'"),
    ("now now", "'now' may only be followed by a +/- offset, not 'now'"),
    ("1700000000 5h", "'1700000000' may only be followed by a +/- offset"),
    ("start", "'start' must be followed by a +/- offset"),
    ("end", "'end' must be followed by a +/- offset"),
    ("s", "'s' must be followed by a +/- offset"),
    ("e 1h", "'e' may only be followed by a +/- offset"),
    ("now-1h h", "unexpected 'h' after the offset"),
    ("now-1h now", "unexpected 'now' after the offset"),
    ("now-1h;", "unexpected character ';'"),
    ("now\u22121h", "unexpected character '\u2212'"),  # a Unicode minus sign
    ("now-\u0661h", "unexpected character '\u0661'"),  # an Arabic-Indic digit
    ("now-1\u0127", "unexpected character '\u0127'"),  # a non-ASCII letter
    ("now-1" + "0" * 30 + "s", "is too large"),
]


@pytest.mark.parametrize(("spec", "fragment"), INVALID_SPECS)
def test_invalid_spec(spec: str, fragment: str) -> None:
    with pytest.raises(TimeSpecError) as excinfo:
        validate(spec)
    message = str(excinfo.value)
    assert message.startswith(f"time spec {spec!r}: ")
    assert fragment in message
    assert "\n" not in message
    # resolve_window reports the same problem, whichever side the spec is on
    with pytest.raises(TimeSpecError, match="time spec"):
        resolve_window(spec, "now", NOW)
    with pytest.raises(TimeSpecError, match="time spec"):
        resolve_window("-1h", spec, NOW)


WINDOW_ERRORS: list[tuple[str, str, str]] = [
    ("start-1h", "now", "start 'start-1h' cannot be specified relative to itself"),
    ("now-1h", "end+1h", "end 'end+1h' cannot be specified relative to itself"),
    ("e-1h", "e+1h", "end 'e+1h' cannot be specified relative to itself"),
    (
        "end-1h",
        "start+1h",
        "start 'end-1h' and end 'start+1h' cannot be specified relative to each other",
    ),
    ("now", "now", f"start 'now' ({NOW}) is not before end 'now' ({NOW})"),
    ("now", "now-1h", f"start 'now' ({NOW}) is not before end 'now-1h' ({NOW - 3600})"),
    ("end+1h", "now", f"start 'end+1h' ({NOW + 3600}) is not before end 'now' ({NOW})"),
    ("now-1h", "start-1s", "is not before end 'start-1s'"),
    ("1700000000", "start+0s", "is not before end"),
    ("now-10000y", "now", "time spec 'now-10000y': resolves to a date out of range"),
    ("end-1d", "now+10000y", "time spec 'now+10000y': resolves to a date out of range"),
    ("now-99999999999w", "now", "resolves to a date out of range"),
]


@pytest.mark.parametrize(("start", "end", "fragment"), WINDOW_ERRORS)
def test_window_error(start: str, end: str, fragment: str) -> None:
    with pytest.raises(TimeSpecError) as excinfo:
        resolve_window(start, end, NOW)
    assert fragment in str(excinfo.value)
    assert "\n" not in str(excinfo.value)


def test_error_is_a_value_error() -> None:
    assert issubclass(TimeSpecError, ValueError)


def test_validate_leaves_range_and_order_to_resolution() -> None:
    # Neither needs "now" nor the other end of the window, so neither is
    # known when a single spec is validated.
    validate("now-10000y")
    validate("start+1h")


# --------------------------------------------------------------------------
# Cross-checks against librrd: rrdtool.fetch resolves -s/-e with
# rrd_parsetime() and rrd_proc_start_end() and, with a 1-second step, returns
# the start unaligned. The RRA's size does not matter: fetch returns the
# requested window (NaN where it has no rows) however few rows it keeps.


@pytest.fixture(scope="module")
def utc_tz() -> Iterator[None]:
    """Run librrd's calendar arithmetic (localtime/mktime) in UTC, as ours."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if saved is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = saved
    time.tzset()


@pytest.fixture(scope="module")
def probe_rrd(tmp_path_factory: pytest.TempPathFactory, utc_tz: None) -> str:
    path = tmp_path_factory.mktemp("timespec") / "probe.rrd"
    rrdtool.create(
        str(path),
        "--step",
        "1",
        "--start",
        "946684800",
        "DS:x:GAUGE:2:U:U",
        "RRA:AVERAGE:0.5:1:10",
    )
    return str(path)


def rrdtool_window(rrd: str, start: str, end: str) -> tuple[int, int]:
    (first, last, step), _names, _rows = rrdtool.fetch(rrd, "AVERAGE", "-s", start, "-e", end)
    assert step == 1
    # rrd_fetch_fn() moves the end one step on (end += step - end % step).
    return first, last - 1


ENDS = [
    1_700_000_000,
    utc(2023, 3, 31, 12, 34, 56),
    utc(2024, 2, 29, 6),
    utc(2024, 3, 31),
    utc(2024, 3, 1, 0, 30),
    utc(2024, 1, 1, 0, 0, 30),
    utc(2023, 12, 31, 23, 59, 59),
]

# Every fetch returns one row per second of the window, so long windows are
# shortened by days added back, leaving the month/year arithmetic in place.
END_RELATIVE_STARTS = [
    "end-3h",
    "end-1d12h",
    "end-2w",
    "end-6m",
    "end-1h30m",
    "e-90",
    "end-1w3d",
    "END - 2 Days",
    "end-1mon+27d",
    "end-1m+27d",
    "end-1h-1mon+27d",
    "end-5m+149d",
    "end-1y+364d",
    "end-2y+729d",
    "end-1y6m+545d",
    "end-1d-5m+149d",
    "end-1w1m+28d",
]


@pytest.mark.parametrize("end", ENDS)
@pytest.mark.parametrize("start", END_RELATIVE_STARTS)
def test_start_relative_to_end_matches_rrdtool(probe_rrd: str, start: str, end: int) -> None:
    assert resolve_window(start, str(end), now=0) == rrdtool_window(probe_rrd, start, str(end))


START_RELATIVE_ENDS = [
    "start+3h",
    "s+1d12h",
    "start+2w",
    "start+10m",
    "start+30",
    "start+1mon-27d",
    "start+1m-27d",
    "start+5m-149d",
    "start+1y-364d",
    "start+1y6m-545d",
    "start+1mon+1h-27d",
]


@pytest.mark.parametrize("start", [e - 40 * 86400 for e in ENDS])
@pytest.mark.parametrize("end", START_RELATIVE_ENDS)
def test_end_relative_to_start_matches_rrdtool(probe_rrd: str, start: int, end: str) -> None:
    assert resolve_window(str(start), end, now=0) == rrdtool_window(probe_rrd, str(start), end)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("end-1mon", str(utc(2023, 3, 31, 12, 34, 56))),
        ("end-1mon", str(utc(2024, 3, 31))),
        (str(utc(2023, 1, 31, 8)), "start+1mon"),
        (str(utc(2024, 1, 31, 8)), "start+1m"),
    ],
)
def test_whole_month_matches_rrdtool(probe_rrd: str, start: str, end: str) -> None:
    assert resolve_window(start, end, now=0) == rrdtool_window(probe_rrd, start, end)


UNIT_SPELLINGS: dict[str, list[str]] = {
    "s": ["s", "sec", "second", "seconds"],
    "min": ["min", "minute", "minutes"],
    "h": ["h", "hr", "hour", "hours"],
    "d": ["d", "day", "days"],
    "w": ["w", "wk", "week", "weeks"],
    "mon": ["mon", "month", "months"],
    "y": ["y", "yr", "year", "years"],
    "m": ["m"],
}
# Bounds keep six chained offsets from a base after 2011 within librrd's
# "after 1980" limit.
UNIT_MAXIMUM = {"s": 100_000, "min": 5000, "h": 500, "d": 400, "w": 50, "mon": 30, "y": 5, "m": 30}
SEPARATORS = st.sampled_from(["", " ", "_", ",", "  "])


@st.composite
def offset_specs(draw: st.DrawFn, units: tuple[str, ...] = tuple(UNIT_SPELLINGS)) -> str:
    """Signed groups of number+unit pairs, spelt in any accepted way."""
    parts: list[str] = []
    for _group in range(draw(st.integers(1, 2))):
        parts += [draw(st.sampled_from("+-")), draw(SEPARATORS)]
        for _pair in range(draw(st.integers(1, 3))):
            unit = draw(st.sampled_from(units))
            spelling = draw(st.sampled_from(UNIT_SPELLINGS[unit]))
            if draw(st.booleans()):
                spelling = spelling.upper()
            number = draw(st.integers(0, UNIT_MAXIMUM[unit]))
            parts += [str(number), draw(SEPARATORS), spelling, draw(SEPARATORS)]
    return "".join(parts)


@settings(max_examples=300, deadline=None)
@given(base=st.integers(1_300_000_000, 3_000_000_000), offsets=offset_specs())
def test_random_offsets_match_rrdtool(probe_rrd: str, base: int, offsets: str) -> None:
    # An epoch reference with offsets goes through the same tm/mktime path as
    # end-relative starts, but keeps the fetched window at one second.
    spec = f"{base}{offsets}"
    expected = rrdtool_window(probe_rrd, spec, "s+1s")
    assert resolve_window(spec, "s+1s", now=0) == expected
    assert resolve_window(f"now{offsets}", "start+1s", now=base) == expected


@pytest.mark.parametrize(
    ("spec", "rrdtool_reading"),
    [
        ("end-5mins", 1_700_000_000 - 5),
        ("end-2hrs", 1_700_000_000 - 2),
        ("end-5+3h", 1_700_000_000 - 5 - 3 * 3600),
    ],
)
def test_rrdtool_misreads_what_we_reject(probe_rrd: str, spec: str, rrdtool_reading: int) -> None:
    assert rrdtool_window(probe_rrd, spec, "1700000000")[0] == rrdtool_reading
    with pytest.raises(TimeSpecError):
        validate(spec)


@pytest.mark.parametrize("spec", ["now-", "start", "end", "now 5h", "1700000000 5h", "now-1h h", "12345", "+"])
def test_rrdtool_rejects_too(probe_rrd: str, spec: str) -> None:
    with pytest.raises(rrdtool.OperationalError):
        rrdtool.fetch(probe_rrd, "AVERAGE", "-s", spec, "-e", "1700000000")
    with pytest.raises(TimeSpecError):
        validate(spec)


# --------------------------------------------------------------------------
# Properties


SECONDS_PER = {"s": 1, "min": 60, "h": 3600, "d": 86400, "w": 604800}
FIXED_SPELLINGS = {unit: UNIT_SPELLINGS[unit] for unit in SECONDS_PER}
fixed_pairs = st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(list(SECONDS_PER))), min_size=1, max_size=6)


@given(now=st.integers(-(10**10), 10**10), pairs=fixed_pairs, data=st.data())
def test_fixed_units_subtract_their_sum(now: int, pairs: list[tuple[int, str]], data: st.DataObject) -> None:
    chain = "".join(
        f"{number}{data.draw(SEPARATORS)}{data.draw(st.sampled_from(FIXED_SPELLINGS[unit]))}" for number, unit in pairs
    )
    total = sum(number * SECONDS_PER[unit] for number, unit in pairs)
    assert resolve_window(f"now-{chain}", "now+1s", now)[0] == now - total
    assert resolve_window("end-1s", f"now+{chain}", now)[1] == now + total


@given(spec=st.text(max_size=40))
def test_anything_either_validates_or_raises_one_line(spec: str) -> None:
    try:
        validate(spec)
    except TimeSpecError as exc:
        message = str(exc)
        assert message.startswith(f"time spec {spec!r}: ")
        assert "\n" not in message


@given(spec=offset_specs())
def test_spelling_does_not_matter(spec: str) -> None:
    canonical = spec.lower().replace("_", "").replace(",", "").replace(" ", "")
    assert at(f"now{spec}") == at(f"now{canonical}")

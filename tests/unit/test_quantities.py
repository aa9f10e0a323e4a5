"""SI quantities and durations: examples first, then hypothesis properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rrdalarm.common.quantities import (
    format_duration,
    format_limit,
    format_quantity,
    parse_duration,
    parse_quantity,
)

DECIMAL = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
           "m": 1e-3, "u": 1e-6, "µ": 1e-6, "n": 1e-9}
BINARY = {"Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50, "Ei": 2.0**60}
SUFFIXES = {**DECIMAL, **BINARY}
PREFIX_POWER = {"": 0, "k": 1, "M": 2, "G": 3, "T": 4, "P": 5, "E": 6, "m": -1, "µ": -2, "n": -3}
UNITS = ["B/s", "bit/s", "B", "Hz", "pps", "W"]
SECONDS = {"s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1, "m": 60, "min": 60, "mins": 60,
           "minute": 60, "minutes": 60, "h": 3600, "hour": 3600, "hours": 3600, "d": 86400,
           "day": 86400, "days": 86400, "w": 604800, "week": 604800, "weeks": 604800}


@pytest.mark.parametrize(("raw", "expected"), [
    ("80M", 80e6), ("1.5G", 1.5e9), ("10k", 1e4), ("10K", 1e4), ("64Ki", 65536.0), ("1Mi", 2.0**20),
    ("-2.5m", -2.5e-3), ("3u", 3e-6), ("3µ", 3e-6), ("7n", 7e-9), (" 80 M ", 80e6), ("+5", 5.0),
    ("5.", 5.0), (".5k", 500.0), ("1e3k", 1e6), ("2E", 2e18), ("1E3", 1000.0), (42, 42.0), (0.25, 0.25),
    ("0", 0.0),
])
def test_parse_quantity_examples(raw: object, expected: float) -> None:
    assert parse_quantity(raw) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("raw", [
    "", "M", "80MB", "80 Kib", "1.2.3", "inf", "nan", "1e999", "10x", "--1", "1_000", True, None, [1],
    float("inf"), float("nan"), 10**400,
])
def test_parse_quantity_rejects_with_one_line(raw: object) -> None:
    with pytest.raises(ValueError, match="number") as exc:
        parse_quantity(raw)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize(("value", "unit", "expected"), [
    (31_600_000, "B/s", "31.6 MB/s"), (0, "B/s", "0 B/s"), (-0.0, "B/s", "0 B/s"), (999.96e3, "B", "1 MB"),
    (999.4, "B", "999 B"), (1000, "bit/s", "1 kbit/s"), (0.002, "W", "2 mW"), (75, "%", "75 %"),
    (0.5, "", "0.5"), (1500, "", "1.5 k"), (None, "B", "-"), (float("nan"), "B", "-"),
    (-2.5e9, "B/s", "-2.5 GB/s"), (123_456, "", "123 k"), (999.9, "", "1 k"),
])
def test_format_quantity_examples(value: float | None, unit: str, expected: str) -> None:
    assert format_quantity(value, unit) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    (0, 0), (90, 90), (90.0, 90), ("90", 90), ("90s", 90), ("10min", 600), ("10 min", 600), ("1h30m", 5400),
    ("2d", 172800), ("1w", 604800), ("10MIN", 600), ("1h 1h", 7200),
])
def test_parse_duration_examples(raw: object, expected: int) -> None:
    assert parse_duration(raw) == expected


@pytest.mark.parametrize("raw", ["", "-5", "1.5h", "10ms", "1month", "h", "10 lightyears", "²", "١٠", -1, 1.5,
                                 True, None, float("inf")])
def test_parse_duration_rejects_with_one_line(raw: object) -> None:
    with pytest.raises(ValueError, match=r"seconds|duration") as exc:
        parse_duration(raw)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize(("seconds", "expected"), [
    (0, "0 s"), (45, "45 s"), (60, "1 min"), (5400, "1 h 30 min"), (86400, "1 d"), (90061, "1 d 1 h"),
    (3601, "1 h 1 s"),
])
def test_format_duration_examples(seconds: int, expected: str) -> None:
    assert format_duration(seconds) == expected


# --- properties -------------------------------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300)
units = st.sampled_from(UNITS)
# Where a prefix exists for the value: from 1 n to just under 1000 E.
in_prefix_range = st.floats(min_value=1e-9, max_value=9.99e20).flatmap(
    lambda v: st.sampled_from([v, -v]))


def significant_digits(number: str) -> int:
    mantissa = number.lstrip("-").split("e")[0].replace(".", "").lstrip("0")
    return len(mantissa)


@given(finite, units)
def test_format_quantity_output_parses_back_within_rounding(value: float, unit: str) -> None:
    """What format_quantity shows, read back with parse_quantity, is the value to 3 significant digits."""
    shown = format_quantity(value, unit)
    number, _, rest = shown.partition(" ")
    prefix = rest[: len(rest) - len(unit)]
    assert rest.endswith(unit)
    back = parse_quantity(number + ("u" if prefix == "µ" else prefix))
    assert back == pytest.approx(value, rel=5e-3, abs=1e-300)


@given(finite, st.sampled_from(["", *UNITS, "%"]))
def test_format_quantity_at_most_three_significant_digits(value: float, unit: str) -> None:
    number = format_quantity(value, unit).split(" ")[0]
    assert significant_digits(number) <= 3, number


@given(in_prefix_range, units)
def test_format_quantity_mantissa_in_range_and_prefix_known(value: float, unit: str) -> None:
    number, _, rest = format_quantity(value, unit).partition(" ")
    prefix = rest[: len(rest) - len(unit)]
    assert prefix in PREFIX_POWER
    assert "e" not in number
    assert 1 <= abs(float(number)) < 1000
    # The prefix is the one that puts the value itself in [1, 1000), unless rounding carried it up.
    exact = abs(value) / 1000.0 ** PREFIX_POWER[prefix]
    assert 0.9995 <= exact < 1000


@given(st.integers(min_value=-10**6, max_value=10**6), st.sampled_from(sorted(SUFFIXES)))
def test_parse_quantity_integer_with_suffix_round_trips(number: int, suffix: str) -> None:
    assert parse_quantity(f"{number}{suffix}") == pytest.approx(number * SUFFIXES[suffix], rel=1e-12)


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12),
       st.sampled_from(sorted(SUFFIXES)), st.sampled_from(["", " "]))
def test_parse_quantity_repr_with_suffix_round_trips(number: float, suffix: str, space: str) -> None:
    assert parse_quantity(f"{number!r}{space}{suffix}") == pytest.approx(number * SUFFIXES[suffix], rel=1e-12)


@given(finite)
def test_parse_quantity_of_number_text_is_float(value: float) -> None:
    for text in (repr(value), f"{value:g}", f"{value:e}", f"{value:.3f}"):
        assert parse_quantity(text) == float(text)


@given(st.text(alphabet="0123456789.eE+-kKMGTPEmunµi ", max_size=12))
def test_parse_quantity_of_format_like_text_is_a_number_or_value_error(text: str) -> None:
    """Text that looks almost like a quantity gives a finite number or a ValueError, nothing else."""
    error = ""
    try:
        value = parse_quantity(text)
    except ValueError as exc:
        error = str(exc)
    if error:
        assert "number" in error
        assert "\n" not in error
    else:
        assert math.isfinite(value)


@given(st.lists(st.tuples(st.integers(min_value=0, max_value=10**5), st.sampled_from(sorted(SECONDS)),
                          st.sampled_from(["", " "])), min_size=1, max_size=5))
def test_parse_duration_sums_its_parts(parts: list[tuple[int, str, str]]) -> None:
    text = "".join(f"{n}{space}{unit}{space}" for n, unit, space in parts)
    assert parse_duration(text) == sum(n * SECONDS[unit] for n, unit, _ in parts)
    assert parse_duration(text.upper()) == parse_duration(text)


@given(st.integers(min_value=0, max_value=10**9))
def test_parse_duration_of_seconds_is_itself(seconds: int) -> None:
    assert parse_duration(seconds) == seconds
    assert parse_duration(str(seconds)) == seconds
    assert parse_duration(f"{seconds}s") == seconds


@given(st.integers(min_value=0, max_value=10**9))
def test_format_duration_reads_back_when_it_has_at_most_two_parts(seconds: int) -> None:
    """format_duration keeps the two largest parts: read back, it is exact when there are no more."""
    shown = format_duration(seconds)
    back = parse_duration(shown)
    assert back <= seconds
    parts = [seconds // 86400, seconds % 86400 // 3600, seconds % 3600 // 60, seconds % 60]
    if sum(1 for p in parts if p) <= 2:
        assert back == seconds


@pytest.mark.parametrize(("value", "unit", "expected"), [
    (80e6, "B/s", "80 MB/s"), (1_234_567.0, "", "1234567"), (1_234_567.0, "B", "1234567 B"), (0.5, "", "0.5"),
    (75.0, "%", "75 %"), (-3e-6, "W", "-3 µW"), (65536.0, "B", "65536 B"), (1e9, "bit/s", "1 Gbit/s"),
    (float("inf"), "B", "inf B"), (0.0, "B/s", "0 B/s"),
])
def test_format_limit_is_readable_only_when_exact(value: float, unit: str, expected: str) -> None:
    assert format_limit(value, unit) == expected


@given(finite, st.sampled_from(["", *UNITS, "%"]))
def test_format_limit_reads_back_exactly(value: float, unit: str) -> None:
    """A limit as shown, read back, is the limit: no digit that was set is hidden by rounding."""
    shown = format_limit(value, unit)
    number, _, rest = shown.partition(" ")
    prefix = rest[: len(rest) - len(unit)] if unit else rest
    assert parse_quantity(number + prefix) == pytest.approx(value, rel=1e-11, abs=0)

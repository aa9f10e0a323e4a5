"""What people type for a silence: times, durations, labels, comments (rrdalarm.control.silences)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rrdalarm.control.silences import ControlError, check_comment, moment, parse_labels, silence_times

NOW = 1_700_000_040


@given(st.integers(min_value=1, max_value=10**6), st.integers(min_value=0, max_value=10**6))
def test_a_duration_ends_that_long_after_the_start(length: int, delay: int) -> None:
    start, end = silence_times(str(NOW + delay), None, length, NOW)
    assert (start, end) == (NOW + delay, NOW + delay + length)


@given(st.integers(min_value=-10**6, max_value=10**6), st.integers(min_value=-10**6, max_value=10**6))
def test_start_and_end_are_kept_or_refused_never_swapped(a: int, b: int) -> None:
    try:
        start, end = silence_times(str(NOW + a), str(NOW + b), None, NOW)
    except ControlError:
        assert b <= a or NOW + b <= NOW
    else:
        assert (start, end) == (NOW + a, NOW + b) and start < end and end > NOW


def test_times_are_read_as_epochs_at_style_and_iso() -> None:
    assert moment("now", NOW, "start") == NOW
    assert moment("now+2h", NOW, "start") == NOW + 7200
    assert moment(str(NOW + 5), NOW, "start") == NOW + 5
    assert moment("2023-11-14T22:15:00+00:00", NOW, "start") == NOW + 60
    with pytest.raises(ControlError, match="end 'soonish' is not a time"):
        moment("soonish", NOW, "end")
    with pytest.raises(ControlError, match="relative to start or end"):
        moment("end-1h", NOW, "start")


def test_defaults_and_refusals() -> None:
    assert silence_times(None, None, "90min", NOW) == (NOW, NOW + 5400)
    assert silence_times("", "now+1h", None, NOW) == (NOW, NOW + 3600)
    for start, end, duration, why in ((None, None, None, "either an end or a duration"),
                                      (None, "now+1h", "1h", "either an end or a duration"),
                                      (None, None, "0", "end before it starts"),
                                      ("now-2h", "now-1h", None, "end in the past"),
                                      (None, None, "a while", "not a duration")):
        with pytest.raises(ControlError, match=why):
            silence_times(start, end, duration, NOW)


def test_labels_and_comments() -> None:
    assert parse_labels(["team=db", " site = fra "]) == {"team": "db", "site": "fra"}
    assert parse_labels(["empty="]) == {"empty": ""}
    for bad in ("team", "=db"):
        with pytest.raises(ControlError, match="KEY=VALUE"):
            parse_labels([bad])
    assert check_comment("  why  ") == "why"
    with pytest.raises(ControlError, match="comment is required"):
        check_comment(" \n")
    with pytest.raises(ControlError, match="at most"):
        check_comment("x" * 2001)

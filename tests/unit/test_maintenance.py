"""Maintenance windows cover exactly their minutes, across day boundaries and DST changes."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from rrdalarm.model.control import MaintenanceWindow
from rrdalarm.rules.maintenance import next_occurrences, occurrence_end, open_covers

BERLIN = ZoneInfo("Europe/Berlin")


def at(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=BERLIN).timestamp())


def covered(w: MaintenanceWindow, epoch: int) -> bool:
    return occurrence_end(w, epoch, BERLIN) is not None


def test_a_window_across_midnight_covers_exactly_its_minutes() -> None:
    w = MaintenanceWindow("night", "30 23 * * *", 3600)
    first, last = at("2026-12-02T23:30:00"), at("2026-12-03T00:29:59")
    assert not covered(w, first - 1)
    assert covered(w, first) and covered(w, last)
    assert not covered(w, last + 1)
    assert occurrence_end(w, first, BERLIN) == last + 1


def test_spring_forward_the_duration_is_real_time() -> None:
    # 2026-03-29: 02:00 CET becomes 03:00 CEST. A two-hour window from 01:00 ends at 04:00 CEST.
    w = MaintenanceWindow("backup", "0 1 * * *", 7200)
    start = at("2026-03-29T01:00:00")
    assert occurrence_end(w, start, BERLIN) == at("2026-03-29T04:00:00") == start + 7200
    assert covered(w, at("2026-03-29T03:59:59")) and not covered(w, at("2026-03-29T04:00:00"))


def test_fall_back_covers_the_repeated_hour_once() -> None:
    # 2026-10-25: 03:00 CEST becomes 02:00 CET. From 01:30 for 2 h: until 02:30 CET.
    w = MaintenanceWindow("backup", "30 1 * * *", 7200)
    start = at("2026-10-25T01:30:00")
    end = start + 7200
    assert occurrence_end(w, start, BERLIN) == end
    assert datetime.fromtimestamp(end, BERLIN).strftime("%H:%M %Z") == "02:30 CET"
    assert covered(w, end - 1) and not covered(w, end)


def test_next_three_include_the_open_one() -> None:
    w = MaintenanceWindow("night", "30 23 * * *", 3600)
    got = next_occurrences(w, at("2026-12-02T23:45:00"), BERLIN)
    assert [s for s, _ in got] == [at("2026-12-02T23:30:00"), at("2026-12-03T23:30:00"), at("2026-12-04T23:30:00")]


def test_open_covers_name_the_window() -> None:
    w = MaintenanceWindow("night", "30 23 * * *", 3600)
    [cover] = open_covers([w, MaintenanceWindow("noon", "0 12 * * *", 60)], at("2026-12-02T23:31:00"), BERLIN)
    assert cover.ref == "maintenance:night" and cover.until == at("2026-12-03T00:30:00")


@settings(max_examples=60, deadline=None)
@given(minute=st.integers(0, 59), hour=st.integers(0, 23), duration=st.integers(60, 3 * 3600),
       offset=st.integers(0, 3 * 86400))
def test_agrees_with_a_scan_of_every_start(minute: int, hour: int, duration: int, offset: int) -> None:
    w = MaintenanceWindow("w", f"{minute} {hour} * * *", duration)
    now = at("2026-03-27T00:00:00") + offset
    starts = [s for s, _ in next_occurrences(w, now - 2 * 86400, BERLIN, 8)]
    expected = any(s <= now < s + duration for s in starts)
    assert covered(w, now) is expected


def test_a_start_in_the_skipped_hour_is_shifted_by_the_jump_and_stays_open_its_duration() -> None:
    # 2026-03-29 02:30 does not exist in Berlin: APScheduler starts it at 03:30 CEST (01:30 UTC).
    w = MaintenanceWindow("backup", "30 2 * * *", 3600)
    start = at("2026-03-29T03:30:00")
    assert [s for s, _ in next_occurrences(w, at("2026-03-28T12:00:00"), BERLIN)] == [
        start, at("2026-03-30T02:30:00"), at("2026-03-31T02:30:00")]
    assert not covered(w, start - 1)
    # A search from after 03:30 alone finds tomorrow's start: the window must not be lost then.
    for now in (start, at("2026-03-29T03:50:00"), at("2026-03-29T04:20:00"), start + 3599):
        assert occurrence_end(w, now, BERLIN) == start + 3600
    assert not covered(w, start + 3600)


def test_starts_in_the_skipped_hour_collapse_into_the_first() -> None:
    w = MaintenanceWindow("w", "*/20 2 * * *", 600)
    got = next_occurrences(w, at("2026-03-29T00:00:00"), BERLIN, 2)
    assert [s for s, _ in got] == [at("2026-03-29T03:00:00"), at("2026-03-30T02:00:00")]


def test_a_start_in_the_repeated_hour_happens_in_both_offsets() -> None:
    w = MaintenanceWindow("w", "30 2 * * *", 1800)
    first, second = (s for s, _ in next_occurrences(w, at("2026-10-25T00:00:00"), BERLIN, 2))
    assert second - first == 3600
    assert [datetime.fromtimestamp(s, BERLIN).strftime("%H:%M %Z") for s in (first, second)] == [
        "02:30 CEST", "02:30 CET"]
    assert covered(w, first) and not covered(w, first + 1800) and covered(w, second)


SCHEDULES = ["{m} {h} * * *", "*/20 {h} * * *", "{m},{m2} {h},3 * * *", "*/15 * * * *", "{m} 1-3 * * *"]


@settings(max_examples=150, deadline=None)
@given(form=st.sampled_from(SCHEDULES), minute=st.integers(0, 29), hour=st.sampled_from([1, 2, 3, 4]),
       duration=st.integers(60, 4 * 3600), day=st.sampled_from(["2026-03-29", "2026-10-25"]),
       offset=st.integers(-3 * 3600, 9 * 3600))
def test_around_clock_changes_agrees_with_a_walk_from_the_day_before(
        form: str, minute: int, hour: int, duration: int, day: str, offset: int) -> None:
    w = MaintenanceWindow("w", form.format(m=minute, m2=minute + 30, h=hour), duration)
    now = at(f"{day}T00:00:00") + offset
    walk = next_occurrences(w, now - 86400, BERLIN, 200)
    expected = [s for s, e in walk if s <= now < e]
    assert covered(w, now) is bool(expected)
    if expected:
        assert occurrence_end(w, now, BERLIN) == max(expected) + duration

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

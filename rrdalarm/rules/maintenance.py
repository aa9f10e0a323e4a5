"""When a maintenance window is open: its cron schedule in the server's zone, then `duration` real seconds.

Pure but for `local_zone`; APScheduler's CronTrigger reads the schedule. It is imported only
when a thresholds file has windows, so that other checks do not pay for it.

Daylight saving time (docs/maintenance.md): the starts are the times CronTrigger gives walking
forward in real time. A start in the hour skipped in spring happens once, shifted by the jump
(02:30 becomes 03:30 summer time; of several starts in that hour only the first is kept); a start
in the hour repeated in autumn happens twice, once in each offset. `duration` is real seconds.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, tzinfo
from typing import Any

from rrdalarm.model.control import MaintenanceWindow
from rrdalarm.rules.quieting import Cover

# Longer than any clock change (2 h at most, Antarctica/Troll): see _starts.
_JUMP = 3 * 3600


def local_zone() -> tzinfo:
    """The server's zone (TZ when set), as APScheduler reads it."""
    from tzlocal import get_localzone

    zone: tzinfo = get_localzone()
    return zone


def trigger(schedule: str, tz: tzinfo) -> Any:
    """The CronTrigger of a five-field cron expression; ValueError says why it is not one."""
    from apscheduler.triggers.cron import CronTrigger

    return CronTrigger.from_crontab(schedule, timezone=tz)


def _next_start(trig: Any, at: int, tz: tzinfo) -> int | None:
    """The first start at or after `at`."""
    fire = trig.get_next_fire_time(None, datetime.fromtimestamp(at, tz))
    return None if fire is None else int(fire.timestamp())


def _starts(trig: Any, since: int, tz: tzinfo) -> Iterator[int]:
    """Every start at or after `since`, in order, as a walk from long before `since` would find them.

    A start in the hour skipped in spring is shifted past the jump: its real time can lie after
    a search point that no longer sees it (02:30 is 03:30 summer time, but a search from 03:10 finds
    tomorrow's). So when the clock changed in the last hours, the walk begins before the change.
    """
    begin = since
    if _offset(since - _JUMP, tz) != _offset(since, tz):
        begin = since - _JUMP
    start = _next_start(trig, begin, tz)
    while start is not None:
        if start >= since:
            yield start
        start = _next_start(trig, start + 1, tz)


def _offset(at: int, tz: tzinfo) -> Any:
    return datetime.fromtimestamp(at, tz).utcoffset()


def occurrence_end(w: MaintenanceWindow, now: int, tz: tzinfo) -> int | None:
    """The end of the occurrence open at `now` (a start in (now - duration, now]), or None."""
    last = None
    # A later start inside the same stretch keeps it open longer: windows that overlap run on.
    for start in _starts(trigger(w.schedule, tz), now - w.duration + 1, tz):
        if start > now:
            break
        last = start
    return None if last is None else last + w.duration


def next_occurrences(w: MaintenanceWindow, after: int, tz: tzinfo, count: int = 3) -> list[tuple[int, int]]:
    """(start, end) of the next `count` occurrences, the one open at `after` first."""
    out: list[tuple[int, int]] = []
    for start in _starts(trigger(w.schedule, tz), after - w.duration + 1, tz):
        if len(out) == count:
            break
        out.append((start, start + w.duration))
    return out


def open_covers(windows: Sequence[MaintenanceWindow], now: int, tz: tzinfo) -> list[Cover]:
    """The windows open at `now`, as covers of the check's quieting."""
    covers = []
    for w in windows:
        end = occurrence_end(w, now, tz)
        if end is not None:
            covers.append(Cover(w.ref, w.matchers, end))
    return covers

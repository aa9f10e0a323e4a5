"""When a maintenance window is open: its cron schedule in the server's zone, then `duration` real seconds.

Pure but for `local_zone`; APScheduler's CronTrigger reads the schedule. It is imported only
when a thresholds file has windows, so that other checks do not pay for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any

from rrdalarm.model.control import MaintenanceWindow
from rrdalarm.rules.quieting import Cover


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


def occurrence_end(w: MaintenanceWindow, now: int, tz: tzinfo) -> int | None:
    """The end of the occurrence open at `now` (a start in (now - duration, now]), or None."""
    start = _next_start(trigger(w.schedule, tz), now - w.duration + 1, tz)
    if start is None or start > now:
        return None
    # A later start inside the same stretch keeps it open longer: windows that overlap run on.
    end = start + w.duration
    nxt = _next_start(trigger(w.schedule, tz), start + 1, tz)
    while nxt is not None and nxt <= now:
        end = nxt + w.duration
        nxt = _next_start(trigger(w.schedule, tz), nxt + 1, tz)
    return end


def next_occurrences(w: MaintenanceWindow, after: int, tz: tzinfo, count: int = 3) -> list[tuple[int, int]]:
    """(start, end) of the next `count` occurrences, the one open at `after` first."""
    trig = trigger(w.schedule, tz)
    out: list[tuple[int, int]] = []
    start = _next_start(trig, after - w.duration + 1, tz)
    while start is not None and len(out) < count:
        out.append((start, start + w.duration))
        start = _next_start(trig, start + 1, tz)
    return out


def open_covers(windows: Sequence[MaintenanceWindow], now: int, tz: tzinfo) -> list[Cover]:
    """The windows open at `now`, as covers of the check's quieting."""
    covers = []
    for w in windows:
        end = occurrence_end(w, now, tz)
        if end is not None:
            covers.append(Cover(w.ref, w.matchers, end))
    return covers

"""[[maintenance]] tables of the thresholds file: recurring silences (DESIGN §2b, docs/maintenance.md).

Each mistake is a ConfigError naming the file, the line and the field. The schedule is read
by APScheduler's CronTrigger (rules.maintenance), in the server's zone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence, Set
from typing import Any

from rrdalarm.common.quantities import parse_duration
from rrdalarm.config.tuning import TUNING_FIELDS
from rrdalarm.model.control import MaintenanceWindow, Matchers
from rrdalarm.model.errors import ConfigError
from rrdalarm.rules.quieting import series_glob_problem

KNOWN = ("name", "schedule", "duration", "comment", "threshold", "series", "ds", "labels", "severity")

Fail = Callable[[str, str], ConfigError]
Locate = Callable[[int, str], int | None]
"""locate(index of the window, key) -> its line."""

_DIGIT = re.compile(r"\d")


def windows_from_tables(tables: Any, path: str, locate: Locate, threshold_ids: Set[int],
                        top_line: int | None) -> tuple[MaintenanceWindow, ...]:
    """Every [[maintenance]] table, validated; names are unique, `threshold` names one of `threshold_ids`."""
    if not isinstance(tables, list) or not all(isinstance(t, Mapping) for t in tables):
        raise ConfigError(path, "'maintenance' must be an array of tables: write [[maintenance]]", top_line,
                          "maintenance")
    out: list[MaintenanceWindow] = []
    for index, table in enumerate(tables):
        window = window_from_dict(table, path, lambda key, i=index: locate(i, key), threshold_ids)  # type: ignore[misc]
        twin = next((w for w in out if w.name == window.name), None)
        if twin is not None:
            raise ConfigError(path, f"maintenance {window.name!r}: the name is taken by the window at line "
                              f"{twin.line}", locate(index, "name"), "name")
        out.append(window)
    return tuple(out)


def window_from_dict(raw: Mapping[str, Any], path: str, locate: Callable[[str], int | None],
                     threshold_ids: Set[int]) -> MaintenanceWindow:
    """One [[maintenance]] table; fields are checked in file-reading order so the first mistake is named."""

    def fail(name: str, message: str) -> ConfigError:
        label = raw.get("name")
        prefix = f"maintenance {label!r}: " if isinstance(label, str) and label.strip() else "maintenance: "
        return ConfigError(path, prefix + message, locate(name), name)

    for key in raw:
        if key not in KNOWN:
            raise fail(key, f"unknown field (known: {', '.join(sorted(KNOWN))})")
    name = _name(raw, fail)
    schedule = _schedule(raw, fail)
    duration = _duration(raw, fail)
    comment = _text(raw, "comment", fail, "")
    return MaintenanceWindow(name=name, schedule=schedule, duration=duration, comment=comment,
                             matchers=_matchers(raw, fail, threshold_ids), line=locate(""))


def _name(raw: Mapping[str, Any], fail: Fail) -> str:
    if "name" not in raw:
        raise fail("name", "a window needs a 'name'")
    name = _text(raw, "name", fail, "")
    if not name:
        raise fail("name", "must not be empty")
    if "," in name:
        # Events keep the refs of what silenced them as one comma-separated column.
        raise fail("name", f"must not contain a comma, not {name!r}")
    return name


def _text(raw: Mapping[str, Any], key: str, fail: Fail, default: str) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str):
        raise fail(key, f"must be text, not {value!r}")
    if "\x00" in value:
        raise fail(key, "contains a NUL character")
    return value.strip()


def _schedule(raw: Mapping[str, Any], fail: Fail) -> str:
    """A five-field cron expression CronTrigger reads, weekdays given by name."""
    from rrdalarm.rules.maintenance import local_zone, trigger

    if "schedule" not in raw:
        raise fail("schedule", "a window needs a 'schedule' (five cron fields, e.g. \"0 2 * * sun\")")
    schedule = _text(raw, "schedule", fail, "")
    fields = schedule.split()
    if len(fields) != 5:
        raise fail("schedule", f"must have five cron fields (minute hour day month weekday), not {len(fields)} "
                               f"in {schedule!r}")
    problem = weekday_problem(fields[4])
    if problem:
        raise fail("schedule", problem)
    try:
        trigger(schedule, local_zone())
    except ValueError as exc:
        raise fail("schedule", f"{schedule!r} is not a cron expression: {exc}") from None
    return " ".join(fields)


def weekday_problem(field: str) -> str | None:
    """Why a day-of-week field is refused: numbers mean other days here (0 = Monday) than in cron (0 = Sunday)."""
    for part in field.split(","):
        base, _, step = part.partition("/")
        if _DIGIT.search(base) or (step and base == "*"):
            return (f"weekday {part!r}: write weekdays as names (mon, tue, wed, thu, fri, sat, sun; ranges like "
                    "mon-fri): numbers name other days here (0 is Monday) than in classic cron (0 is Sunday)")
    return None


def _duration(raw: Mapping[str, Any], fail: Fail) -> int:
    if "duration" not in raw:
        raise fail("duration", "a window needs a 'duration' (seconds, or e.g. \"2h\", \"30min\")")
    try:
        seconds = parse_duration(raw["duration"])
    except ValueError as exc:
        raise fail("duration", str(exc)) from None
    if seconds <= 0:
        raise fail("duration", f"must be more than 0 seconds, not {raw['duration']!r}")
    return seconds


def _matchers(raw: Mapping[str, Any], fail: Fail, threshold_ids: Set[int]) -> Matchers:
    """The series the window covers; none given: every series."""
    ident = raw.get("threshold")
    if ident is not None:
        if isinstance(ident, bool) or not isinstance(ident, int):
            raise fail("threshold", f"must be a threshold id (a whole number), not {ident!r}")
        if ident not in threshold_ids:
            raise fail("threshold", f"there is no threshold {ident} in this file")
    series, ds = (_pattern(raw, key, fail) for key in ("series", "ds"))
    labels: dict[str, str] = {}
    severity = None
    for key in ("labels", "severity"):
        if key in raw:
            try:
                value = TUNING_FIELDS[key].read(raw[key])
            except ValueError as exc:
                raise fail(key, str(exc)) from None
            if key == "labels":
                labels = value
            else:
                severity = str(value)
    return Matchers(threshold=ident, series=series, ds=ds, labels=labels, severity=severity)


def _pattern(raw: Mapping[str, Any], key: str, fail: Fail) -> str | None:
    if key not in raw:
        return None
    value = _text(raw, key, fail, "")
    if not value:
        raise fail(key, "must not be empty (leave it out to match every one)")
    problem = series_glob_problem(value) if key == "series" else None
    if problem:
        raise fail(key, problem)
    return value


def window_names(windows: Sequence[MaintenanceWindow], threshold: int) -> list[str]:
    """The windows that name `threshold` by id."""
    return [w.name for w in windows if w.matchers.threshold == threshold]

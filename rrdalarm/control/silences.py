"""Silences as people make them: matchers and times read from what they typed, checked, stored, listed, ended.

The CLI and the HTTP API both come here; neither holds a rule of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from rrdalarm.common.quantities import format_duration, parse_duration
from rrdalarm.model.control import Matchers, Silence
from rrdalarm.model.definitions import Settings, Threshold
from rrdalarm.model.results import Row
from rrdalarm.model.states import Severity, State
from rrdalarm.rules import timespec
from rrdalarm.rules.quieting import matches, series_glob_problem
from rrdalarm.store import control as stored
from rrdalarm.store.database import Store


class ControlError(ValueError):
    """What a person asked of a silence or acknowledgement cannot be done; the text says why, in one line."""


class NoSuchSilence(ControlError):
    """No silence has that id."""


class SilenceEnded(ControlError):
    """The silence has ended already: it can no longer be expired or extended."""


MAX_COMMENT = 2000


def moment(text: str, now: int, what: str) -> int:
    """Epoch seconds from an epoch, an AT-style time (`now+2h`) or an ISO date and time (local unless it says)."""
    text = text.strip()
    try:
        return timespec.resolve_time(text, now)
    except timespec.TimeSpecError as exc:
        reason = str(exc)
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise ControlError(f"{what} {text!r} is not a time: give an epoch, 'now+2h' or '2026-12-24T18:00' "
                           f"({reason})") from None
    return int(stamp.timestamp() if stamp.tzinfo else stamp.astimezone().timestamp())


def silence_times(start: str | None, end: str | None, duration: str | int | None, now: int) -> tuple[int, int]:
    """(starts_at, ends_at) from a start (default now) and either an end or a duration."""
    if (end is None) == (duration is None):
        raise ControlError("give either an end or a duration (--end or --for), not both or neither")
    starts_at = now if start is None or start == "" else moment(str(start), now, "start")
    if duration is not None:
        try:
            length = parse_duration(duration)
        except ValueError as exc:
            raise ControlError(f"duration: {exc}") from None
        ends_at = starts_at + length
    else:
        ends_at = moment(str(end), now, "end")
    if ends_at <= starts_at:
        raise ControlError("the silence would end before it starts")
    if ends_at <= now:
        raise ControlError("the silence would end in the past")
    return starts_at, ends_at


def parse_labels(items: Iterable[str]) -> dict[str, str]:
    """`K=V` items as a mapping."""
    labels: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ControlError(f"label {item!r} must be written KEY=VALUE")
        labels[key.strip()] = value.strip()
    return labels


def check_matchers(m: Matchers, thresholds: Sequence[Threshold]) -> Matchers:
    """The matchers, refused when they name a threshold or severity that is not there."""
    if m.threshold is not None and all(t.id != m.threshold for t in thresholds):
        raise ControlError(f"no threshold with id {m.threshold} in the thresholds file")
    if m.severity is not None and m.severity not in {s.value for s in Severity}:
        raise ControlError(f"severity must be one of {', '.join(s.value for s in Severity)}, not {m.severity!r}")
    for value, name in ((m.series, "series"), (m.ds, "ds")):
        if value is not None and (not value or "\x00" in value):
            raise ControlError(f"{name} must be non-empty text")
    problem = m.series is not None and series_glob_problem(m.series)
    if problem:
        raise ControlError(f"series {problem}")
    return m


def check_comment(comment: str) -> str:
    comment = comment.strip()
    if not comment:
        raise ControlError("a comment is required: say why")
    if len(comment) > MAX_COMMENT or "\x00" in comment:
        raise ControlError(f"the comment must be text of at most {MAX_COMMENT} characters")
    return comment


def add(store: Store, thresholds: Sequence[Threshold], matchers: Matchers, times: tuple[int, int], comment: str,
        author: str, now: int) -> Silence:
    """Store a checked silence (with its audit entry)."""
    m = check_matchers(matchers, thresholds)
    name = next((t.name for t in thresholds if t.id == m.threshold), "")
    return stored.add_silence(store, m, times[0], times[1], check_comment(comment), author, now, name)


def expire(store: Store, ident: int, by: str, now: int) -> Silence:
    """End silence `ident` now."""
    gone = stored.expire_silence(store, ident, by, now)
    if gone is None:
        known = stored.silence(store, ident)
        if known is None:
            raise NoSuchSilence(f"no silence {ident}")
        raise SilenceEnded(f"silence {ident} has ended already")
    return gone


def extend(store: Store, ident: int, duration: str | int, by: str, now: int) -> Silence:
    """Let silence `ident` last `duration` longer (from now, if it would end sooner)."""
    try:
        more = parse_duration(duration)
    except ValueError as exc:
        raise ControlError(f"duration: {exc}") from None
    if more <= 0:
        raise ControlError("extend by more than 0 seconds")
    known = stored.silence(store, ident)
    if known is None:
        raise NoSuchSilence(f"no silence {ident}")
    moved = stored.extend_silence(store, ident, max(known.ends_at, now) + more, by, now)
    if moved is None:
        raise SilenceEnded(f"silence {ident} has ended already: add a new one")
    return moved


def listed(store: Store, now: int, include_ended: bool = False) -> list[Silence]:
    return stored.silences(store, now, include_ended=include_ended)


def phase(s: Silence, now: int) -> str:
    """active, pending, expired (ended early by someone) or ended."""
    if s.active(now):
        return "active"
    if now < s.starts_at:
        return "pending"
    return "expired" if s.expired_by else "ended"


def as_dict(s: Silence, now: int) -> dict[str, object]:
    """A silence as the API and `silence list --json` show it."""
    m = s.matchers
    return {"id": s.id, "state": phase(s, now), "threshold": m.threshold, "series": m.series, "ds": m.ds,
            "labels": dict(m.labels), "severity": m.severity, "starts_at": s.starts_at, "ends_at": s.ends_at,
            "comment": s.comment, "author": s.author, "created_at": s.created_at, "expired_by": s.expired_by}


def describe(s: Silence) -> str:
    return f"silence {s.id} ({s.matchers.describe()}) for {format_duration(s.ends_at - s.starts_at)}"


@dataclass(frozen=True)
class Matched:
    """How many series a silence's matchers cover at one check, and how many of those fire."""

    series: int
    firing: int


def matched_now(settings: Settings, thresholds: Sequence[Threshold], store: Store, m: Matchers,
                now: int) -> Matched:
    """The series the matchers cover now, found by a dry-run check (nothing recorded, no action run)."""
    from rrdalarm.check.engine import run_check

    result = run_check(settings, thresholds, store, at=now, dry_run=True, want_ok=True, deliver=False)
    return matched_in(result.rows, thresholds, m)


def matched_in(rows: Sequence[Row], thresholds: Sequence[Threshold], m: Matchers) -> Matched:
    """The series of a check's rows that the matchers cover, and how many of them fire."""
    by_id: Mapping[int, Threshold] = {t.id: t for t in thresholds}
    hits = [r for r in rows if r.threshold in by_id
            and matches(m, r.threshold, r.file, r.ds, by_id[r.threshold].tuning.labels, r.severity)]
    return Matched(len(hits), sum(1 for r in hits if r.state is State.FIRING))


def firing_matched(store: Store, thresholds: Sequence[Threshold], m: Matchers) -> int:
    """How many FIRING series the matchers cover now, from the stored states alone (no file is read)."""
    by_id: Mapping[int, Threshold] = {t.id: t for t in thresholds}
    count = 0
    for f in stored.firing_series(store, m.threshold):
        t = by_id.get(f.threshold)
        labels, severity = (t.tuning.labels, t.tuning.severity.value) if t else ({}, "")
        count += matches(m, f.threshold, f.series, f.ds, labels, severity)
    return count

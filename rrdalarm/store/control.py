"""Silences and acknowledgements in the database: made, listed and expired by people; read by every check.

Each change is one transaction with its audit entry, so no silence or acknowledgement exists
without a record of who made it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from rrdalarm.model.control import Acknowledgement, Matchers, Silence
from rrdalarm.model.records import NewEvent, PlannedDelivery, RunSummary
from rrdalarm.model.states import State
from rrdalarm.store.database import AuditEntry, SeriesState, SilenceRow, Store, write_run


def _silence(row: SilenceRow) -> Silence:
    labels = json.loads(row.labels) if row.labels else {}
    matchers = Matchers(row.threshold_id, row.series, row.ds, labels, row.severity)
    return Silence(row.id, matchers, row.starts_at, row.ends_at, row.comment, row.author, row.created_at,
                   row.expired_by)


def active_silences(store: Store, now: int) -> list[Silence]:
    """The silences in force at `now`."""
    q = select(SilenceRow).where(SilenceRow.starts_at <= now, SilenceRow.ends_at > now)
    with store.session() as s:
        return [_silence(r) for r in s.scalars(q)]


def _audit(at: int, user: str, change: str, threshold_id: int | None, what: str, name: str = "") -> AuditEntry:
    return AuditEntry(at=at, user=user[:64], change=change, threshold_id=threshold_id,
                      threshold_name=name[:255], file="", diff=what)


def silence_audit_text(silence: Silence) -> str:
    """How the audit log words a silence."""
    return (f"silence {silence.id}: {silence.matchers.describe()}; from {silence.starts_at} until "
            f"{silence.ends_at}; comment: {silence.comment}")


def add_silence(store: Store, matchers: Matchers, starts_at: int, ends_at: int, comment: str, author: str,
                now: int, threshold_name: str = "") -> Silence:
    """Store a new silence and its audit entry at once."""
    with store.session() as s:
        row = SilenceRow(threshold_id=matchers.threshold, series=matchers.series, ds=matchers.ds,
                         labels=json.dumps(dict(matchers.labels), sort_keys=True) if matchers.labels else None,
                         severity=matchers.severity, starts_at=starts_at, ends_at=ends_at, comment=comment,
                         author=author[:64], created_at=now)
        s.add(row)
        s.flush()
        silence = _silence(row)
        s.add(_audit(now, author, "silence", matchers.threshold, silence_audit_text(silence), threshold_name))
        return silence


def silences(store: Store, now: int, *, include_ended: bool = False) -> list[Silence]:
    """Silences in force or still to come (every one with `include_ended`), newest first."""
    q = select(SilenceRow).order_by(SilenceRow.id.desc())
    if not include_ended:
        q = q.where(SilenceRow.ends_at > now)
    with store.session() as s:
        return [_silence(r) for r in s.scalars(q)]


# Ids are 64-bit columns: a larger number from a URL is no silence (SQLite would raise OverflowError).
_MAX_ROW_ID = 2**63 - 1


def _row(s: Session, ident: int) -> SilenceRow | None:
    return s.get(SilenceRow, ident) if 0 < ident <= _MAX_ROW_ID else None


def silence(store: Store, ident: int) -> Silence | None:
    with store.session() as s:
        row = _row(s, ident)
        return _silence(row) if row is not None else None


def expire_silence(store: Store, ident: int, by: str, now: int) -> Silence | None:
    """End a silence now; None when there is no such silence or it had ended already."""
    with store.session() as s:
        row = _row(s, ident)
        if row is None or row.ends_at <= now:
            return None
        row.ends_at = max(now, row.starts_at)
        row.expired_by = by[:64]
        s.flush()
        gone = _silence(row)
        s.add(_audit(now, by, "expire", row.threshold_id, f"silence {ident} expired: {gone.matchers.describe()}"))
        return gone


def extend_silence(store: Store, ident: int, ends_at: int, by: str, now: int) -> Silence | None:
    """Move the end of a silence still in force or to come; None when there is none such."""
    with store.session() as s:
        row = _row(s, ident)
        if row is None or row.ends_at <= now:
            return None
        before = row.ends_at
        row.ends_at = ends_at
        s.flush()
        moved = _silence(row)
        s.add(_audit(now, by, "extend", row.threshold_id,
                     f"silence {ident} extended from {before} until {ends_at}: {moved.matchers.describe()}"))
        return moved


@dataclass(frozen=True)
class FiringSeries:
    """A FIRING series as acknowledging sees it."""

    threshold: int
    series: str
    ds: str
    fired_at: int | None
    notified: frozenset[str] | None
    ack: Acknowledgement | None
    silenced: bool


def firing_series(store: Store, threshold: int | None = None) -> list[FiringSeries]:
    """FIRING series (of one threshold), in key order."""
    q = select(SeriesState).where(SeriesState.state == State.FIRING.value).order_by(
        SeriesState.threshold_id, SeriesState.series, SeriesState.ds)
    if threshold is not None:
        q = q.where(SeriesState.threshold_id == threshold)
    with store.session() as s:
        return [_firing(r) for r in s.scalars(q)]


def _firing(r: SeriesState) -> FiringSeries:
    told = json.loads(r.notified) if r.notified else None
    ack = Acknowledgement(r.ack_by, r.ack_at, r.ack_comment or "") if r.ack_by and r.ack_at is not None else None
    return FiringSeries(r.threshold_id, r.series, r.ds, r.fired_at,
                        frozenset(str(i) for i in told) if isinstance(told, list) else None, ack,
                        r.silenced_since is not None)


def record_acks(store: Store, keys: Sequence[tuple[int, str, str]], ack: Acknowledgement,
                events: Sequence[NewEvent], deliveries: Sequence[PlannedDelivery],
                audit: Mapping[int, tuple[str, str]]) -> list[tuple[int, str, str]]:
    """Mark the series acknowledged and write their `ack` events, deliveries and audit entries at once.

    Only series still FIRING and not yet acknowledged are marked (a check may have moved on since
    they were read); their keys are returned, and only their events and deliveries are kept.
    """
    with store.session() as s:
        done: list[tuple[int, str, str]] = []
        for key in keys:
            hit = s.execute(update(SeriesState).where(
                SeriesState.threshold_id == key[0], SeriesState.series == key[1], SeriesState.ds == key[2],
                SeriesState.state == State.FIRING.value,
                or_(SeriesState.ack_by.is_(None), SeriesState.ack_at.is_(None)),
            ).values(ack_by=ack.by[:64], ack_at=ack.at, ack_comment=ack.comment))
            if getattr(hit, "rowcount", 0):
                done.append(key)
        kept = {i for i, e in enumerate(events) if (e.threshold_id, e.series, e.ds) in set(done)}
        if kept:
            write_run(s, RunSummary(ack.at, 0.0, 0, 0, 0, 0, 0), [events[i] for i in sorted(kept)],
                      _renumbered(deliveries, sorted(kept)))
        for tid, (name, text) in audit.items():
            if any(k[0] == tid for k in done):
                s.add(_audit(ack.at, ack.by, "ack", tid, text, name))
        return done


def _renumbered(deliveries: Sequence[PlannedDelivery], kept: Sequence[int]) -> list[PlannedDelivery]:
    """The deliveries with their event indexes into the kept events only."""
    new_index = {old: new for new, old in enumerate(kept)}
    out = []
    for d in deliveries:
        events = tuple(new_index[i] for i in d.events if i in new_index)
        if events:
            out.append(PlannedDelivery(d.id, d.action, d.params, events))
    return out

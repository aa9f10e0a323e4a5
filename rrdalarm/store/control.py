"""Silences in the database: made, listed and expired by people; read by every check."""

from __future__ import annotations

import json

from sqlalchemy import select

from rrdalarm.model.control import Matchers, Silence
from rrdalarm.store.database import SilenceRow, Store


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

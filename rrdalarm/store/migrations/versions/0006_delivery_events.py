"""The events a delivery carries: a table of (delivery, position, event) instead of a JSON list.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def json_event_ids(text: str | None) -> list[int]:
    """The ids of a JSON list as the store read it: an unreadable list counts as none."""
    try:
        ids = json.loads(text or "")
    except ValueError:
        return []
    return [i for i in ids if type(i) is int] if isinstance(ids, list) else []


def upgrade() -> None:
    links = op.create_table(
        "delivery_events",
        sa.Column("delivery_id", sa.String(36), sa.ForeignKey("deliveries.id"), primary_key=True),
        sa.Column("position", sa.Integer(), primary_key=True),
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("alarm_events.id"), nullable=False),
    )
    op.create_index("ix_delivery_events_event_id", "delivery_events", ["event_id"])
    bind = op.get_bind()
    known = set(bind.execute(sa.text("SELECT id FROM alarm_events")).scalars())
    rows: list[dict[str, Any]] = []
    for ident, text in bind.execute(sa.text("SELECT id, event_ids FROM deliveries")):
        carried = [i for i in json_event_ids(text) if i in known]
        rows += [{"delivery_id": ident, "position": n, "event_id": i} for n, i in enumerate(carried)]
    if rows:
        op.bulk_insert(links, rows)
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("event_ids")


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("event_ids", sa.Text(), nullable=False, server_default="[]"))
    bind = op.get_bind()
    carried: dict[str, list[int]] = {}
    for ident, event in bind.execute(
        sa.text("SELECT delivery_id, event_id FROM delivery_events ORDER BY delivery_id, position")
    ):
        carried.setdefault(ident, []).append(event)
    for ident, ids in carried.items():
        bind.execute(sa.text("UPDATE deliveries SET event_ids = :ids WHERE id = :id"),
                     {"ids": json.dumps(ids), "id": ident})
    op.drop_index("ix_delivery_events_event_id", "delivery_events")
    op.drop_table("delivery_events")

"""Epoch columns in 64 bits (PostgreSQL's INTEGER ends in 2038) and the check lock's row.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# Every column holding epoch seconds, by table; True: it may be NULL.
EPOCHS: dict[str, dict[str, bool]] = {
    "check_runs": {"started_at": False},
    "series_state": dict.fromkeys((
        "active_at", "fired_at", "resolved_at", "last_sent_at", "last_time", "clear_since", "flapping_since",
        "stale_since", "silenced_since", "silenced_until", "ack_at"), True),
    "alarm_events": {"at": False, "time": True},
    "silences": {"starts_at": False, "ends_at": False, "created_at": False},
    "deliveries": {"created_at": False, "next_attempt_at": False, "lease_until": True, "sent_at": True},
    "delivery_attempts": {"at": False},
    "users": {"created_at": False},
    "audit_log": {"at": False},
}


def _retype(old: sa.types.TypeEngine[int], new: sa.types.TypeEngine[int]) -> None:
    # SQLite's INTEGER is 64 bits already; batch mode rebuilds its tables all the same so that the
    # schema says what the models say.
    for table, columns in EPOCHS.items():
        with op.batch_alter_table(table) as batch:
            for name, nullable in columns.items():
                batch.alter_column(name, type_=new, existing_type=old, existing_nullable=nullable)


def upgrade() -> None:
    _retype(sa.Integer(), sa.BigInteger())
    lock = op.create_table(
        "check_lock",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("holder", sa.String(255), nullable=True),
        sa.Column("expires_at", sa.Float(), nullable=True),
    )
    op.bulk_insert(lock, [{"name": "check", "holder": None, "expires_at": None}])


def downgrade() -> None:
    op.drop_table("check_lock")
    _retype(sa.BigInteger(), sa.Integer())

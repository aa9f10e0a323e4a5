"""People's control over alarms: silences, silenced events, and per-series silence and acknowledgement.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "silences",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("threshold_id", sa.Integer(), nullable=True),
        sa.Column("series", sa.String(1024), nullable=True),
        sa.Column("ds", sa.String(255), nullable=True),
        sa.Column("labels", sa.Text(), nullable=True),
        sa.Column("severity", sa.String(16), nullable=True),
        sa.Column("starts_at", sa.Integer(), nullable=False),
        sa.Column("ends_at", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Integer(), nullable=False),
        sa.Column("expired_by", sa.String(64), nullable=True),
    )
    op.create_index("ix_silences_ends_at", "silences", ["ends_at"])
    with op.batch_alter_table("series_state") as batch:
        batch.add_column(sa.Column("silenced_since", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("silenced_until", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("ack_by", sa.String(64), nullable=True))
        batch.add_column(sa.Column("ack_at", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("ack_comment", sa.Text(), nullable=True))
    with op.batch_alter_table("alarm_events") as batch:
        batch.add_column(sa.Column("silenced", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alarm_events") as batch:
        batch.drop_column("silenced")
    with op.batch_alter_table("series_state") as batch:
        for name in ("ack_comment", "ack_at", "ack_by", "silenced_until", "silenced_since"):
            batch.drop_column(name)
    op.drop_index("ix_silences_ends_at", "silences")
    op.drop_table("silences")

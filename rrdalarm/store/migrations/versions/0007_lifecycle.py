"""The alarm lifecycle's memory per series (hysteresis, flapping, staleness, no-data) and events' severity.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("series_state") as batch:
        batch.add_column(sa.Column("clear_since", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("changes", sa.Text(), nullable=True))
        batch.add_column(sa.Column("flapping_since", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("stale_since", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("reason", sa.String(16), nullable=True))
    # Events recorded before this had no severity: they were all of the default one.
    with op.batch_alter_table("alarm_events") as batch:
        batch.add_column(sa.Column("severity", sa.String(16), nullable=False, server_default="warning"))
        batch.add_column(sa.Column("unit", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("details", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alarm_events") as batch:
        batch.drop_column("details")
        batch.drop_column("unit")
        batch.drop_column("severity")
    with op.batch_alter_table("series_state") as batch:
        batch.drop_column("reason")
        batch.drop_column("stale_since")
        batch.drop_column("flapping_since")
        batch.drop_column("changes")
        batch.drop_column("clear_since")

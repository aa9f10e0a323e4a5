"""Which actions were told of a series' firing (so only they hear of its recovery), and its thresholds file.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL: fired before this was tracked; its recovery goes to every action, as it did then.
    with op.batch_alter_table("series_state") as batch:
        batch.add_column(sa.Column("notified", sa.Text(), nullable=True))
        # NULL: not known; a check over any thresholds file may close it once its threshold is gone.
        batch.add_column(sa.Column("origin", sa.String(1024), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("series_state") as batch:
        batch.drop_column("origin")
        batch.drop_column("notified")

"""When a delivery was queued or last requeued, on the deliverer's clock: its retry horizon starts there.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL: queued before this was tracked; its horizon then counts from its first attempt in this version.
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("queued_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("queued_at")

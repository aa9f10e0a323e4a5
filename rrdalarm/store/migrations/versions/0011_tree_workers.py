"""The workers of each tree (rrdalarm worker): last heartbeat, files and durations of the last check they served.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tree_workers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tree", sa.String(64), nullable=False),
        sa.Column("worker", sa.String(255), nullable=False),
        sa.Column("seen_at", sa.BigInteger(), nullable=False),
        sa.Column("files", sa.Integer(), nullable=False),
        sa.Column("shard_duration_s", sa.Float(), nullable=True),
        sa.Column("tree_duration_s", sa.Float(), nullable=True),
        sa.UniqueConstraint("tree", "worker", name="uq_tree_workers"),
    )


def downgrade() -> None:
    op.drop_table("tree_workers")

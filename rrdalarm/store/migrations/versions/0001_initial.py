"""Initial schema: check runs, series state, alarm events.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "check_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("started_at", sa.Integer(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("files_checked", sa.Integer(), nullable=False),
        sa.Column("series_checked", sa.Integer(), nullable=False),
        sa.Column("alarms_fired", sa.Integer(), nullable=False),
        sa.Column("firing", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
    )
    op.create_index("ix_check_runs_started_at", "check_runs", ["started_at"])
    op.create_table(
        "series_state",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("threshold_id", sa.Integer(), nullable=False),
        sa.Column("series", sa.String(1024), nullable=False),
        sa.Column("ds", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("active_at", sa.Integer()),
        sa.Column("fired_at", sa.Integer()),
        sa.Column("resolved_at", sa.Integer()),
        sa.Column("last_sent_at", sa.Integer()),
        sa.Column("last_value", sa.Float()),
        sa.Column("last_time", sa.Integer()),
        sa.UniqueConstraint("threshold_id", "series", "ds", name="uq_series_state_key"),
    )
    op.create_index("ix_series_state_state", "series_state", ["state"])
    op.create_table(
        "alarm_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("check_runs.id"), nullable=False),
        sa.Column("at", sa.Integer(), nullable=False),
        sa.Column("threshold_id", sa.Integer(), nullable=False),
        sa.Column("threshold_name", sa.String(255), nullable=False),
        sa.Column("series", sa.String(1024), nullable=False),
        sa.Column("ds", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("type", sa.String(8), nullable=False),
        sa.Column("limit", sa.Float(), nullable=False),
        sa.Column("value", sa.Float()),
        sa.Column("time", sa.Integer()),
        sa.Column("message", sa.Text(), nullable=False),
    )
    op.create_index("ix_alarm_events_run_id", "alarm_events", ["run_id"])
    op.create_index("ix_alarm_events_at", "alarm_events", ["at"])
    op.create_index("ix_alarm_events_status", "alarm_events", ["status"])
    op.create_index("ix_alarm_events_threshold_at", "alarm_events", ["threshold_id", "at"])


def downgrade() -> None:
    op.drop_table("alarm_events")
    op.drop_table("series_state")
    op.drop_table("check_runs")

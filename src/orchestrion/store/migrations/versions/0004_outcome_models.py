"""prediction history, outcome model registry, steps status index

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 17:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from orchestrion.store.models import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "task_predictions",
        sa.Column("task_id", sa.String(length=36), nullable=False),
        sa.Column("task_type", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("team", sa.JSON(), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("model", sa.String(length=32), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=True),
        sa.Column("success_probability", sa.Float(), nullable=False),
        sa.Column("duration_p50_seconds", sa.Float(), nullable=False),
        sa.Column("duration_p90_seconds", sa.Float(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("prior_success_probability", sa.Float(), nullable=False),
        sa.Column("prior_duration_p50_seconds", sa.Float(), nullable=False),
        sa.Column("prior_duration_p90_seconds", sa.Float(), nullable=False),
        sa.Column("prior_cost_usd", sa.Float(), nullable=False),
        sa.Column("actual_status", sa.String(length=24), nullable=True),
        sa.Column("actual_duration_seconds", sa.Float(), nullable=True),
        sa.Column("actual_cost_usd", sa.Float(), nullable=True),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("task_id"),
    )
    op.create_index("ix_task_predictions_created", "task_predictions", ["created_at"], unique=False)
    op.create_table(
        "outcome_models",
        sa.Column("version", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("trained_at", UTCDateTime(), nullable=False),
        sa.Column("sample_count", sa.Integer(), nullable=False),
        sa.Column("holdout_count", sa.Integer(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("promoted", sa.Boolean(), nullable=False),
        sa.Column("decision", sa.Text(), nullable=False),
        sa.Column("training_seconds", sa.Float(), nullable=False),
        sa.Column("library_version", sa.String(length=32), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("artefact", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("version"),
    )
    op.create_index("ix_steps_status", "steps", ["status"], unique=False)
    op.create_index("ix_llm_calls_created", "llm_calls", ["created_at"], unique=False)
    op.create_index("ix_agent_runs_agent_created", "agent_runs", ["agent_id", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_agent_runs_agent_created", table_name="agent_runs")
    op.drop_index("ix_llm_calls_created", table_name="llm_calls")
    op.drop_index("ix_steps_status", table_name="steps")
    op.drop_table("outcome_models")
    op.drop_index("ix_task_predictions_created", table_name="task_predictions")
    op.drop_table("task_predictions")

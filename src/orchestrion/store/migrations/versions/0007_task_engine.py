"""task engine

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21 19:40:00

The engine that runs each task (team, parallel, creative, recall), chosen by the coordinator at
submission; existing tasks ran on the team engine.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("engine", sa.String(length=32), server_default="team", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("engine")

"""Which provider a task runs on, fallback across providers, an account's cap.

Adds tasks.provider and initiatives.provider (NULL: the initiative's, else the orchestrator's
default), initiatives.fallback_providers (a JSON list of names, in order; NULL: none) and
accounts.max_concurrent_agents (0 on older rows: no cap).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch_op:
        batch_op.add_column(sa.Column("provider", sa.Text(), nullable=True))
    with op.batch_alter_table("initiatives") as batch_op:
        batch_op.add_column(sa.Column("provider", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("fallback_providers", sa.JSON(), nullable=True))
    with op.batch_alter_table("accounts") as batch_op:
        batch_op.add_column(sa.Column("max_concurrent_agents", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch_op:
        batch_op.drop_column("max_concurrent_agents")
    with op.batch_alter_table("initiatives") as batch_op:
        batch_op.drop_column("fallback_providers")
        batch_op.drop_column("provider")
    with op.batch_alter_table("tasks") as batch_op:
        batch_op.drop_column("provider")

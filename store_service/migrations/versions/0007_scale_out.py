"""Scale-out: leases, the orchestrator that runs each agent, and each project's shared remote.

Adds the `leases` table (name, owner, expiry: orchestrators hold `orchestrator/<name>` while they
live and `merge/<id>` while they merge), agents.orchestrator (the name of the orchestrator that runs
the agent; empty on older rows, which any orchestrator treats as its own, as before) and
projects.shared_remote (the git repository every orchestrator keeps the project's cw branches in;
empty: one machine, as before).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-17
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("acquired_at", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    with op.batch_alter_table("agents") as batch_op:
        batch_op.add_column(sa.Column("orchestrator", sa.Text(), nullable=True))
        batch_op.create_index(batch_op.f("ix_agents_orchestrator"), ["orchestrator"], unique=False)
    with op.batch_alter_table("projects") as batch_op:
        batch_op.add_column(sa.Column("shared_remote", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch_op:
        batch_op.drop_column("shared_remote")
    with op.batch_alter_table("agents") as batch_op:
        batch_op.drop_index(batch_op.f("ix_agents_orchestrator"))
        batch_op.drop_column("orchestrator")
    op.drop_table("leases")

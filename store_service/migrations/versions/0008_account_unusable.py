"""Accounts whose credential the provider refused: accounts.unusable_reason (why; empty or NULL
while usable). Such an account is never handed out until its credentials are updated.
The run that found out ends with the agent outcome `credentials_refused`, added to the CHECK of
agents.outcome.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


OUTCOMES = ("done", "failed", "crashed", "stopped", "rate_limited", "never_started")
NEW_OUTCOMES = (*OUTCOMES, "credentials_refused")


def _outcomes_allowed(values: tuple[str, ...]) -> None:
    with op.batch_alter_table("agents") as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_agents_agent_outcome"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_agents_agent_outcome"), sa.column("outcome").in_(values))


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch_op:
        batch_op.add_column(sa.Column("unusable_reason", sa.Text(), nullable=True))
    _outcomes_allowed(NEW_OUTCOMES)


def downgrade() -> None:
    op.execute(sa.text("UPDATE agents SET outcome = 'failed' WHERE outcome = 'credentials_refused'"))
    _outcomes_allowed(OUTCOMES)
    with op.batch_alter_table("accounts") as batch_op:
        batch_op.drop_column("unusable_reason")

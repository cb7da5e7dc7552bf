"""Usage and budgets: what each agent's CLI reported it used, and budgets on tasks and
initiatives.

Adds agents.usage_* (input, output, cache read and cache write tokens, cost in USD; zero on older
rows) and tasks/initiatives.budget_tokens and budget_usd (NULL: no budget).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

USAGE_COLUMNS: tuple[tuple[str, sa.types.TypeEngine[Any]], ...] = (
    ("usage_input_tokens", sa.BigInteger()),
    ("usage_output_tokens", sa.BigInteger()),
    ("usage_cache_read_tokens", sa.BigInteger()),
    ("usage_cache_write_tokens", sa.BigInteger()),
    ("usage_cost_usd", sa.Double()),
)


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch_op:
        for name, kind in USAGE_COLUMNS:
            batch_op.add_column(sa.Column(name, kind, nullable=False, server_default="0"))
    for table in ("tasks", "initiatives"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("budget_tokens", sa.BigInteger(), nullable=True))
            batch_op.add_column(sa.Column("budget_usd", sa.Double(), nullable=True))


def downgrade() -> None:
    for table in ("initiatives", "tasks"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("budget_usd")
            batch_op.drop_column("budget_tokens")
    with op.batch_alter_table("agents") as batch_op:
        for name, _ in reversed(USAGE_COLUMNS):
            batch_op.drop_column(name)

"""Review and repair: what revisions address and resolve, what merge tasks resolve, and which
conversation an agent's run answers.

Adds tasks.review_comment_ids, resolved_comment_ids (JSON lists), merge_source_task_id (-> tasks,
SET NULL), merge_source_phase_id (-> phases, SET NULL); agents.conversation_id. Every new column is
empty on existing rows, which is what they mean there: no revision, no merge task, no question.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-10
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column, referred table) of the new foreign keys, named as the models name them.
FOREIGN_KEYS = (
    ("tasks", "merge_source_task_id", "tasks"),
    ("tasks", "merge_source_phase_id", "phases"),
)


def _new_columns() -> dict[str, list[sa.Column[Any]]]:
    """Fresh Column objects each time: a column belongs to the one table it is added to."""
    return {
        "tasks": [
            sa.Column("review_comment_ids", sa.JSON(), nullable=True),
            sa.Column("resolved_comment_ids", sa.JSON(), nullable=True),
            sa.Column("merge_source_task_id", sa.String(length=21), nullable=True),
            sa.Column("merge_source_phase_id", sa.String(length=21), nullable=True),
        ],
        "agents": [sa.Column("conversation_id", sa.Text(), nullable=True)],
    }


def upgrade() -> None:
    for table, columns in _new_columns().items():
        with op.batch_alter_table(table) as batch_op:
            for column in columns:
                batch_op.add_column(column)
            for fk_table, column_name, referred in FOREIGN_KEYS:
                if fk_table == table:
                    batch_op.create_foreign_key(
                        op.f(f"fk_{table}_{column_name}_{referred}"),
                        referred,
                        [column_name],
                        ["id"],
                        ondelete="SET NULL",
                    )


def downgrade() -> None:
    for table, columns in _new_columns().items():
        with op.batch_alter_table(table) as batch_op:
            for fk_table, column_name, referred in FOREIGN_KEYS:
                if fk_table == table:
                    batch_op.drop_constraint(op.f(f"fk_{table}_{column_name}_{referred}"), type_="foreignkey")
            for column in columns:
                batch_op.drop_column(column.name)

"""Planning with agents: what proposals need to be accepted, planning tasks' targets, chat tasks.

Adds proposals.proposal_key, report_id, parent, depends_on, priority, category, target_updated_at,
change_set_id, entity_id; tasks.target_id; chat_sessions.task_id. Existing rows keep NULL in
every new column: proposals stored before had no keys, and are accepted as they are.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CATEGORIES = ("execute", "research", "discuss", "plan", "detail", "refine", "verify", "merge", "review")


def _choice(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)


def _new_columns() -> dict[str, list[sa.Column[Any]]]:
    """Fresh Column objects each time: a column belongs to the one table it is added to."""
    return {
        "proposals": [
            sa.Column("proposal_key", sa.Text(), nullable=True),
            sa.Column("report_id", sa.Text(), nullable=True),
            sa.Column("parent", sa.Text(), nullable=True),
            sa.Column("depends_on", sa.JSON(), nullable=True),
            sa.Column("priority", _choice("proposal_priority", "low", "medium", "high"), nullable=True),
            sa.Column("category", _choice("proposal_category", *CATEGORIES), nullable=True),
            sa.Column("target_updated_at", sa.DateTime(), nullable=True),
            sa.Column("change_set_id", sa.String(length=21), nullable=True),
            sa.Column("entity_id", sa.Text(), nullable=True),
        ],
        "tasks": [sa.Column("target_id", sa.Text(), nullable=True)],
        "chat_sessions": [sa.Column("task_id", sa.String(length=21), nullable=True)],
    }


# (table, column, referred table, ON DELETE)
_FOREIGN_KEYS = (
    ("proposals", "change_set_id", "change_sets", "SET NULL"),
    ("chat_sessions", "task_id", "tasks", "SET NULL"),
)


def upgrade() -> None:
    for table, columns in _new_columns().items():
        with op.batch_alter_table(table) as batch_op:
            for column in columns:
                batch_op.add_column(column)
            for fk_table, column_name, referred, on_delete in _FOREIGN_KEYS:
                if fk_table == table:
                    batch_op.create_foreign_key(
                        batch_op.f(f"fk_{table}_{column_name}_{referred}"),
                        referred,
                        [column_name],
                        ["id"],
                        ondelete=on_delete,
                    )
            if table == "proposals":
                batch_op.create_index(batch_op.f("ix_proposals_report_id"), ["report_id"])
                batch_op.create_index(batch_op.f("ix_proposals_change_set_id"), ["change_set_id"])


def downgrade() -> None:
    for table, columns in _new_columns().items():
        with op.batch_alter_table(table) as batch_op:
            if table == "proposals":
                batch_op.drop_index(batch_op.f("ix_proposals_report_id"))
                batch_op.drop_index(batch_op.f("ix_proposals_change_set_id"))
            for fk_table, column_name, referred, _ in _FOREIGN_KEYS:
                if fk_table == table:
                    batch_op.drop_constraint(batch_op.f(f"fk_{table}_{column_name}_{referred}"), type_="foreignkey")
            for column in columns:
                if isinstance(column.type, sa.Enum):
                    # The copied table would keep the CHECK on a column it no longer has.
                    batch_op.drop_constraint(batch_op.f(f"ck_{table}_{column.type.name}"), type_="check")
                batch_op.drop_column(column.name)

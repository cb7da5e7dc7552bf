"""Stored facts for orchestrator v2: merge and queue times, reasons, sync errors, run outcomes.

Adds tasks.merged_at, queued_at, reason, next_attempt_at; phases.reason, merge_commits;
projects.sync_error, sync_error_at; agents.outcome, error; request_records.payload_hash. Then fills
in what earlier versions kept only in the orchestrator's memory or in the event log: completed tasks
of a phase already in review or merged count as merged, phase-less tasks with a `task:queued` event
as queued, and an agent's outcome comes from its stored result. Portable SQL (SQLAlchemy Core only).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OUTCOMES = ("done", "failed", "crashed", "stopped", "rate_limited", "never_started")
# The `status` of an agent's result JSON -> its outcome.
RESULT_OUTCOMES = {
    "done": "done",
    "crash": "crashed",
    "error": "failed",
    "rate_limited": "rate_limited",
    "stopped": "stopped",
}


def _new_columns() -> dict[str, list[sa.Column[Any]]]:
    """Fresh Column objects each time: a column belongs to the one table it is added to."""
    return {
        "tasks": [
            sa.Column("merged_at", sa.DateTime(), nullable=True),
            sa.Column("queued_at", sa.DateTime(), nullable=True),
            sa.Column("reason", sa.Text(), nullable=True),
            sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        ],
        "phases": [
            sa.Column("reason", sa.Text(), nullable=True),
            sa.Column("merge_commits", sa.JSON(), nullable=True),
        ],
        "projects": [
            sa.Column("sync_error", sa.Text(), nullable=True),
            sa.Column("sync_error_at", sa.DateTime(), nullable=True),
        ],
        "agents": [
            sa.Column(
                "outcome",
                sa.Enum(*OUTCOMES, name="agent_outcome", native_enum=False, create_constraint=True, length=32),
                nullable=True,
            ),
            sa.Column("error", sa.Text(), nullable=True),
        ],
        "request_records": [sa.Column("payload_hash", sa.Text(), nullable=True)],
    }


tasks = sa.table(
    "tasks",
    sa.column("id", sa.String()),
    sa.column("phase_id", sa.String()),
    sa.column("status", sa.String()),
    sa.column("updated_at", sa.DateTime()),
    sa.column("merged_at", sa.DateTime()),
    sa.column("queued_at", sa.DateTime()),
)
phases = sa.table("phases", sa.column("id", sa.String()), sa.column("status", sa.String()))
events = sa.table(
    "events", sa.column("type", sa.Text()), sa.column("task_id", sa.Text()), sa.column("time", sa.DateTime())
)
agents = sa.table(
    "agents", sa.column("id", sa.String()), sa.column("result", sa.Text()), sa.column("outcome", sa.String())
)


def _mark_merged_tasks(connection: sa.Connection) -> None:
    """A phase reaches review only once all its tasks are merged into its branch."""
    settled_phases = sa.select(phases.c.id).where(phases.c.status.in_(["pending_review", "completed"]))
    connection.execute(
        sa.update(tasks)
        .where(tasks.c.status == "completed", tasks.c.phase_id.in_(settled_phases))
        .values(merged_at=tasks.c.updated_at)
    )


def _mark_queued_tasks(connection: sa.Connection) -> None:
    queued = sa.and_(events.c.type == "task:queued", events.c.task_id == tasks.c.id)
    connection.execute(
        sa.update(tasks)
        .where(tasks.c.phase_id.is_(None), sa.exists().where(queued))
        .values(queued_at=sa.select(sa.func.max(events.c.time)).where(queued).scalar_subquery())
    )


def _result_outcome(result: str | None) -> str | None:
    try:
        status = json.loads(result or "").get("status")
    except (ValueError, AttributeError):
        return None
    return RESULT_OUTCOMES.get(status) if isinstance(status, str) else None


def _fill_agent_outcomes(connection: sa.Connection) -> None:
    rows = connection.execute(sa.select(agents.c.id, agents.c.result).where(agents.c.result.is_not(None)))
    for agent_id, result in rows.fetchall():
        outcome = _result_outcome(result)
        if outcome is not None:
            connection.execute(sa.update(agents).where(agents.c.id == agent_id).values(outcome=outcome))


def upgrade() -> None:
    for table, columns in _new_columns().items():
        with op.batch_alter_table(table) as batch_op:
            for column in columns:
                batch_op.add_column(column)
    connection = op.get_bind()
    _mark_merged_tasks(connection)
    _mark_queued_tasks(connection)
    _fill_agent_outcomes(connection)


def downgrade() -> None:
    for table, columns in _new_columns().items():
        with op.batch_alter_table(table) as batch_op:
            for column in columns:
                if isinstance(column.type, sa.Enum):
                    # The copied table would keep the CHECK on a column it no longer has.
                    batch_op.drop_constraint(batch_op.f(f"ck_{table}_{column.type.name}"), type_="check")
                batch_op.drop_column(column.name)

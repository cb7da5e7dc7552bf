"""Initial schema: every table of the original except tasks.retry_count, plus change sets,
the event log and request records.

Holds on SQLite and PostgreSQL alike (boolean defaults written as `false()`, the root-page index
partial on both, 64-bit sequences on PostgreSQL); on SQLite it makes exactly the schema it always
made, so databases migrated before are what a new one is.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("provider", sa.Text(), server_default="claude", nullable=False),
        sa.Column("config_json", sa.Text(), nullable=True),
        sa.Column("credentials", sa.Text(), nullable=True),
        sa.Column(
            "is_exhausted",
            sa.Boolean(create_constraint=True, name="is_exhausted"),
            server_default=sa.false(),
            nullable=False,
        ),
        sa.Column("exhausted_until", sa.DateTime(), nullable=True),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.Column("sort_order", sa.Integer(), server_default="0", nullable=False),
        sa.Column("id", sa.String(length=21), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
    )
    op.create_table(
        "agent_log_chunks",
        sa.Column("agent_id", sa.Text(), nullable=False),
        sa.Column("agent_name", sa.Text(), nullable=False),
        sa.Column("session_number", sa.Integer(), server_default="1", nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("id", sa.String(length=21), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_log_chunks")),
    )
    with op.batch_alter_table("agent_log_chunks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_agent_log_chunks_agent_id"), ["agent_id"], unique=False)

    op.create_table(
        "events",
        # BIGINT on PostgreSQL (sequences are int64); on SQLite the INTEGER that AUTOINCREMENT needs.
        sa.Column(
            "sequence", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=False, nullable=False
        ),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("time", sa.DateTime(), nullable=False),
        sa.Column("initiative_id", sa.Text(), nullable=True),
        sa.Column("phase_id", sa.Text(), nullable=True),
        sa.Column("task_id", sa.Text(), nullable=True),
        sa.Column("agent_id", sa.Text(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("sequence", name=op.f("pk_events")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_events_initiative_id"), ["initiative_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_events_type"), ["type"], unique=False)

    op.create_table(
        "initiatives",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "active",
                "pending_review",
                "completed",
                "archived",
                name="initiative_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default="active",
            nullable=False,
        ),
        sa.Column("branch", sa.Text(), nullable=True),
        sa.Column("id", sa.String(length=21), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_initiatives")),
        sa.UniqueConstraint("branch", name=op.f("uq_initiatives_branch")),
    )
    op.create_table(
        "projects",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("default_branch", sa.Text(), server_default="main", nullable=False),
        sa.Column("last_fetched_at", sa.DateTime(), nullable=True),
        sa.Column("id", sa.String(length=21), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
        sa.UniqueConstraint("name", name=op.f("uq_projects_name")),
        sa.UniqueConstraint("url", name=op.f("uq_projects_url")),
    )
    op.create_table(
        "request_records",
        sa.Column("request_id", sa.Text(), nullable=False),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("resource_id", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("request_id", "method", name=op.f("pk_request_records")),
    )
    op.create_table(
        "initiative_projects",
        sa.Column("initiative_id", sa.String(length=21), nullable=False),
        sa.Column("project_id", sa.String(length=21), nullable=False),
        sa.Column("id", sa.String(length=21), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["initiative_id"],
            ["initiatives.id"],
            name=op.f("fk_initiative_projects_initiative_id_initiatives"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_initiative_projects_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_initiative_projects")),
        sa.UniqueConstraint(
            "initiative_id", "project_id", name=op.f("uq_initiative_projects_initiative_id_project_id")
        ),
    )
    with op.batch_alter_table("initiative_projects", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_initiative_projects_project_id"), ["project_id"], unique=False)

    op.create_table(
        "pages",
        sa.Column("initiative_id", sa.String(length=21), nullable=False),
        sa.Column("parent_page_id", sa.String(length=21), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("sort_order", sa.Integer(), server_default="0", nullable=False),
        sa.Column("id", sa.String(length=21), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["initiative_id"],
            ["initiatives.id"],
            name=op.f("fk_pages_initiative_id_initiatives"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["parent_page_id"], ["pages.id"], name=op.f("fk_pages_parent_page_id_pages"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pages")),
    )
    with op.batch_alter_table("pages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pages_initiative_id"), ["initiative_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_pages_parent_page_id"), ["parent_page_id"], unique=False)
        batch_op.create_index(
            "uq_pages_root_per_initiative",
            ["initiative_id"],
            unique=True,
            sqlite_where=sa.text("parent_page_id IS NULL"),
            postgresql_where=sa.text("parent_page_id IS NULL"),
        )

    op.create_table(
        "phases",
        sa.Column("initiative_id", sa.String(length=21), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "approved",
                "in_progress",
                "completed",
                "blocked",
                "pending_review",
                name="phase_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default="pending",
            nullable=False,
        ),
        sa.Column("merge_base", sa.Text(), nullable=True),
        sa.Column("id", sa.String(length=21), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["initiative_id"],
            ["initiatives.id"],
            name=op.f("fk_phases_initiative_id_initiatives"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_phases")),
    )
    with op.batch_alter_table("phases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_phases_initiative_id"), ["initiative_id"], unique=False)

    op.create_table(
        "phase_dependencies",
        sa.Column("phase_id", sa.String(length=21), nullable=False),
        sa.Column("depends_on_phase_id", sa.String(length=21), nullable=False),
        sa.Column("id", sa.String(length=21), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("phase_id <> depends_on_phase_id", name=op.f("ck_phase_dependencies_not_self")),
        sa.ForeignKeyConstraint(
            ["depends_on_phase_id"],
            ["phases.id"],
            name=op.f("fk_phase_dependencies_depends_on_phase_id_phases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["phase_id"],
            ["phases.id"],
            name=op.f("fk_phase_dependencies_phase_id_phases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_phase_dependencies")),
        sa.UniqueConstraint(
            "phase_id", "depends_on_phase_id", name=op.f("uq_phase_dependencies_phase_id_depends_on_phase_id")
        ),
    )
    with op.batch_alter_table("phase_dependencies", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_phase_dependencies_depends_on_phase_id"), ["depends_on_phase_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_phase_dependencies_phase_id"), ["phase_id"], unique=False)

    op.create_table(
        "review_comments",
        sa.Column("phase_id", sa.String(length=21), nullable=False),
        sa.Column("file_path", sa.Text(), nullable=False),
        sa.Column("line_number", sa.Integer(), nullable=False),
        sa.Column(
            "line_type",
            sa.Enum(
                "added",
                "removed",
                "context",
                name="review_line_type",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("author", sa.Text(), server_default="you", nullable=False),
        sa.Column(
            "resolved",
            sa.Boolean(create_constraint=True, name="resolved"),
            server_default=sa.false(),
            nullable=False,
        ),
        sa.Column("id", sa.String(length=21), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["phase_id"], ["phases.id"], name=op.f("fk_review_comments_phase_id_phases"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_comments")),
    )
    with op.batch_alter_table("review_comments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_review_comments_phase_id"), ["phase_id"], unique=False)

    op.create_table(
        "tasks",
        sa.Column("phase_id", sa.String(length=21), nullable=True),
        sa.Column("initiative_id", sa.String(length=21), nullable=True),
        sa.Column("parent_task_id", sa.String(length=21), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "type",
            sa.Enum("auto", name="task_type", native_enum=False, create_constraint=True, length=32),
            server_default="auto",
            nullable=False,
        ),
        sa.Column(
            "category",
            sa.Enum(
                "execute",
                "research",
                "discuss",
                "plan",
                "detail",
                "refine",
                "verify",
                "merge",
                "review",
                name="task_category",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default="execute",
            nullable=False,
        ),
        sa.Column(
            "priority",
            sa.Enum(
                "low",
                "medium",
                "high",
                name="task_priority",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default="medium",
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "in_progress",
                "completed",
                "blocked",
                name="task_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default="pending",
            nullable=False,
        ),
        sa.Column("order", sa.Integer(), server_default="0", nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("id", sa.String(length=21), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["initiative_id"],
            ["initiatives.id"],
            name=op.f("fk_tasks_initiative_id_initiatives"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["parent_task_id"], ["tasks.id"], name=op.f("fk_tasks_parent_task_id_tasks"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["phase_id"], ["phases.id"], name=op.f("fk_tasks_phase_id_phases"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tasks_initiative_id"), ["initiative_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_tasks_parent_task_id"), ["parent_task_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_tasks_phase_id"), ["phase_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_tasks_status"), ["status"], unique=False)

    op.create_table(
        "agents",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("task_id", sa.String(length=21), nullable=True),
        sa.Column("initiative_id", sa.String(length=21), nullable=True),
        sa.Column("session_id", sa.Text(), nullable=True),
        sa.Column("worktree_id", sa.Text(), nullable=False),
        sa.Column("provider", sa.Text(), server_default="claude", nullable=False),
        sa.Column("account_id", sa.String(length=21), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "idle",
                "running",
                "waiting_for_input",
                "stopped",
                "crashed",
                name="agent_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default="idle",
            nullable=False,
        ),
        sa.Column(
            "mode",
            sa.Enum(
                "execute",
                "discuss",
                "plan",
                "detail",
                "refine",
                name="agent_mode",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default="execute",
            nullable=False,
        ),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("output_file_path", sa.Text(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("pending_questions", sa.Text(), nullable=True),
        sa.Column("user_dismissed_at", sa.DateTime(), nullable=True),
        sa.Column("id", sa.String(length=21), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_agents_account_id_accounts"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["initiative_id"],
            ["initiatives.id"],
            name=op.f("fk_agents_initiative_id_initiatives"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], name=op.f("fk_agents_task_id_tasks"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
        sa.UniqueConstraint("name", name=op.f("uq_agents_name")),
    )
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_agents_session_id"), ["session_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_agents_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_agents_task_id"), ["task_id"], unique=False)

    op.create_table(
        "task_dependencies",
        sa.Column("task_id", sa.String(length=21), nullable=False),
        sa.Column("depends_on_task_id", sa.String(length=21), nullable=False),
        sa.Column("id", sa.String(length=21), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("task_id <> depends_on_task_id", name=op.f("ck_task_dependencies_not_self")),
        sa.ForeignKeyConstraint(
            ["depends_on_task_id"],
            ["tasks.id"],
            name=op.f("fk_task_dependencies_depends_on_task_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_task_dependencies_task_id_tasks"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_dependencies")),
        sa.UniqueConstraint(
            "task_id", "depends_on_task_id", name=op.f("uq_task_dependencies_task_id_depends_on_task_id")
        ),
    )
    with op.batch_alter_table("task_dependencies", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_task_dependencies_depends_on_task_id"), ["depends_on_task_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_task_dependencies_task_id"), ["task_id"], unique=False)

    op.create_table(
        "chat_sessions",
        sa.Column(
            "target_type",
            sa.Enum("phase", "task", name="chat_target_type", native_enum=False, create_constraint=True, length=32),
            nullable=False,
        ),
        sa.Column("target_id", sa.Text(), nullable=False),
        sa.Column("initiative_id", sa.String(length=21), nullable=False),
        sa.Column("agent_id", sa.String(length=21), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "active",
                "closed",
                name="chat_session_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default="active",
            nullable=False,
        ),
        sa.Column("id", sa.String(length=21), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_chat_sessions_agent_id_agents"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["initiative_id"],
            ["initiatives.id"],
            name=op.f("fk_chat_sessions_initiative_id_initiatives"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_sessions")),
    )
    with op.batch_alter_table("chat_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_chat_sessions_initiative_id"), ["initiative_id"], unique=False)
        batch_op.create_index("ix_chat_sessions_target_type_target_id", ["target_type", "target_id"], unique=False)

    op.create_table(
        "conversations",
        sa.Column("from_agent_id", sa.String(length=21), nullable=False),
        sa.Column("to_agent_id", sa.String(length=21), nullable=False),
        sa.Column("initiative_id", sa.String(length=21), nullable=True),
        sa.Column("phase_id", sa.String(length=21), nullable=True),
        sa.Column("task_id", sa.String(length=21), nullable=True),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "answered",
                name="conversation_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default="pending",
            nullable=False,
        ),
        sa.Column("id", sa.String(length=21), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["from_agent_id"],
            ["agents.id"],
            name=op.f("fk_conversations_from_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["initiative_id"],
            ["initiatives.id"],
            name=op.f("fk_conversations_initiative_id_initiatives"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["phase_id"], ["phases.id"], name=op.f("fk_conversations_phase_id_phases"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_conversations_task_id_tasks"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["to_agent_id"],
            ["agents.id"],
            name=op.f("fk_conversations_to_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
    )
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_conversations_from_agent_id"), ["from_agent_id"], unique=False)
        batch_op.create_index("ix_conversations_to_agent_id_status", ["to_agent_id", "status"], unique=False)

    op.create_table(
        "messages",
        sa.Column(
            "sender_type",
            sa.Enum(
                "agent",
                "user",
                name="message_sender_type",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("sender_id", sa.String(length=21), nullable=True),
        sa.Column(
            "recipient_type",
            sa.Enum(
                "agent",
                "user",
                name="message_recipient_type",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("recipient_id", sa.String(length=21), nullable=True),
        sa.Column(
            "type",
            sa.Enum(
                "question",
                "info",
                "error",
                "response",
                name="message_type",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default="info",
            nullable=False,
        ),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column(
            "requires_response",
            sa.Boolean(create_constraint=True, name="requires_response"),
            server_default=sa.false(),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "read",
                "responded",
                name="message_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default="pending",
            nullable=False,
        ),
        sa.Column("parent_message_id", sa.String(length=21), nullable=True),
        sa.Column("id", sa.String(length=21), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_message_id"],
            ["messages.id"],
            name=op.f("fk_messages_parent_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["recipient_id"], ["agents.id"], name=op.f("fk_messages_recipient_id_agents"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["sender_id"], ["agents.id"], name=op.f("fk_messages_sender_id_agents"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_messages_parent_message_id"), ["parent_message_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_messages_recipient_id"), ["recipient_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_messages_sender_id"), ["sender_id"], unique=False)

    op.create_table(
        "proposals",
        sa.Column("agent_id", sa.String(length=21), nullable=False),
        sa.Column("initiative_id", sa.String(length=21), nullable=False),
        sa.Column(
            "target_type",
            sa.Enum(
                "page",
                "phase",
                "task",
                name="proposal_target_type",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("target_id", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("metadata", sa.Text(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "accepted",
                "dismissed",
                name="proposal_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default="pending",
            nullable=False,
        ),
        sa.Column("sort_order", sa.Integer(), server_default="0", nullable=False),
        sa.Column("id", sa.String(length=21), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_proposals_agent_id_agents"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["initiative_id"],
            ["initiatives.id"],
            name=op.f("fk_proposals_initiative_id_initiatives"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proposals")),
    )
    with op.batch_alter_table("proposals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_proposals_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_proposals_initiative_id"), ["initiative_id"], unique=False)

    op.create_table(
        "change_sets",
        sa.Column("chat_session_id", sa.String(length=21), nullable=True),
        sa.Column("initiative_id", sa.String(length=21), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "applied",
                "reverted",
                name="change_set_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default="applied",
            nullable=False,
        ),
        sa.Column("entries", sa.JSON(), nullable=False),
        sa.Column("id", sa.String(length=21), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["chat_session_id"],
            ["chat_sessions.id"],
            name=op.f("fk_change_sets_chat_session_id_chat_sessions"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["initiative_id"],
            ["initiatives.id"],
            name=op.f("fk_change_sets_initiative_id_initiatives"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_sets")),
    )
    with op.batch_alter_table("change_sets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_change_sets_chat_session_id"), ["chat_session_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_change_sets_initiative_id"), ["initiative_id"], unique=False)

    op.create_table(
        "chat_messages",
        sa.Column("chat_session_id", sa.String(length=21), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "user",
                "assistant",
                "system",
                name="chat_role",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("change_set_id", sa.String(length=21), nullable=True),
        sa.Column("id", sa.String(length=21), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["change_set_id"],
            ["change_sets.id"],
            name=op.f("fk_chat_messages_change_set_id_change_sets"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["chat_session_id"],
            ["chat_sessions.id"],
            name=op.f("fk_chat_messages_chat_session_id_chat_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_messages")),
    )
    with op.batch_alter_table("chat_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_chat_messages_chat_session_id"), ["chat_session_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("chat_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chat_messages_chat_session_id"))

    op.drop_table("chat_messages")
    with op.batch_alter_table("change_sets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_change_sets_initiative_id"))
        batch_op.drop_index(batch_op.f("ix_change_sets_chat_session_id"))

    op.drop_table("change_sets")
    with op.batch_alter_table("proposals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_proposals_initiative_id"))
        batch_op.drop_index(batch_op.f("ix_proposals_agent_id"))

    op.drop_table("proposals")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_sender_id"))
        batch_op.drop_index(batch_op.f("ix_messages_recipient_id"))
        batch_op.drop_index(batch_op.f("ix_messages_parent_message_id"))

    op.drop_table("messages")
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_index("ix_conversations_to_agent_id_status")
        batch_op.drop_index(batch_op.f("ix_conversations_from_agent_id"))

    op.drop_table("conversations")
    with op.batch_alter_table("chat_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_chat_sessions_target_type_target_id")
        batch_op.drop_index(batch_op.f("ix_chat_sessions_initiative_id"))

    op.drop_table("chat_sessions")
    with op.batch_alter_table("task_dependencies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_dependencies_task_id"))
        batch_op.drop_index(batch_op.f("ix_task_dependencies_depends_on_task_id"))

    op.drop_table("task_dependencies")
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agents_task_id"))
        batch_op.drop_index(batch_op.f("ix_agents_status"))
        batch_op.drop_index(batch_op.f("ix_agents_session_id"))

    op.drop_table("agents")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tasks_status"))
        batch_op.drop_index(batch_op.f("ix_tasks_phase_id"))
        batch_op.drop_index(batch_op.f("ix_tasks_parent_task_id"))
        batch_op.drop_index(batch_op.f("ix_tasks_initiative_id"))

    op.drop_table("tasks")
    with op.batch_alter_table("review_comments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_comments_phase_id"))

    op.drop_table("review_comments")
    with op.batch_alter_table("phase_dependencies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_phase_dependencies_phase_id"))
        batch_op.drop_index(batch_op.f("ix_phase_dependencies_depends_on_phase_id"))

    op.drop_table("phase_dependencies")
    with op.batch_alter_table("phases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_phases_initiative_id"))

    op.drop_table("phases")
    with op.batch_alter_table("pages", schema=None) as batch_op:
        batch_op.drop_index("uq_pages_root_per_initiative", sqlite_where=sa.text("parent_page_id IS NULL"))
        batch_op.drop_index(batch_op.f("ix_pages_parent_page_id"))
        batch_op.drop_index(batch_op.f("ix_pages_initiative_id"))

    op.drop_table("pages")
    with op.batch_alter_table("initiative_projects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_initiative_projects_project_id"))

    op.drop_table("initiative_projects")
    op.drop_table("request_records")
    op.drop_table("projects")
    op.drop_table("initiatives")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_type"))
        batch_op.drop_index(batch_op.f("ix_events_initiative_id"))

    op.drop_table("events")
    with op.batch_alter_table("agent_log_chunks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agent_log_chunks_agent_id"))

    op.drop_table("agent_log_chunks")
    op.drop_table("accounts")

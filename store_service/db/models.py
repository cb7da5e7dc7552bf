"""Tables of the store, one mapped class each.

Attribute names match the proto field names (`create_time`, `retry_count`), so the API layer can
convert rows and messages generically; column names follow the original schema in snake_case
(`created_at`, `retry_count`).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Double,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, synonym

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID_LENGTH = 21
TASK_CATEGORIES = ("execute", "research", "discuss", "plan", "detail", "refine", "verify", "merge", "review")
TASK_PRIORITIES = ("low", "medium", "high")


def new_id() -> str:
    """A 21-character URL-safe random id, as long and as random as a nanoid. It never starts with
    `-` or `_`, so a command line never mistakes it for an option."""
    while True:
        candidate = secrets.token_urlsafe(16)[:ID_LENGTH]
        if candidate[0].isalnum():
            return candidate


def utcnow() -> datetime:
    """Naive UTC: SQLite keeps no zone, so every stored time is UTC by convention."""
    return datetime.now(UTC).replace(tzinfo=None)


def choice(name: str, *values: str) -> Enum:
    """A text column restricted to `values` by a CHECK constraint (no native enum in SQLite)."""
    return Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)

    # The event-type prefix of the entity (`task` gives `task:created`).
    event_entity: ClassVar[str] = ""

    def event_scope(self) -> dict[str, str | None]:
        """The initiative, phase, task and agent ids an event about this row carries."""
        return {}


def _fk(target: str, ondelete: str, nullable: bool = True, **kwargs: Any) -> Any:
    return mapped_column(ForeignKey(target, ondelete=ondelete), nullable=nullable, **kwargs)


def _usage_column(kind: Any) -> Any:
    """A part of an agent's usage: zero until its CLI reports some."""
    return mapped_column(kind, nullable=False, default=0, server_default="0")


class Timestamped:
    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True, default=new_id)
    create_time: Mapped[datetime] = mapped_column("created_at", DateTime, nullable=False, default=utcnow)
    # Every write moves it forward, strictly (store_service/db/update_times.py).
    update_time: Mapped[datetime] = mapped_column("updated_at", DateTime, nullable=False, default=utcnow)


class CreatedOnly:
    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True, default=new_id)
    create_time: Mapped[datetime] = mapped_column("created_at", DateTime, nullable=False, default=utcnow)


class Initiative(Timestamped, Base):
    __tablename__ = "initiatives"
    event_entity = "initiative"

    name: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(
        choice("initiative_status", "active", "pending_review", "completed", "archived"),
        nullable=False,
        default="active",
        server_default="active",
    )
    branch: Mapped[str | None] = mapped_column(Text, unique=True)
    budget_tokens: Mapped[int | None] = mapped_column(BigInteger)
    budget_usd: Mapped[float | None] = mapped_column(Double)
    # The provider its tasks run on (NULL: the orchestrator's default), and where they go, in
    # order, when every account of theirs rests (a JSON list of names; NULL: nowhere).
    provider: Mapped[str | None] = mapped_column(Text)
    fallback_providers: Mapped[list[str] | None] = mapped_column(JSON)

    def event_scope(self) -> dict[str, str | None]:
        return {"initiative_id": self.id}


class Phase(Timestamped, Base):
    __tablename__ = "phases"
    event_entity = "phase"

    initiative_id: Mapped[str] = _fk("initiatives.id", "CASCADE", nullable=False, index=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    content: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(
        choice("phase_status", "pending", "approved", "in_progress", "completed", "blocked", "pending_review"),
        nullable=False,
        default="pending",
        server_default="pending",
    )
    merge_base: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    # Project id -> the merge commit MergePhase made for it (a proto map<string, string>).
    merge_commits: Mapped[dict[str, str] | None] = mapped_column(JSON)

    def event_scope(self) -> dict[str, str | None]:
        return {"initiative_id": self.initiative_id, "phase_id": self.id}


class PhaseDependency(CreatedOnly, Base):
    __tablename__ = "phase_dependencies"
    __table_args__ = (
        UniqueConstraint("phase_id", "depends_on_phase_id"),
        CheckConstraint("phase_id <> depends_on_phase_id", name="not_self"),
    )
    event_entity = "phase_dependency"

    phase_id: Mapped[str] = _fk("phases.id", "CASCADE", nullable=False, index=True)
    depends_on_phase_id: Mapped[str] = _fk("phases.id", "CASCADE", nullable=False, index=True)

    def event_scope(self) -> dict[str, str | None]:
        return {"phase_id": self.phase_id}


class Task(Timestamped, Base):
    __tablename__ = "tasks"
    event_entity = "task"

    phase_id: Mapped[str | None] = _fk("phases.id", "CASCADE", index=True)
    initiative_id: Mapped[str | None] = _fk("initiatives.id", "CASCADE", index=True)
    parent_task_id: Mapped[str | None] = _fk("tasks.id", "CASCADE", index=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    type: Mapped[str] = mapped_column(
        choice("task_type", "auto"), nullable=False, default="auto", server_default="auto"
    )
    category: Mapped[str] = mapped_column(
        choice("task_category", *TASK_CATEGORIES),
        nullable=False,
        default="execute",
        server_default="execute",
    )
    priority: Mapped[str] = mapped_column(
        choice("task_priority", *TASK_PRIORITIES),
        nullable=False,
        default="medium",
        server_default="medium",
    )
    status: Mapped[str] = mapped_column(
        choice("task_status", "pending", "in_progress", "completed", "blocked"),
        nullable=False,
        default="pending",
        server_default="pending",
        index=True,
    )
    order: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    summary: Mapped[str | None] = mapped_column(Text)
    retry_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    merge_time: Mapped[datetime | None] = mapped_column("merged_at", DateTime)
    queue_time: Mapped[datetime | None] = mapped_column("queued_at", DateTime)
    reason: Mapped[str | None] = mapped_column(Text)
    next_attempt_time: Mapped[datetime | None] = mapped_column("next_attempt_at", DateTime)
    # A planning task's page, phase or task (no foreign key: it names a row of one of three tables).
    target_id: Mapped[str | None] = mapped_column(Text)
    # Review and repair: the comments a revision addresses and those its agent reported addressed
    # (JSON lists of ids); what a merge task resolves: a task's conflict with its base branch, or
    # its phase's with the initiative branch.
    review_comment_ids: Mapped[list[str] | None] = mapped_column(JSON)
    resolved_comment_ids: Mapped[list[str] | None] = mapped_column(JSON)
    merge_source_task_id: Mapped[str | None] = _fk("tasks.id", "SET NULL")
    budget_tokens: Mapped[int | None] = mapped_column(BigInteger)
    budget_usd: Mapped[float | None] = mapped_column(Double)
    merge_source_phase_id: Mapped[str | None] = _fk("phases.id", "SET NULL")
    # The provider its runs use (NULL: its initiative's, else the orchestrator's default).
    provider: Mapped[str | None] = mapped_column(Text)

    def event_scope(self) -> dict[str, str | None]:
        return {"initiative_id": self.initiative_id, "phase_id": self.phase_id, "task_id": self.id}


class TaskDependency(CreatedOnly, Base):
    __tablename__ = "task_dependencies"
    __table_args__ = (
        UniqueConstraint("task_id", "depends_on_task_id"),
        CheckConstraint("task_id <> depends_on_task_id", name="not_self"),
    )
    event_entity = "task_dependency"

    task_id: Mapped[str] = _fk("tasks.id", "CASCADE", nullable=False, index=True)
    depends_on_task_id: Mapped[str] = _fk("tasks.id", "CASCADE", nullable=False, index=True)

    def event_scope(self) -> dict[str, str | None]:
        return {"task_id": self.task_id}


class Account(Timestamped, Base):
    __tablename__ = "accounts"
    event_entity = "account"

    email: Mapped[str] = mapped_column(Text, nullable=False)
    provider: Mapped[str] = mapped_column(Text, nullable=False, default="claude", server_default="claude")
    config_json: Mapped[str | None] = mapped_column(Text)
    credentials: Mapped[str | None] = mapped_column(Text)
    is_exhausted: Mapped[bool] = mapped_column(
        Boolean(create_constraint=True, name="is_exhausted"),
        nullable=False,
        default=False,
        server_default=false(),
    )
    exhausted_until: Mapped[datetime | None] = mapped_column(DateTime)
    last_used_time: Mapped[datetime | None] = mapped_column("last_used_at", DateTime)
    sort_order: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    # Why the provider refused the account's credential; NULL or empty while usable.
    unusable_reason: Mapped[str | None] = mapped_column(Text)
    # At most this many live agents use it at once; 0: no cap.
    max_concurrent_agents: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")

    # Never leave the store except through GetAccountSecrets, never in events or logs.
    secret_fields: ClassVar[frozenset[str]] = frozenset({"config_json", "credentials"})


class Agent(Timestamped, Base):
    __tablename__ = "agents"
    event_entity = "agent"

    name: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    task_id: Mapped[str | None] = _fk("tasks.id", "SET NULL", index=True)
    initiative_id: Mapped[str | None] = _fk("initiatives.id", "SET NULL")
    session_id: Mapped[str | None] = mapped_column(Text, index=True)
    worktree_id: Mapped[str] = mapped_column(Text, nullable=False)
    provider: Mapped[str] = mapped_column(Text, nullable=False, default="claude", server_default="claude")
    account_id: Mapped[str | None] = _fk("accounts.id", "SET NULL")
    status: Mapped[str] = mapped_column(
        choice("agent_status", "idle", "running", "waiting_for_input", "stopped", "crashed"),
        nullable=False,
        default="idle",
        server_default="idle",
        index=True,
    )
    mode: Mapped[str] = mapped_column(
        choice("agent_mode", "execute", "discuss", "plan", "detail", "refine"),
        nullable=False,
        default="execute",
        server_default="execute",
    )
    pid: Mapped[int | None] = mapped_column(Integer)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    output_file_path: Mapped[str | None] = mapped_column(Text)
    result: Mapped[str | None] = mapped_column(Text)
    pending_questions: Mapped[str | None] = mapped_column(Text)
    user_dismiss_time: Mapped[datetime | None] = mapped_column("user_dismissed_at", DateTime)
    # How the latest run ended; NULL (AGENT_OUTCOME_UNSPECIFIED) while it runs, waits or never ran.
    outcome: Mapped[str | None] = mapped_column(
        choice(
            "agent_outcome",
            "done",
            "failed",
            "crashed",
            "stopped",
            "rate_limited",
            "never_started",
            "credentials_refused",
        )
    )
    error: Mapped[str | None] = mapped_column(Text)
    # The conversation the agent's current run answers. No foreign key: conversations point at
    # agents (and go with them), so the orchestrator treats a dangling id as "no longer asked".
    conversation_id: Mapped[str | None] = mapped_column(Text)
    # The orchestrator (by name) that runs the agent: it alone watches and settles its runs.
    orchestrator: Mapped[str | None] = mapped_column(Text, index=True)
    # Agent.usage, flat (api/convert.py), so that SumAgentUsage sums it in the database.
    usage_input_tokens: Mapped[int] = _usage_column(BigInteger)
    usage_output_tokens: Mapped[int] = _usage_column(BigInteger)
    usage_cache_read_tokens: Mapped[int] = _usage_column(BigInteger)
    usage_cache_write_tokens: Mapped[int] = _usage_column(BigInteger)
    usage_cost_usd: Mapped[float] = _usage_column(Double)

    def event_scope(self) -> dict[str, str | None]:
        return {"initiative_id": self.initiative_id, "task_id": self.task_id, "agent_id": self.id}


class Proposal(Timestamped, Base):
    __tablename__ = "proposals"
    event_entity = "proposal"

    agent_id: Mapped[str] = _fk("agents.id", "CASCADE", nullable=False, index=True)
    initiative_id: Mapped[str] = _fk("initiatives.id", "CASCADE", nullable=False, index=True)
    target_type: Mapped[str] = mapped_column(choice("proposal_target_type", "page", "phase", "task"), nullable=False)
    target_id: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text, nullable=False)
    summary: Mapped[str | None] = mapped_column(Text)
    content: Mapped[str | None] = mapped_column(Text)
    metadata_json: Mapped[str | None] = mapped_column("metadata", Text)
    status: Mapped[str] = mapped_column(
        choice("proposal_status", "pending", "accepted", "dismissed"),
        nullable=False,
        default="pending",
        server_default="pending",
    )
    sort_order: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    # The agent's key, local to its report; references (a task's phase, a page's parent, dependencies)
    # are keys of the same report or existing ids, resolved when accepted.
    key: Mapped[str | None] = mapped_column("proposal_key", Text)
    report_id: Mapped[str | None] = mapped_column(Text, index=True)
    parent: Mapped[str | None] = mapped_column(Text)
    depends_on: Mapped[list[str] | None] = mapped_column(JSON)
    priority: Mapped[str | None] = mapped_column(choice("proposal_priority", *TASK_PRIORITIES))
    category: Mapped[str | None] = mapped_column(choice("proposal_category", *TASK_CATEGORIES))
    # The target's update_time when the agent read it; a later one makes the proposal stale.
    target_update_time: Mapped[datetime | None] = mapped_column("target_updated_at", DateTime)
    change_set_id: Mapped[str | None] = _fk("change_sets.id", "SET NULL", index=True)
    # The page, phase or task the accepted proposal made or changed.
    entity_id: Mapped[str | None] = mapped_column(Text)

    def event_scope(self) -> dict[str, str | None]:
        return {"initiative_id": self.initiative_id, "agent_id": self.agent_id}


class Page(Timestamped, Base):
    __tablename__ = "pages"
    __table_args__ = (
        # At most one root page per initiative, whatever the interleaving of writers.
        Index(
            "uq_pages_root_per_initiative",
            "initiative_id",
            unique=True,
            sqlite_where=text("parent_page_id IS NULL"),
            postgresql_where=text("parent_page_id IS NULL"),
        ),
    )
    event_entity = "page"

    initiative_id: Mapped[str] = _fk("initiatives.id", "CASCADE", nullable=False, index=True)
    parent_page_id: Mapped[str | None] = _fk("pages.id", "CASCADE", index=True)
    title: Mapped[str] = mapped_column(Text, nullable=False)
    content: Mapped[str | None] = mapped_column(Text)
    sort_order: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")

    def event_scope(self) -> dict[str, str | None]:
        return {"initiative_id": self.initiative_id}


class Project(Timestamped, Base):
    __tablename__ = "projects"
    event_entity = "project"

    name: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    url: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    default_branch: Mapped[str] = mapped_column(Text, nullable=False, default="main", server_default="main")
    last_fetch_time: Mapped[datetime | None] = mapped_column("last_fetched_at", DateTime)
    sync_error: Mapped[str | None] = mapped_column(Text)
    sync_error_time: Mapped[datetime | None] = mapped_column("sync_error_at", DateTime)
    # The git repository every orchestrator keeps the project's cw branches in (path or URL).
    shared_remote: Mapped[str | None] = mapped_column(Text)


class InitiativeProject(CreatedOnly, Base):
    __tablename__ = "initiative_projects"
    __table_args__ = (UniqueConstraint("initiative_id", "project_id"),)
    event_entity = "initiative_project"

    initiative_id: Mapped[str] = _fk("initiatives.id", "CASCADE", nullable=False)
    project_id: Mapped[str] = _fk("projects.id", "CASCADE", nullable=False, index=True)

    def event_scope(self) -> dict[str, str | None]:
        return {"initiative_id": self.initiative_id}


class Message(Timestamped, Base):
    __tablename__ = "messages"
    event_entity = "message"

    sender_type: Mapped[str] = mapped_column(choice("message_sender_type", "agent", "user"), nullable=False)
    sender_id: Mapped[str | None] = _fk("agents.id", "SET NULL", index=True)
    recipient_type: Mapped[str] = mapped_column(choice("message_recipient_type", "agent", "user"), nullable=False)
    recipient_id: Mapped[str | None] = _fk("agents.id", "SET NULL", index=True)
    type: Mapped[str] = mapped_column(
        choice("message_type", "question", "info", "error", "response"),
        nullable=False,
        default="info",
        server_default="info",
    )
    content: Mapped[str] = mapped_column(Text, nullable=False)
    requires_response: Mapped[bool] = mapped_column(
        Boolean(create_constraint=True, name="requires_response"),
        nullable=False,
        default=False,
        server_default=false(),
    )
    status: Mapped[str] = mapped_column(
        choice("message_status", "pending", "read", "responded"),
        nullable=False,
        default="pending",
        server_default="pending",
    )
    parent_message_id: Mapped[str | None] = _fk("messages.id", "CASCADE", index=True)


class LogChunk(CreatedOnly, Base):
    __tablename__ = "agent_log_chunks"
    event_entity = "log_chunk"

    # Deliberately no foreign key: chunks outlive their agent.
    agent_id: Mapped[str] = mapped_column(Text, nullable=False, index=True)
    agent_name: Mapped[str] = mapped_column(Text, nullable=False)
    session_number: Mapped[int] = mapped_column(Integer, nullable=False, default=1, server_default="1")
    content: Mapped[str] = mapped_column(Text, nullable=False)

    def event_scope(self) -> dict[str, str | None]:
        return {"agent_id": self.agent_id}


class Conversation(Timestamped, Base):
    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_to_agent_id_status", "to_agent_id", "status"),)
    event_entity = "conversation"

    from_agent_id: Mapped[str] = _fk("agents.id", "CASCADE", nullable=False, index=True)
    to_agent_id: Mapped[str] = _fk("agents.id", "CASCADE", nullable=False)
    initiative_id: Mapped[str | None] = _fk("initiatives.id", "SET NULL")
    phase_id: Mapped[str | None] = _fk("phases.id", "SET NULL")
    task_id: Mapped[str | None] = _fk("tasks.id", "SET NULL")
    question: Mapped[str] = mapped_column(Text, nullable=False)
    answer: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(
        choice("conversation_status", "pending", "answered"),
        nullable=False,
        default="pending",
        server_default="pending",
    )
    # Failed answer runs so far, and when the next may start (retried as tasks are).
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    next_attempt_time: Mapped[datetime | None] = mapped_column("next_attempt_at", DateTime)

    def event_scope(self) -> dict[str, str | None]:
        return {
            "initiative_id": self.initiative_id,
            "phase_id": self.phase_id,
            "task_id": self.task_id,
            "agent_id": self.to_agent_id,
        }


class ChatSession(Timestamped, Base):
    __tablename__ = "chat_sessions"
    __table_args__ = (Index("ix_chat_sessions_target_type_target_id", "target_type", "target_id"),)
    event_entity = "chat_session"

    target_type: Mapped[str] = mapped_column(choice("chat_target_type", "phase", "task"), nullable=False)
    target_id: Mapped[str] = mapped_column(Text, nullable=False)
    initiative_id: Mapped[str] = _fk("initiatives.id", "CASCADE", nullable=False, index=True)
    agent_id: Mapped[str | None] = _fk("agents.id", "SET NULL")
    status: Mapped[str] = mapped_column(
        choice("chat_session_status", "active", "closed"),
        nullable=False,
        default="active",
        server_default="active",
    )
    # The refine task whose agent answers the session (set by the orchestrator).
    task_id: Mapped[str | None] = _fk("tasks.id", "SET NULL")

    def event_scope(self) -> dict[str, str | None]:
        return {"initiative_id": self.initiative_id, "agent_id": self.agent_id}


class ChangeSet(Timestamped, Base):
    """What one chat-driven refinement changed, so it can be shown and reverted."""

    __tablename__ = "change_sets"
    event_entity = "change_set"

    chat_session_id: Mapped[str | None] = _fk("chat_sessions.id", "SET NULL", index=True)
    initiative_id: Mapped[str] = _fk("initiatives.id", "CASCADE", nullable=False, index=True)
    summary: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(
        choice("change_set_status", "applied", "reverted"),
        nullable=False,
        default="applied",
        server_default="applied",
    )
    # [{entity_type, entity_id, action, before, after}] in the order applied.
    entries: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False, default=list)

    def event_scope(self) -> dict[str, str | None]:
        return {"initiative_id": self.initiative_id}


class ChatMessage(CreatedOnly, Base):
    __tablename__ = "chat_messages"
    event_entity = "chat_message"

    chat_session_id: Mapped[str] = _fk("chat_sessions.id", "CASCADE", nullable=False, index=True)
    role: Mapped[str] = mapped_column(choice("chat_role", "user", "assistant", "system"), nullable=False)
    content: Mapped[str] = mapped_column(Text, nullable=False)
    change_set_id: Mapped[str | None] = _fk("change_sets.id", "SET NULL")


class ReviewComment(Timestamped, Base):
    __tablename__ = "review_comments"
    event_entity = "review_comment"

    phase_id: Mapped[str] = _fk("phases.id", "CASCADE", nullable=False, index=True)
    # The project whose worktree `file_path` is relative to (NULL: an older comment whose project
    # could not be told, migration 0008).
    project_id: Mapped[str | None] = _fk("projects.id", "SET NULL")
    file_path: Mapped[str] = mapped_column(Text, nullable=False)
    line_number: Mapped[int] = mapped_column(Integer, nullable=False)
    line_type: Mapped[str] = mapped_column(choice("review_line_type", "added", "removed", "context"), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    author: Mapped[str] = mapped_column(Text, nullable=False, default="you", server_default="you")
    resolved: Mapped[bool] = mapped_column(
        Boolean(create_constraint=True, name="resolved"),
        nullable=False,
        default=False,
        server_default=false(),
    )

    def event_scope(self) -> dict[str, str | None]:
        return {"phase_id": self.phase_id}


class Lease(Base):
    """A named claim (`orchestrator/<name>`, `merge/<id>`): its owner holds it until `expire_time`,
    by the store's clock, unless renewed. Coordination state, not work: no events (a renewal every
    few seconds would flood the log), and written only with compare-and-set statements
    (repositories/sqlalchemy/lease.py), so two writers never both win."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    owner: Mapped[str] = mapped_column(Text, nullable=False)
    expire_time: Mapped[datetime] = mapped_column("expires_at", DateTime, nullable=False)
    acquire_time: Mapped[datetime] = mapped_column("acquired_at", DateTime, nullable=False)
    create_time: Mapped[datetime] = mapped_column("created_at", DateTime, nullable=False, default=utcnow)
    update_time: Mapped[datetime] = mapped_column("updated_at", DateTime, nullable=False, default=utcnow)
    # The paging loop orders rows by (create_time, id): a lease's id is its name.
    id: Mapped[str] = synonym("name")


# int64, as the API's sequences; SQLite's INTEGER is 64 bits, and a key that AUTOINCREMENT numbers.
SEQUENCE_TYPE = BigInteger().with_variant(Integer(), "sqlite")


class Event(Base):
    """The durable event log (transactional outbox). The store numbers events itself, in the write
    transaction that records them (`repositories/sqlalchemy/event.py`, `next_sequence`), the same
    way on SQLite and PostgreSQL; SQLite's AUTOINCREMENT (from the first schema) stays and changes
    nothing."""

    __tablename__ = "events"
    __table_args__ = ({"sqlite_autoincrement": True},)

    sequence: Mapped[int] = mapped_column(SEQUENCE_TYPE, primary_key=True, autoincrement=False)
    type: Mapped[str] = mapped_column(Text, nullable=False, index=True)
    time: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    initiative_id: Mapped[str | None] = mapped_column(Text, index=True)
    phase_id: Mapped[str | None] = mapped_column(Text)
    task_id: Mapped[str | None] = mapped_column(Text)
    agent_id: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)


class RequestRecord(Base):
    """Remembers which resource a Create's `request_id` made, so a retried Create makes nothing new."""

    __tablename__ = "request_records"

    request_id: Mapped[str] = mapped_column(Text, primary_key=True)
    method: Mapped[str] = mapped_column(Text, primary_key=True)
    resource_id: Mapped[str] = mapped_column(Text, nullable=False)
    # A digest of the request that made it, so a replayed request_id with another payload is refused.
    payload_hash: Mapped[str | None] = mapped_column(Text)
    create_time: Mapped[datetime] = mapped_column("created_at", DateTime, nullable=False, default=utcnow)

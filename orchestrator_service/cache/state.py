"""The orchestrator's view of live work: a cache of store rows, never the only copy of a fact.

It holds what decisions need and nothing of finished history: tasks that are not both COMPLETED
and merged (plus every task of a phase still in play, for summaries and phase progress), phases
not COMPLETED, live agents, the initiatives and projects they belong to, dependency edges between
cached tasks, and conversations still PENDING. A row leaves the cache when it is finished; reading history is on demand.

Every row carries the event sequence it reflects, so an event the cache already saw (because the
orchestrator's own write answered with the row) is not read again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any, Generic, Literal, Never, TypeVar, cast

from cw.store.v1 import account_pb2, agent_pb2, conversation_pb2, initiative_pb2, phase_pb2, project_pb2, task_pb2
from orchestrator_service.cache.freshness import Freshness

LIVE_AGENT = (agent_pb2.AGENT_STATUS_RUNNING, agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT)
LIVE_PHASE = (
    phase_pb2.PHASE_STATUS_PENDING,
    phase_pb2.PHASE_STATUS_APPROVED,
    phase_pb2.PHASE_STATUS_IN_PROGRESS,
    phase_pb2.PHASE_STATUS_BLOCKED,
    phase_pb2.PHASE_STATUS_PENDING_REVIEW,
)
ACTIVE_PHASE = (
    phase_pb2.PHASE_STATUS_IN_PROGRESS,
    phase_pb2.PHASE_STATUS_BLOCKED,
    phase_pb2.PHASE_STATUS_PENDING_REVIEW,
)
UNFINISHED_TASK = (task_pb2.TASK_STATUS_PENDING, task_pb2.TASK_STATUS_IN_PROGRESS, task_pb2.TASK_STATUS_BLOCKED)


class RowKind(StrEnum):
    """The kinds of row a change is about: the store's entity names (`task:updated`), so a kind
    reads as its value in events, logs and store calls."""

    INITIATIVE = "initiative"
    PROJECT = "project"
    PHASE = "phase"
    TASK = "task"
    AGENT = "agent"
    ACCOUNT = "account"
    CONVERSATION = "conversation"
    # Not cached: a change of this kind only says a message arrived (conversations/person.py).
    MESSAGE = "message"


# One of the cached message types.
Row = (
    initiative_pb2.Initiative
    | project_pb2.Project
    | phase_pb2.Phase
    | task_pb2.Task
    | agent_pb2.Agent
    | account_pb2.Account
    | conversation_pb2.Conversation
)
CACHED_KINDS = frozenset(RowKind) - {RowKind.MESSAGE}
# What a change names besides a row's own fields: the cache's edges, set apart from the rows.
DEPENDENCIES = "depends_on"  # a task's (set_dependencies) or a phase's
PROJECTS = "projects"  # an initiative's (set_initiative_projects)

R = TypeVar("R", bound=Row)


@dataclass(frozen=True)
class RowChange(Generic[R]):
    """A cached row that appeared, changed or went away. `external` when someone else wrote it
    (a person, or the store on its own), so a key in back-off should look again at once."""

    id: str
    before: R | None
    after: R | None
    external: bool = False
    # What changed when the rows cannot say (an edge of the cache: DEPENDENCIES, PROJECTS).
    touched: frozenset[str] | None = None

    @cached_property
    def fields(self) -> frozenset[str]:
        """The names of the fields that changed, so a controller can skip a change that is none
        of its business. A row that appeared or went away changed every field; so did a row told
        again as it is (`before is after`: the cache asks its listeners to look at it again)."""
        if self.touched is not None:
            return self.touched
        before, after = self.before, self.after
        if before is None or after is None or before is after:
            row = after if after is not None else before
            return frozenset() if row is None else frozenset(f.name for f in row.DESCRIPTOR.fields) | _EDGES
        return frozenset(f.name for f in after.DESCRIPTOR.fields if getattr(before, f.name) != getattr(after, f.name))

    def touches(self, *names: str) -> bool:
        """Whether any of these fields changed."""
        return not self.fields.isdisjoint(names)


_EDGES = frozenset({DEPENDENCIES, PROJECTS})


@dataclass(frozen=True)
class InitiativeChange(RowChange[initiative_pb2.Initiative]):
    kind: Literal[RowKind.INITIATIVE] = field(default=RowKind.INITIATIVE, init=False)


@dataclass(frozen=True)
class ProjectChange(RowChange[project_pb2.Project]):
    kind: Literal[RowKind.PROJECT] = field(default=RowKind.PROJECT, init=False)


@dataclass(frozen=True)
class PhaseChange(RowChange[phase_pb2.Phase]):
    kind: Literal[RowKind.PHASE] = field(default=RowKind.PHASE, init=False)


@dataclass(frozen=True)
class TaskChange(RowChange[task_pb2.Task]):
    kind: Literal[RowKind.TASK] = field(default=RowKind.TASK, init=False)


@dataclass(frozen=True)
class AgentChange(RowChange[agent_pb2.Agent]):
    kind: Literal[RowKind.AGENT] = field(default=RowKind.AGENT, init=False)


@dataclass(frozen=True)
class AccountChange(RowChange[account_pb2.Account]):
    kind: Literal[RowKind.ACCOUNT] = field(default=RowKind.ACCOUNT, init=False)


@dataclass(frozen=True)
class ConversationChange(RowChange[conversation_pb2.Conversation]):
    kind: Literal[RowKind.CONVERSATION] = field(default=RowKind.CONVERSATION, init=False)


@dataclass(frozen=True)
class MessageChange(RowChange[Never]):
    kind: Literal[RowKind.MESSAGE] = field(default=RowKind.MESSAGE, init=False)


# A change of any kind: comparing its `kind` with a RowKind narrows it to that kind's rows.
Change = (
    InitiativeChange
    | ProjectChange
    | PhaseChange
    | TaskChange
    | AgentChange
    | AccountChange
    | ConversationChange
    | MessageChange
)
_CHANGES: dict[RowKind, type[RowChange[Any]]] = {
    RowKind.INITIATIVE: InitiativeChange,
    RowKind.PROJECT: ProjectChange,
    RowKind.PHASE: PhaseChange,
    RowKind.TASK: TaskChange,
    RowKind.AGENT: AgentChange,
    RowKind.ACCOUNT: AccountChange,
    RowKind.CONVERSATION: ConversationChange,
    RowKind.MESSAGE: MessageChange,
}


def change_of(
    kind: RowKind,
    row_id: str,
    before: Row | None,
    after: Row | None,
    external: bool = False,
    *,
    touched: frozenset[str] | None = None,
) -> Change:
    """The change of `kind` (the rows must be of that kind's message type)."""
    return cast(Change, _CHANGES[kind](row_id, before, after, external, touched))


Listener = Callable[[Change], None]


def is_merged(task: task_pb2.Task) -> bool:
    return task.HasField("merge_time")


@dataclass
class Cache:
    initiatives: dict[str, initiative_pb2.Initiative] = field(default_factory=dict)
    projects: dict[str, project_pb2.Project] = field(default_factory=dict)
    initiative_projects: dict[str, list[str]] = field(default_factory=dict)
    phases: dict[str, phase_pb2.Phase] = field(default_factory=dict)
    tasks: dict[str, task_pb2.Task] = field(default_factory=dict)
    depends_on: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    agents: dict[str, agent_pb2.Agent] = field(default_factory=dict)
    accounts: dict[str, account_pb2.Account] = field(default_factory=dict)
    conversations: dict[str, conversation_pb2.Conversation] = field(default_factory=dict)
    # (kind, id) -> the newest event sequence the cached row is known to reflect.
    seen: dict[tuple[RowKind, str], int] = field(default_factory=dict)
    listeners: list[Listener] = field(default_factory=list)
    # How far the rows follow the store's log; decisions wait on it (freshness.py).
    freshness: Freshness = field(default_factory=Freshness)
    # What the events already carried, kept beyond the live rows so a run's start reads nothing
    # (the feed fills them, cache/feed.py; each is asked only once the cache is as fresh as the
    # decision's trigger). Every agent of a task seen, live or not: task id -> {agent id: (create
    # time in ns, name, initiative id)}; small, one entry per agent.
    task_agents: dict[str, dict[str, tuple[int, str, str]]] = field(default_factory=dict)
    # Initiatives whose every agent is in task_agents (listed once, then followed).
    agents_known: set[str] = field(default_factory=set)
    # Phases whose every task is in `tasks` (listed whole, or created while followed).
    whole_phases: set[str] = field(default_factory=set)
    # Agents whose creation was seen in the log, so every message to them too; and the agents
    # among all that were sent a message seen in the log.
    born: set[str] = field(default_factory=set)
    recipients: set[str] = field(default_factory=set)

    # ---- what stays ----------------------------------------------------------------------------

    def keeps(self, kind: RowKind, row: Row) -> bool:
        """Whether a row of `kind` stays cached (by its own type: `kind` names the same)."""
        if isinstance(row, task_pb2.Task):
            return bool(row.status in UNFINISHED_TASK or not is_merged(row) or row.phase_id in self.phases)
        if isinstance(row, phase_pb2.Phase):
            return bool(row.status in LIVE_PHASE)
        if isinstance(row, agent_pb2.Agent):
            return bool(row.status in LIVE_AGENT)
        if isinstance(row, conversation_pb2.Conversation):
            return bool(row.status == conversation_pb2.CONVERSATION_STATUS_PENDING)
        return True

    def table(self, kind: RowKind) -> Mapping[str, Row]:
        """The cached rows of `kind` (read only: `put` and `drop` change them, telling listeners)."""
        return self._table(kind)

    def _table(self, kind: RowKind) -> dict[str, Any]:
        tables: dict[RowKind, dict[str, Any]] = {
            RowKind.INITIATIVE: self.initiatives,
            RowKind.PROJECT: self.projects,
            RowKind.PHASE: self.phases,
            RowKind.TASK: self.tasks,
            RowKind.AGENT: self.agents,
            RowKind.ACCOUNT: self.accounts,
            RowKind.CONVERSATION: self.conversations,
        }
        return tables[kind]

    @staticmethod
    def holds(kind: str) -> bool:
        """Whether rows of this kind are cached (an answer may carry others: comments, messages)."""
        return kind in CACHED_KINDS

    # ---- changes -------------------------------------------------------------------------------

    def put(self, kind: RowKind, row: Row, sequence: int = 0, external: bool = False) -> None:
        """Stores (or drops, when finished) the row as read or as written, and tells listeners."""
        table = self._table(kind)
        key = (kind, row.id)
        if sequence and self.seen.get(key, 0) > sequence:
            return  # an older read than what we hold
        if sequence:
            self.seen[key] = sequence
        before = table.get(row.id)
        if before is not None and before == row:
            return
        if self.keeps(kind, row):
            table[row.id] = row
        else:
            table.pop(row.id, None)
            self._forget(kind, row.id)
        self.notify(change_of(kind, row.id, before, row, external))
        if kind == RowKind.PHASE and not self.keeps(kind, row):
            for task in [t for t in self.tasks.values() if t.phase_id == row.id and not self.keeps(RowKind.TASK, t)]:
                self.drop(RowKind.TASK, task.id)

    def saw(self, kind: RowKind, row_id: str, sequence: int) -> None:
        """The cached row reflects the event at `sequence` already (it is that version or newer)."""
        key = (kind, row_id)
        self.seen[key] = max(self.seen.get(key, 0), sequence)

    def drop(self, kind: RowKind, row_id: str, external: bool = False) -> None:
        before = self._table(kind).pop(row_id, None)
        self._forget(kind, row_id)
        if before is not None:
            self.notify(change_of(kind, row_id, before, None, external))

    def _forget(self, kind: RowKind, row_id: str) -> None:
        if kind == RowKind.TASK:
            self.depends_on.pop(row_id, None)

    def set_dependencies(self, task_id: str, depends_on: Iterable[str]) -> None:
        self.depends_on[task_id] = set(depends_on)
        task = self.tasks.get(task_id)
        if task is not None:
            self.notify(TaskChange(task_id, task, task, True, frozenset({DEPENDENCIES})))

    def set_initiative_projects(self, initiative_id: str, project_ids: list[str]) -> None:
        self.initiative_projects[initiative_id] = project_ids
        initiative = self.initiatives.get(initiative_id)
        if initiative is not None:
            self.notify(InitiativeChange(initiative_id, initiative, initiative, True, frozenset({PROJECTS})))

    def notify(self, change: Change) -> None:
        for listener in self.listeners:
            listener(change)

    def has_seen(self, kind: RowKind, row_id: str, sequence: int) -> bool:
        return self.seen.get((kind, row_id), 0) >= sequence

    def note_agent(self, agent: agent_pb2.Agent) -> None:
        """An agent row seen (read, written, or from an event's values): its task's agents."""
        if agent.task_id:
            seen = (agent.create_time.ToNanoseconds(), agent.name, agent.initiative_id)
            self.task_agents.setdefault(agent.task_id, {})[agent.id] = seen

    def forget_followed(self) -> None:
        """The log is not the one followed (the store's database was replaced): nothing carried
        holds until read again."""
        self.agents_known.clear()
        self.whole_phases.clear()
        self.born.clear()
        self.recipients.clear()

    # ---- questions decisions ask ----------------------------------------------------------------

    def agent_names(self, initiative_id: str) -> dict[str, str] | None:
        """The name of the latest agent of each task of the initiative, or None when the cache
        does not hold all of them."""
        if not initiative_id or initiative_id not in self.agents_known:
            return None
        names: dict[str, str] = {}
        for task_id, agents in self.task_agents.items():
            latest = max((seen for seen in agents.values() if seen[2] == initiative_id), default=None)
            if latest is not None:
                names[task_id] = latest[1]
        return names

    def agent_ids_of(self, task: task_pb2.Task) -> set[str] | None:
        """Every agent of the task, or None when the cache does not hold all of them."""
        if self.initiative_id_of(task) not in self.agents_known:
            return None
        return set(self.task_agents.get(task.id, {}))

    def tasks_of_whole(self, phase_id: str) -> list[task_pb2.Task] | None:
        """Every task of the phase, or None when the cache does not hold all of them."""
        if phase_id not in self.whole_phases or phase_id not in self.phases:
            return None
        return self.tasks_of(phase_id)

    def has_no_messages(self, agent_id: str) -> bool:
        """Whether no message was ever sent to the agent, as far as the log is followed."""
        return agent_id in self.born and agent_id not in self.recipients

    def tasks_of(self, phase_id: str) -> list[task_pb2.Task]:
        return [task for task in self.tasks.values() if task.phase_id == phase_id]

    def phases_of(self, initiative_id: str) -> list[phase_pb2.Phase]:
        return [phase for phase in self.phases.values() if phase.initiative_id == initiative_id]

    def running(self) -> list[agent_pb2.Agent]:
        return [agent for agent in self.agents.values() if agent.status == agent_pb2.AGENT_STATUS_RUNNING]

    def live_agents_of(self, task_id: str) -> list[agent_pb2.Agent]:
        return [agent for agent in self.agents.values() if agent.task_id == task_id]

    def initiative_id_of(self, task: task_pb2.Task) -> str:
        if task.initiative_id:
            return task.initiative_id
        phase = self.phases.get(task.phase_id)
        return phase.initiative_id if phase is not None else ""

    def projects_of(self, initiative_id: str) -> list[project_pb2.Project]:
        ids = self.initiative_projects.get(initiative_id, [])
        return [self.projects[project_id] for project_id in ids if project_id in self.projects]

    def initiatives_using(self, project_id: str) -> list[str]:
        return [initiative for initiative, ids in self.initiative_projects.items() if project_id in ids]

    def dependents_of(self, task_id: str) -> list[str]:
        return [dependent for dependent, needs in self.depends_on.items() if task_id in needs]

    def providers_with_accounts(self) -> set[str]:
        return {account.provider for account in self.accounts.values()}

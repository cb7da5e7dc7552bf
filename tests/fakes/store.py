"""An in-memory store behind the orchestrator's narrow port (orchestrator_service/ports.py): rows as
protos, one event log numbered in sequence, AppendEvent's changes applied all or nothing with the
store's preconditions (`expected_update_time` -> Stale) and its progress invariants, checked by the
very rules the SQL store runs (store_service/domain/progress.py) -> NotReady.

It also keeps what a test asserts on: `history`, every committed move of a guarded row (a phase to
review, a task started...) with what the invariants said of the state it left, whether or not they
were enforced (`enforce=False` lets a test show its property can fail).

What a person does through other clients (create rows, approve, merge a phase) is written here
directly, as the store's own API would, each with its event.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import grpc
from google.protobuf import json_format, timestamp_pb2
from google.protobuf.message import Message

from cw.store.v1 import (
    account_pb2,
    agent_pb2,
    conversation_pb2,
    event_pb2,
    initiative_pb2,
    lease_pb2,
    message_pb2,
    phase_pb2,
    project_pb2,
    task_pb2,
)
from orchestrator_service.store_client import NotReady, Stale, StoreClient
from store_service.domain import progress as rules
from store_service.domain.progress import LIVE_AGENT, Guarded, Named, PhaseTask
from tests.fakes.services import Services

# A pause the test controls: awaited before a write is answered, and (given the port's method
# name) before a read returns.
Pause = Callable[[], Awaitable[None]]
ReadPause = Callable[[str], Awaitable[None]]
_KINDS = ("initiative", "project", "phase", "task", "agent", "account", "conversation", "message")
_ENUMS: dict[str, Any] = {
    "initiative": initiative_pb2.InitiativeStatus,
    "phase": phase_pb2.PhaseStatus,
    "task": task_pb2.TaskStatus,
    "agent": agent_pb2.AgentStatus,
}


async def _no_pause() -> None:
    return None


async def _no_read_pause(_method: str) -> None:
    return None


def status_name(kind: str, row: Any) -> str:
    """The database's name of a row's status (`PHASE_STATUS_PENDING_REVIEW` -> `pending_review`)."""
    return str(_ENUMS[kind].Name(row.status)).split("_STATUS_", 1)[1].lower()


@dataclass(frozen=True)
class Move:
    """A committed write that moved a guarded row, and what the invariants said of the state it
    left (None: it held)."""

    sequence: int
    kind: str
    row_id: str
    status: str
    problem: str | None
    # Every row as the write left them (for a test's own oracle).
    tables: Tables


@dataclass
class Tables:
    rows: dict[str, dict[str, Any]] = field(default_factory=lambda: {kind: {} for kind in _KINDS})
    task_dependencies: set[tuple[str, str]] = field(default_factory=set)
    phase_dependencies: set[tuple[str, str]] = field(default_factory=set)
    initiative_projects: dict[str, list[str]] = field(default_factory=dict)

    def copy(self) -> Tables:
        """Rows are replaced, never changed in place: copying the tables is enough."""
        return Tables(
            {kind: dict(table) for kind, table in self.rows.items()},
            set(self.task_dependencies),
            set(self.phase_dependencies),
            {key: list(ids) for key, ids in self.initiative_projects.items()},
        )


def _not_found(kind: str, row_id: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        grpc.StatusCode.NOT_FOUND, grpc.aio.Metadata(), grpc.aio.Metadata(), details=f"{kind} {row_id!r} not found"
    )


class FakeStore:
    def __init__(self, enforce: bool = True) -> None:
        self.enforce = enforce
        self.tables = Tables()
        self.events: list[event_pb2.Event] = []
        self.history: list[Move] = []
        self.refusals: list[str] = []
        self.answer_pause: Pause = _no_pause
        # Events carry the rows' values, as the store's do (False: as its events of before did).
        self.carry_values = True
        self.read_pause: ReadPause = _no_read_pause
        self._clock = itertools.count(1)
        self._requests: dict[str, str] = {}
        self._side_notes: list[event_pb2.Event] = []
        # Called after each commit (the fake feed wakes up on them).
        self.on_commit: list[Callable[[], None]] = []
        # The rest of the store's API the orchestrator calls by method (`call`, `list_all`): the
        # few List/Get/Sum calls of its controllers, over the same tables (tests/fakes/services.py).
        services = Services(self)
        self.agents, self.tasks, self.phases, self.initiatives = services, services, services, services
        self.messages, self.conversations, self.accounts, self.log_chunks = services, services, services, services
        self.review_comments, self.proposals, self.chat_sessions = services, services, services
        self.lease_service = services
        # Leases by name (the orchestrators' and merges'), and the store's clock that reads them.
        self.leases: dict[str, Any] = {}
        self.lease_clock = 1_800_000_000.0
        # Output chunks stored by the shipper (CreateLogChunk).
        self.chunks: list[Any] = []

    # ---- the port ------------------------------------------------------------------------------

    async def append(
        self, events: Sequence[event_pb2.Event], changes: Sequence[event_pb2.StateChange] = ()
    ) -> event_pb2.AppendEventResponse:
        staged = self.tables.copy()
        answer = event_pb2.AppendEventResponse()
        notes: list[event_pb2.Event] = []
        moved: list[tuple[str, str]] = []
        for change in changes:
            self._side_notes = []
            kind, before, row, note = self._apply(staged, change)
            answer.rows.add().MergeFrom(event_pb2.ChangedRow(**{kind: row}))
            notes += [note, *self._side_notes]
            if self._moves(kind, before, row):
                moved.append((kind, row.id))
        self._commit(staged, [*notes, *events], moved)
        answer.last_sequence = len(self.events)
        await self.answer_pause()
        return answer

    async def head_sequence(self) -> int:
        await self.read_pause("head_sequence")
        return len(self.events)

    async def get(self, kind: str, row_id: str) -> Any:
        await self.read_pause("get")
        row = self.tables.rows[kind].get(row_id)
        if row is None:
            raise _not_found(kind, row_id)
        return _copy(row)

    async def phase_dependencies(self, phase_id: str) -> list[phase_pb2.Phase]:
        await self.read_pause("phase_dependencies")
        phases = self.tables.rows["phase"]
        return [
            _copy(phases[needed])
            for dependent, needed in sorted(self.tables.phase_dependencies)
            if dependent == phase_id
        ]

    async def phases_in(self, initiative_id: str) -> list[phase_pb2.Phase]:
        await self.read_pause("phases_in")
        return [_copy(p) for p in self.tables.rows["phase"].values() if p.initiative_id == initiative_id]

    async def live_agents_of(self, task_id: str) -> list[agent_pb2.Agent]:
        await self.read_pause("live_agents_of")
        live = (agent_pb2.AGENT_STATUS_RUNNING, agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT)
        return [_copy(a) for a in self.tables.rows["agent"].values() if a.task_id == task_id and a.status in live]

    async def task_dependencies(self, task_ids: Sequence[str]) -> list[task_pb2.TaskDependency]:
        await self.read_pause("task_dependencies")
        wanted = set(task_ids)
        return [
            task_pb2.TaskDependency(task_id=task_id, depends_on_task_id=needed)
            for task_id, needed in sorted(self.tables.task_dependencies)
            if task_id in wanted
        ]

    async def projects_of(self, initiative_id: str) -> list[project_pb2.Project]:
        await self.read_pause("projects_of")
        projects = self.tables.rows["project"]
        return [_copy(projects[pid]) for pid in self.tables.initiative_projects.get(initiative_id, [])]

    # ---- the rest of the client the controllers use ------------------------------------------------

    async def call(self, method: Callable[..., Awaitable[Any]], request: Any) -> Any:
        """StoreClient.call: one unary call (here, a method of `Services`)."""
        return await method(request)

    async def list_all(self, method: Callable[..., Awaitable[Any]], request: Any, field: str) -> list[Any]:
        """StoreClient.list_all: every row in one page."""
        return list(getattr(await method(request), field))

    async def get_task(self, task_id: str) -> task_pb2.Task:
        return cast(task_pb2.Task, await self.get("task", task_id))

    async def get_phase(self, phase_id: str) -> phase_pb2.Phase:
        return cast(phase_pb2.Phase, await self.get("phase", phase_id))

    async def get_agent(self, agent_id: str) -> agent_pb2.Agent:
        return cast(agent_pb2.Agent, await self.get("agent", agent_id))

    async def get_initiative(self, initiative_id: str) -> initiative_pb2.Initiative:
        return cast(initiative_pb2.Initiative, await self.get("initiative", initiative_id))

    async def open_comments(self, phase_id: str) -> list[Any]:
        return []

    async def log_chunks_of(self, agent_id: str) -> list[Any]:
        return [chunk for chunk in self.chunks if chunk.agent_id == agent_id]

    # ---- what a person does through other clients -------------------------------------------------

    def create_initiative(self, name: str) -> initiative_pb2.Initiative:
        row = initiative_pb2.Initiative(
            id=_new_id(), name=name, branch=f"cw/{name}", status=initiative_pb2.INITIATIVE_STATUS_ACTIVE
        )
        return cast(initiative_pb2.Initiative, self._create("initiative", row))

    def add_project(self, initiative_id: str, name: str, url: str = "") -> project_pb2.Project:
        row = project_pb2.Project(id=_new_id(), name=name, url=url or f"/srv/git/{name}")
        project = cast(project_pb2.Project, self._create("project", row))
        staged = self.tables.copy()
        staged.initiative_projects.setdefault(initiative_id, []).append(project.id)
        self._commit(staged, [event_pb2.Event(type="initiative_project:created", initiative_id=initiative_id)], [])
        return project

    def create_phase(self, initiative_id: str, name: str, depends_on: Sequence[str] = ()) -> phase_pb2.Phase:
        row = phase_pb2.Phase(
            id=_new_id(), initiative_id=initiative_id, name=name, status=phase_pb2.PHASE_STATUS_PENDING
        )
        phase = cast(phase_pb2.Phase, self._create("phase", row))
        for needed in depends_on:
            staged = self.tables.copy()
            staged.phase_dependencies.add((phase.id, needed))
            self._commit(staged, [event_pb2.Event(type="phase_dependency:created", phase_id=phase.id)], [])
        return phase

    def create_task(self, phase: phase_pb2.Phase, name: str, depends_on: Sequence[str] = ()) -> task_pb2.Task:
        row = task_pb2.Task(
            id=_new_id(),
            phase_id=phase.id,
            initiative_id=phase.initiative_id,
            name=name,
            status=task_pb2.TASK_STATUS_PENDING,
        )
        task = cast(task_pb2.Task, self._create("task", row))
        for needed in depends_on:
            self.add_task_dependency(task.id, needed)
        return task

    def create_account(self, provider: str, email: str, cap: int = 0, sort_order: int = 0) -> account_pb2.Account:
        row = account_pb2.Account(
            id=_new_id(), email=email, provider=provider, max_concurrent_agents=cap, sort_order=sort_order
        )
        return cast(account_pb2.Account, self._create("account", row))

    def rest_account(self, account_id: str, until: datetime) -> account_pb2.Account:
        """A rate limit's rest (MarkAccountExhausted), until then."""
        staged = self.tables.copy()
        row = _copy(staged.rows["account"][account_id])
        row.is_exhausted = True
        row.exhausted_until.FromDatetime(until)
        self._stamp(row)
        staged.rows["account"][account_id] = row
        self._commit(
            staged, [_row_event("account", "updated", row, ["is_exhausted", "exhausted_until"], self.carry_values)], []
        )
        return cast(account_pb2.Account, _copy(row))

    def add_task_dependency(self, task_id: str, needed: str) -> None:
        staged = self.tables.copy()
        staged.task_dependencies.add((task_id, needed))
        self._commit(staged, [event_pb2.Event(type="task_dependency:created", task_id=task_id)], [])

    def set_phase_status(self, phase_id: str, status: phase_pb2.PhaseStatus.ValueType) -> phase_pb2.Phase:
        """A person's write (a merge of the phase, a close): no precondition, the invariants apply."""
        staged = self.tables.copy()
        before = staged.rows["phase"][phase_id]
        row = _copy(before)
        row.status = status
        self._stamp(row)
        staged.rows["phase"][phase_id] = row
        note = _row_event("phase", "updated", row, ["status"], self.carry_values)
        self._commit(staged, [note], [("phase", phase_id)] if self._moves("phase", before, row) else [])
        return _copy(row)

    def create_agent(self, agent: agent_pb2.Agent) -> agent_pb2.Agent:
        """An agent row as another orchestrator (or an earlier run) left it."""
        row = _copy(agent)
        row.id = row.id or _new_id()
        return cast(agent_pb2.Agent, self._create("agent", row))

    def reply(self, message_id: str, content: str) -> message_pb2.Message:
        """`cw reply`: the person's reply to an agent's message, which answers it (RESPONDED)."""
        parent = self.tables.rows["message"][message_id]
        reply = message_pb2.Message(
            sender_type=message_pb2.PARTICIPANT_TYPE_USER,
            recipient_type=message_pb2.PARTICIPANT_TYPE_AGENT,
            recipient_id=parent.sender_id,
            parent_message_id=message_id,
            content=content,
        )
        staged = self.tables.copy()
        self._side_notes = []
        _, _, row, note = self._create_row(staged, "message", message_pb2.CreateMessageRequest(message=reply))
        self._commit(staged, [note, *self._side_notes], [])
        return cast(message_pb2.Message, _copy(row))

    def hold_lease(self, orchestrator: str, seconds: float) -> None:
        """An orchestrator's lease (`orchestrator/<name>`), lapsing `seconds` after the store's clock
        (negative: lapsed already)."""
        name = f"orchestrator/{orchestrator}"
        lease = self.leases.setdefault(name, lease_pb2.Lease(name=name, owner=orchestrator))
        lease.expire_time.FromNanoseconds(int((self.lease_clock + seconds) * 1e9))

    # ---- applying ----------------------------------------------------------------------------------

    def _create(self, kind: str, row: Any) -> Any:
        staged = self.tables.copy()
        row.create_time.CopyFrom(self._stamp(row))
        staged.rows[kind][row.id] = row
        self._commit(staged, [_row_event(kind, "created", row, [], self.carry_values)], [])
        return _copy(row)

    def _stamp(self, row: Any) -> timestamp_pb2.Timestamp:
        row.update_time.CopyFrom(timestamp_pb2.Timestamp(seconds=1_800_000_000 + next(self._clock)))
        return cast(timestamp_pb2.Timestamp, row.update_time)

    def _apply(self, staged: Tables, change: event_pb2.StateChange) -> tuple[str, Any, Any, event_pb2.Event]:
        """(kind, the row before or None, the row after, its event) of one change, into `staged`."""
        which = change.WhichOneof("change")
        if which == "create_agent":
            agent = _copy(change.create_agent.agent)
            agent.id = _new_id()
            agent.create_time.CopyFrom(self._stamp(agent))
            staged.rows["agent"][agent.id] = agent
            return "agent", None, agent, _row_event("agent", "created", agent, [], self.carry_values)
        if which in ("create_conversation", "create_message"):
            return self._create_row(staged, which.removeprefix("create_"), getattr(change, which))
        if which == "answer_conversation":
            return self._answer(staged, change.answer_conversation)
        if which is None or not which.startswith("update_"):
            raise NotImplementedError(f"the fake store does not apply {which}")
        kind = which.removeprefix("update_")
        request = getattr(change, which)
        wanted = getattr(request, kind)
        stored = staged.rows[kind].get(wanted.id)
        if stored is None:
            raise _not_found(kind, wanted.id)
        guarded = "expected_update_time" in request.DESCRIPTOR.fields_by_name
        if guarded and request.HasField("expected_update_time") and request.expected_update_time != stored.update_time:
            raise Stale(f"{kind} {wanted.id!r} changed since read")
        row = _copy(stored)
        for path in request.update_mask.paths:
            _set_field(row, wanted, path)
        self._stamp(row)
        staged.rows[kind][row.id] = row
        changed = list(request.update_mask.paths)
        return kind, stored, row, _row_event(kind, "updated", row, changed, self.carry_values)

    def _create_row(self, staged: Tables, kind: str, request: Any) -> tuple[str, Any, Any, event_pb2.Event]:
        """A conversation or message made; the same request_id answers the row made the first time
        (as the store's idempotent creates). A person's reply answers its message (RESPONDED), as
        store_service/api/message.py does."""
        made = self._requests.get(request.request_id) if request.request_id else None
        if made is not None and made in staged.rows[kind]:
            row = staged.rows[kind][made]
            return kind, row, row, _row_event(kind, "updated", row, [], self.carry_values)
        row = _copy(getattr(request, kind))
        row.id = _new_id()
        if kind == "conversation" and not row.status:
            row.status = conversation_pb2.CONVERSATION_STATUS_PENDING
        if kind == "message" and not row.status:
            row.status = message_pb2.MESSAGE_STATUS_PENDING
        row.create_time.CopyFrom(self._stamp(row))
        staged.rows[kind][row.id] = row
        if request.request_id:
            self._requests[request.request_id] = row.id
        if kind == "message" and row.parent_message_id and row.sender_type == message_pb2.PARTICIPANT_TYPE_USER:
            parent = _copy(staged.rows["message"][row.parent_message_id])
            parent.status = message_pb2.MESSAGE_STATUS_RESPONDED
            self._stamp(parent)
            staged.rows["message"][parent.id] = parent
            self._side_notes.append(_row_event("message", "updated", parent, ["status"], self.carry_values))
        return kind, None, row, _row_event(kind, "created", row, [], self.carry_values)

    def _answer(
        self, staged: Tables, request: conversation_pb2.AnswerConversationRequest
    ) -> tuple[str, Any, Any, event_pb2.Event]:
        """AnswerConversation: only a PENDING conversation (else FAILED_PRECONDITION, as the store)."""
        stored = staged.rows["conversation"].get(request.id)
        if stored is None:
            raise _not_found("conversation", request.id)
        if stored.status != conversation_pb2.CONVERSATION_STATUS_PENDING:
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.FAILED_PRECONDITION,
                grpc.aio.Metadata(),
                grpc.aio.Metadata(),
                details=f"conversation {request.id!r} is answered already",
            )
        row = _copy(stored)
        row.status, row.answer = conversation_pb2.CONVERSATION_STATUS_ANSWERED, request.answer
        row.ClearField("next_attempt_time")
        self._stamp(row)
        staged.rows["conversation"][row.id] = row
        return (
            "conversation",
            stored,
            row,
            _row_event("conversation", "updated", row, ["status", "answer"], self.carry_values),
        )

    @staticmethod
    def _moves(kind: str, before: Any, row: Any) -> bool:
        """Whether a write moves a row into a guarded status: a new row made so (an agent only for a
        task), or a stored one whose status changes to one (an agent: from one that is not live)."""
        if kind not in {guarded.value for guarded in Guarded}:
            return False
        if not rules.enters_guarded(Guarded(kind), status_name(kind, row)):
            return False
        if before is None:
            return kind != "agent" or bool(row.task_id)
        if before.status == row.status:
            return False
        return kind != "agent" or status_name(kind, before) not in LIVE_AGENT

    def _commit(self, staged: Tables, events: Sequence[event_pb2.Event], moved: list[tuple[str, str]]) -> None:
        still = [(kind, row_id) for kind, row_id in dict.fromkeys(moved) if self._guarded_now(staged, kind, row_id)]
        checked = [
            (kind, row_id, self.problem(staged, kind, row_id, new=row_id not in self.tables.rows[kind]))
            for kind, row_id in still
        ]
        refused = next((problem for _, _, problem in checked if problem is not None), None)
        if refused is not None and self.enforce:
            self.refusals.append(refused)
            raise NotReady(refused)
        self.tables = staged
        for stored in events:
            logged = event_pb2.Event()
            logged.CopyFrom(stored)
            logged.sequence = len(self.events) + 1
            self.events.append(logged)
        for listener in self.on_commit:
            listener()
        for kind, row_id, problem in checked:
            row = staged.rows[kind][row_id]
            self.history.append(Move(len(self.events), kind, row_id, status_name(kind, row), problem, staged))

    # ---- the invariants, by the store's own rules ----------------------------------------------------

    @staticmethod
    def _guarded_now(tables: Tables, kind: str, row_id: str) -> bool:
        """A row moved on again within the same transaction is not checked (as the SQL store)."""
        return rules.enters_guarded(Guarded(kind), status_name(kind, tables.rows[kind][row_id]))

    def problem(self, tables: Tables, kind: str, row_id: str, new: bool = False) -> str | None:
        """What the store's rules say of a row that `tables` leave moved (`new`: made by the write)."""
        row = tables.rows[kind][row_id]
        status = status_name(kind, row)
        if kind == "phase":
            tasks = [t for t in tables.rows["task"].values() if t.phase_id == row_id]
            facts = [PhaseTask(t.name, status_name("task", t), t.HasField("merge_time")) for t in tasks]
            return rules.phase_problem(row_id, status, facts)
        if kind == "initiative":
            phases = [
                Named(p.name, status_name("phase", p))
                for p in tables.rows["phase"].values()
                if p.initiative_id == row_id
            ]
            return rules.initiative_problem(row_id, status, phases)
        if kind == "task":
            return self._task_problem(tables, row)
        others = [
            Named(a.name, status_name("agent", a))
            for a in tables.rows["agent"].values()
            if a.task_id == row.task_id and a.id != row_id and status_name("agent", a) in LIVE_AGENT
        ]
        task = tables.rows["task"].get(row.task_id)
        starts = task is not None and status == "running" and new
        blocked = self._task_problem(tables, task) if starts and task else None
        problem = rules.agent_problem(row.task_id, others, blocked)
        return problem or self._account_problem(tables, row)

    @staticmethod
    def _account_problem(tables: Tables, agent: agent_pb2.Agent) -> str | None:
        account = tables.rows["account"].get(agent.account_id)
        if account is None:
            return None
        live = [
            Named(a.name, status_name("agent", a))
            for a in tables.rows["agent"].values()
            if a.account_id == account.id and status_name("agent", a) in LIVE_AGENT
        ]
        return rules.account_problem(account.id, account.max_concurrent_agents, live)

    @staticmethod
    def _task_problem(tables: Tables, task: task_pb2.Task) -> str | None:
        tasks, phases = tables.rows["task"], tables.rows["phase"]
        needed = [tasks[n] for t, n in tables.task_dependencies if t == task.id and n in tasks]
        needed_phases = [phases[n] for p, n in tables.phase_dependencies if p == task.phase_id and n in phases]
        return rules.task_problem(
            task.id,
            [Named(t.name, status_name("task", t)) for t in needed],
            [Named(p.name, status_name("phase", p)) for p in needed_phases],
        )


def as_store_client(fake: FakeStore) -> StoreClient:
    """The Context and the Feed are typed with the whole client, which the rest of the orchestrator
    uses; the parts under test reach only `StorePort` (ctx.port, the writer, Feed.apply), which
    the fake implements: anything else fails loudly with AttributeError."""
    return cast(StoreClient, fake)


def _row_event(kind: str, action: str, row: Any, changed: list[str], carry_values: bool) -> event_pb2.Event:
    """The store's event of a row's change: with the row's values (all of a created row; the
    changed fields and `update_time` of an update), as store_service/db/event_values.py writes
    them, unless the fake plays a store of before they did."""
    row_id = row.id
    note = event_pb2.Event(type=f"{kind}:{action}")
    note.details.update({"id": row_id, **({"changed": changed} if changed else {})})
    if carry_values:
        shown = json_format.MessageToDict(row, preserving_proto_field_name=True)
        if action == "updated":
            shown = {name: shown.get(name) for name in [*changed, "update_time"]}
        note.details.update({"values": shown})
    scope = {"task": "task_id", "phase": "phase_id", "agent": "agent_id", "initiative": "initiative_id"}.get(kind)
    if scope:
        setattr(note, scope, row_id)
    return note


def _set_field(row: Message, wanted: Message, path: str) -> None:
    """An update mask's path: the request's value, or cleared when the request leaves it unset."""
    descriptor = row.DESCRIPTOR.fields_by_name[path]
    if descriptor.is_repeated:  # lists and maps alike
        row.ClearField(path)
        getattr(row, path).MergeFrom(getattr(wanted, path))
    elif descriptor.message_type is not None:
        row.ClearField(path)
        if wanted.HasField(path):
            getattr(row, path).CopyFrom(getattr(wanted, path))
    else:
        setattr(row, path, getattr(wanted, path))


def _copy(row: Any) -> Any:
    fresh = type(row)()
    fresh.CopyFrom(row)
    return fresh


def _new_id() -> str:
    return uuid.uuid4().hex[:12]

"""What the pages show, read through the SDK: one function per page, each returning the values its
template needs. Synchronous (the SDK is); the app runs them in a thread. Texts stay as they came:
the templates escape them."""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from markdown_it import MarkdownIt
from markupsafe import Markup

from clients.cli.commands.inbox import INITIATIVE_BUDGET_REASON, TASK_BUDGET_REASON, gather, inbox_items
from clients.cli.planning_views import PAGE, PHASE, TASK, _belongs
from clients.cli.views import budget_line, usage_line
from clients.sdk import NotFoundError, OrchestratorClient, StoreClient
from clients.sdk.calls import call, enum_name
from clients.web.boards import Boards, Change, Kept, look_since
from cw.orchestrator.v1 import orchestrator_pb2
from cw.store.v1 import (
    account_pb2,
    agent_pb2,
    chat_session_pb2,
    initiative_pb2,
    phase_pb2,
    proposal_pb2,
    task_pb2,
)

# Markdown as CommonMark with raw HTML off: a page's `<script>` is shown as text, and links with
# unsafe schemes (javascript:) are not made links (markdown-it's validateLink).
MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False})
DONE_TASKS = frozenset({task_pb2.TASK_STATUS_COMPLETED})
# Parallel reads of one page: the store answers each in about a millisecond, so a page of several
# lists waits for the slowest, not their sum.
READERS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="cw-web-read")


def parallel(**calls: Callable[[], Any]) -> dict[str, Any]:
    """The reads of a page at once, on the reader threads; the first failure is raised."""
    futures = {name: READERS.submit(call) for name, call in calls.items()}
    return {name: future.result() for name, future in futures.items()}


def when(stamp: Timestamp) -> str:
    if not stamp.seconds and not stamp.nanos:
        return ""
    return stamp.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def status_of(enum: Any, value: int) -> str:
    return enum_name(enum, value) if value else ""


def render_markdown(text: str) -> str:
    return str(MARKDOWN.render(text))


@dataclass
class Clients:
    store: StoreClient
    orchestrator: OrchestratorClient
    boards: Boards = field(default_factory=Boards)


@dataclass(frozen=True)
class UsageView:
    """What a task, phase, initiative or account used, as a page shows it, and its budget if it
    has one (the orchestrator's GetUsage says both)."""

    used: str
    agents: int
    budget: str = ""
    spent: bool = False  # the budget is passed: its task stops, its initiative starts nothing more


def usage_view(total: orchestrator_pb2.UsageTotal | None) -> UsageView:
    """A total as shown (pure); None (nothing ran yet) is no usage."""
    if total is None:
        return UsageView(usage_line(agent_pb2.Usage()), 0)
    tokens = total.budget_tokens if total.HasField("budget_tokens") else None
    usd = total.budget_usd if total.HasField("budget_usd") else None
    # Passed, as the orchestrator decides it (orchestrator_service/controllers/agent_runs/usage.py, `spent`).
    spent = (tokens is not None and total.budget_tokens_used > tokens) or (
        usd is not None and total.usage.cost_usd > usd
    )
    budget = budget_line(total.budget_tokens_used, total.usage.cost_usd, tokens, usd)
    return UsageView(usage_line(total.usage), total.agent_count, budget, spent)


def usage_of(clients: Clients, scope: str, row_id: str) -> UsageView:
    """One row's usage and budget, read from the orchestrator."""
    totals = clients.orchestrator.usage(scope, row_id).totals
    return usage_view(next((t for t in totals if t.id == row_id), None))


class BudgetStop(enum.StrEnum):
    """Why a budget holds a task, from the reason the orchestrator gave it."""

    NONE = ""
    TASK = "task"
    INITIATIVE = "initiative"


def budget_stop(found: task_pb2.Task) -> BudgetStop:
    if found.status == task_pb2.TASK_STATUS_BLOCKED and found.reason.startswith(TASK_BUDGET_REASON):
        return BudgetStop.TASK
    if found.status == task_pb2.TASK_STATUS_PENDING and found.reason.startswith(INITIATIVE_BUDGET_REASON):
        return BudgetStop.INITIATIVE
    return BudgetStop.NONE


def home(clients: Clients) -> dict[str, Any]:
    store = clients.store
    initiatives = store.list_initiatives()
    tasks = store.list_tasks()
    progress: dict[str, list[int]] = {i.id: [0, 0] for i in initiatives}
    for task in tasks:
        counts = progress.setdefault(task.initiative_id, [0, 0])
        counts[1] += 1
        counts[0] += task.status in DONE_TASKS
    items = inbox_items(gather(store))
    return {"initiatives": initiatives, "progress": progress, "items": items}


@dataclass
class ProposalNode:
    proposal: proposal_pb2.Proposal
    children: list[ProposalNode] = field(default_factory=list)


def proposal_tree(proposals: Sequence[proposal_pb2.Proposal]) -> list[ProposalNode]:
    """Proposed phases with their proposed tasks under them, then tasks of existing phases, then pages."""
    tasks = [p for p in proposals if p.target_type == TASK]
    placed: set[str] = set()
    roots: list[ProposalNode] = []
    for phase in (p for p in proposals if p.target_type == PHASE):
        node = ProposalNode(phase)
        for task in tasks:
            if task.id not in placed and _belongs(task, phase):
                node.children.append(ProposalNode(task))
                placed.add(task.id)
        roots.append(node)
    roots += [ProposalNode(t) for t in tasks if t.id not in placed]
    roots += [ProposalNode(p) for p in proposals if p.target_type == PAGE]
    return roots


TASK_STATUS_NAMES = {value: enum_name(task_pb2.TaskStatus, value) for value in task_pb2.TaskStatus.values()}


@dataclass(frozen=True)
class TaskRow:
    """A task as the board shows it, made once in Python when the board is read (a board may hold
    hundreds, and a kept board is shown again and again: bench/web_pages.py)."""

    id: str
    name: str
    status: str
    after: str
    reason: str

    @property
    def html(self) -> Markup:
        return row_html(self)


@lru_cache(maxsize=20_000)
def row_html(row: TaskRow) -> Markup:
    """A board row's list item, every text escaped (as the templates' badge macro makes a badge);
    kept by the row's value, so a board read again makes only its changed rows anew."""
    after = Markup('<span class="after">after: {}</span>').format(row.after) if row.after else ""
    reason = Markup('<div class="reason">{}</div>').format(row.reason) if row.reason else ""
    return Markup(
        '<li class="task" id="task-{0}"><a href="/tasks/{0}">{1}</a> '
        '<span class="status status-{2}" data-status data-status-of="{0}">{2}</span>{3}{4}</li>'
    ).format(row.id, row.name, row.status, after, reason)


def initiative(clients: Clients, initiative_id: str) -> dict[str, Any]:
    """The board, with `head`: read again only as far as the log says it changed
    (clients/web/boards.py), its usage summed again only when one of its agents changed."""
    kept = clients.boards.get(initiative_id)
    head = clients.store.head_sequence()
    if kept is None:
        rows = read_board(clients, initiative_id)
    else:
        seen = look_since(clients.store, initiative_id, kept.sequence, READERS.submit)
        if seen.change == Change.NONE and not seen.agents:
            clients.boards.keep(initiative_id, Kept(head, kept.rows, kept.values))
            return {**kept.values, "head": head}
        if seen.change == Change.EVERYTHING:
            rows = read_board(clients, initiative_id)
        else:
            usage = READERS.submit(summed_usage, clients.store, initiative_id) if seen.agents else None
            rows = {**kept.rows, "tasks": tasks_read_again(clients.store, kept.rows["tasks"], seen.task_ids)}
            rows["usage"] = usage.result() if usage is not None else kept.rows["usage"]
    values = board_values(rows)
    clients.boards.keep(initiative_id, Kept(head, rows, values))
    return {**values, "head": head}


def summed_usage(store: StoreClient, initiative_id: str) -> agent_pb2.UsageSum | None:
    """The usage of the initiative's agents, summed by the store (one hop: the board is shown often,
    bench/web_pages.py); set against the initiative's budget as the board read it."""
    sums = call(store.agents.SumAgentUsage, agent_pb2.SumAgentUsageRequest(initiative_id=initiative_id)).sums
    return sums[0] if sums else None


def budget_total(
    row: initiative_pb2.Initiative | task_pb2.Task, summed: agent_pb2.UsageSum | None
) -> orchestrator_pb2.UsageTotal:
    """A row's summed usage (None: no agent yet) with its budget, as GetUsage answers it (pure)."""
    summed = summed or agent_pb2.UsageSum()
    used = summed.usage
    total = orchestrator_pb2.UsageTotal(
        id=row.id,
        usage=used,
        agent_count=summed.agent_count,
        budget_tokens_used=used.input_tokens + used.output_tokens + used.cache_write_tokens,
    )
    if row.HasField("budget_tokens"):
        total.budget_tokens = row.budget_tokens
    if row.HasField("budget_usd"):
        total.budget_usd = row.budget_usd
    return total


def tasks_read_again(store: StoreClient, tasks: list[task_pb2.Task], changed: frozenset[str]) -> list[task_pb2.Task]:
    """The board's tasks with `changed` read again: updated in place, new ones last, deleted gone."""
    fresh = parallel(**{task_id: (lambda task_id=task_id: _task_or_none(store, task_id)) for task_id in changed})
    kept = [fresh.get(t.id, t) for t in tasks]
    known = {t.id for t in tasks}
    added = sorted(
        (t for tid, t in fresh.items() if tid not in known and t is not None),
        key=lambda t: t.create_time.ToNanoseconds(),
    )
    return [t for t in kept if t is not None] + added


def _task_or_none(store: StoreClient, task_id: str) -> task_pb2.Task | None:
    try:
        return store.get_task(task_id)
    except NotFoundError:
        return None


def read_board(clients: Clients, initiative_id: str) -> dict[str, Any]:
    """Everything the board shows, as the store holds it now."""
    store = clients.store
    got = parallel(
        initiative=lambda: store.get_initiative(initiative_id),
        phases=lambda: store.list_phases(initiative_id),
        tasks=lambda: store.list_tasks(initiative_id=initiative_id),
        edges=lambda: store.task_dependencies(initiative_id=initiative_id),
        proposals=lambda: store.list_proposals(initiative_id),
        usage=lambda: summed_usage(store, initiative_id),
    )
    phase_edges = {p.id: READERS.submit(store.phase_dependencies, p.id) for p in got["phases"]}
    got["phase_after"] = {pid: [d.id for d in future.result()] for pid, future in phase_edges.items()}
    return got


def board_values(rows: dict[str, Any]) -> dict[str, Any]:
    """What the board's template shows, made from what was read (pure)."""
    phases: list[phase_pb2.Phase] = rows["phases"]
    tasks: list[task_pb2.Task] = rows["tasks"]
    names = {t.id: t.name for t in tasks} | {p.id: p.name for p in phases}
    after: dict[str, list[str]] = {}
    for edge in rows["edges"]:
        after.setdefault(edge.task_id, []).append(edge.depends_on_task_id)
    by_phase: dict[str, list[Markup]] = {}
    for task in tasks:
        waits = ", ".join(names.get(other, other) for other in after.get(task.id, ()))
        row = TaskRow(task.id, task.name, TASK_STATUS_NAMES.get(task.status, ""), waits, task.reason)
        by_phase.setdefault(task.phase_id, []).append(row.html)
    proposals: list[proposal_pb2.Proposal] = rows["proposals"]
    pending = [p for p in proposals if p.status == proposal_pb2.PROPOSAL_STATUS_PENDING]
    accepted = proposal_pb2.PROPOSAL_STATUS_ACCEPTED
    change_sets = sorted({p.change_set_id for p in proposals if p.change_set_id and p.status == accepted})
    return {
        "initiative": rows["initiative"],
        "phases": phases,
        "phase_after": rows["phase_after"],
        "by_phase": by_phase,
        "after": after,
        "names": names,
        "tree": proposal_tree(pending),
        "keys": {p.key: p.title for p in proposals if p.key} | names,
        "change_sets": change_sets,
        "usage": usage_view(budget_total(rows["initiative"], rows["usage"])),
        "done": sum(t.status in DONE_TASKS for t in tasks if t.phase_id),
        "total": sum(1 for t in tasks if t.phase_id),  # planning runs are no part of the work
    }


def root_page(clients: Clients, initiative_id: str) -> str:
    """Where an initiative's pages start: its root page (made now if it has none yet)."""
    return f"/pages/{clients.store.root_page(initiative_id).id}"


def chat(store: StoreClient, kind: str, target_id: str) -> dict[str, Any]:
    session = store.active_chat(kind, target_id)
    if session is None:
        return {"messages": [], "change_sets": {}}
    messages = store.chat_messages(session.id)
    change_sets = {c.id: c for c in store.change_sets(session.id)}
    return {"messages": messages, "change_sets": change_sets}


def phase(clients: Clients, phase_id: str) -> dict[str, Any]:
    store = clients.store
    got = parallel(
        phase=lambda: store.get_phase(phase_id),
        tasks=lambda: store.list_tasks(phase_id=phase_id),
        depends_on=lambda: store.phase_dependencies(phase_id),
        comments=lambda: store.list_comments(phase_id, False),
        chat=lambda: chat(store, "phase", phase_id),
        usage=lambda: usage_of(clients, "phase", phase_id),
    )
    found, tasks = got["phase"], got["tasks"]
    more = parallel(
        initiative=lambda: store.get_initiative(found.initiative_id),
        edges=lambda: store.task_dependencies(initiative_id=found.initiative_id),
    )
    ids = {t.id for t in tasks}
    after: dict[str, list[str]] = {}
    for edge in more["edges"]:
        if edge.task_id in ids:
            after.setdefault(edge.task_id, []).append(edge.depends_on_task_id)
    names = {t.id: t.name for t in tasks}
    return got | {"initiative": more["initiative"], "after": after, "names": names}


def task(clients: Clients, task_id: str) -> dict[str, Any]:
    store = clients.store
    got = parallel(
        task=lambda: store.get_task(task_id),
        agents=lambda: store.list_agents(task_id=task_id),
        edges=lambda: store.task_dependencies(task_id=task_id),
        chat=lambda: chat(store, "task", task_id),
        usage=lambda: usage_of(clients, "task", task_id),
    )
    found, agents, edges = got["task"], got["agents"], got["edges"]
    related = ({e.task_id for e in edges} | {e.depends_on_task_id for e in edges}) - {task_id}
    more = parallel(
        phase=lambda: store.get_phase(found.phase_id) if found.phase_id else None,
        **{f"name:{other}": (lambda other=other: _task_name(store, other)) for other in related},
    )
    return {
        "task": found,
        "phase": more["phase"],
        "agents": agents,
        "latest": agents[-1] if agents else None,
        "waits_for": [e.depends_on_task_id for e in edges if e.task_id == task_id],
        "waited_by": [e.task_id for e in edges if e.depends_on_task_id == task_id],
        "names": {other: more[f"name:{other}"] for other in related},
        "chat": got["chat"],
        "usage": got["usage"],
        "budget_stop": budget_stop(found),
    }


def _task_name(store: StoreClient, task_id: str) -> str:
    try:
        return store.get_task(task_id).name
    except NotFoundError:
        return task_id


@dataclass(frozen=True)
class Question:
    id: str
    text: str


def questions_of(agent: agent_pb2.Agent) -> list[Question]:
    """The pending questions an agent stored (hostile JSON: anything not a list of objects is none)."""
    try:
        parsed = json.loads(agent.pending_questions or "[]")
    except ValueError:
        return []
    if not isinstance(parsed, list):
        return []
    return [
        Question(str(q.get("id") or ""), str(q.get("question") or q.get("id") or ""))
        for q in parsed
        if isinstance(q, dict) and q.get("id")
    ]


def agent(clients: Clients, agent_id: str) -> dict[str, Any]:
    found = clients.store.resolve_agent(agent_id)
    return {
        "agent": found,
        "task": clients.store.get_task(found.task_id) if found.task_id else None,
        "questions": questions_of(found) if found.status == agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT else [],
        "live": found.status in (agent_pb2.AGENT_STATUS_RUNNING, agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT),
    }


def inbox(clients: Clients) -> dict[str, Any]:
    snapshot = gather(clients.store)
    proposals = {p.id: p.initiative_id for p in snapshot.proposals}
    return {"items": inbox_items(snapshot), "proposal_initiatives": proposals}


def page(clients: Clients, page_id: str) -> dict[str, Any]:
    found = clients.store.get_page(page_id)
    return {
        "page": found,
        "html": render_markdown(found.content),
        "pages": clients.store.list_pages(found.initiative_id),
    }


class AccountUse(enum.StrEnum):
    READY = "ready"
    RESTING = "resting"
    UNUSABLE = "unusable"


@dataclass(frozen=True)
class AccountState:
    account: account_pb2.Account
    state: AccountUse
    why: str
    usage: UsageView


def account_state(account: account_pb2.Account, now: datetime, usage: UsageView | None = None) -> AccountState:
    """Why an account is not used now: it cannot be used (no credentials, or the provider refused
    them), or it rests until its limit resets (pure)."""
    used = usage or usage_view(None)
    if not account.has_credentials:
        why = "no credentials stored: `cw account add` with --credentials-file"
        return AccountState(account, AccountUse.UNUSABLE, why, used)
    if account.unusable_reason:
        fix = f"`cw account update {account.id} --credentials-file F`"
        why = f"the provider refused its credentials: {account.unusable_reason} ({fix})"
        return AccountState(account, AccountUse.UNUSABLE, why, used)
    if account.is_exhausted:
        until = account.exhausted_until.ToDatetime(tzinfo=UTC) if account.HasField("exhausted_until") else None
        if until is None or until > now:
            why = f"rate limited: rests until {when(account.exhausted_until)}" if until else "rate limited"
            return AccountState(account, AccountUse.RESTING, why, used)
    return AccountState(account, AccountUse.READY, "", used)


def accounts(clients: Clients) -> dict[str, Any]:
    """Every account with its state, why, and what its agents used (one GetUsage for all)."""
    got = parallel(
        accounts=clients.store.list_accounts,
        usage=lambda: clients.orchestrator.usage("account").totals,
    )
    usage = {total.id: usage_view(total) for total in got["usage"]}
    now = datetime.now(UTC)
    return {"accounts": [account_state(a, now, usage.get(a.id)) for a in got["accounts"]]}


def chat_role(message: chat_session_pb2.ChatMessage) -> str:
    role = enum_name(chat_session_pb2.ChatRole, message.role)
    return "you" if role == "user" else "agent" if role == "assistant" else role

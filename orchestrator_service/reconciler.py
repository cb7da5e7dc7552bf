"""The level-triggered reconciler: every decision is recomputed from stored state.

Events from the store only wake it up; a periodic pass catches whatever a wake-up missed. One pass
reads a snapshot of the store, then settles ended agents, recovers stuck tasks, merges finished
work, moves phases and initiatives along and dispatches ready tasks, each step idempotent. A pass
that changed something asks for another, so the state converges.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import subprocess
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import field_mask_pb2, timestamp_pb2

from cw.store.v1 import (
    account_pb2,
    agent_pb2,
    event_pb2,
    initiative_pb2,
    log_chunk_pb2,
    phase_pb2,
    project_pb2,
    task_pb2,
)
from orchestrator_service import dispatch
from orchestrator_service.agents import claude_outcome, launcher, names, supervisor
from orchestrator_service.agents.providers import CLAUDE, Provider
from orchestrator_service.agents.supervisor import AgentFiles, Liveness
from orchestrator_service.git import branches
from orchestrator_service.git.repo import GitError
from orchestrator_service.git.workspace import Workspace, task_branch
from orchestrator_service.store_client import StoreClient, changes

log = logging.getLogger("cw.orchestrator")

PERIODIC_RECONCILE_SECONDS = 5.0
PROCESS_POLL_SECONDS = 0.2
OUTPUT_FLUSH_SECONDS = 1.0
NAME_ATTEMPTS = 12

LIVE_AGENT = (agent_pb2.AGENT_STATUS_RUNNING, agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT)
ACTIVE_PHASE = (
    phase_pb2.PHASE_STATUS_IN_PROGRESS,
    phase_pb2.PHASE_STATUS_BLOCKED,
    phase_pb2.PHASE_STATUS_PENDING_REVIEW,
)


def mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


def event(event_type: str, subject: Any = None, **details: Any) -> event_pb2.Event:
    """An event scoped to a task, phase or agent (whichever ids the subject carries)."""
    message = event_pb2.Event(type=event_type)
    for name in ("initiative_id", "phase_id", "task_id", "agent_id"):
        value = getattr(subject, name, "") if subject is not None else ""
        if value:
            setattr(message, name, value)
    if isinstance(subject, agent_pb2.Agent):
        message.agent_id = subject.id
    elif isinstance(subject, task_pb2.Task):
        message.task_id = subject.id
    elif isinstance(subject, phase_pb2.Phase):
        message.phase_id = subject.id
    message.details.update({key: value for key, value in details.items() if value is not None})
    return message


def files_of(agent: agent_pb2.Agent) -> AgentFiles:
    """The control directory holds the work directory, whose path the agent row keeps."""
    return AgentFiles(Path(agent.worktree_id).parent)


@dataclass
class Snapshot:
    initiatives: dict[str, initiative_pb2.Initiative]
    phases: dict[str, phase_pb2.Phase]
    tasks: dict[str, task_pb2.Task]
    depends_on: dict[str, set[str]]
    agents: list[agent_pb2.Agent]
    projects: dict[str, list[project_pb2.Project]] = field(default_factory=dict)
    # Whether each provider has accounts, asked once per pass rather than once per dispatch.
    provider_has_accounts: dict[str, bool] = field(default_factory=dict)

    def running(self) -> list[agent_pb2.Agent]:
        return [agent for agent in self.agents if agent.status == agent_pb2.AGENT_STATUS_RUNNING]

    def tasks_of(self, phase_id: str) -> list[task_pb2.Task]:
        return [task for task in self.tasks.values() if task.phase_id == phase_id]


class Reconciler:
    def __init__(
        self,
        store: StoreClient,
        workspace: Path,
        providers: dict[str, Provider],
        default_provider: str,
        max_agents: int,
    ) -> None:
        self.store = store
        self.root = workspace
        self.git = Workspace(workspace)
        self.providers = providers
        self.default_provider = default_provider
        self.max_agents = max_agents
        self.mutex = asyncio.Lock()
        self.wakeup = asyncio.Event()
        self.output_lock = asyncio.Lock()
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.output_offsets: dict[str, int] = {}
        self.watched: dict[str, agent_pb2.Agent] = {}
        self.merged: set[str] = set()
        self.queued_without_phase: set[str] = set()
        self.last_sequence = 0
        self.dispatched = 0
        self._background: list[asyncio.Task[None]] = []

    # ---- life cycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe first, then reconcile everything, and only then let callers in: an event that
        lands in between is seen either by the subscription or by the reconcile."""
        await self._retrying(self._subscribe_position)
        self._background.append(asyncio.create_task(self._follow_events()))
        await self._retrying(self.reconcile_now)
        self._background += [
            asyncio.create_task(self._loop()),
            asyncio.create_task(self._watch_processes()),
        ]

    async def stop(self) -> None:
        for task in self._background:
            task.cancel()
        for task in self._background:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _retrying(self, step: Callable[[], Awaitable[None]]) -> None:
        backoff = dispatch.Backoff()
        while True:
            try:
                await step()
                return
            except grpc.aio.AioRpcError as error:
                delay = backoff.next_delay()
                log.warning("store not reachable (%s); retrying in %.1fs", error.code().name, delay)
                await asyncio.sleep(delay)

    async def _subscribe_position(self) -> None:
        """Where the event subscription starts, and which phase-less tasks were queued."""
        head = await self.store.call(self.store.events.ListEvents, event_pb2.ListEventsRequest(page_size=1))
        cursor = 0
        while cursor < head.head_sequence:
            page = await self.store.call(
                self.store.events.ListEvents,
                event_pb2.ListEventsRequest(after_sequence=cursor, types=["task:queued"], page_size=1000),
            )
            self.queued_without_phase |= {queued.task_id for queued in page.events}
            if page.last_sequence == cursor:
                break
            cursor = page.last_sequence
        self.last_sequence = head.head_sequence

    async def _follow_events(self) -> None:
        """Wakes the reconciler on store events; resumes from the last sequence after a drop."""
        backoff = dispatch.Backoff()
        while True:
            try:
                request = event_pb2.WatchEventsRequest(after_sequence=self.last_sequence)
                async for stored in self.store.events.WatchEvents(request):
                    backoff.reset()
                    if stored.sequence == 0:
                        continue
                    self.last_sequence = stored.sequence
                    if stored.type == "task:queued":
                        self.queued_without_phase.add(stored.task_id)
                    if not stored.type.startswith("log_chunk:"):
                        self.wakeup.set()
            except grpc.aio.AioRpcError as error:
                if error.code() == grpc.StatusCode.OUT_OF_RANGE:
                    self.last_sequence = 0
                await asyncio.sleep(backoff.next_delay())

    async def _loop(self) -> None:
        backoff = dispatch.Backoff()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), PERIODIC_RECONCILE_SECONDS)
            self.wakeup.clear()
            try:
                await self.reconcile_now()
                backoff.reset()
            except grpc.aio.AioRpcError as error:
                log.warning("reconcile interrupted: %s %s", error.code().name, error.details())
                await asyncio.sleep(backoff.next_delay())
                self.wakeup.set()
            except Exception:
                log.exception("reconcile failed; the next pass retries")
                await asyncio.sleep(1.0)

    async def _watch_processes(self) -> None:
        """Notices agents ending without waiting for the periodic pass, and tails their output."""
        last_flush = 0.0
        while True:
            await asyncio.sleep(PROCESS_POLL_SECONDS)
            for agent_id, child in list(self.children.items()):
                if child.poll() is not None:
                    del self.children[agent_id]
            for agent in list(self.watched.values()):
                observed = await asyncio.to_thread(supervisor.observe, files_of(agent), agent.update_time.seconds)
                if observed.liveness != Liveness.RUNNING:
                    self.wakeup.set()
            if time.monotonic() - last_flush >= OUTPUT_FLUSH_SECONDS:
                last_flush = time.monotonic()
                for agent in list(self.watched.values()):
                    with contextlib.suppress(grpc.aio.AioRpcError):
                        await self.flush_output(agent, final=False)

    async def reconcile_now(self) -> None:
        async with self.mutex:
            changed = await self._pass()
        if changed:
            self.wakeup.set()

    # ---- one pass ----------------------------------------------------------------------------

    async def _snapshot(self) -> Snapshot:
        store = self.store
        initiatives = await store.list_all(
            store.initiatives.ListInitiatives, initiative_pb2.ListInitiativesRequest(), "initiatives"
        )
        phases = await store.list_all(store.phases.ListPhases, phase_pb2.ListPhasesRequest(), "phases")
        tasks = await store.list_all(store.tasks.ListTasks, task_pb2.ListTasksRequest(), "tasks")
        edges = await store.call(store.tasks.ListTaskDependencies, task_pb2.ListTaskDependenciesRequest())
        agents = []
        for status in LIVE_AGENT:
            agents += await store.list_all(
                store.agents.ListAgents, agent_pb2.ListAgentsRequest(status=status), "agents"
            )
        return Snapshot(
            {i.id: i for i in initiatives},
            {p.id: p for p in phases},
            {t.id: t for t in tasks},
            dispatch.dependencies_by_task(edges.dependencies),
            agents,
        )

    async def projects(self, snapshot: Snapshot, initiative_id: str) -> list[project_pb2.Project]:
        if initiative_id not in snapshot.projects:
            snapshot.projects[initiative_id] = await self.store.projects_of(initiative_id) if initiative_id else []
        return snapshot.projects[initiative_id]

    async def _pass(self) -> bool:
        snapshot = await self._snapshot()
        self.watched = {agent.id: agent for agent in snapshot.running()}
        if await self._settle_agents(snapshot) | await self._recover_stuck_tasks(snapshot):
            return True  # read the state again before building on it
        changed = await self._merge_finished_tasks(snapshot)
        changed |= await self._advance_phases(snapshot)
        changed |= await self._advance_initiatives(snapshot)
        changed |= await self._dispatch_ready(snapshot)
        return changed

    # ---- agents that ended (rule 2) ------------------------------------------------------------

    async def _settle_agents(self, snapshot: Snapshot) -> bool:
        settled = False
        for agent in snapshot.running():
            files = files_of(agent)
            observed = await asyncio.to_thread(supervisor.observe, files, agent.update_time.seconds)
            if observed.liveness == Liveness.RUNNING:
                continue
            await self.flush_output(agent, final=True)
            if observed.liveness == Liveness.VANISHED:
                await asyncio.to_thread(supervisor.kill_group, files)
                outcome = dispatch.classify_exit(None, None)
            else:
                outcome = await asyncio.to_thread(
                    claude_outcome.run_outcome, agent.provider, files, observed.exit_code, datetime.now(UTC)
                )
            await self.apply_outcome(agent, snapshot.tasks.get(agent.task_id), outcome)
            self.watched.pop(agent.id, None)
            settled = True
        return settled

    async def apply_outcome(
        self, agent: agent_pb2.Agent, task: task_pb2.Task | None, outcome: dispatch.AgentOutcome
    ) -> None:
        """Settles one finished run: the agent's row, its task's row and their events, atomically."""
        result = json.dumps({"status": outcome.kind, "summary": outcome.summary, "error": outcome.error})
        agent_update = agent_pb2.Agent(id=agent.id, result=result)
        agent_paths = ["status", "result", "exit_code"]
        if outcome.exit_code is not None:
            agent_update.exit_code = outcome.exit_code
        if outcome.session_id and outcome.session_id != agent.session_id:
            agent_update.session_id = outcome.session_id  # the one to resume
            agent_paths.append("session_id")
        task_update: task_pb2.Task | None = None
        task_paths: list[str] = []
        in_progress = task is not None and task.status == task_pb2.TASK_STATUS_IN_PROGRESS
        extra: list[Any] = []
        if outcome.kind == "done":
            agent_update.status = agent_pb2.AGENT_STATUS_STOPPED
            events = [event("agent:stopped", agent, outcome="done")]
            if in_progress and task is not None:
                task_update = task_pb2.Task(id=task.id, status=task_pb2.TASK_STATUS_COMPLETED, summary=outcome.summary)
                task_paths = ["status", "summary"]
                events.append(event("task:completed", task, summary=outcome.summary))
        elif outcome.kind == "questions":
            agent_update.status = agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT
            agent_update.pending_questions = json.dumps(outcome.questions)
            agent_paths.append("pending_questions")
            events = [event("agent:waiting_for_input", agent, questions=len(outcome.questions))]
        elif outcome.kind == "rate_limited":
            agent_update.status = agent_pb2.AGENT_STATUS_STOPPED
            events = [event("agent:stopped", agent, outcome="rate_limited")]
            if agent.account_id:
                extra.append(self._exhausted_account(agent.account_id, outcome.retry_after_seconds))
            if in_progress and task is not None:
                task_update = task_pb2.Task(id=task.id, status=task_pb2.TASK_STATUS_PENDING)
                task_paths = ["status"]
                events.append(event("task:queued", task, reason="rate_limited"))
        else:
            agent_update.status = agent_pb2.AGENT_STATUS_CRASHED
            events = [event("agent:crashed", agent, error=outcome.error, exit_code=outcome.exit_code)]
            if in_progress and task is not None:
                decision = dispatch.after_crash(task.retry_count)
                task_update = task_pb2.Task(id=task.id, status=decision.status, retry_count=decision.retry_count)
                task_paths = ["status", "retry_count"]
                events.append(event(decision.event, task, retry_count=decision.retry_count, error=outcome.error))
        updates: list[Any] = [agent_pb2.UpdateAgentRequest(agent=agent_update, update_mask=mask(*agent_paths))]
        if task_update is not None:
            updates.append(task_pb2.UpdateTaskRequest(task=task_update, update_mask=mask(*task_paths)))
        await self.store.append(events, changes(*updates, *extra))
        log.info("agent %s (%s) settled: %s", agent.name, agent.id, outcome.kind)

    @staticmethod
    def _exhausted_account(account_id: str, retry_after_seconds: float) -> account_pb2.UpdateAccountRequest:
        until = timestamp_pb2.Timestamp()
        until.FromDatetime(datetime.now(UTC) + timedelta(seconds=retry_after_seconds))
        return account_pb2.UpdateAccountRequest(
            account=account_pb2.Account(id=account_id, is_exhausted=True, exhausted_until=until),
            update_mask=mask("is_exhausted", "exhausted_until"),
        )

    async def flush_output(self, agent: agent_pb2.Agent, final: bool) -> None:
        """Copies new output into log chunks. Offsets survive restarts: they are the chunks' sizes."""
        async with self.output_lock:
            files = files_of(agent)
            if agent.id not in self.output_offsets:
                chunks = await self.store.list_all(
                    self.store.log_chunks.ListLogChunks,
                    log_chunk_pb2.ListLogChunksRequest(agent_id=agent.id),
                    "log_chunks",
                )
                self.output_offsets[agent.id] = sum(len(chunk.content.encode()) for chunk in chunks)
            data, offset = await asyncio.to_thread(
                supervisor.read_new_output, files, self.output_offsets[agent.id], final
            )
            if data:
                chunk = log_chunk_pb2.LogChunk(
                    agent_id=agent.id,
                    agent_name=agent.name,
                    session_number=await asyncio.to_thread(files.session_number),
                    content=data.decode(errors="replace"),
                )
                await self.store.call(
                    self.store.log_chunks.CreateLogChunk, log_chunk_pb2.CreateLogChunkRequest(log_chunk=chunk)
                )
            self.output_offsets[agent.id] = offset

    # ---- tasks stuck without an agent (rule 3) --------------------------------------------------

    async def _recover_stuck_tasks(self, snapshot: Snapshot) -> bool:
        live = {agent.task_id for agent in snapshot.agents}
        recovered = False
        for task in snapshot.tasks.values():
            if task.status != task_pb2.TASK_STATUS_IN_PROGRESS or task.id in live:
                continue
            decision = dispatch.after_crash(task.retry_count)
            update = task_pb2.Task(id=task.id, status=decision.status, retry_count=decision.retry_count)
            await self.store.append(
                [event(decision.event, task, retry_count=decision.retry_count, reason="no live agent")],
                changes(task_pb2.UpdateTaskRequest(task=update, update_mask=mask("status", "retry_count"))),
            )
            log.info("task %s was in progress without a live agent: %s", task.id, decision.event)
            recovered = True
        return recovered

    # ---- merges ------------------------------------------------------------------------------

    async def _merge_finished_tasks(self, snapshot: Snapshot) -> bool:
        """COMPLETED tasks of running phases (and phase-less ones) go into their base branch."""
        changed = False
        for task in snapshot.tasks.values():
            if task.status != task_pb2.TASK_STATUS_COMPLETED or task.id in self.merged:
                continue
            phase = snapshot.phases.get(task.phase_id)
            if task.phase_id and (phase is None or phase.status not in ACTIVE_PHASE):
                continue
            initiative = snapshot.initiatives.get(task.initiative_id or (phase.initiative_id if phase else ""))
            if initiative is None:
                self.merged.add(task.id)
                continue
            conflict = await self._merge_task(snapshot, task, initiative)
            if conflict is None:
                self.merged.add(task.id)
            changed |= conflict is not None
        return changed

    async def _merge_task(
        self, snapshot: Snapshot, task: task_pb2.Task, initiative: initiative_pb2.Initiative
    ) -> list[str] | None:
        """Merges the task's branch in every project; returns the conflicting files, if any."""
        target = branches.base_branch(task, initiative)
        for project in await self.projects(snapshot, initiative.id):
            source = task_branch(task.id)
            if not await asyncio.to_thread(self.git.branch_exists, project.id, source):
                continue
            if await asyncio.to_thread(self.git.is_merged, project.id, source, target):
                continue
            result = await asyncio.to_thread(
                self.git.merge, project.id, target, source, f"Merge task {task.name!r} ({task.id})"
            )
            if not result.merged:
                update = task_pb2.Task(id=task.id, status=task_pb2.TASK_STATUS_BLOCKED)
                await self.store.append(
                    [
                        event("phase:merge_conflict", task, project_id=project.id, files=result.conflicts),
                        event("task:blocked", task, reason="merge_conflict"),
                    ],
                    changes(task_pb2.UpdateTaskRequest(task=update, update_mask=mask("status"))),
                )
                log.warning("task %s conflicts with %s in %s: %s", task.id, target, project.name, result.conflicts)
                return result.conflicts
        return None

    # ---- phases and initiatives -----------------------------------------------------------------

    async def _advance_phases(self, snapshot: Snapshot) -> bool:
        changed = False
        for phase in snapshot.phases.values():
            if phase.status == phase_pb2.PHASE_STATUS_APPROVED:
                changed |= await self._start_phase_if_ready(snapshot, phase)
            elif phase.status in ACTIVE_PHASE:
                # A phase in review goes back to work when tasks are added to it.
                target = dispatch.running_phase_status(snapshot.tasks_of(phase.id), self.merged)
                if target == phase.status:
                    continue
                update = phase_pb2.UpdatePhaseRequest(
                    phase=phase_pb2.Phase(id=phase.id, status=target), update_mask=mask("status")
                )
                if target == phase_pb2.PHASE_STATUS_PENDING_REVIEW:
                    await self.store.append([event("phase:pending_review", phase)], changes(update))
                else:
                    await self.store.call(self.store.phases.UpdatePhase, update)
                changed = True
        return changed

    async def _start_phase_if_ready(self, snapshot: Snapshot, phase: phase_pb2.Phase) -> bool:
        dependencies = await self.store.call(
            self.store.phases.ListPhaseDependencies, phase_pb2.ListPhaseDependenciesRequest(phase_id=phase.id)
        )
        depends_on = {phase.id: {dependency.id for dependency in dependencies.phases}}
        startable = dispatch.phases_to_start(snapshot.phases.values(), depends_on)
        if phase.id not in {candidate.id for candidate in startable}:
            return False
        initiative = snapshot.initiatives[phase.initiative_id]
        for project in await self.projects(snapshot, initiative.id):
            await asyncio.to_thread(branches.ensure_phase_branch, self.git, project, initiative, phase.id)
            await self._record_fetch(project)
        update = phase_pb2.Phase(id=phase.id, status=phase_pb2.PHASE_STATUS_IN_PROGRESS)
        await self.store.append(
            [event("phase:started", phase)],
            changes(phase_pb2.UpdatePhaseRequest(phase=update, update_mask=mask("status"))),
        )
        return True

    async def _record_fetch(self, project: project_pb2.Project) -> None:
        update = project_pb2.Project(id=project.id)
        update.last_fetch_time.GetCurrentTime()
        await self.store.call(
            self.store.projects.UpdateProject,
            project_pb2.UpdateProjectRequest(project=update, update_mask=mask("last_fetch_time")),
        )

    async def _advance_initiatives(self, snapshot: Snapshot) -> bool:
        phases_by_initiative: dict[str, list[phase_pb2.Phase]] = defaultdict(list)
        for phase in snapshot.phases.values():
            phases_by_initiative[phase.initiative_id].append(phase)
        changed = False
        for initiative in snapshot.initiatives.values():
            phases = phases_by_initiative[initiative.id]
            done = phases and all(phase.status == phase_pb2.PHASE_STATUS_COMPLETED for phase in phases)
            if initiative.status == initiative_pb2.INITIATIVE_STATUS_ACTIVE and done:
                update = initiative_pb2.Initiative(
                    id=initiative.id, status=initiative_pb2.INITIATIVE_STATUS_PENDING_REVIEW
                )
                await self.store.call(
                    self.store.initiatives.UpdateInitiative,
                    initiative_pb2.UpdateInitiativeRequest(initiative=update, update_mask=mask("status")),
                )
                changed = True
        return changed

    # ---- dispatch ----------------------------------------------------------------------------

    def _ready(self, snapshot: Snapshot) -> list[task_pb2.Task]:
        active = {phase.id for phase in snapshot.phases.values() if phase.status in ACTIVE_PHASE}
        running_phases = {
            phase.id
            for phase in snapshot.phases.values()
            if phase.status in (phase_pb2.PHASE_STATUS_IN_PROGRESS, phase_pb2.PHASE_STATUS_BLOCKED)
        }
        # A dependency counts once its work is in the branch the dependent task starts from.
        completed = {
            task.id
            for task in snapshot.tasks.values()
            if task.status == task_pb2.TASK_STATUS_COMPLETED and (task.id in self.merged or task.phase_id not in active)
        }
        busy = {agent.task_id for agent in snapshot.agents}
        ready = dispatch.ready_tasks(
            snapshot.tasks.values(), snapshot.depends_on, running_phases, self.queued_without_phase, completed
        )
        return [task for task in ready if task.id not in busy]

    async def _dispatch_ready(self, snapshot: Snapshot) -> bool:
        capacity = self.max_agents - len(snapshot.running())
        dispatched = False
        for task in self._ready(snapshot)[: max(capacity, 0)]:
            if not await self._dispatch(snapshot, task):
                break  # no account available: everything else waits too
            dispatched = True
        return dispatched

    async def _dispatch(self, snapshot: Snapshot, task: task_pb2.Task) -> bool:
        """Rule 6 holds because the agent row and the task's IN_PROGRESS are one transaction, and
        only this serialized loop dispatches."""
        provider = self.providers[self.default_provider]
        account, secrets = await self._account_for(snapshot, provider)
        if account is False:
            return False
        phase = snapshot.phases.get(task.phase_id)
        initiative_id = task.initiative_id or (phase.initiative_id if phase else "")
        agent = await self._create_agent(task, initiative_id, provider, account or None)
        initiative = snapshot.initiatives.get(initiative_id)
        files = files_of(agent)
        try:
            if initiative is not None:
                for project in await self.projects(snapshot, initiative.id):
                    await asyncio.to_thread(
                        branches.prepare_task_worktree, self.git, project, initiative, task, files.workdir
                    )
        except GitError as error:
            await self.apply_outcome(agent, task, dispatch.AgentOutcome("crash", error=str(error)))
            return True
        dependencies = [snapshot.tasks[d] for d in snapshot.depends_on.get(task.id, set()) if d in snapshot.tasks]
        launch = launcher.Launch(
            agent,
            files,
            provider,
            dispatch.agent_mode(task),
            dispatch.build_prompt(task, dependencies),
            secrets=secrets,
        )
        await self.spawn(agent, launch)
        self.dispatched += 1
        return True

    async def _account_for(
        self, snapshot: Snapshot, provider: Provider
    ) -> tuple[Any, account_pb2.GetAccountSecretsResponse | None]:
        """(account id, secrets); ("", None) when the provider has no accounts; (False, None) when it
        has some but none is available now (the task waits, no attempt spent)."""
        if provider.name not in snapshot.provider_has_accounts:
            snapshot.provider_has_accounts[provider.name] = await self.store.has_accounts(provider.name)
        if not snapshot.provider_has_accounts[provider.name]:
            return "", None
        try:
            account = await self.store.call(
                self.store.accounts.GetNextAvailableAccount,
                account_pb2.GetNextAvailableAccountRequest(provider=provider.name),
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return False, None
            raise
        return account.id, await self.secrets_for(account.id, provider)

    async def secrets_for(self, account_id: str, provider: Provider) -> account_pb2.GetAccountSecretsResponse | None:
        """Claude Code reads an account's config and credentials from its own config directory."""
        if not account_id or provider.name != CLAUDE:
            return None
        return await self.store.call(
            self.store.accounts.GetAccountSecrets, account_pb2.GetAccountSecretsRequest(id=account_id)
        )

    async def _create_agent(
        self, task: task_pb2.Task, initiative_id: str, provider: Provider, account_id: str | None
    ) -> agent_pb2.Agent:
        for attempt in range(NAME_ATTEMPTS):
            name = names.random_name(attempt)
            control = self.root / "agents" / name
            agent = agent_pb2.Agent(
                name=name,
                task_id=task.id,
                initiative_id=initiative_id,
                session_id=str(uuid.uuid4()),
                worktree_id=str(AgentFiles(control).workdir),
                output_file_path=str(AgentFiles(control).output),
                provider=provider.name,
                account_id=account_id or "",
                status=agent_pb2.AGENT_STATUS_RUNNING,
                mode=agent_pb2.AgentMode.Value(f"AGENT_MODE_{dispatch.agent_mode(task).upper()}"),
            )
            started = task_pb2.Task(id=task.id, status=task_pb2.TASK_STATUS_IN_PROGRESS)
            try:
                created = await self.store.append(
                    [event("task:dispatched", task, agent_name=name, account_id=account_id)],
                    changes(
                        task_pb2.UpdateTaskRequest(task=started, update_mask=mask("status")),
                        agent_pb2.CreateAgentRequest(agent=agent),
                    ),
                )
            except grpc.aio.AioRpcError as error:
                if error.code() == grpc.StatusCode.ALREADY_EXISTS:
                    continue
                raise
            return await self.store.get_agent(created.created_ids[0])
        raise RuntimeError("no free agent name after many attempts")

    async def spawn(self, agent: agent_pb2.Agent, launch: launcher.Launch) -> None:
        child = await asyncio.to_thread(launcher.start, launch)
        self.children[agent.id] = child
        self.watched[agent.id] = agent
        kind = "agent:resumed" if launch.resume else "agent:spawned"
        await self.store.append(
            [event(kind, agent, pid=child.pid, name=agent.name)],
            changes(
                agent_pb2.UpdateAgentRequest(agent=agent_pb2.Agent(id=agent.id, pid=child.pid), update_mask=mask("pid"))
            ),
        )
        log.info("%s %s for task %s (pid %d)", kind, agent.name, agent.task_id, child.pid)

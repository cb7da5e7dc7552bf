"""What the orchestrator's RPCs do: each checks the current state, changes it with its event in one
store transaction, and wakes the reconciler, which does the rest."""

from __future__ import annotations

import asyncio
import json
import signal

from cw.orchestrator.v1 import orchestrator_pb2
from cw.store.v1 import agent_pb2, phase_pb2, project_pb2, task_pb2
from orchestrator_service.agents import launcher, process, supervisor
from orchestrator_service.errors import BadRequest, MergeConflict, NotAllowedNow
from orchestrator_service.git.workspace import Diff, phase_branch
from orchestrator_service.reconciler import Reconciler, event, files_of, mask
from orchestrator_service.store_client import changes

STOP_GRACE_SECONDS = 5.0
DIFF_STATUSES = (
    phase_pb2.PHASE_STATUS_IN_PROGRESS,
    phase_pb2.PHASE_STATUS_BLOCKED,
    phase_pb2.PHASE_STATUS_PENDING_REVIEW,
    phase_pb2.PHASE_STATUS_COMPLETED,
)
FILE_CHANGES = {
    "A": orchestrator_pb2.FILE_CHANGE_ADDED,
    "M": orchestrator_pb2.FILE_CHANGE_MODIFIED,
    "D": orchestrator_pb2.FILE_CHANGE_DELETED,
}


def _status_name(enum: object, value: int) -> str:
    return str(enum.Name(value))  # type: ignore[attr-defined]


class Operations:
    def __init__(self, reconciler: Reconciler) -> None:
        self.reconciler = reconciler
        self.store = reconciler.store
        self._stopping: set[asyncio.Task[None]] = set()

    async def approve_phase(self, phase_id: str) -> phase_pb2.Phase:
        async with self.reconciler.mutex:
            phase = await self.store.get_phase(phase_id)
            if phase.status == phase_pb2.PHASE_STATUS_PENDING:
                update = phase_pb2.Phase(id=phase.id, status=phase_pb2.PHASE_STATUS_APPROVED)
                phase = await self.store.call(
                    self.store.phases.UpdatePhase,
                    phase_pb2.UpdatePhaseRequest(phase=update, update_mask=mask("status")),
                )
            elif phase.status != phase_pb2.PHASE_STATUS_APPROVED:
                raise NotAllowedNow(
                    f"phase {phase_id!r} is {_status_name(phase_pb2.PhaseStatus, phase.status)}, not PENDING",
                    "PHASE_NOT_PENDING",
                )
        self.reconciler.wakeup.set()
        return phase

    async def dispatch_task(self, task_id: str) -> task_pb2.Task:
        async with self.reconciler.mutex:
            task = await self.store.get_task(task_id)
            if task.phase_id:
                raise NotAllowedNow(
                    f"task {task_id!r} belongs to phase {task.phase_id!r}: approve the phase instead",
                    "TASK_HAS_PHASE",
                )
            if task.status != task_pb2.TASK_STATUS_PENDING:
                raise NotAllowedNow(
                    f"task {task_id!r} is {_status_name(task_pb2.TaskStatus, task.status)}, not PENDING",
                    "TASK_NOT_PENDING",
                )
            if task_id not in self.reconciler.queued_without_phase:
                await self.store.append([event("task:queued", task, reason="dispatch")])
                self.reconciler.queued_without_phase.add(task_id)
        self.reconciler.wakeup.set()
        return task

    async def retry_blocked_task(self, task_id: str) -> task_pb2.Task:
        async with self.reconciler.mutex:
            task = await self.store.get_task(task_id)
            if task.status != task_pb2.TASK_STATUS_BLOCKED:
                raise NotAllowedNow(
                    f"task {task_id!r} is {_status_name(task_pb2.TaskStatus, task.status)}, not BLOCKED",
                    "TASK_NOT_BLOCKED",
                )
            update = task_pb2.Task(id=task_id, status=task_pb2.TASK_STATUS_PENDING, retry_count=0)
            await self.store.append(
                [event("task:queued", task, reason="manual retry")],
                changes(task_pb2.UpdateTaskRequest(task=update, update_mask=mask("status", "retry_count"))),
            )
            if not task.phase_id:
                self.reconciler.queued_without_phase.add(task_id)
            self.reconciler.merged.discard(task_id)
            task = await self.store.get_task(task_id)
        self.reconciler.wakeup.set()
        return task

    async def stop_agent(self, agent_id: str) -> agent_pb2.Agent:
        """A person's stop: the agent is STOPPED and its task BLOCKED (not retried automatically)."""
        async with self.reconciler.mutex:
            agent = await self.store.get_agent(agent_id)
            if agent.status not in (agent_pb2.AGENT_STATUS_RUNNING, agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT):
                return agent
            files = files_of(agent)
            await self.reconciler.flush_output(agent, final=True)
            updates: list[object] = [
                agent_pb2.UpdateAgentRequest(
                    agent=agent_pb2.Agent(
                        id=agent.id, status=agent_pb2.AGENT_STATUS_STOPPED, result=json.dumps({"status": "stopped"})
                    ),
                    update_mask=mask("status", "result"),
                )
            ]
            events = [event("agent:stopped", agent, outcome="stopped")]
            task = await self.store.get_task(agent.task_id) if agent.task_id else None
            if task is not None and task.status == task_pb2.TASK_STATUS_IN_PROGRESS:
                blocked = task_pb2.Task(id=task.id, status=task_pb2.TASK_STATUS_BLOCKED)
                updates.append(task_pb2.UpdateTaskRequest(task=blocked, update_mask=mask("status")))
                events.append(event("task:blocked", task, reason="agent stopped"))
            await self.store.append(events, changes(*updates))
            self.reconciler.watched.pop(agent.id, None)
            # The shim may not have recorded itself yet; the process this orchestrator started
            # leads its own group all the same.
            child = self.reconciler.children.get(agent.id)
            pgid = child.pid if child is not None and child.poll() is None else supervisor.live_process_group(files)
        if pgid is not None:
            stopping = asyncio.create_task(_terminate(pgid))
            self._stopping.add(stopping)
            stopping.add_done_callback(self._stopping.discard)
        self.reconciler.wakeup.set()
        return await self.store.get_agent(agent_id)

    async def answer_questions(self, agent_id: str, answers: dict[str, str]) -> agent_pb2.Agent:
        async with self.reconciler.mutex:
            agent = await self.store.get_agent(agent_id)
            if agent.status != agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT:
                raise NotAllowedNow(
                    f"agent {agent_id!r} is {_status_name(agent_pb2.AgentStatus, agent.status)}, not WAITING_FOR_INPUT",
                    "AGENT_NOT_WAITING",
                )
            asked = {str(question.get("id")) for question in json.loads(agent.pending_questions or "[]")}
            unknown = sorted(set(answers) - asked)
            if unknown:
                raise BadRequest("answers", f"no pending question with id {unknown[0]!r}")
            missing = sorted(asked - set(answers))
            if missing:
                raise BadRequest("answers", f"question {missing[0]!r} has no answer")
            files = files_of(agent)
            await asyncio.to_thread(files.archive_session)
            await asyncio.to_thread(launcher.write_answers, files, answers)
            resumed = agent_pb2.Agent(id=agent.id, status=agent_pb2.AGENT_STATUS_RUNNING, pending_questions="")
            await self.store.call(
                self.store.agents.UpdateAgent,
                agent_pb2.UpdateAgentRequest(agent=resumed, update_mask=mask("status", "pending_questions")),
            )
            agent = await self.store.get_agent(agent_id)
            provider = (
                self.reconciler.providers.get(agent.provider)
                or self.reconciler.providers[self.reconciler.default_provider]
            )
            prompt = "Answers to your questions:\n" + "\n".join(f"- {qid}: {text}" for qid, text in answers.items())
            secrets = await self.reconciler.secrets_for(agent.account_id, provider)
            mode = agent_pb2.AgentMode.Name(agent.mode).removeprefix("AGENT_MODE_").lower()
            launch = launcher.Launch(agent, files, provider, mode, prompt, resume=True, secrets=secrets)
            await self.reconciler.spawn(agent, launch)
            agent = await self.store.get_agent(agent_id)
        self.reconciler.wakeup.set()
        return agent

    async def merge_phase(self, phase_id: str) -> phase_pb2.Phase:
        """Records merge_base before merging, so a retried MergePhase rebuilds the same diff."""
        async with self.reconciler.mutex:
            phase = await self.store.get_phase(phase_id)
            if phase.status != phase_pb2.PHASE_STATUS_PENDING_REVIEW:
                raise NotAllowedNow(
                    f"phase {phase_id!r} is {_status_name(phase_pb2.PhaseStatus, phase.status)}, not PENDING_REVIEW",
                    "PHASE_NOT_IN_REVIEW",
                )
            initiative = await self.store.get_initiative(phase.initiative_id)
            projects = await self.store.projects_of(initiative.id)
            git = self.reconciler.git
            recorded_bases = _parse_merge_base(phase.merge_base)
            bases = {
                project.id: recorded_bases.get(project.id) or recorded_bases.get(ANY_PROJECT, "")
                for project in projects
            }
            for project in projects:
                if not bases[project.id]:
                    bases[project.id] = await asyncio.to_thread(
                        git.merge_base, project.id, initiative.branch, phase_branch(phase.id)
                    )
            if bases and _format_merge_base(bases) != phase.merge_base:
                recorded = phase_pb2.Phase(id=phase.id, merge_base=_format_merge_base(bases))
                await self.store.call(
                    self.store.phases.UpdatePhase,
                    phase_pb2.UpdatePhaseRequest(phase=recorded, update_mask=mask("merge_base")),
                )
            for project in projects:
                result = await asyncio.to_thread(
                    git.merge, project.id, initiative.branch, phase_branch(phase.id), f"Merge phase {phase.name!r}"
                )
                if not result.merged:
                    await self.store.append(
                        [event("phase:merge_conflict", phase, project_id=project.id, files=result.conflicts)]
                    )
                    raise MergeConflict(
                        f"merging phase {phase_id!r} into {initiative.branch!r} conflicts in "
                        + ", ".join(result.conflicts),
                        "MERGE_CONFLICT",
                        files=",".join(result.conflicts),
                    )
            done = phase_pb2.Phase(id=phase.id, status=phase_pb2.PHASE_STATUS_COMPLETED)
            await self.store.append(
                [event("phase:completed", phase)],
                changes(phase_pb2.UpdatePhaseRequest(phase=done, update_mask=mask("status"))),
            )
            phase = await self.store.get_phase(phase_id)
        self.reconciler.wakeup.set()
        return phase

    async def phase_diff(self, phase_id: str) -> orchestrator_pb2.GetPhaseDiffResponse:
        phase = await self.store.get_phase(phase_id)
        if phase.status not in DIFF_STATUSES:
            raise NotAllowedNow(f"phase {phase_id!r} has not started: it has no diff yet", "PHASE_NOT_STARTED")
        initiative = await self.store.get_initiative(phase.initiative_id)
        bases = _parse_merge_base(phase.merge_base) if phase.status == phase_pb2.PHASE_STATUS_COMPLETED else {}
        response = orchestrator_pb2.GetPhaseDiffResponse()
        for project in await self.store.projects_of(initiative.id):
            diff = await asyncio.to_thread(self._project_diff, project, initiative.branch, phase.id, bases)
            if diff is not None:
                response.projects.append(_project_diff_message(project, diff))
        return response

    def _project_diff(
        self, project: project_pb2.Project, initiative_branch: str, phase_id: str, bases: dict[str, str]
    ) -> Diff | None:
        git = self.reconciler.git
        head = phase_branch(phase_id)
        if not git.repo(project.id).exists() or not git.branch_exists(project.id, head):
            return None
        base = bases.get(project.id) or bases.get(ANY_PROJECT) or git.merge_base(project.id, initiative_branch, head)
        return git.diff(project.id, base, head)


ANY_PROJECT = "*"


def _parse_merge_base(value: str) -> dict[str, str]:
    """`merge_base` is the commit itself for a one-project initiative, else JSON by project id."""
    if not value.startswith("{"):
        return {ANY_PROJECT: value} if value else {}
    try:
        parsed = json.loads(value)
    except ValueError:
        return {}
    return {str(key): str(commit) for key, commit in parsed.items()} if isinstance(parsed, dict) else {}


def _format_merge_base(bases: dict[str, str]) -> str:
    if len(bases) == 1:
        return next(iter(bases.values()))
    return json.dumps(bases, sort_keys=True)


def _project_diff_message(project: project_pb2.Project, diff: Diff) -> orchestrator_pb2.ProjectDiff:
    return orchestrator_pb2.ProjectDiff(
        project_id=project.id,
        project_name=project.name,
        base_commit=diff.base,
        head_commit=diff.head,
        files=[
            orchestrator_pb2.FileDiff(
                path=stat.path,
                additions=stat.additions,
                deletions=stat.deletions,
                change=FILE_CHANGES.get(stat.change, orchestrator_pb2.FILE_CHANGE_MODIFIED),
            )
            for stat in diff.files
        ],
        unified_diff=diff.unified,
    )


async def _terminate(pgid: int) -> None:
    """SIGTERM to the whole group, SIGKILL after the grace period if anything is left."""
    process.signal_group(pgid, signal.SIGTERM)
    await asyncio.sleep(STOP_GRACE_SECONDS)
    process.signal_group(pgid, signal.SIGKILL)

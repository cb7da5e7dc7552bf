"""Starting a run: a new agent for a task, or a waiting agent resumed with its answers.

A start is three steps: get the task's branches ready (git, no store write), record the agent
and the task's IN_PROGRESS in one transaction guarded by the task's `update_time` (so two starters
can never both win: one live agent per task), then make the agent's private directory, worktrees and process. A
start that fails after the agent row exists closes the agent as never started: no attempt spent.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

import grpc

from cw.store.v1 import account_pb2, agent_pb2, initiative_pb2, task_pb2
from orchestrator_service import dispatch, faults, outcomes
from orchestrator_service.agents import claude_outcome, launcher, names, sandbox, supervisor
from orchestrator_service.agents.providers import Provider
from orchestrator_service.agents.supervisor import AgentFiles
from orchestrator_service.controllers.agent_runs import provider_choice
from orchestrator_service.controllers.agent_runs.run_inputs import UNWIRED, Continuation, RunInput, RunKindInputs
from orchestrator_service.controllers.agent_runs.stops import task_of
from orchestrator_service.controllers.agent_runs.workdirs import CannotStartYet, Place, Workdirs
from orchestrator_service.controllers.agents import AgentController
from orchestrator_service.controllers.context import Context
from orchestrator_service.controllers.projects import ProjectController
from orchestrator_service.events import event
from orchestrator_service.git import agent_repos, checkpoints
from orchestrator_service.git.workspace import task_branch
from orchestrator_service.paths import redact
from orchestrator_service.writes import Stale, update

log = logging.getLogger("cw.orchestrator")

NAME_ATTEMPTS = 12


@dataclass(frozen=True)
class Started:
    agent: agent_pb2.Agent


MOVED_SESSION_NOTE = (
    "\n\n## A new session\n\nThis task ran before on provider {old}, whose session cannot be continued "
    "on {new} ({why}). This is a new session: what the earlier runs committed is on your branch; go on "
    "from there.\n"
)


def choose_provider(
    ctx: Context, task: task_pb2.Task, initiative: initiative_pb2.Initiative | None
) -> provider_choice.Choice:
    """The task's provider, or its initiative's fallback when every account of it rests
    (controllers/agent_runs/provider_choice.py), from the cache; CannotStartYet when none can take it now."""
    settings = ctx.settings
    chosen = provider_choice.choose(
        task,
        initiative,
        settings.default_provider,
        known=settings.providers,
        accounts=ctx.cache.accounts.values(),
        now=ctx.clock(),
    )
    if isinstance(chosen, provider_choice.Wait):
        raise CannotStartYet(chosen.reason)
    return chosen


async def _settled(work: asyncio.Task[Place]) -> None:
    """Waits for `work` however it ends (a git command in a thread is not cut short): a start that
    ends early leaves nothing running behind it. Its error, if any, was the start's already, or
    is nobody's: the worktrees are made again, or kept, by the task's next start."""
    await asyncio.wait([work])
    if not work.cancelled() and work.exception() is not None:
        log.debug("a start's worktrees: %s", work.exception())


def moved_session_note(continued: Continuation, choice: provider_choice.Choice) -> str:
    """What a run told to continue another provider's session is told instead: that its session is
    new, why, and what it was given to answer (a chat's messages, the answers to its questions)."""
    why = choice.why or f"the task now runs on {choice.provider}"
    note = MOVED_SESSION_NOTE.format(old=continued.agent.provider, new=choice.provider, why=why)
    if not continued.answers:
        return note
    return claude_outcome.fresh_session_prompt(note, [], continued.answers)


class Launches:
    def __init__(self, ctx: Context, agents: AgentController, projects: ProjectController) -> None:
        self.ctx = ctx
        self.agents = agents
        self.projects = projects
        self.workdirs = Workdirs(ctx, projects)
        # What each kind of run starts with: the table of run kinds (runs/table.py), wired by core.py.
        self.inputs: RunKindInputs = UNWIRED

    def provider_for(self, name: str = "") -> Provider:
        settings = self.ctx.settings
        return settings.providers.get(name) or settings.providers[settings.default_provider]

    def cannot_run(self, provider: Provider) -> str | None:
        """Why a run of `provider` cannot start here now: its program is missing, or its CLI refuses
        (Claude Code as root outside a sandbox), or this orchestrator is fenced (its lease may be
        lapsing). The task waits with this reason; no attempt is spent."""
        if self.ctx.fenced:
            return "this orchestrator cannot renew its lease with the store: no run starts here until it can"
        missing = provider.missing_program()
        if missing:
            return missing
        cli = provider.cli
        if cli is not None:
            return cli.blocked_reason(sandbox.agent_is_root(self.ctx.settings.sandbox), provider.in_sandbox)
        return None

    # ---- a new run ------------------------------------------------------------------------------

    async def start(self, task: task_pb2.Task) -> Started | None:
        """Starts one run of a PENDING task, on the provider `provider_choice` chooses. None when
        the task changed meanwhile; raises CannotStartYet when it must wait."""
        initiative = self.ctx.cache.initiatives.get(self.ctx.cache.initiative_id_of(task))
        choice = self.choose_provider(task, initiative)
        provider = self.provider_for(choice.provider)
        blocked = self.cannot_run(provider)
        if blocked:
            raise CannotStartYet(blocked)
        await self._within_budgets(task, initiative)
        if initiative is not None:
            await self.workdirs.prepare_branches(task, initiative)
        continued = await self.inputs.continuation(task)
        moved_session = ""
        if continued is not None and continued.agent.provider != provider.name:
            # Another CLI's session cannot be resumed: a new agent, a new session, from the branch.
            moved_session = moved_session_note(continued, choice)
            continued = None
        if continued is not None:
            account_id = continued.agent.account_id
            self._slot_free(account_id)
            secrets = await self.secrets_for(account_id, provider)
        else:
            account_id, secrets = await self._account(provider)
        spawned = self.ctx.spawning.setdefault(task.id, asyncio.Event())
        # The task's worktrees are made while its agent's row is written: they need no agent.
        placing = asyncio.create_task(self.workdirs.ready_task(task), name=f"worktrees-{task.id}")
        try:
            if continued is not None:
                agent = await self._record_continuation(task, continued)
            else:
                agent = await self._record_start(task, initiative, provider, account_id, choice)
            if agent is None:
                return None
            faults.point("before-spawn")
            await self._spawn(
                agent,
                task,
                initiative,
                provider,
                secrets,
                resume=continued is not None,
                more_prompt=moved_session,
                placing=placing,
            )
        finally:
            spawned.set()
            self.ctx.spawning.pop(task.id, None)
            await _settled(placing)
        return Started(agent)

    def choose_provider(
        self, task: task_pb2.Task, initiative: initiative_pb2.Initiative | None
    ) -> provider_choice.Choice:
        return choose_provider(self.ctx, task, initiative)

    def _slot_free(self, account_id: str) -> None:
        """A continued session keeps its account: it waits while that account is at its cap (the
        store refuses the start otherwise; this saves the refused write)."""
        account = self.ctx.cache.accounts.get(account_id) if account_id else None
        busy = provider_choice.at_cap(account, provider_choice.live_on(account_id, self.ctx.cache.agents.values()))
        if busy is not None:
            raise CannotStartYet(busy)

    async def _within_budgets(self, task: task_pb2.Task, initiative: initiative_pb2.Initiative | None) -> None:
        """A task or initiative past its budget starts no run until the budget is raised: the task
        waits (PENDING) with the reason, no attempt spent (controllers/agent_runs/usage.py)."""
        meter = self.agents.usage
        passed = await meter.task_spent(task) or (await meter.initiative_spent(initiative) if initiative else None)
        if passed is not None:
            raise CannotStartYet(passed.reason)

    async def _account(self, provider: Provider) -> tuple[str, account_pb2.GetAccountSecretsResponse | None]:
        if provider.name not in self.ctx.cache.providers_with_accounts():
            return "", None
        store = self.ctx.store
        try:
            account = await store.call(
                store.accounts.GetNextAvailableAccount,
                account_pb2.GetNextAvailableAccountRequest(provider=provider.name),
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                raise CannotStartYet(f"waiting for a free account of provider {provider.name!r}") from error
            raise
        return account.id, await self.secrets_for(account.id, provider)

    async def secrets_for(self, account_id: str, provider: Provider) -> account_pb2.GetAccountSecretsResponse | None:
        """A built-in CLI reads an account's config and credentials from its own config directory
        (its adapter writes them there); a generic provider gets none."""
        if not account_id or provider.cli is None:
            return None
        store = self.ctx.store
        return await store.call(store.accounts.GetAccountSecrets, account_pb2.GetAccountSecretsRequest(id=account_id))

    async def _record_start(
        self,
        task: task_pb2.Task,
        initiative: initiative_pb2.Initiative | None,
        provider: Provider,
        account_id: str,
        choice: provider_choice.Choice,
    ) -> agent_pb2.Agent | None:
        """The agent row and the task's IN_PROGRESS, only if the task is still as read. A run moved
        to a fallback provider says so in the task's reason while it runs (the inbox shows it) and
        in its `task:dispatched`."""
        mode = dispatch.agent_mode(task)
        for attempt in range(NAME_ATTEMPTS):
            name = names.random_name(attempt)
            agent = agent_pb2.Agent(
                name=name,
                task_id=task.id,
                initiative_id=initiative.id if initiative is not None else "",
                session_id=str(uuid.uuid4()),
                # For display only, and known once the id is: `spawn` records the real path.
                worktree_id="(starting)",
                provider=provider.name,
                account_id=account_id,
                status=agent_pb2.AGENT_STATUS_RUNNING,
                mode=agent_pb2.AgentMode.Value(f"AGENT_MODE_{mode.upper()}"),
                orchestrator=self.ctx.settings.name,
            )
            note = choice.note() or None
            started = update(task, status=task_pb2.TASK_STATUS_IN_PROGRESS, reason=note, next_attempt_time=None)
            moved = {"moved_from": choice.wanted, "reason": note} if choice.moved else {}
            dispatched = event(
                "task:dispatched", task, agent_name=name, account_id=account_id or None, provider=provider.name, **moved
            )
            try:
                answer = await self.ctx.writer.append(
                    [dispatched],
                    [started, agent_pb2.CreateAgentRequest(agent=agent)],
                )
            except Stale:
                return None
            except grpc.aio.AioRpcError as error:
                if error.code() == grpc.StatusCode.ALREADY_EXISTS:
                    continue
                raise
            return answer.rows[1].agent
        raise RuntimeError("no free agent name after many attempts")

    async def _spawn(
        self,
        agent: agent_pb2.Agent,
        task: task_pb2.Task,
        initiative: initiative_pb2.Initiative | None,
        provider: Provider,
        secrets: account_pb2.GetAccountSecretsResponse | None,
        *,
        resume: bool = False,
        more_prompt: str = "",
        placing: asyncio.Task[Place] | None = None,
    ) -> None:
        """The agent's directory, worktrees and process. A start that fails once the agent row exists
        closes the agent as never started (no attempt spent) and raises, for the start's back-off.
        `more_prompt` ends the prompt (a session moved from another provider); `placing`: the
        task's worktrees being made (`Workdirs.ready_task`)."""
        files = AgentFiles.of(self.ctx.root, agent.id)
        try:
            await asyncio.to_thread(supervisor.make_private_dirs, files)  # a run's inputs write there (replies given)
            run = await self.inputs.run_input(agent, task)
            mode = dispatch.agent_mode(task)
            prompt = run.prompt + more_prompt
            launch = launcher.Launch(
                agent, files, provider, mode, prompt, resume=resume, secrets=secrets, environment=run.environment
            )
            await self.spawn(agent, launch, placing)
        except Exception as error:
            reason = f"the agent could not start: {redact(str(error), self.ctx.root)}"
            log.warning("%s", reason)
            current = self.ctx.cache.tasks.get(task.id)
            await self.agents.write(agent, current, outcomes.never_started(current, reason))
            raise

    async def _record_continuation(self, task: task_pb2.Task, continued: Continuation) -> agent_pb2.Agent | None:
        """The agent runs again in its CLI session (a chat's next turn): the task's IN_PROGRESS and
        the agent's RUNNING in one transaction, both guarded, after its last run's files are
        archived (so that exit is never settled twice)."""
        agent = continued.agent
        files = AgentFiles.of(self.ctx.root, agent.id)
        await asyncio.to_thread(supervisor.make_private_dirs, files)
        await asyncio.to_thread(files.archive_session)
        await asyncio.to_thread(launcher.write_answers, files, continued.answers)
        started = update(task, status=task_pb2.TASK_STATUS_IN_PROGRESS, reason=None, next_attempt_time=None)
        claim = update(
            agent,
            status=agent_pb2.AGENT_STATUS_RUNNING,
            outcome=None,
            error=None,
            exit_code=None,
            pid=None,
            orchestrator=self.ctx.settings.name or None,
        )
        try:
            answer = await self.ctx.writer.append(
                [event("task:dispatched", task, agent_name=agent.name, account_id=agent.account_id or None)],
                [started, claim],
            )
        except Stale:
            return None
        return answer.rows[1].agent

    async def spawn(
        self, agent: agent_pb2.Agent, launch: launcher.Launch, placing: asyncio.Task[Place] | None = None
    ) -> agent_pb2.Agent:
        """Starts the shim, in the task's worktree with the agent's git identity, and records its pid
        with `agent:spawned` (or `agent:resumed`); `placing`: its task's worktrees being made."""
        launch = await self._placed(agent, launch, placing)
        self.ctx.shipper.begin(agent.id)
        launch = replace(launch, sandbox=self.ctx.settings.sandbox, readable=self._borrowed_objects(agent))
        child = await asyncio.to_thread(launcher.start, launch)
        self.agents.child_started(agent.id, child)
        kind = "agent:resumed" if launch.resume else "agent:spawned"
        files = launch.files
        # Unconditional: the process runs whatever happened to the row meanwhile (a stop waits for
        # this write, see `Context.spawning`), and its pid is a fact to keep.
        where = str(launch.cwd or files.workdir)
        started = update(agent, pid=child.pid, worktree_id=where, output_file_path=str(files.output))
        started.ClearField("expected_update_time")
        answer = await self.ctx.writer.append([event(kind, agent, pid=child.pid, name=agent.name)], [started])
        recorded = answer.rows[0].agent
        log.info("%s %s for task %s (pid %d)", kind, agent.name, agent.task_id, child.pid)
        return recorded

    async def _placed(
        self, agent: agent_pb2.Agent, launch: launcher.Launch, placing: asyncio.Task[Place] | None = None
    ) -> launcher.Launch:
        """The launch in its task's directory (worktrees made or kept), the prompt saying where first
        (its end stays the task's, or the answers')."""
        task = await task_of(self.ctx, agent)
        place = await self.workdirs.ready(agent, task, await placing if placing is not None else None)
        commits = launch.mode == "execute"
        note = place.prompt_note(task_branch(agent.task_id), commits=commits) if task is not None else ""
        identity = checkpoints.agent_identity(agent.name, self.ctx.settings.agent_email_domain)
        # A finished task's project directory released meanwhile is no mount (bwrap needs it there).
        mounted = [path for path in (place.task_dir, *place.worktrees.values()) if path.is_dir()]
        writable = tuple(dict.fromkeys(mounted))
        return replace(
            launch,
            cwd=place.cwd,
            worktrees=place.worktrees,
            writable=writable,
            identity=identity,
            prompt=note + launch.prompt,
        )

    def _borrowed_objects(self, agent: agent_pb2.Agent) -> tuple[Path, ...]:
        """The object stores of the orchestrator's clones the agent's repositories borrow from
        (git/agent_repos.py): read-only in its sandbox, and nothing else of those clones."""
        if not agent.initiative_id:
            return ()
        projects = self.ctx.cache.projects_of(agent.initiative_id)
        return tuple(agent_repos.borrowed_objects(self.ctx.git.repo(project.id)) for project in projects)

    # ---- a waiting agent resumed ------------------------------------------------------------------

    async def resume(
        self, agent: agent_pb2.Agent, task: task_pb2.Task | None, answers: dict[str, str]
    ) -> agent_pb2.Agent:
        """Resumes a WAITING_FOR_INPUT agent in its CLI session. The previous run's files are
        archived before the agent reads as RUNNING again, so the old exit is never settled twice;
        the claim is guarded, so two answers to the same questions cannot both resume it."""
        provider = self.provider_for(agent.provider)
        blocked = self.cannot_run(provider)
        if blocked:
            raise CannotStartYet(blocked)
        files = AgentFiles.of(self.ctx.root, agent.id)
        await self.workdirs.adopt(agent, task)
        await asyncio.to_thread(supervisor.make_private_dirs, files)
        await asyncio.to_thread(files.archive_session)
        await asyncio.to_thread(launcher.write_answers, files, answers)
        claim = update(
            agent,
            status=agent_pb2.AGENT_STATUS_RUNNING,
            pending_questions=None,
            outcome=None,
            orchestrator=self.ctx.settings.name or None,
        )
        claimed = (await self.ctx.writer.append([], [claim])).rows[0].agent
        secrets = await self.secrets_for(claimed.account_id, provider)
        mode = agent_pb2.AgentMode.Name(claimed.mode).removeprefix("AGENT_MODE_").lower()
        try:
            run = await self.inputs.run_input(claimed, task) if task is not None else RunInput("", {})
            prompt = run.prompt + dispatch.answers_prompt(answers)
            launch = launcher.Launch(
                claimed, files, provider, mode, prompt, resume=True, secrets=secrets, environment=run.environment
            )
            return await self.spawn(claimed, launch)
        except Exception as error:
            crash = dispatch.AgentOutcome(
                dispatch.OutcomeKind.CRASH, error=f"could not resume: {redact(str(error), self.ctx.root)}"
            )
            settlement = outcomes.settle(claimed, task, crash, self.ctx.clock(), delays=self.ctx.settings.retry_delays)
            await self.agents.write(claimed, task, settlement)
            raise

    async def new_session(self, agent: agent_pb2.Agent, task: task_pb2.Task) -> None:
        """The CLI could not resume the agent's session (it no longer knows it: runs/steps.py
        `restarted_lost_session`): the same agent starts a new session whose prompt holds the task
        and the answers it was given."""
        files = AgentFiles.of(self.ctx.root, agent.id)
        answers = await asyncio.to_thread(launcher.read_answers, files)
        await asyncio.to_thread(files.archive_session)
        fresh = update(agent, session_id=str(uuid.uuid4()))
        renewed = (await self.ctx.writer.append([event("agent:new_session", agent)], [fresh])).rows[0].agent
        run = await self.inputs.run_input(renewed, task)
        prompt = claude_outcome.fresh_session_prompt(run.prompt, [], answers)
        provider = self.provider_for(renewed.provider)
        secrets = await self.secrets_for(renewed.account_id, provider)
        mode = agent_pb2.AgentMode.Name(renewed.mode).removeprefix("AGENT_MODE_").lower()
        launch = launcher.Launch(renewed, files, provider, mode, prompt, secrets=secrets, environment=run.environment)
        await self.spawn(renewed, launch)

"""Checkpointing finished runs: whoever settles a run commits what it left in each worktree to the
task branch (git/checkpoints.py) before the settlement is written and before anything reuses or
removes the worktree; a person's stop does it once the process is gone.

What is found feeds the settlement (orchestrator_service/leftovers.py): files left out for their
size, files written beside the worktrees, and an execute run that ended done with nothing to merge.
A run taken over by another orchestrator is settled there, where its worktree is not: what that
machine never pushed is lost with it (README, "What happens to uncommitted work").
"""

from __future__ import annotations

import asyncio
import logging

from cw.store.v1 import agent_pb2, project_pb2, task_pb2
from orchestrator_service import dispatch
from orchestrator_service.controllers.agent_runs.workdirs import Place, describe_outside, place_for
from orchestrator_service.controllers.context import Context
from orchestrator_service.git import branches, checkpoints, shared
from orchestrator_service.git.repo import GitError
from orchestrator_service.git.workspace import task_branch
from orchestrator_service.leftovers import Left
from orchestrator_service.paths import redact

log = logging.getLogger("cw.orchestrator")


def message(agent: agent_pb2.Agent, task: task_pb2.Task, label: str) -> str:
    return (
        f"cw checkpoint: what {agent.name} left when its run ended ({label})\n\n"
        f"Task: {task.name} ({task.id})\nAgent: {agent.name} ({agent.id})\nOutcome: {label}\n"
    )


class Checkpointer:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def _projects(self, task: task_pb2.Task) -> list[project_pb2.Project]:
        initiative_id = self.ctx.cache.initiative_id_of(task)
        return list(self.ctx.cache.projects_of(initiative_id)) if initiative_id else []

    def place(self, task: task_pb2.Task) -> Place:
        return place_for(self.ctx.git.task_dir(task.id), [project.name for project in self._projects(task)])

    async def after_run(
        self, agent: agent_pb2.Agent, task: task_pb2.Task | None, label: str, done: bool, *, fetched: bool = False
    ) -> Left:
        """Checkpoints the run's worktrees; `done`: an execute run that reported done, whose task is
        then checked for having changed anything at all; `fetched`: its branches were fetched back
        once its process had ended (not fetched again)."""
        if task is None or not agent.task_id:
            return Left()
        return await asyncio.to_thread(self._checkpoint_all, agent, task, label, done, fetched)

    async def after_stop(self, agent: agent_pb2.Agent) -> Left:
        """A stopped run's process is gone: what it left goes onto its branch (and out to the shared
        remote), said by an event. A failure is logged: the worktree then keeps the files."""
        task = self.ctx.cache.tasks.get(agent.task_id) if agent.task_id else None
        if task is None:
            return Left()
        left = await asyncio.to_thread(self._checkpoint_all, agent, task, "stopped", False)
        for project in self._projects(task):
            if project.shared_remote and left.commits.get(project.name):
                try:
                    await asyncio.to_thread(shared.publish_settled, self.ctx.git, project, task_branch(task.id))
                except GitError as error:
                    log.warning("the checkpoint of stopped agent %s was not pushed: %s", agent.name, error)
        return left

    def _checkpoint_all(
        self, agent: agent_pb2.Agent, task: task_pb2.Task, label: str, done: bool, fetched: bool = False
    ) -> Left:
        place = self.place(task)
        by_name = {project.name: project for project in self._projects(task)}
        identity = checkpoints.agent_identity(agent.name, self.ctx.settings.agent_email_domain)
        commits: dict[str, str] = {}
        left_out: list[str] = []
        failures: list[str] = []
        oversize: list[str] = []
        taken = 0
        for name, where in place.worktrees.items():
            try:
                branch, said = task_branch(task.id), message(agent, task, label)
                made = self.ctx.git.checkpoint(
                    by_name[name].id, where, branch, said, identity, fetched=fetched, keep_unchanged=True
                )
            except (GitError, OSError) as error:
                said = redact(str(error), self.ctx.root)
                log.warning("checkpoint of %s's worktree of %s failed: %s", agent.name, name, said)
                failures.append(f"the checkpoint of project {name} failed (its worktree keeps the files): {said}")
                continue
            if made.commit:
                commits[name] = made.commit
                taken += len(made.taken)
            if made.left_out:
                limit = self.ctx.git.max_file_bytes
                left_out.append(checkpoints.describe_left_out(made.left_out, limit, name))
            size, most = checkpoints.worktree_bytes(where), self.ctx.settings.max_worktree_bytes
            if size > most:
                oversize.append(checkpoints.describe_oversize(size, most, name))
        outside = place.outside()
        nothing = done and dispatch.merges_work(task) and not (failures or left_out) and self._changed_nothing(task)
        return Left(
            commits,
            taken,
            left_out,
            outside,
            redact(describe_outside(outside, place.task_dir), self.ctx.root) if outside else "",
            failures,
            nothing,
            oversize,
        )

    def _changed_nothing(self, task: task_pb2.Task) -> bool:
        """No project's task branch holds a commit beyond its base (nor any file left out)."""
        initiative = self.ctx.cache.initiatives.get(self.ctx.cache.initiative_id_of(task))
        projects = self._projects(task)
        if initiative is None or not projects:
            return False
        base = branches.base_branch(task, initiative)
        branch = task_branch(task.id)
        git = self.ctx.git
        return not any(
            git.branch_exists(project.id, branch) and git.has_commits_beyond(project.id, base, branch)
            for project in projects
        )

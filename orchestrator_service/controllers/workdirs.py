"""An agent's work directory: its task's branches made ready in every project (cloned on first use,
pulled from the shared remote), and a worktree of each on the task's branch. Also for an agent that
last ran under another orchestrator and is resumed here (`adopt`)."""

from __future__ import annotations

import asyncio

from cw.store.v1 import agent_pb2, initiative_pb2, task_pb2
from orchestrator_service.agents import supervisor
from orchestrator_service.agents.supervisor import AgentFiles
from orchestrator_service.controllers.context import Context
from orchestrator_service.controllers.projects import ProjectController, ProjectUnavailable
from orchestrator_service.git import branches


class CannotStartYet(Exception):
    """The task waits (no free account, a missing program); the message says why."""


class Workdirs:
    def __init__(self, ctx: Context, projects: ProjectController) -> None:
        self.ctx = ctx
        self.projects = projects

    async def prepare_branches(self, task: task_pb2.Task, initiative: initiative_pb2.Initiative) -> None:
        """A task outside any phase may be the first work on a project: clone it if need be."""
        for listed in self.ctx.cache.projects_of(initiative.id):
            try:
                project = await self.projects.sync(listed)
            except ProjectUnavailable as error:
                raise CannotStartYet(str(error)) from error
            await asyncio.to_thread(branches.prepare_task_branch, self.ctx.git, project, initiative, task)

    async def worktrees(
        self, files: AgentFiles, task: task_pb2.Task, initiative: initiative_pb2.Initiative | None
    ) -> None:
        """The agent's private directory, with a worktree of each project on the task's branch."""
        await asyncio.to_thread(supervisor.make_private_dirs, files)
        if initiative is not None:
            for project in self.ctx.cache.projects_of(initiative.id):
                await asyncio.to_thread(branches.add_task_worktree, self.ctx.git, project, task, files.workdir)

    async def adopt(self, agent: agent_pb2.Agent, task: task_pb2.Task | None) -> None:
        """An agent that last ran under another orchestrator, resumed here: its task's branches as
        the shared remote holds them, and its worktrees on them (its CLI session stayed on the
        other machine: Claude Code then starts a new one with the task and the answers)."""
        if agent.orchestrator in ("", self.ctx.settings.name) or task is None:
            return
        initiative = self.ctx.cache.initiatives.get(self.ctx.cache.initiative_id_of(task))
        if initiative is not None:
            await self.prepare_branches(task, initiative)
        await self.worktrees(AgentFiles.of(self.ctx.root, agent.id), task, initiative)

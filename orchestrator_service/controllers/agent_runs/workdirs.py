"""Where a run works: its task's branches made ready in every project (cloned on first use, pulled
from the shared remote), and a worktree of each on the task's branch, in the task's directory: the
task's own repository of the project (git/agent_repos.py), which is all of git an agent in cw's
sandbox can write; this module calls them worktrees.

Every run of a task works in the same directory, `<workspace>/tasks/<task id>/`, whichever agent
and attempt it is (Claude Code files its sessions by working directory, so a resume must run where
the session began). With one project the run's working directory is that project's worktree
(`tasks/<task id>/<project name>/`); with several it is the task's directory, which holds one
worktree per project; the prompt and `CW_WORKTREES` name each. Anything a run writes in the task's
directory beside the worktrees belongs to no project: it is reported (`outside`), never merged.
Also for an agent that last ran under another orchestrator and is resumed here (`adopt`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cw.store.v1 import agent_pb2, initiative_pb2, project_pb2, task_pb2
from orchestrator_service.agents import supervisor
from orchestrator_service.agents.supervisor import AgentFiles
from orchestrator_service.controllers.context import Context
from orchestrator_service.controllers.projects import ProjectController, ProjectUnavailable
from orchestrator_service.git import branches
from orchestrator_service.git.workspace import task_branch
from orchestrator_service.paths import safe_component

# How many entries beside the worktrees a report names.
LISTED_OUTSIDE = 20


class CannotStartYet(Exception):
    """The task waits (no free account, a missing program); the message says why."""


@dataclass(frozen=True)
class Place:
    """Where a run works: its directory, its working directory, each project's worktree by name."""

    task_dir: Path
    cwd: Path
    worktrees: dict[str, Path] = field(default_factory=dict)

    def prompt_note(self, branch: str, *, commits: bool = True) -> str:
        """What the prompt says about where the work goes (`commits`: a run whose work is commits,
        not a planning run's report)."""
        after = (
            (
                "Commit your work there (`git add -A && git commit -m ...`; your git identity is set). "
                "Whatever you leave uncommitted is committed for you when your run ends; files written "
                "outside the worktrees belong to no project and are not delivered."
            )
            if commits
            else "Read the code there; this run reports, it changes no file."
        )
        if len(self.worktrees) == 1:
            [(name, path)] = self.worktrees.items()
            where = f"Your working directory, {path}, is the git worktree of project {name} on branch {branch}."
        elif self.worktrees:
            listing = "\n".join(f"- {name}: {path}" for name, path in self.worktrees.items())
            where = (
                f"Your working directory, {self.cwd}, holds one git worktree per project, each on branch "
                f"{branch} (also in $CW_WORKTREES, JSON):\n{listing}\nWork inside them, not beside them."
            )
        else:
            return ""
        return f"## Where you work\n\n{where}\n{after}\n\n"

    def outside(self) -> list[str]:
        """What the run left in its directory beside the worktrees (a name per entry)."""
        try:
            entries = sorted(entry.name for entry in self.task_dir.iterdir())
        except FileNotFoundError:
            return []
        return [name for name in entries if name not in self.worktrees]


def place_for(task_dir: Path, project_names: Iterable[str]) -> Place:
    """One project: the run works in its worktree; several (or none): in the task's directory."""
    worktrees = {name: task_dir / safe_component(name, "project name") for name in sorted(project_names)}
    cwd = next(iter(worktrees.values())) if len(worktrees) == 1 else task_dir
    return Place(task_dir, cwd, worktrees)


def describe_outside(names: list[str], task_dir: Path) -> str:
    """One line for a run's reason."""
    listed = ", ".join(names[:LISTED_OUTSIDE]) + (
        f" and {len(names) - LISTED_OUTSIDE} more" if len(names) > LISTED_OUTSIDE else ""
    )
    return f"written beside the worktrees, in no project (not merged; kept in {task_dir}): {listed}"


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

    def projects_of(self, task: task_pb2.Task | None) -> list[project_pb2.Project]:
        if task is None:
            return []
        initiative_id = self.ctx.cache.initiative_id_of(task)
        return list(self.ctx.cache.projects_of(initiative_id)) if initiative_id else []

    def place_of(self, agent: agent_pb2.Agent, task: task_pb2.Task | None) -> Place:
        """Where the agent's runs work (nothing is made); an agent without a task works in its own
        work directory."""
        if task is None:
            workdir = AgentFiles.of(self.ctx.root, agent.id).workdir
            return Place(workdir, workdir)
        return place_for(self.ctx.git.task_dir(task.id), [project.name for project in self.projects_of(task)])

    async def ready(self, agent: agent_pb2.Agent, task: task_pb2.Task | None, made: Place | None = None) -> Place:
        """The agent's private directory and its task's directory, with a worktree of each project
        on the task's branch: kept when there already (the next run continues in it), else made;
        `made`: the task's part, made already (`ready_task`)."""
        files = AgentFiles.of(self.ctx.root, agent.id)
        await asyncio.to_thread(supervisor.make_private_dirs, files)
        if made is not None:
            return made
        if task is None:
            place = self.place_of(agent, task)
            await asyncio.to_thread(_private_dir, place.task_dir)
            return place
        return await self.ready_task(task)

    async def ready_task(self, task: task_pb2.Task) -> Place:
        """The task's directory with a worktree of each project on its branch (`ready`): it needs
        no agent, so a start makes it while its agent's row is written (controllers/launches.py)."""
        place = place_for(self.ctx.git.task_dir(task.id), [project.name for project in self.projects_of(task)])
        await asyncio.to_thread(_private_dir, place.task_dir)
        if task.status == task_pb2.TASK_STATUS_COMPLETED:
            # A finished task's agent resumed to answer another's question: its worktrees are kept
            # until its work is merged, and never made again after; the path stays its session's.
            await asyncio.to_thread(place.cwd.mkdir, mode=0o700, exist_ok=True)
            return place
        by_name = {project.name: project for project in self.projects_of(task)}
        for name, where in place.worktrees.items():
            branch = task_branch(task.id)
            await asyncio.to_thread(self.ctx.git.add_worktree, by_name[name].id, where, branch)
        return place

    async def adopt(self, agent: agent_pb2.Agent, task: task_pb2.Task | None) -> None:
        """An agent that last ran under another orchestrator, resumed here: its task's branches as
        the shared remote holds them (its worktrees are made as it starts; its CLI session stayed
        on the other machine: Claude Code then starts a new one with the task and the answers)."""
        if agent.orchestrator in ("", self.ctx.settings.name) or task is None:
            return
        initiative = self.ctx.cache.initiatives.get(self.ctx.cache.initiative_id_of(task))
        if initiative is not None:
            await self.prepare_branches(task, initiative)


def _private_dir(path: Path) -> None:
    for directory in (path.parent, path):
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory.chmod(0o700)

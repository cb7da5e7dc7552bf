"""`cw project`, `cw initiative`, `cw phase`, `cw task`: the work and its structure."""

from __future__ import annotations

import click
from rich.syntax import Syntax
from rich.table import Table
from rich.tree import Tree

from clients.cli.app import CwGroup, Session, console, pass_session
from clients.sdk.calls import enum_name
from cw.orchestrator.v1 import orchestrator_pb2 as orch
from cw.store.v1 import initiative_pb2, phase_pb2, task_pb2

STATUS_STYLE = {
    "completed": "green",
    "in_progress": "yellow",
    "blocked": "red",
    "pending_review": "magenta",
    "approved": "cyan",
    "running": "yellow",
    "waiting_for_input": "magenta",
    "crashed": "red",
}


def styled(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"


def table(*columns: str) -> Table:
    grid = Table(box=None, header_style="bold", pad_edge=False)
    for column in columns:
        if column == "ID" or column.endswith(" ID") or column in ("TASK", "PHASE"):
            grid.add_column(column, no_wrap=True, min_width=21)
        else:
            grid.add_column(column)
    return grid


@click.group(cls=CwGroup)
def project() -> None:
    """Git repositories that initiatives work on."""


@project.command("add")
@click.argument("name")
@click.argument("url")
@click.option("--default-branch", default="main", show_default=True)
@pass_session
def project_add(session: Session, name: str, url: str, default_branch: str) -> None:
    """Register a repository (a path or a URL) as project NAME."""
    created = session.store.create_project(name, url, default_branch)
    session.show(created, lambda: console.print(f"project {created.name} [dim]{created.id}[/]"))


@project.command("list")
@pass_session
def project_list(session: Session) -> None:
    projects = session.store.list_projects()

    def render() -> None:
        grid = table("ID", "NAME", "URL", "BRANCH")
        for p in projects:
            grid.add_row(p.id, p.name, p.url, p.default_branch)
        console.print(grid)

    session.show(projects, render)


@click.group(cls=CwGroup)
def initiative() -> None:
    """Initiatives: the top of the work tree."""


@initiative.command("create")
@click.argument("name")
@click.option("--project", "projects", multiple=True, required=True, help="project id or name (repeatable)")
@pass_session
def initiative_create(session: Session, name: str, projects: tuple[str, ...]) -> None:
    ids = [session.store.find_project(p).id for p in projects]
    created = session.store.create_initiative(name, ids)
    session.show(created, lambda: console.print(f"initiative {created.name} [dim]{created.id}[/] on {created.branch}"))


@initiative.command("list")
@pass_session
def initiative_list(session: Session) -> None:
    initiatives = session.store.list_initiatives()

    def render() -> None:
        grid = table("ID", "NAME", "STATUS", "BRANCH")
        for i in initiatives:
            grid.add_row(i.id, i.name, styled(enum_name(initiative_pb2.InitiativeStatus, i.status)), i.branch)
        console.print(grid)

    session.show(initiatives, render)


@initiative.command("show")
@click.argument("initiative_id")
@pass_session
def initiative_show(session: Session, initiative_id: str) -> None:
    """The initiative as a tree of phases and tasks with their statuses."""
    found = session.store.get_initiative(initiative_id)
    phases = session.store.list_phases(found.id)
    tasks = session.store.list_tasks(initiative_id=found.id)

    def render() -> None:
        status = enum_name(initiative_pb2.InitiativeStatus, found.status)
        tree = Tree(f"[bold]{found.name}[/] {styled(status)} [dim]{found.id} {found.branch}[/]")
        for phase in phases:
            phase_status = enum_name(phase_pb2.PhaseStatus, phase.status)
            branch = tree.add(f"{phase.name} {styled(phase_status)} [dim]{phase.id}[/]")
            for task in (t for t in tasks if t.phase_id == phase.id):
                task_status = enum_name(task_pb2.TaskStatus, task.status)
                retries = f" retries {task.retry_count}" if task.retry_count else ""
                branch.add(f"{task.name} {styled(task_status)}{retries} [dim]{task.id}[/]")
        loose = [t for t in tasks if not t.phase_id]
        if loose:
            other = tree.add("(no phase)")
            for task in loose:
                other.add(f"{task.name} {styled(enum_name(task_pb2.TaskStatus, task.status))} [dim]{task.id}[/]")
        console.print(tree)

    session.show({"initiative": found, "phases": phases, "tasks": tasks}, render)


@click.group(cls=CwGroup)
def phase() -> None:
    """Phases: groups of tasks, reviewed as one diff."""


@phase.command("add")
@click.argument("initiative_id")
@click.argument("name")
@click.option("--after", multiple=True, help="a phase this one waits for (repeatable)")
@pass_session
def phase_add(session: Session, initiative_id: str, name: str, after: tuple[str, ...]) -> None:
    created = session.store.create_phase(initiative_id, name, list(after))
    session.show(created, lambda: console.print(f"phase {created.name} [dim]{created.id}[/]"))


@phase.command("approve")
@click.argument("phase_id")
@pass_session
def phase_approve(session: Session, phase_id: str) -> None:
    """Queue the phase: it starts once the phases it waits for are merged."""
    approved = session.orchestrator.approve_phase(phase_id)
    session.show(approved, lambda: console.print(f"phase {approved.name} approved"))


@phase.command("diff")
@click.argument("phase_id")
@click.option("--stat", is_flag=True, help="only the files and their line counts")
@pass_session
def phase_diff(session: Session, phase_id: str, stat: bool) -> None:
    diff = session.orchestrator.phase_diff(phase_id)

    def render() -> None:
        for project_diff in diff.projects:
            console.print(
                f"[bold]{project_diff.project_name}[/] {project_diff.base_commit[:10]}..{project_diff.head_commit[:10]}"
            )
            if stat:
                for f in project_diff.files:
                    change = orch.FileChange.Name(f.change).removeprefix("FILE_CHANGE_").lower()
                    console.print(f"  {f.path}  [green]+{f.additions}[/] [red]-{f.deletions}[/]  {change}")
            elif console.is_terminal:
                console.print(Syntax(project_diff.unified_diff, "diff", theme="ansi_dark", background_color="default"))
            else:
                click.echo(project_diff.unified_diff, nl=False)

    session.show(diff, render)


@phase.command("merge")
@click.argument("phase_id")
@pass_session
def phase_merge(session: Session, phase_id: str) -> None:
    """Merge a reviewed phase into the initiative branch."""
    merged = session.orchestrator.merge_phase(phase_id)
    session.show(merged, lambda: console.print(f"phase {merged.name} merged at {merged.merge_base[:10]}"))


@click.group(cls=CwGroup)
def task() -> None:
    """Tasks: one agent's piece of work."""


@task.command("add")
@click.argument("phase_id")
@click.argument("name")
@click.option("--description", default="", help="what the agent should do")
@click.option("--after", multiple=True, help="a task this one waits for (repeatable)")
@click.option("--priority", default="medium", type=click.Choice(["low", "medium", "high"]), show_default=True)
@click.option(
    "--category",
    default="execute",
    type=click.Choice(["execute", "research", "discuss", "plan", "detail", "refine", "verify", "merge", "review"]),
    show_default=True,
)
@pass_session
def task_add(
    session: Session,
    phase_id: str,
    name: str,
    *,
    description: str,
    after: tuple[str, ...],
    priority: str,
    category: str,
) -> None:
    created = session.store.create_task(
        phase_id, name, description=description, after=list(after), priority=priority, category=category
    )
    session.show(created, lambda: console.print(f"task {created.name} [dim]{created.id}[/]"))


@task.command("list")
@click.option("--phase", "phase_id", default="", help="only the tasks of this phase")
@click.option(
    "--status",
    default="",
    type=click.Choice(["", "pending", "in_progress", "completed", "blocked"]),
    help="only this status",
)
@pass_session
def task_list(session: Session, phase_id: str, status: str) -> None:
    tasks = session.store.list_tasks(phase_id=phase_id, status=status)

    def render() -> None:
        grid = table("ID", "NAME", "STATUS", "PRIORITY", "RETRIES", "PHASE")
        for t in tasks:
            grid.add_row(
                t.id,
                t.name,
                styled(enum_name(task_pb2.TaskStatus, t.status)),
                enum_name(task_pb2.TaskPriority, t.priority),
                str(t.retry_count),
                t.phase_id,
            )
        console.print(grid)

    session.show(tasks, render)


@task.command("retry")
@click.argument("task_id")
@pass_session
def task_retry(session: Session, task_id: str) -> None:
    """Run a BLOCKED task again, with its retry count reset."""
    retried = session.orchestrator.retry_blocked_task(task_id)
    session.show(retried, lambda: console.print(f"task {retried.name} queued again"))

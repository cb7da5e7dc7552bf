"""`cw project`, `cw initiative`, `cw phase`: the work and its structure (`cw task` is in tasks.py)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table
from rich.tree import Tree

from clients.cli import review
from clients.cli.app import CwGroup, Session, console, message_dict, pass_session
from clients.cli.usage import budget_line, usage_line
from clients.cli.views import after_note, merged_line, reason_note, short, styled, table, waits_for
from clients.sdk import CwError
from clients.sdk.calls import enum_name
from cw.orchestrator.v1 import orchestrator_pb2 as orch
from cw.store.v1 import initiative_pb2, phase_pb2, project_pb2, review_comment_pb2, task_pb2


@click.group(cls=CwGroup)
def project() -> None:
    """Git repositories that initiatives work on."""


@project.command("add")
@click.argument("name")
@click.argument("url")
@click.option("--default-branch", default="main", show_default=True)
@pass_session
def project_add(session: Session, name: str, url: str, default_branch: str) -> None:
    """Register a repository (a path or a URL) as project NAME. A local path is taken relative to
    where you are (the store keeps it absolute); one that does not exist is refused here, where the
    mistake is made, rather than when an initiative first fails to clone it."""
    if "://" not in url and not url.startswith("-"):
        url = str(Path(url).expanduser().resolve())
    local = _local_path(url)
    if local is not None and not local.is_dir():
        raise click.BadParameter(f"{local} is not a directory (a git repository, or a URL)", param_hint="URL")
    created = session.store.create_project(name, url, default_branch)
    session.show(created, lambda: console.print(f"project {created.name} [dim]{created.id}[/]"))


def _local_path(url: str) -> Path | None:
    """The directory a local project names (a path, or a file:// URL); None for remote URLs."""
    if url.startswith("file://"):
        return Path(url.removeprefix("file://"))
    return None if "://" in url or url.startswith("-") else Path(url)


@project.command("list")
@pass_session
def project_list(session: Session) -> None:
    projects = session.store.list_projects()
    session.show(projects, lambda: console.print(projects_table(projects)))


def projects_table(projects: list[project_pb2.Project]) -> Table:
    """Projects, with the error of a project cw could not fetch (until a fetch works again)."""
    grid = table("ID", "NAME", "URL", "BRANCH", "SYNC ERROR")
    for p in projects:
        grid.add_row(
            p.id, escape(p.name), escape(p.url), escape(p.default_branch), f"[red]{escape(short(p.sync_error))}[/]"
        )
    return grid


@click.group(cls=CwGroup)
def initiative() -> None:
    """Initiatives: the top of the work tree."""


@initiative.command("create")
@click.argument("name")
@click.option("--project", "projects", multiple=True, required=True, help="project id or name (repeatable)")
@click.option("--provider", default="", help="the provider its tasks run on (default: the orchestrator's)")
@click.option(
    "--fallback-provider",
    "fallbacks",
    multiple=True,
    help="where its tasks go while every account of theirs rests, in the order given (repeatable)",
)
@pass_session
def initiative_create(
    session: Session, name: str, projects: tuple[str, ...], provider: str, fallbacks: tuple[str, ...]
) -> None:
    ids = [session.store.find_project(p).id for p in projects]
    created = session.store.create_initiative(name, ids, provider=provider, fallback_providers=fallbacks)
    session.store.root_page(created.id)  # where its idea goes (`cw page edit`), and what planning reads
    session.show(created, lambda: console.print(f"initiative {created.name} [dim]{created.id}[/] on {created.branch}"))


@initiative.command("update")
@click.argument("initiative_id")
@click.option("--provider", help="the provider its tasks run on ('' for the orchestrator's default)")
@click.option(
    "--fallback-provider",
    "fallbacks",
    multiple=True,
    help="where its tasks go while every account of theirs rests, in the order given (repeatable; replaces the list)",
)
@click.option("--no-fallback", is_flag=True, help="no fallback providers")
@pass_session
def initiative_update(
    session: Session, initiative_id: str, provider: str | None, fallbacks: tuple[str, ...], no_fallback: bool
) -> None:
    """Change which provider the initiative's tasks run on and where they fall back to."""
    if no_fallback and fallbacks:
        raise click.UsageError("--no-fallback and --fallback-provider together")
    chosen = [] if no_fallback else (list(fallbacks) or None)
    if provider is None and chosen is None:
        raise click.UsageError("nothing to change: give --provider, --fallback-provider or --no-fallback")
    updated = session.store.set_initiative_providers(initiative_id, provider, chosen)
    session.show(updated, lambda: console.print(f"initiative {escape(updated.name)}: {providers_line(updated)}"))


def providers_line(found: initiative_pb2.Initiative) -> str:
    """Which provider its tasks run on, and where they fall back to."""
    provider = escape(found.provider) if found.provider else "the orchestrator's default"
    fallbacks = ", ".join(escape(name) for name in found.fallback_providers) or "none"
    return f"provider: {provider}; fallback: {fallbacks}"


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
    """The initiative as a tree of phases and tasks: statuses, what each waits for, why it is stuck."""
    found = session.store.get_initiative(initiative_id)
    phases = session.store.list_phases(found.id)
    tasks = session.store.list_tasks(initiative_id=found.id)
    phase_edges = [
        phase_pb2.PhaseDependency(phase_id=p.id, depends_on_phase_id=d.id)
        for p in phases
        for d in session.store.phase_dependencies(p.id)
    ]
    task_edges = session.store.task_dependencies(initiative_id=found.id)
    used = initiative_usage(session, found)
    shown = {
        "initiative": found,
        "phases": phases,
        "tasks": tasks,
        "phaseDependencies": phase_edges,
        "taskDependencies": task_edges,
        "usage": used if used is not None else {},
    }

    def render() -> None:
        console.print(initiative_tree(found, phases, tasks, phase_edges, task_edges))
        console.print(providers_line(found))
        console.print(initiative_usage_line(found, used))

    session.show(shown, render)


def initiative_usage(session: Session, found: initiative_pb2.Initiative) -> orch.UsageTotal | None:
    """Its agents' usage, summed by the orchestrator; None when the orchestrator cannot say."""
    try:
        totals = session.orchestrator.usage("initiative", found.id).totals
    except CwError:
        return None
    return totals[0] if totals else None


def initiative_usage_line(found: initiative_pb2.Initiative, used: orch.UsageTotal | None) -> str:
    if used is None:
        return "[dim]usage: not available (the orchestrator does not answer)[/]"
    line = f"usage: {usage_line(used.usage)}"
    tokens = found.budget_tokens if found.HasField("budget_tokens") else None
    usd = found.budget_usd if found.HasField("budget_usd") else None
    budget = budget_line(used.budget_tokens_used, used.usage.cost_usd, tokens, usd)
    return f"{line}; budget: {budget}" if budget else line


def initiative_tree(
    found: initiative_pb2.Initiative,
    phases: list[phase_pb2.Phase],
    tasks: list[task_pb2.Task],
    phase_edges: list[phase_pb2.PhaseDependency],
    task_edges: list[task_pb2.TaskDependency],
) -> Tree:
    phase_after = waits_for(phase_edges, {p.id: p.name for p in phases})
    task_after = waits_for(task_edges, {t.id: t.name for t in tasks})
    status = enum_name(initiative_pb2.InitiativeStatus, found.status)
    tree = Tree(f"[bold]{escape(found.name)}[/] {styled(status)} [dim]{found.id} {found.branch}[/]")
    groups = [(p.id, tree.add(_phase_label(p, phase_after.get(p.id, [])))) for p in phases]
    if any(not t.phase_id for t in tasks):
        groups.append(("", tree.add("(no phase)")))
    for phase_id, branch in groups:
        for task in (t for t in tasks if t.phase_id == phase_id):
            branch.add(_task_label(task, task_after.get(task.id, [])))
    return tree


def _phase_label(phase: phase_pb2.Phase, after: list[str]) -> str:
    status = enum_name(phase_pb2.PhaseStatus, phase.status)
    return f"{escape(phase.name)} {styled(status)} [dim]{phase.id}[/]{after_note(after)}{reason_note(phase.reason)}"


def _task_label(task: task_pb2.Task, after: list[str]) -> str:
    status = enum_name(task_pb2.TaskStatus, task.status)
    retries = f" retries {task.retry_count}" if task.retry_count else ""
    label = f"{escape(task.name)} {styled(status)}{retries} [dim]{task.id}[/]"
    return label + after_note(after) + reason_note(task.reason)


@click.group(cls=CwGroup)
def phase() -> None:
    """Phases: groups of tasks, reviewed as one diff."""


@phase.command("add")
@click.argument("initiative_id")
@click.argument("name")
@click.option("--after", multiple=True, help="a phase this one waits for (repeatable; a bad one creates nothing)")
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
    """The phase's work, with the open review comments under their lines."""
    diff = session.orchestrator.phase_diff(phase_id)
    comments = session.store.list_comments(phase_id, resolved=False)
    shown = {**message_dict(diff), "comments": [message_dict(c) for c in comments]}
    session.show(shown, lambda: print_diff(diff.projects, stat, comments))


def print_diff(
    projects: Sequence[orch.ProjectDiff], stat: bool, comments: Sequence[review_comment_pb2.ReviewComment] = ()
) -> None:
    """Per project: the files and their counts (`stat`), or the diff, coloured on a terminal."""
    for project_diff in projects:
        console.print(
            f"[bold]{project_diff.project_name}[/] {project_diff.base_commit[:10]}..{project_diff.head_commit[:10]}"
        )
        if stat:
            for f in project_diff.files:
                change = orch.FileChange.Name(f.change).removeprefix("FILE_CHANGE_").lower()
                console.print(f"  {f.path}  [green]+{f.additions}[/] [red]-{f.deletions}[/]  {change}")
        elif comments:
            lines = review.annotated(project_diff.unified_diff, project_diff, comments)
            if console.is_terminal:
                console.print(review.render_lines(lines), end="")
            else:
                click.echo("\n".join(lines))
        elif console.is_terminal:
            console.print(Syntax(project_diff.unified_diff, "diff", theme="ansi_dark", background_color="default"))
        else:
            click.echo(project_diff.unified_diff, nl=False)


@phase.command("merge")
@click.argument("phase_id")
@pass_session
def phase_merge(session: Session, phase_id: str) -> None:
    """Merge a reviewed phase into the initiative branch; a conflict goes to a merge agent, and the
    phase is merged once it resolved it."""
    merged = session.orchestrator.merge_phase(phase_id)
    if merged.status != phase_pb2.PHASE_STATUS_COMPLETED:
        session.show(
            merged, lambda: console.print(f"phase {escape(merged.name)} not merged yet: {escape(merged.reason)}")
        )
        return
    projects = session.store.initiative_projects(merged.initiative_id) if merged.merge_commits else []
    session.show(merged, lambda: console.print(merged_line(merged, {p.id: p.name for p in projects})))

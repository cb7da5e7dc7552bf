"""`cw initiative`: the top of the work tree, shown as a tree of its phases and tasks, and what is
left once its phases are merged: its diff, and delivering it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from clients.cli.app import CwGroup, Session, console, pass_session
from clients.cli.diff_views import print_diff
from clients.cli.views import after_note, budget_line, escape, reason_note, styled, table, usage_line, waits_for
from clients.sdk import CwError
from clients.sdk.calls import enum_name
from cw.store.v1 import initiative_pb2, phase_pb2, task_pb2

if TYPE_CHECKING:
    from rich.tree import Tree

    from cw.orchestrator.v1 import orchestrator_pb2 as orch


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
    session.show(
        created, lambda: console().print(f"initiative {created.name} [dim]{created.id}[/] on {created.branch}")
    )


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
    session.show(updated, lambda: console().print(f"initiative {escape(updated.name)}: {providers_line(updated)}"))


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
        console().print(grid)

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
        console().print(initiative_tree(found, phases, tasks, phase_edges, task_edges))
        console().print(providers_line(found))
        console().print(initiative_usage_line(found, used))

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
    from rich.tree import Tree

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


@initiative.command("diff")
@click.argument("initiative_id")
@click.option("--stat", is_flag=True, help="only the files and their line counts")
@pass_session
def initiative_diff(session: Session, initiative_id: str, stat: bool) -> None:
    """The initiative branch against each project's default branch: what `deliver` would bring."""
    diff = session.orchestrator.initiative_diff(initiative_id)
    session.show(diff, lambda: print_diff(diff.projects, stat))


@initiative.command("deliver")
@click.argument("initiative_id")
@pass_session
def initiative_deliver(session: Session, initiative_id: str) -> None:
    """Push the initiative branch into each project's own repository as a branch of the same name
    (your checked-out branch is never touched), and mark the initiative COMPLETED."""
    delivered = session.orchestrator.deliver_initiative(initiative_id)
    session.show(
        delivered,
        lambda: console().print(
            f"initiative {escape(delivered.name)} delivered: branch {delivered.branch} in each project"
        ),
    )

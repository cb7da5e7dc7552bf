"""An editable plan and delivery: `cw task edit|move|delete`, `cw phase edit|delete`,
`cw project edit|remove`, `cw initiative diff|deliver`. Registered on the groups of tasks.py and
work.py by main.py.

The store refuses an edit or a delete while a live agent depends on it (FAILED_PRECONDITION,
AGENT_WORKING), and a task for a merged phase unless it is reopened (`--reopen`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click
from rich.markup import escape

from clients.cli.app import CwCommand, Session, console, pass_session
from clients.cli.work import print_diff

CATEGORIES = ["execute", "research", "discuss", "plan", "detail", "refine", "verify", "merge", "review"]


def _text(value: str | None, file: Path | None) -> str | None:
    return file.read_text() if file is not None else value


@click.command("edit", cls=CwCommand)
@click.argument("task_id")
@click.option("--name")
@click.option("--description")
@click.option("--description-file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--priority", type=click.Choice(["low", "medium", "high"]))
@click.option("--category", type=click.Choice(CATEGORIES))
@click.option("--provider", help="the provider its runs use ('' for its initiative's, else the default)")
@pass_session
def task_edit(
    session: Session,
    task_id: str,
    *,
    name: str | None,
    description: str | None,
    description_file: Path | None,
    priority: str | None,
    category: str | None,
    provider: str | None,
) -> None:
    """Change a task (refused while an agent works on it)."""
    edited = session.store.update_task(
        task_id,
        name=name,
        description=_text(description, description_file),
        priority=priority,
        category=category,
        provider=provider,
    )
    session.show(edited, lambda: console.print(f"task {escape(edited.name)} changed"))


@click.command("move", cls=CwCommand)
@click.argument("task_id")
@click.argument("phase_id")
@click.option("--reopen", is_flag=True, help="the phase is merged: reopen it (it runs and is reviewed again)")
@pass_session
def task_move(session: Session, task_id: str, phase_id: str, reopen: bool) -> None:
    """Move a task to another phase of its initiative."""
    moved = session.store.update_task(task_id, reopen=reopen, phase_id=phase_id)
    session.show(moved, lambda: console.print(f"task {escape(moved.name)} moved to phase {moved.phase_id}"))


def _delete_command(what: str, delete: Callable[[Session, str], None], doc: str) -> click.Command:
    @click.command("delete", cls=CwCommand, help=doc)
    @click.argument("row_id", metavar=f"{what.upper()}_ID")
    @pass_session
    def command(session: Session, row_id: str) -> None:
        delete(session, row_id)
        session.show({"deleted": row_id}, lambda: console.print(f"{what} {row_id} deleted"))

    return command


task_delete = _delete_command(
    "task",
    lambda session, task_id: session.store.delete_task(task_id),
    "Delete a task and its dependency edges (refused while an agent works on it).",
)
phase_delete = _delete_command(
    "phase",
    lambda session, phase_id: session.store.delete_phase(phase_id),
    "Delete a phase with its tasks and comments (refused while an agent works on one of them).",
)


@click.command("edit", cls=CwCommand)
@click.argument("phase_id")
@click.option("--name")
@click.option("--content")
@click.option("--content-file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_session
def phase_edit(
    session: Session, phase_id: str, name: str | None, content: str | None, content_file: Path | None
) -> None:
    """Change a phase (refused while an agent works on one of its tasks)."""
    edited = session.store.update_phase(phase_id, name=name, content=_text(content, content_file))
    session.show(edited, lambda: console.print(f"phase {escape(edited.name)} changed"))


@click.command("edit", cls=CwCommand)
@click.argument("project")
@click.option("--name")
@click.option("--url", help="a path (taken from where you are) or a URL")
@click.option("--default-branch")
@pass_session
def project_edit(session: Session, project: str, name: str | None, url: str | None, default_branch: str | None) -> None:
    """Change a project (refused while an agent works in it): a url that failed to sync, fixed."""
    found = session.store.find_project(project)
    if url is not None and "://" not in url and not url.startswith("-"):
        url = str(Path(url).expanduser().resolve())
    edited = session.store.update_project(found.id, name=name, url=url, default_branch=default_branch)
    session.show(edited, lambda: console.print(f"project {escape(edited.name)} changed"))


@click.command("remove", cls=CwCommand)
@click.argument("project")
@pass_session
def project_remove(session: Session, project: str) -> None:
    """Forget a project (your repository is not touched; refused while an agent works in it)."""
    found = session.store.find_project(project)
    session.store.delete_project(found.id)
    session.show({"deleted": found.id}, lambda: console.print(f"project {escape(found.name)} removed"))


@click.command("diff", cls=CwCommand)
@click.argument("initiative_id")
@click.option("--stat", is_flag=True, help="only the files and their line counts")
@pass_session
def initiative_diff(session: Session, initiative_id: str, stat: bool) -> None:
    """The initiative branch against each project's default branch: what `deliver` would bring."""
    diff = session.orchestrator.initiative_diff(initiative_id)
    session.show(diff, lambda: print_diff(diff.projects, stat))


@click.command("deliver", cls=CwCommand)
@click.argument("initiative_id")
@pass_session
def initiative_deliver(session: Session, initiative_id: str) -> None:
    """Push the initiative branch into each project's own repository as a branch of the same name
    (your checked-out branch is never touched), and mark the initiative COMPLETED."""
    delivered = session.orchestrator.deliver_initiative(initiative_id)
    session.show(
        delivered,
        lambda: console.print(
            f"initiative {escape(delivered.name)} delivered: branch {delivered.branch} in each project"
        ),
    )

"""`cw project`: the git repositories initiatives work on.

The store refuses an edit or a removal while a live agent works in the project (FAILED_PRECONDITION,
AGENT_WORKING).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from clients.cli.app import CwGroup, Session, console, pass_session
from clients.cli.views import escape, short, table

if TYPE_CHECKING:
    from rich.table import Table

    from cw.store.v1 import project_pb2


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
    url = _absolute(url)
    local = _local_path(url)
    if local is not None and not local.is_dir():
        raise click.BadParameter(f"{local} is not a directory (a git repository, or a URL)", param_hint="URL")
    created = session.store.create_project(name, url, default_branch)
    session.show(created, lambda: console().print(f"project {created.name} [dim]{created.id}[/]"))


def _absolute(url: str) -> str:
    """A local path as the store keeps it (absolute, from where you are); a URL as it is."""
    if "://" in url or url.startswith("-"):
        return url
    return str(Path(url).expanduser().resolve())


def _local_path(url: str) -> Path | None:
    """The directory a local project names (a path, or a file:// URL); None for remote URLs."""
    if url.startswith("file://"):
        return Path(url.removeprefix("file://"))
    return None if "://" in url or url.startswith("-") else Path(url)


@project.command("list")
@pass_session
def project_list(session: Session) -> None:
    projects = session.store.list_projects()
    session.show(projects, lambda: console().print(projects_table(projects)))


def projects_table(projects: list[project_pb2.Project]) -> Table:
    """Projects, with the error of a project cw could not fetch (until a fetch works again)."""
    grid = table("ID", "NAME", "URL", "BRANCH", "SYNC ERROR")
    for p in projects:
        grid.add_row(
            p.id, escape(p.name), escape(p.url), escape(p.default_branch), f"[red]{escape(short(p.sync_error))}[/]"
        )
    return grid


@project.command("edit")
@click.argument("project")
@click.option("--name")
@click.option("--url", help="a path (taken from where you are) or a URL")
@click.option("--default-branch")
@pass_session
def project_edit(session: Session, project: str, name: str | None, url: str | None, default_branch: str | None) -> None:
    """Change a project (refused while an agent works in it): a url that failed to sync, fixed."""
    found = session.store.find_project(project)
    url = _absolute(url) if url is not None else None
    edited = session.store.update_project(found.id, name=name, url=url, default_branch=default_branch)
    session.show(edited, lambda: console().print(f"project {escape(edited.name)} changed"))


@project.command("remove")
@click.argument("project")
@pass_session
def project_remove(session: Session, project: str) -> None:
    """Forget a project (your repository is not touched; refused while an agent works in it)."""
    found = session.store.find_project(project)
    session.store.delete_project(found.id)
    session.show({"deleted": found.id}, lambda: console().print(f"project {escape(found.name)} removed"))

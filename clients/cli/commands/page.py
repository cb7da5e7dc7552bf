"""`cw page`: an initiative's living spec, a tree of markdown pages under its root page; `cw page
refine` has an agent propose an edit of one (clients/cli/planning_runs.py)."""

from __future__ import annotations

from pathlib import Path

import click

from clients.cli.app import CwGroup, Session, console, pass_session
from clients.cli.planning_runs import page_subject, shortcut
from clients.cli.planning_views import page_tree
from clients.cli.views import escape


@click.group(cls=CwGroup)
def page() -> None:
    """Pages: an initiative's living spec, a tree of markdown documents under its root page."""


@page.command("tree")
@click.argument("initiative_id")
@pass_session
def page_tree_command(session: Session, initiative_id: str) -> None:
    session.store.root_page(initiative_id)
    pages = session.store.list_pages(initiative_id)
    session.show(pages, lambda: console().print(page_tree(pages)))


@page.command("show")
@click.argument("page_id")
@pass_session
def page_show(session: Session, page_id: str) -> None:
    found = session.store.get_page(page_id)

    def render() -> None:
        console().print(f"[bold]{escape(found.title)}[/] [dim]{found.id}[/]")
        if console().is_terminal:
            from rich.markdown import Markdown

            console().print(Markdown(found.content or "(empty)"))
        else:
            click.echo(found.content, nl=False)

    session.show(found, render)


def _text_of(file: Path | None, current: str) -> str | None:
    """The file's text, or what the person wrote in $EDITOR (None: left unchanged)."""
    if file is not None:
        return file.read_text()
    return click.edit(current, extension=".md")


@page.command("edit")
@click.argument("page_id")
@click.option("--file", "file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="markdown to store")
@pass_session
def page_edit(session: Session, page_id: str, file: Path | None) -> None:
    """Replace the page's content with a file's, or edit it in $EDITOR."""
    found = session.store.get_page(page_id)
    content = _text_of(file, found.content)
    if content is None or content == found.content:
        session.show(found, lambda: console().print("unchanged"))
        return
    updated = session.store.set_page_content(found.id, content)
    session.show(updated, lambda: console().print(f"page {escape(updated.title)} saved"))


@page.command("add")
@click.argument("initiative_id")
@click.argument("title")
@click.option("--parent", default="", help="the page it goes under (default: the root page)")
@click.option("--file", "file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="its markdown")
@pass_session
def page_add(session: Session, initiative_id: str, title: str, parent: str, file: Path | None) -> None:
    content = file.read_text() if file is not None else ""
    created = session.store.create_page(initiative_id, title, content, parent)
    session.show(created, lambda: console().print(f"page {escape(created.title)} [dim]{created.id}[/]"))


page.add_command(shortcut("refine", "refine", "PAGE", page_subject, "An agent proposes an edit of the page (a diff)."))

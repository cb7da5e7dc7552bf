"""`cw proposals`: what planning agents proposed (a tree of phases and tasks, page edits as diffs),
accepted as one change set, dismissed, or reverted."""

from __future__ import annotations

from collections.abc import Callable

import click

from clients.cli.app import CwGroup, Session, console, pass_session
from clients.cli.planning_runs import existing_rows
from clients.cli.planning_views import proposal_detail, proposals_tree
from clients.cli.views import escape
from clients.sdk.calls import enum_name
from cw.store.v1 import proposal_pb2


@click.group(cls=CwGroup)
def proposals() -> None:
    """What planning agents proposed: a tree of phases and tasks, page edits as diffs."""


@proposals.command("list")
@click.argument("initiative_id")
@click.option("--all", "every", is_flag=True, help="accepted and dismissed ones too")
@pass_session
def proposals_list(session: Session, initiative_id: str, every: bool) -> None:
    found = session.store.list_proposals(initiative_id, "" if every else "pending")
    existing = existing_rows(session, initiative_id)
    session.show(found, lambda: console().print(proposals_tree(found, existing)))


@proposals.command("show")
@click.argument("proposal_id")
@pass_session
def proposals_show(session: Session, proposal_id: str) -> None:
    found = session.store.get_proposal(proposal_id)
    existing = existing_rows(session, found.initiative_id)
    session.show(found, lambda: console().print(proposal_detail(found, existing)))


def choosing(name: str) -> Callable[[Callable[..., None]], click.Command]:
    """`cw proposals NAME [ID...] [--initiative ID]`: a verb about some proposals."""

    def decorate(function: Callable[..., None]) -> click.Command:
        every = click.option("--initiative", "initiative_id", default="", help="every pending one of this initiative")
        return proposals.command(name)(click.argument("proposal_ids", nargs=-1)(every(pass_session(function))))

    return decorate


def _chosen(session: Session, ids: tuple[str, ...], initiative_id: str) -> list[str]:
    if ids:
        return list(ids)
    if not initiative_id:
        raise click.UsageError("name proposals, or --initiative ID for all its pending ones")
    return [proposal.id for proposal in session.store.list_proposals(initiative_id, "pending")]


@choosing("accept")
def proposals_accept(session: Session, proposal_ids: tuple[str, ...], initiative_id: str) -> None:
    """Apply proposals as one change set (undone by `cw proposals revert CHANGE_SET`)."""
    chosen = _chosen(session, proposal_ids, initiative_id)
    if not chosen:
        session.show({"proposals": []}, lambda: console().print("no pending proposals"))
        return
    accepted = session.store.accept_proposals(chosen)

    def render() -> None:
        console().print(f"accepted {len(accepted.proposals)} as change set [dim]{accepted.change_set_id}[/]")
        for proposal in accepted.proposals:
            kind = enum_name(proposal_pb2.ProposalTargetType, proposal.target_type)
            console().print(f"  {kind} {escape(proposal.title)} [dim]{proposal.entity_id}[/]")

    session.show(accepted, render)


@choosing("dismiss")
def proposals_dismiss(session: Session, proposal_ids: tuple[str, ...], initiative_id: str) -> None:
    chosen = _chosen(session, proposal_ids, initiative_id)
    dismissed = session.store.dismiss_proposals(chosen) if chosen else None
    count = len(dismissed.proposals) if dismissed is not None else 0
    session.show(dismissed or {"proposals": []}, lambda: console().print(f"dismissed {count}"))


@proposals.command("revert")
@click.argument("change_set_id")
@pass_session
def proposals_revert(session: Session, change_set_id: str) -> None:
    """Undo an accepted batch: what it made goes, what it changed comes back; its proposals are
    pending again. Refused when something changed since."""
    reverted = session.store.revert_change_set(change_set_id)
    session.show(reverted, lambda: console().print(f"reverted {len(reverted.entries)} changes"))

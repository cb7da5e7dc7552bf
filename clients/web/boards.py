"""An initiative's board kept between views, and brought up to date from the event log.

A board takes six reads (the initiative, its phases, tasks, their dependencies, proposals, each
phase's dependencies). It is kept with the log's head read before them; before it is shown again,
two small reads of the log, made at once, say what changed since: the initiative's events (agent
output aside), and dependencies' events (the store scopes those to their task or phase, not to the
initiative). Nothing changed: the kept board is shown. Only tasks changed (the common case while
agents work): those tasks are read again, one each. Anything else: the whole board is read again.
The initiative's usage is summed again when one of its agents changed (an agent's usage is
written on its row as it runs) or the whole board is read.
The log's head is read first: the board is kept with it, and the page's live updates start there.
Nothing is shown stale: every change has an event, and an event means a read. `verdict` is the
pure decision.
"""

from __future__ import annotations

import enum
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from clients.sdk import StoreClient
from clients.sdk.calls import call
from clients.sdk.event_types import KNOWN_EVENT_TYPES, shown_by_default
from cw.store.v1 import event_pb2

KEPT_BOARDS = 32
# More events than this since the board was read: it is read again whole.
PATCH_LIMIT = 100
DEPENDENCY_TYPES = tuple(t for t in KNOWN_EVENT_TYPES if t.startswith(("task_dependency:", "phase_dependency:")))
BOARD_TYPES = tuple(t for t in KNOWN_EVENT_TYPES if shown_by_default(t) and t not in DEPENDENCY_TYPES)
# Events about rows the board does not show.
AGENT_EVENTS = "agent:"
NOT_ON_THE_BOARD = (
    AGENT_EVENTS,
    "chat_message:",
    "chat_session:",
    "conversation:",
    "message:",
    "page:",
    "review_comment:",
)


class Change(enum.StrEnum):
    NONE = "none"
    TASKS = "tasks"
    EVERYTHING = "everything"


@dataclass(frozen=True)
class Verdict:
    change: Change
    task_ids: frozenset[str] = frozenset()
    # An agent of the initiative changed (its usage is written as it runs): its usage is summed again.
    agents: bool = False


def verdict(events: Sequence[event_pb2.Event], more: bool, dependencies_changed: bool) -> Verdict:
    """What to read again, given the initiative's events since the board was read (`more`: there
    were more than these) and whether a dependency changed."""
    if more or dependencies_changed:
        return Verdict(Change.EVERYTHING, agents=True)
    tasks: set[str] = set()
    agents = any(event.type.startswith(AGENT_EVENTS) for event in events)
    for event in events:
        if event.type.startswith(NOT_ON_THE_BOARD):
            continue
        if not event.type.startswith("task:") or not event.task_id:
            return Verdict(Change.EVERYTHING, agents=True)
        tasks.add(event.task_id)
    return Verdict(Change.TASKS, frozenset(tasks), agents) if tasks else Verdict(Change.NONE, agents=agents)


def look_since(store: StoreClient, initiative_id: str, sequence: int, submit: Callable[..., Any]) -> Verdict:
    """What changed on the board since `sequence` (read after the head the board will be kept
    with: an event between them is looked at again next time, never missed)."""
    scoped = event_pb2.ListEventsRequest(
        after_sequence=sequence, initiative_id=initiative_id, types=BOARD_TYPES, page_size=PATCH_LIMIT
    )
    dependencies = event_pb2.ListEventsRequest(after_sequence=sequence, types=DEPENDENCY_TYPES, page_size=1)
    answers = [submit(call, store.events.ListEvents, request) for request in (scoped, dependencies)]
    board, edges = (answer.result() for answer in answers)
    return verdict(board.events, len(board.events) >= PATCH_LIMIT, bool(edges.events))


@dataclass(frozen=True)
class Kept:
    sequence: int  # the log's head before the board was read
    rows: dict[str, Any]  # what was read
    values: dict[str, Any]  # what the page shows, made from `rows`


class Boards:
    """The boards last shown, a few dozen at most, newest kept."""

    def __init__(self) -> None:
        self._kept: OrderedDict[str, Kept] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, initiative_id: str) -> Kept | None:
        with self._lock:
            kept = self._kept.get(initiative_id)
            if kept is not None:
                self._kept.move_to_end(initiative_id)
            return kept

    def keep(self, initiative_id: str, kept: Kept) -> None:
        with self._lock:
            current = self._kept.get(initiative_id)
            if current is None or current.sequence <= kept.sequence:
                self._kept[initiative_id] = kept
                self._kept.move_to_end(initiative_id)
            while len(self._kept) > KEPT_BOARDS:
                self._kept.popitem(last=False)

"""An initiative's board read again only when the event log says it changed.

A board takes six reads (the initiative, its phases, tasks, their dependencies, proposals, each
phase's dependencies); a person looking at it again, or a second person, usually finds it as it
was. The board is kept with the log's head at which it was read, and before it is shown again two
small reads of the log, made at once, tell whether anything it shows changed since: an event of
the initiative (agent output aside), or a dependency's (the store scopes those to their task or
phase, not to the initiative). Either read also tells the log's head now, where the page's live
updates start. Nothing is shown stale: a change has an event, and an event means a new read.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from clients.sdk import StoreClient
from clients.sdk.calls import call
from clients.sdk.event_types import KNOWN_EVENT_TYPES, shown_by_default
from cw.store.v1 import event_pb2

KEPT_BOARDS = 32
DEPENDENCY_TYPES = tuple(t for t in KNOWN_EVENT_TYPES if t.startswith(("task_dependency:", "phase_dependency:")))
BOARD_TYPES = tuple(t for t in KNOWN_EVENT_TYPES if shown_by_default(t) and t not in DEPENDENCY_TYPES)


@dataclass(frozen=True)
class Kept:
    sequence: int  # the log's head before the board was read
    values: dict[str, Any]


def changed_since(
    store: StoreClient, initiative_id: str, sequence: int, submit: Callable[..., Any]
) -> tuple[bool, int]:
    """Whether an event that the board shows came after `sequence`, and the log's head."""
    scoped = event_pb2.ListEventsRequest(
        after_sequence=sequence, initiative_id=initiative_id, types=BOARD_TYPES, page_size=1
    )
    dependencies = event_pb2.ListEventsRequest(after_sequence=sequence, types=DEPENDENCY_TYPES, page_size=1)
    answers = [submit(call, store.events.ListEvents, request) for request in (scoped, dependencies)]
    pages = [answer.result() for answer in answers]
    return any(page.events for page in pages), min(page.head_sequence for page in pages)


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

"""The messages of stored rows, kept by the row's stored values, for the lists.

A list answer of 100 rows spent most of its time decoding the same stored rows into records and
building the same messages again on every call (bench/store_process.py, ListTasks). A row's message
depends on nothing but its stored values and the resource it is shown as, so it is kept under
exactly those: the driver's own tuple of the row, undecoded. A row that changed has other stored
values (its `update_time` at least) and so another key; there is nothing to invalidate, and a hit can
never show an older row. Rows are held least-recently-used first out, within a budget of bytes, and
a row too large to be worth keeping is shown and not kept.

Shared by the event loop and, for reads that had to wait (SQLite) or that go to a server
(PostgreSQL), by the reader threads: one lock around the table.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from store_service.api.limits import KIB, MIB
from store_service.db.reads import Record

# Bytes of stored values kept at most, all rows together; a row over ROW_BYTES is not kept. A kept
# row takes about seven times its stored bytes of memory (its record and message; 1,000 task rows
# of 545 bytes took 3.8 MB), so this is some 30 MB for some 7,500 such rows: the live ones.
BUDGET_BYTES = 4 * MIB
ROW_BYTES = 16 * KIB
# What a value other than text or bytes is counted as.
SCALAR_BYTES = 16
# Whole pages kept (`ShownRows.shown_page`): at most this many serialized bytes of messages, all
# pages together, and none larger than PAGE_BYTES. A page's rows are kept as the driver gave them
# (its key), beside the rows kept one by one.
PAGES_BUDGET_BYTES = 4 * MIB
PAGE_BYTES = 1 * MIB


@dataclass(frozen=True)
class Shown:
    """One row as the lists need it: the record (for the page cursor) and its message, whose
    serialized size is measured once."""

    record: Record
    message: Message
    size: int


@dataclass(frozen=True)
class ShownPage:
    """The rows of one read, shown: their records (the page cursor), their messages, and the
    serialized bytes of the first i+1 messages together at `reach[i]` (pagination.SizedPage)."""

    records: tuple[Record, ...]
    messages: tuple[Message, ...]
    reach: tuple[int, ...]

    @classmethod
    def of(cls, rows: list[Shown]) -> ShownPage:
        return cls(
            tuple(row.record for row in rows),
            tuple(row.message for row in rows),
            tuple(itertools.accumulate(row.size for row in rows)),
        )

    @property
    def bytes(self) -> int:
        return self.reach[-1] if self.reach else 0


def stored_bytes(stored: Sequence[Any]) -> int:
    return sum(
        len(value.encode()) if isinstance(value, str) else len(value) if isinstance(value, bytes) else SCALAR_BYTES
        for value in stored
    )


def _hashable(stored: tuple[Any, ...]) -> tuple[Any, ...]:
    """The row with each decoded JSON value as its canonical text, which is as good a key."""
    return tuple(
        json.dumps(value, sort_keys=True, default=str) if isinstance(value, dict | list) else value for value in stored
    )


class ShownRows:
    """Stored values -> Shown, least recently used out first."""

    def __init__(
        self, budget_bytes: int = BUDGET_BYTES, row_bytes: int = ROW_BYTES, pages_budget_bytes: int = PAGES_BUDGET_BYTES
    ) -> None:
        self.budget_bytes, self.row_bytes, self.pages_budget_bytes = budget_bytes, row_bytes, pages_budget_bytes
        self._rows: OrderedDict[Hashable, tuple[Shown, int]] = OrderedDict()
        self._bytes = 0
        self._pages: OrderedDict[Hashable, ShownPage] = OrderedDict()
        self._page_bytes = 0
        self._lock = threading.Lock()

    def shown(self, kind: Hashable, stored: tuple[Any, ...], show: Callable[[tuple[Any, ...]], Shown]) -> Shown:
        """The row `stored` shown as `kind` (a resource), by `show` unless kept from an earlier call."""
        values = stored
        try:
            hash(values)
        except TypeError:  # PostgreSQL's driver gives a JSON column's value decoded: a list, a dict
            values = _hashable(stored)
        key = (kind, values)
        with self._lock:
            kept = self._rows.get(key)
            if kept is not None:
                self._rows.move_to_end(key)
                return kept[0]
        made = show(stored)
        self._keep(key, made, stored_bytes(values))
        return made

    def shown_page(
        self, kind: Hashable, rows: list[tuple[Any, ...]], show: Callable[[tuple[Any, ...]], Shown]
    ) -> ShownPage:
        """The rows of one read shown as `kind`: kept whole when the same rows (every stored value,
        in the same order) were read before, so a list read again costs one look-up, not one per
        row; else shown row by row (`shown`) and kept."""
        key = (kind, tuple(rows))
        try:
            hash(key)
        except TypeError:  # PostgreSQL's decoded JSON: row by row only
            return ShownPage.of([self.shown(kind, stored, show) for stored in rows])
        with self._lock:
            kept = self._pages.get(key)
            if kept is not None:
                self._pages.move_to_end(key)
                return kept
        made = ShownPage.of([self.shown(kind, stored, show) for stored in rows])
        if made.bytes <= min(PAGE_BYTES, self.pages_budget_bytes):
            with self._lock:
                if key not in self._pages:
                    self._pages[key] = made
                    self._page_bytes += made.bytes
                while self._page_bytes > self.pages_budget_bytes:
                    _, dropped = self._pages.popitem(last=False)
                    self._page_bytes -= dropped.bytes
        return made

    def _keep(self, key: Hashable, made: Shown, size: int) -> None:
        if size > self.row_bytes:
            return
        with self._lock:
            if key in self._rows:
                return
            self._rows[key] = (made, size)
            self._bytes += size
            while self._bytes > self.budget_bytes:
                _, (_, dropped) = self._rows.popitem(last=False)
                self._bytes -= dropped

    def __len__(self) -> int:
        return len(self._rows)

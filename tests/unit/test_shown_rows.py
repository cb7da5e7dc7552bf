"""The lists' kept messages (store_service/api/shown_rows.py): kept by the stored values, so a
changed row is never shown as it was; within their byte budget; rows that cannot be keys shown
anyway."""

from __future__ import annotations

from typing import Any

from google.protobuf import wrappers_pb2

from store_service.api.shown_rows import Shown, ShownRows, stored_bytes


class Counting:
    """A `show` that counts its calls and shows a row's first value."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, stored: tuple[Any, ...]) -> Shown:
        self.calls += 1
        message = wrappers_pb2.StringValue(value=str(stored[0]))
        return Shown(stored, message, message.ByteSize())


def test_the_same_stored_row_is_shown_once_and_a_changed_one_anew() -> None:
    rows, show = ShownRows(), Counting()
    first = rows.shown("task", ("a", "2026-11-27 10:00:00.000001"), show)
    again = rows.shown("task", ("a", "2026-11-27 10:00:00.000001"), show)
    changed = rows.shown("task", ("b", "2026-11-27 10:00:00.000002"), show)
    assert show.calls == 2 and again is first
    assert changed.message == wrappers_pb2.StringValue(value="b")


def test_one_row_shown_as_two_resources_is_kept_twice() -> None:
    rows, show = ShownRows(), Counting()
    rows.shown("task", ("a",), show)
    rows.shown("phase", ("a",), show)
    assert show.calls == 2 and len(rows) == 2


def test_the_least_recently_shown_leave_first_within_the_budget() -> None:
    row = ("x" * 100,)
    size = stored_bytes(row)
    rows, show = ShownRows(budget_bytes=3 * size), Counting()
    for name in "abc":
        rows.shown(name, row, show)
    rows.shown("a", row, show)  # used again: "b" is now the oldest
    rows.shown("d", row, show)
    assert len(rows) == 3
    calls = show.calls
    rows.shown("a", row, show)
    assert show.calls == calls  # kept
    rows.shown("b", row, show)
    assert show.calls == calls + 1  # dropped for "d"


def test_a_row_over_the_row_limit_is_shown_and_not_kept() -> None:
    rows, show = ShownRows(row_bytes=10), Counting()
    rows.shown("task", ("x" * 11,), show)
    rows.shown("task", ("x" * 11,), show)
    assert show.calls == 2 and len(rows) == 0


def test_a_row_holding_decoded_json_is_kept_by_its_content() -> None:
    """PostgreSQL's driver gives a JSON column decoded: a list or a dict, no key as it is."""
    rows, show = ShownRows(), Counting()
    rows.shown("task", ("a", ["c1", "c2"]), show)
    rows.shown("task", ("a", ["c1", "c2"]), show)
    assert show.calls == 1
    rows.shown("task", ("a", ["c1", "c3"]), show)
    rows.shown("task", ("a", {"c": 1}), show)
    assert show.calls == 3 and len(rows) == 3


def test_a_page_read_again_is_one_look_up_and_a_changed_page_reuses_its_unchanged_rows() -> None:
    rows, show = ShownRows(), Counting()
    read = [("a", "t1"), ("b", "t1")]
    first = rows.shown_page("task", read, show)
    again = rows.shown_page("task", [tuple(row) for row in read], show)
    assert again is first and show.calls == 2
    changed = rows.shown_page("task", [("a", "t1"), ("b", "t2")], show)
    assert show.calls == 3  # "a" kept row by row
    assert [message.value for message in changed.messages] == ["a", "b"]  # type: ignore[attr-defined]
    assert changed.reach == (3, 6) and changed.records == (("a", "t1"), ("b", "t2"))


def test_pages_leave_oldest_first_within_their_budget() -> None:
    rows, show = ShownRows(pages_budget_bytes=6), Counting()
    first = rows.shown_page("task", [("a",), ("b",)], show)
    second = rows.shown_page("task", [("c",), ("d",)], show)  # 6 bytes each: the first page leaves
    assert rows.shown_page("task", [("c",), ("d",)], show) is second
    assert rows.shown_page("task", [("a",), ("b",)], show) is not first
    assert show.calls == 4  # its rows are still kept one by one


def test_a_page_holding_decoded_json_is_shown_row_by_row() -> None:
    rows, show = ShownRows(), Counting()
    first = rows.shown_page("task", [("a", ["c1"])], show)
    again = rows.shown_page("task", [("a", ["c1"])], show)
    assert again is not first and again.messages == first.messages and show.calls == 1

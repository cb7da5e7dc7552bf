"""A page filled in one step (`SizedPage.offer_all`) ends as one filled row by row (`offer`) does:
the same rows, bytes, last position and `more`, whatever the limit, the budget and the rows."""

from __future__ import annotations

import itertools

import pytest
from google.protobuf import wrappers_pb2

from store_service.api.pagination import SizedPage


def _filled(limit: int, budget: int, sizes: list[int], earlier: int, one_step: bool) -> tuple[object, ...]:
    page = SizedPage(limit, budget)
    messages = [wrappers_pb2.StringValue(value="x" * size) for size in sizes]
    for message in messages[:earlier]:
        page.offer(message, message.value)
    rest = messages[earlier:]
    if one_step:
        reach = list(itertools.accumulate(message.ByteSize() for message in rest))
        page.offer_all(rest, [message.value for message in rest], reach)
    else:
        for message in rest:
            if not page.offer(message, message.value):
                break
    return page.messages, page.size, page.last, page.more


@pytest.mark.parametrize("limit", [1, 2, 3, 5])
@pytest.mark.parametrize("budget", [10, 25, 1000])
@pytest.mark.parametrize("sizes", [[], [1], [3, 3, 3], [1, 30, 1, 1], [30], [2, 2, 2, 2, 2, 2]])
@pytest.mark.parametrize("earlier", [0, 1])
def test_offer_all_fills_a_page_as_offering_row_by_row_does(
    limit: int, budget: int, sizes: list[int], earlier: int
) -> None:
    assert _filled(limit, budget, sizes, earlier, True) == _filled(limit, budget, sizes, earlier, False)

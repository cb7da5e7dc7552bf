"""The etag rule: a row's next update_time moves past its stored one, whatever the clock says."""

from __future__ import annotations

from datetime import datetime, timedelta

from store_service.db.update_times import TICK, next_update_time

NOW = datetime(2026, 3, 1, 12, 0, 0, 500000)


def test_a_fresh_clock_reading_is_used_when_it_is_later() -> None:
    assert next_update_time(None, NOW) == NOW
    assert next_update_time(NOW - timedelta(seconds=1), NOW) == NOW


def test_the_same_tick_or_a_clock_that_stepped_back_still_moves_forward() -> None:
    assert next_update_time(NOW, NOW) == NOW + TICK
    later = NOW + timedelta(hours=1)
    assert next_update_time(later, NOW) == later + TICK

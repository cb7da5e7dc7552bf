"""update_time as an etag at the repository level: every committed write moves it forward."""

from __future__ import annotations

import itertools
from datetime import datetime

from pytest import MonkeyPatch

from store_service.db import update_times
from store_service.db.models import utcnow
from store_service.repositories.unit_of_work import UnitOfWorkFactory

WRITES = 2000
# Each is its own committed (fsynced) transaction: fewer, to keep the suite quick.
COMMITS = 300


def test_back_to_back_transactions_give_strictly_increasing_update_times(units: UnitOfWorkFactory) -> None:
    with units.write() as uow:
        task_id = uow.tasks.create(name="t").id
        uow.commit()
    seen: list[datetime] = []
    for order in range(1, COMMITS + 1):
        with units.write() as uow:
            seen.append(uow.tasks.update(task_id, order=order).update_time)
            uow.commit()
    assert all(earlier < later for earlier, later in itertools.pairwise(seen))
    with units.read() as uow:
        assert uow.tasks.get(task_id).update_time == seen[-1]


def test_writes_in_one_clock_tick_each_move_it_forward(units: UnitOfWorkFactory, monkeypatch: MonkeyPatch) -> None:
    frozen = utcnow()
    monkeypatch.setattr(update_times, "utcnow", lambda: frozen)
    with units.write() as uow:
        task_id = uow.tasks.create(name="t").id
        seen = [uow.tasks.update(task_id, order=order).update_time for order in range(1, WRITES + 1)]
        uow.commit()
    assert all(earlier < later for earlier, later in itertools.pairwise(seen))
    assert seen[-1] - seen[0] == (WRITES - 1) * update_times.TICK


def test_writing_an_old_update_time_back_still_moves_it_forward(units: UnitOfWorkFactory) -> None:
    """What reverting a change set does: it restores every column, update_time included."""
    with units.write() as uow:
        task = uow.tasks.create(name="t")
        created = task.update_time
        uow.commit()
    with units.write() as uow:
        renamed = uow.tasks.update(task.id, name="renamed").update_time
        restored = uow.tasks.update(task.id, name="t", update_time=created).update_time
        uow.commit()
    assert created < renamed < restored

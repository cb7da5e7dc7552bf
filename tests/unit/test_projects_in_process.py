"""The projects controller in-process (tests/fakes/whole.py, with tests/fakes/git.py): a project that
cannot be synced says why (its `sync_error`, `project:sync_failed`, its phase's reason) and holds up
only its own initiative; once a person gives it a good url it syncs, says so (`project:synced`) and
its phase runs, with no restart. No server, git or agent process."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cw.store.v1 import phase_pb2, project_pb2
from orchestrator_service.store_client import changes
from orchestrator_service.writes import update
from tests.fakes.store import FakeStore
from tests.fakes.whole import Whole, one_task

GHOST = "/nowhere/ghost"


def _project(store: FakeStore, project_id: str) -> project_pb2.Project:
    return store.tables.rows["project"][project_id]


def _phase(store: FakeStore, phase_id: str) -> phase_pb2.Phase:
    return store.tables.rows["phase"][phase_id]


def test_an_unreachable_project_waits_with_its_reason_and_syncs_once_its_url_is_fixed(tmp_path: Path) -> None:
    store = FakeStore()
    broken = one_task(store, "w")
    fine = one_task(store, "d")
    asyncio.run(store.append([], changes(update(broken.project, url=GHOST))))

    async def main() -> None:
        async with Whole(tmp_path, store) as whole:
            whole.git.unreachable.add(GHOST)
            await whole.settled()
            await whole.approve(broken.phase.id)
            await whole.approve(fine.phase.id)
            await whole.until("the broken phase's reason", lambda: bool(_phase(store, broken.phase.id).reason))
            stuck = _phase(store, broken.phase.id)
            assert stuck.status == phase_pb2.PHASE_STATUS_APPROVED
            assert "cannot be synced" in stuck.reason and "app" in stuck.reason
            assert str(tmp_path) not in stuck.reason
            assert "does not exist" in _project(store, broken.project.id).sync_error
            failed = [e for e in store.events if e.type == "project:sync_failed"]
            assert [e.details["project_id"] for e in failed] == [broken.project.id]
            # The other initiative's phase runs meanwhile.
            await whole.until("the other phase's run", lambda: bool(whole.running()))
            (running,) = whole.running()
            assert running.task_id == fine.task.id
            assert _phase(store, fine.phase.id).status == phase_pb2.PHASE_STATUS_IN_PROGRESS
            # A person fixes the url (UpdateProject): the project syncs and its phase starts.
            fixed = update(_project(store, broken.project.id), url="/srv/git/found")
            await store.append([], changes(fixed))
            await whole.until("the project synced", lambda: not _project(store, broken.project.id).sync_error)
            await whole.until("the phase started", lambda: len(whole.running()) == 2, timeout=10)

    asyncio.run(main())
    assert _phase(store, broken.phase.id).status == phase_pb2.PHASE_STATUS_IN_PROGRESS
    assert not _phase(store, broken.phase.id).reason
    assert [e.type for e in store.events if e.type.startswith("project:sync")] == [
        "project:sync_failed",
        "project:synced",
    ]


def test_a_failure_already_recorded_is_not_recorded_again(tmp_path: Path) -> None:
    """Each retry of a project that still fails leaves its stored error (and event) as they were."""
    store = FakeStore()
    plan = one_task(store)
    asyncio.run(store.append([], changes(update(plan.project, url=GHOST))))

    async def main() -> None:
        async with Whole(tmp_path, store) as whole:
            whole.git.unreachable.add(GHOST)
            await whole.settled()
            await whole.approve(plan.phase.id)
            await whole.until("the sync error", lambda: bool(_project(store, plan.project.id).sync_error))
            # The phase's sync failed, then the project's own retry: both handled (each in back-off).
            queues = (whole.orchestrator.phases.queue, whole.orchestrator.projects.queue)
            await whole.until("both failures handled", lambda: all(queue.failing() for queue in queues))
            assert len(whole.git.syncs) == 2

    asyncio.run(main())
    assert [e.type for e in store.events if e.type.startswith("project:sync")] == ["project:sync_failed"]


def test_a_project_is_cloned_once_and_fetched_when_a_phase_starts(tmp_path: Path) -> None:
    store = FakeStore()
    plan = one_task(store)

    async def main() -> None:
        async with Whole(tmp_path, store) as whole:
            await whole.settled()
            await whole.approve(plan.phase.id)
            await whole.settled()
            assert len(whole.running()) == 1

    asyncio.run(main())
    synced = _project(store, plan.project.id)
    assert synced.HasField("last_fetch_time") and not synced.sync_error
    assert [e.type for e in store.events if e.type.startswith("project:sync")] == []

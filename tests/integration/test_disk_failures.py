"""The disk under the store fails it: a full disk answers RESOURCE_EXHAUSTED saying so,
loses nothing and recovers when space returns; a damaged database is refused at start, in one line
saying what to do, and one damaged while the store runs makes it refuse writes (DATA_LOSS).

The full disk is a real one: a 8 MiB tmpfs mounted for the test (root only, as CI runs; SQLite's
max_page_count would fail the write with SQLITE_FULL too, but from a limit SQLite keeps, not from
the disk). The damage is real too: pages of the file overwritten, as a failing disk would."""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import grpc
import pytest

from clients.local import StartFailed
from cw.store.v1 import event_pb2, initiative_pb2, page_pb2, phase_pb2, project_pb2, task_pb2
from cw_edge.tokens import Identity
from store_service.db import health
from tests.e2e.cluster import SCRIPTED, Cluster, wait_for
from tests.support import ErrorDetails, call_error, error_details, start_store_process, store_in_thread, stubs

DISK_BYTES = 8 * 1024 * 1024
PAGE = 4096


@contextlib.contextmanager
def small_disk(where: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs the suite as root)")
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def _fill(disk: Path) -> Path:
    """Writes a file until the disk has no room left; returns it (deleting it frees the disk)."""
    filler = disk / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(descriptor, b"\0" * 4096)
    except OSError as error:
        assert error.errno == errno.ENOSPC
    finally:
        os.close(descriptor)
    return filler


class Writer:
    """Pages of one initiative, each with `size` bytes of content: writes that need new pages."""

    def __init__(self, api: SimpleNamespace) -> None:
        self.api = api
        initiative = initiative_pb2.Initiative(name="disk")
        self.initiative_id = api.initiatives.CreateInitiative(
            initiative_pb2.CreateInitiativeRequest(initiative=initiative), timeout=10
        ).id
        self.root = self.write("root")

    def request(self, title: str, size: int = 0) -> page_pb2.CreatePageRequest:
        parent = getattr(self, "root", "")
        page = page_pb2.Page(initiative_id=self.initiative_id, parent_page_id=parent, title=title, content="d" * size)
        return page_pb2.CreatePageRequest(page=page)

    def write(self, title: str, size: int = 0) -> str:
        created: str = self.api.pages.CreatePage(self.request(title, size), timeout=10).id
        return created

    def titles(self) -> set[str]:
        listed = self.api.pages.ListPages(
            page_pb2.ListPagesRequest(initiative_id=self.initiative_id, page_size=1000), timeout=10
        )
        return {page.title for page in listed.pages}

    def until_refused(self, attempts: int, size: int) -> tuple[ErrorDetails, list[str]]:
        """Writes pages until one is refused: the refusal, and the titles written before it."""
        written: list[str] = []
        for number in range(attempts):
            title = f"bulk {number}"
            try:
                self.write(title, size)
            except grpc.RpcError as error:
                return error_details(error), written
            written.append(title)
        raise AssertionError(f"{attempts} writes of {size} bytes went through")


def test_a_full_disk_is_resource_exhausted_loses_nothing_and_recovers(tmp_path: Path) -> None:
    with (
        small_disk(tmp_path / "disk") as disk,
        store_in_thread(disk / "store.db", home=tmp_path) as store,
        store.channel(Identity.ORCHESTRATOR) as channel,
    ):
        pages = Writer(stubs(channel))
        pages.write("before")
        filler = _fill(disk)
        refused, written = pages.until_refused(attempts=200, size=64 * 1024)
        assert refused.code == grpc.StatusCode.RESOURCE_EXHAUSTED and refused.reason == "DISK_FULL"
        assert refused.message == health.DISK_FULL_MESSAGE and str(disk) not in refused.message
        again = call_error(pages.api.pages.CreatePage, pages.request("refused again", 64 * 1024))
        assert again.code == grpc.StatusCode.RESOURCE_EXHAUSTED  # not INTERNAL, however often
        assert pages.titles() == {"root", "before", *written}  # nothing lost, nothing half-written

        filler.unlink()
        pages.write("after", 64 * 1024)
        assert pages.titles() == {"root", "before", *written, "after"}
        listed = pages.api.events.ListEvents(event_pb2.ListEventsRequest(page_size=1000), timeout=10).events
        assert len([e for e in listed if e.type == "page:created"]) == len(written) + 3  # none for the refused


def _store_with_rows(db: Path, home: Path) -> None:
    with store_in_thread(db, home=home) as store, store.channel(Identity.ORCHESTRATOR) as channel:
        pages = Writer(stubs(channel))
        for number in range(150):
            pages.write(f"row {number}", 2000)


def _damage(db: Path) -> None:
    """Every page past the first two overwritten at its start (its b-tree header), the WAL folded
    in first so that the file holds every page."""
    with contextlib.closing(sqlite3.connect(db)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with db.open("r+b") as file:
        for page in range(2, db.stat().st_size // PAGE):
            file.seek(page * PAGE)
            file.write(b"\xa5" * 64)


def test_a_damaged_database_is_refused_at_start_in_one_line_saying_what_to_do(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    _store_with_rows(db, tmp_path)
    _damage(db)
    with pytest.raises(StartFailed) as refused:
        start_store_process(db, tmp_path / "store.log")
    reason = refused.value.reason
    assert "is damaged" in reason and ".recover" in reason and "restore it from a backup" in reason
    assert "Traceback" not in (tmp_path / "store.log").read_text()


def test_a_quick_check_that_runs_out_of_time_lets_the_store_start(tmp_path: Path) -> None:
    """Bounded on a large file: a check cut short says nothing is wrong (and is logged)."""
    db = tmp_path / "store.db"
    _store_with_rows(db, tmp_path)
    assert health.quick_check(db) is None
    assert health.quick_check(db, seconds=0.0) is None
    _damage(db)
    assert health.quick_check(db)


def test_damage_found_while_running_refuses_every_later_write(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    _store_with_rows(db, tmp_path)
    with store_in_thread(db, home=tmp_path) as store, store.channel(Identity.ORCHESTRATOR) as channel:
        api = stubs(channel)
        pages = Writer(api)
        _damage(db)
        # Writes until one meets the damage (a write may touch only pages SQLite still holds).
        refused, _ = pages.until_refused(attempts=50, size=2000)
        assert refused.code == grpc.StatusCode.DATA_LOSS and refused.reason == "DATABASE_DAMAGED"
        assert "refuses writes" in refused.message and ".recover" in refused.message
        # Any later write, to any table, is refused the same way: nothing more goes into the file.
        project = project_pb2.CreateProjectRequest(project=project_pb2.Project(name="p", url="/r"))
        later = call_error(api.projects.CreateProject, project)
        assert (later.code, later.reason) == (grpc.StatusCode.DATA_LOSS, "DATABASE_DAMAGED")


def test_the_orchestrator_rides_out_a_full_disk_and_loses_nothing(tmp_path: Path) -> None:
    """Its run ends while the store's disk is full: the settlement is refused (RESOURCE_EXHAUSTED),
    the lease lapses unrenewed, the log says why in the store's words and that the lease lapsed
    (it said "not yours", naming this orchestrator); once space is back the run is settled as it
    ended and its work is in the phase."""
    release = tmp_path / "release"
    running = Cluster(
        tmp_path,
        [f"scripted={SCRIPTED}"],
        orchestrator_flags=["--lease-ttl", "2"],
        db_path=tmp_path / "disk" / "store.db",
    )
    with small_disk(tmp_path / "disk") as disk:
        try:
            running.start_store()
            running.start_orchestrator()
            c = running
            phase = c.phase(c.initiative("Full", c.project()), "P")
            task = c.task(phase, "t", files={"kept.txt": "made while the disk was full"}, wait_for=str(release))
            c.approve(phase)
            wait_for("the agent to run", lambda: c.all_spawned([task]))
            filler = _fill(disk)
            release.touch()
            store_log, orchestrator_log = tmp_path / "store.log", tmp_path / "orchestrator.log"
            wait_for("a write refused: the disk is full", lambda: "the disk is full" in store_log.read_text())
            wait_for("the lease to lapse", lambda: "lapsed at" in orchestrator_log.read_text(), timeout=60)
            filler.unlink()
            c.wait_task(task.id, task_pb2.TASK_STATUS_COMPLETED)
            c.wait_phase(phase.id, phase_pb2.PHASE_STATUS_PENDING_REVIEW)
            assert {f.path for p in c.diff(phase.id).projects for f in p.files} == {"kept.txt"}
            said = orchestrator_log.read_text()
            assert health.DISK_FULL_MESSAGE in said and "(RESOURCE_EXHAUSTED)" in said  # the store's words
            assert "is not yours" not in said and "internal error in the store" not in said
            c.assert_invariants()
        finally:
            running.close()

"""The Alembic chain: from empty, across the retry_count and stored-facts steps with rows present, and back."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, Table, inspect
from sqlalchemy.exc import IntegrityError

from store_service.database import create_engines
from store_service.db import migrate
from store_service.db.engine import create_writer_engine
from store_service.db.location import DatabaseLocation
from store_service.db.models import Base


def _revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def test_retry_count_is_its_own_step_and_stored_facts_follow_it() -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config())
    retry_count = script.get_revision("0002")
    assert retry_count is not None and "retry_count" in (retry_count.doc or "")
    assert retry_count.down_revision is not None
    stored_facts = script.get_revision("0003")
    assert stored_facts is not None and stored_facts.down_revision == "0002" and "merge" in (stored_facts.doc or "")
    planning, review = script.get_revision("0004"), script.get_revision("0005")
    assert planning is not None and planning.down_revision == "0003" and "proposals" in (planning.doc or "")
    assert review is not None and review.down_revision == "0004" and "conversation" in (review.doc or "")
    attempts = script.get_revision("0006")
    assert attempts is not None and attempts.down_revision == "0005" and "attempts" in (attempts.doc or "")
    scale_out = script.get_revision("0007")
    assert scale_out is not None and scale_out.down_revision == "0006" and "leases" in (scale_out.doc or "")
    comments = script.get_revision("0010")
    assert comments is not None and comments.down_revision == "0009" and "project_id" in (comments.doc or "")
    head = script.get_revision("head")
    assert head is not None and head.down_revision == "0010" and "fallback" in (head.doc or "")


def test_upgrade_from_empty_matches_the_models_and_goes_back_to_empty(empty_database: DatabaseLocation) -> None:
    engine, reader = create_engines(empty_database, readers=1)
    reader.dispose()
    migrate.upgrade(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": True})
        assert compare_metadata(context, Base.metadata) == []
    assert set(inspect(engine).get_table_names()) >= set(Base.metadata.tables)
    migrate.downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(engine)
    assert _revision(engine) == ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
    engine.dispose()


def test_upgrade_keeps_rows_and_gives_them_retry_count_zero(tmp_path: Path) -> None:
    engine = create_writer_engine(tmp_path / "store.db")
    script = ScriptDirectory.from_config(migrate.alembic_config())
    head, step = script.get_revision("head"), script.get_revision("0002")
    assert head is not None and step is not None and isinstance(step.down_revision, str)
    migrate.upgrade(engine, step.down_revision)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO initiatives (id, name, status, created_at, updated_at) "
            "VALUES ('i1', 'x', 'active', '2026-01-01', '2026-01-01')"
        )
        for task_id in ("t1", "t2", "t3"):
            connection.exec_driver_sql(
                'INSERT INTO tasks (id, initiative_id, name, type, category, priority, status, "order", '
                f"created_at, updated_at) VALUES ('{task_id}', 'i1', 'n', 'auto', 'execute', 'medium', "
                "'pending', 0, '2026-01-01', '2026-01-01')"
            )
        connection.exec_driver_sql(
            "INSERT INTO task_dependencies (id, task_id, depends_on_task_id, created_at) "
            "VALUES ('d1', 't2', 't1', '2026-01-01')"
        )
        connection.exec_driver_sql(
            "INSERT INTO agents (id, name, task_id, worktree_id, provider, status, mode, created_at, updated_at) "
            "VALUES ('a1', 'brave-otter', 't1', '/w', 'claude', 'running', 'execute', '2026-01-01', '2026-01-01')"
        )
    migrate.upgrade(engine)
    assert _revision(engine) == head.revision
    with engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT id, retry_count FROM tasks ORDER BY id").fetchall()
        assert [tuple(row) for row in rows] == [("t1", 0), ("t2", 0), ("t3", 0)]
        # Rebuilding the table in batch mode must not cascade into rows that point at it.
        assert connection.exec_driver_sql("SELECT count(*) FROM task_dependencies").scalar() == 1
        assert connection.exec_driver_sql("SELECT task_id FROM agents").scalar() == "t1"

    migrate.downgrade(engine, step.down_revision)
    assert _revision(engine) == step.down_revision
    columns = {column["name"] for column in inspect(engine).get_columns("tasks")}
    assert "retry_count" not in columns
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM tasks").scalar() == 3
        assert connection.exec_driver_sql("SELECT count(*) FROM task_dependencies").scalar() == 1
        assert connection.exec_driver_sql("SELECT task_id FROM agents").scalar() == "t1"


def _insert(connection: Connection, table: str, **values: object) -> None:
    connection.execute(Table(table, MetaData(), autoload_with=connection).insert().values(**values))


def _seed_before_stored_facts(connection: Connection) -> None:
    """Rows as a store at 0002 left them: facts the orchestrator kept in memory or in the event log."""
    stamp = {"created_at": datetime(2026, 1, 1), "updated_at": datetime(2026, 1, 1)}
    _insert(connection, "initiatives", id="i1", name="x", status="active", **stamp)
    for phase, status in (("review", "pending_review"), ("merged", "completed"), ("running", "in_progress")):
        _insert(connection, "phases", id=phase, initiative_id="i1", name=phase, status=status, **stamp)
    task = {"initiative_id": "i1", "name": "n", "type": "auto", "category": "execute", "priority": "medium"}
    tasks: dict[str, tuple[str | None, str, datetime]] = {
        "done-in-review": ("review", "completed", datetime(2026, 1, 2, 3, 4, 5, 123456)),
        "done-in-merged": ("merged", "completed", datetime(2026, 1, 3)),
        "blocked-in-merged": ("merged", "blocked", datetime(2026, 1, 3)),
        "done-in-running": ("running", "completed", datetime(2026, 1, 4)),
        "queued-loose": (None, "completed", datetime(2026, 1, 5)),
        "loose": (None, "pending", datetime(2026, 1, 5)),
        "queued-in-phase": ("running", "pending", datetime(2026, 1, 5)),
    }
    for task_id, (phase_id, status, updated) in tasks.items():
        _insert(
            connection, "tasks", id=task_id, phase_id=phase_id, status=status, **task, **stamp | {"updated_at": updated}
        )
    _insert(
        connection,
        "task_dependencies",
        id="d1",
        task_id="loose",
        depends_on_task_id="queued-loose",
        created_at=stamp["created_at"],
    )
    for sequence, (task_id, time) in enumerate(
        [
            ("queued-loose", datetime(2026, 1, 5, 1)),
            ("queued-loose", datetime(2026, 1, 5, 2)),
            ("queued-in-phase", datetime(2026, 1, 5)),
        ],
        start=1,
    ):
        _insert(connection, "events", sequence=sequence, type="task:queued", task_id=task_id, time=time, details="{}")
    results = {
        "done": '{"status": "done", "summary": "s"}',
        "crash": '{"status": "crash"}',
        "error": '{"status": "error", "error": "e"}',
        "rate_limited": '{"status": "rate_limited", "retry_after_seconds": 5}',
        "stopped": '{"status": "stopped"}',
        "questions": '{"status": "questions", "questions": []}',
        "garbled": "not json",
        "no-result": None,
    }
    for agent_id, result in results.items():
        _insert(
            connection,
            "agents",
            id=agent_id,
            name=agent_id,
            task_id="loose",
            worktree_id="/w",
            provider="claude",
            status="stopped",
            mode="execute",
            result=result,
            **stamp,
        )
    _insert(connection, "projects", id="pr", name="app", url="/src/app", default_branch="main", **stamp)
    _insert(
        connection,
        "request_records",
        request_id="r1",
        method="CreateTaskRequest",
        resource_id="loose",
        created_at=stamp["created_at"],
    )


def test_stored_facts_upgrade_keeps_rows_and_fills_in_what_was_known(tmp_path: Path) -> None:
    engine = create_writer_engine(tmp_path / "store.db")
    migrate.upgrade(engine, "0002")
    with engine.begin() as connection:
        _seed_before_stored_facts(connection)
    migrate.upgrade(engine, "0003")
    assert _revision(engine) == "0003"
    with engine.connect() as connection:
        merged: dict[str, str | None] = dict(connection.exec_driver_sql("SELECT id, merged_at FROM tasks").fetchall())
        assert merged == {
            "done-in-review": "2026-01-02 03:04:05.123456",
            "done-in-merged": "2026-01-03 00:00:00.000000",
            "blocked-in-merged": None,
            "done-in-running": None,
            "queued-loose": None,
            "loose": None,
            "queued-in-phase": None,
        }
        queued: dict[str, str | None] = dict(
            connection.exec_driver_sql("SELECT id, queued_at FROM tasks WHERE queued_at IS NOT NULL").fetchall()
        )
        assert queued == {"queued-loose": "2026-01-05 02:00:00.000000"}
        outcomes: dict[str, str | None] = dict(connection.exec_driver_sql("SELECT id, outcome FROM agents").fetchall())
        assert outcomes == {
            "done": "done",
            "crash": "crashed",
            "error": "failed",
            "rate_limited": "rate_limited",
            "stopped": "stopped",
            "questions": None,
            "garbled": None,
            "no-result": None,
        }
        counts = {
            table: connection.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar()
            for table in ("phases", "tasks", "task_dependencies", "events", "projects", "request_records")
        }
        assert counts == {
            "phases": 3,
            "tasks": 7,
            "task_dependencies": 1,
            "events": 3,
            "projects": 1,
            "request_records": 1,
        }
        assert connection.exec_driver_sql("SELECT count(*) FROM agents WHERE task_id = 'loose'").scalar() == 8
        with pytest.raises(IntegrityError):
            connection.exec_driver_sql("UPDATE agents SET outcome = 'exploded' WHERE id = 'done'")

    migrate.downgrade(engine, "0002")
    assert {column["name"] for column in inspect(engine).get_columns("agents")}.isdisjoint({"outcome", "error"})
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM agents WHERE task_id = 'loose'").scalar() == 8
        assert connection.exec_driver_sql("SELECT count(*) FROM task_dependencies").scalar() == 1


def test_planning_upgrade_keeps_proposals_and_chat_sessions(tmp_path: Path) -> None:
    engine = create_writer_engine(tmp_path / "store.db")
    migrate.upgrade(engine, "0003")
    stamp = {"created_at": datetime(2026, 1, 1), "updated_at": datetime(2026, 1, 1)}
    rows = {
        "initiatives": {"id": "i1", "name": "x", "status": "active"},
        "agents": {
            "id": "a1",
            "name": "owl",
            "worktree_id": "/w",
            "provider": "p",
            "status": "stopped",
            "mode": "plan",
        },
        "proposals": {"id": "p1", "agent_id": "a1", "initiative_id": "i1", "target_type": "phase", "title": "A"},
        "chat_sessions": {"id": "s1", "target_type": "phase", "target_id": "x", "initiative_id": "i1"},
    }
    with engine.begin() as connection:
        for table, values in rows.items():
            _insert(connection, table, **values, **stamp)
    migrate.upgrade(engine, "0004")
    assert _revision(engine) == "0004"
    with engine.connect() as connection:
        row = connection.exec_driver_sql("SELECT title, proposal_key, depends_on, change_set_id FROM proposals").one()
        assert tuple(row) == ("A", None, None, None)
        assert connection.exec_driver_sql("SELECT task_id FROM chat_sessions").scalar() is None
    migrate.downgrade(engine, "0003")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM proposals").scalar() == 1
    assert "proposal_key" not in {column["name"] for column in inspect(engine).get_columns("proposals")}


def test_review_and_repair_columns_start_empty_and_go_back(tmp_path: Path) -> None:
    engine = create_writer_engine(tmp_path / "store.db")
    migrate.upgrade(engine, "0002")
    with engine.begin() as connection:
        _seed_before_stored_facts(connection)
    migrate.upgrade(engine)
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT count(*) FROM tasks WHERE review_comment_ids IS NULL AND merge_source_task_id IS NULL"
        ).scalar()
        assert rows == 7
        assert connection.exec_driver_sql("SELECT count(*) FROM agents WHERE conversation_id IS NULL").scalar() == 8
    with engine.begin() as connection:
        connection.exec_driver_sql("PRAGMA foreign_keys = ON")
        connection.exec_driver_sql("UPDATE tasks SET merge_source_task_id = 'loose' WHERE id = 'queued-loose'")
        connection.exec_driver_sql("DELETE FROM task_dependencies")
        connection.exec_driver_sql("DELETE FROM agents")
        connection.exec_driver_sql("DELETE FROM tasks WHERE id = 'loose'")
        kept = connection.exec_driver_sql("SELECT merge_source_task_id FROM tasks WHERE id = 'queued-loose'")
        assert kept.scalar() is None  # the source went, the merge task stays
    migrate.downgrade(engine, "0004")
    columns = {column["name"] for column in inspect(engine).get_columns("tasks")}
    assert columns.isdisjoint({"review_comment_ids", "merge_source_task_id", "merge_source_phase_id"})
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM tasks").scalar() == 6


def test_review_comments_get_their_project_and_paths_relative_to_it(tmp_path: Path) -> None:
    """Before migration 0008, a comment's path was prefixed with its project's name only when the diff held
    several projects; the upgrade stores the project and the path in its worktree, and goes back."""
    engine = create_writer_engine(tmp_path / "store.db")
    migrate.upgrade(engine, "0007")
    stamp = {"created_at": datetime(2026, 1, 1), "updated_at": datetime(2026, 1, 1)}
    comment = {"line_number": 1, "line_type": "added", "body": "b", "author": "you", "resolved": False, **stamp}
    with engine.begin() as connection:
        for project in ("inflection", "web", "webapp"):
            _insert(connection, "projects", id=project, name=project, url=f"/r/{project}", **stamp)
        for initiative, projects in (("one", ["inflection"]), ("several", ["inflection", "web", "webapp"])):
            _insert(connection, "initiatives", id=initiative, name=initiative, status="active", **stamp)
            _insert(connection, "phases", id=f"p-{initiative}", initiative_id=initiative, name="p", **stamp)
            for project in projects:
                link = {"id": f"{initiative}-{project}", "created_at": stamp["created_at"]}
                _insert(connection, "initiative_projects", initiative_id=initiative, project_id=project, **link)
        placed = {
            "own-path": ("p-one", "inflection/__init__.py"),  # one project: its own path, kept whole
            "prefixed": ("p-several", "inflection/inflection/__init__.py"),
            "longest-name": ("p-several", "webapp/index.html"),
            "unknown": ("p-several", "README.md"),
        }
        for comment_id, (phase_id, path) in placed.items():
            _insert(connection, "review_comments", id=comment_id, phase_id=phase_id, file_path=path, **comment)
    migrate.upgrade(engine)
    with engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT id, project_id, file_path FROM review_comments").fetchall()
    assert {row[0]: (row[1], row[2]) for row in rows} == {
        "own-path": ("inflection", "inflection/__init__.py"),
        "prefixed": ("inflection", "inflection/__init__.py"),
        "longest-name": ("webapp", "index.html"),
        "unknown": (None, "README.md"),
    }
    migrate.downgrade(engine, "0007")
    with engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT id, file_path FROM review_comments").fetchall()
    assert dict(rows) == {path_id: path for path_id, (_, path) in placed.items()}
    engine.dispose()

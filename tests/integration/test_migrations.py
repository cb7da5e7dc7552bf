"""The Alembic chain: from empty, across the retry_count step with rows present, and back."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from store_service.db import migrate
from store_service.db.engine import create_writer_engine
from store_service.db.models import Base


def _revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def test_chain_ends_with_retry_count_as_its_own_step() -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config())
    head = script.get_revision("head")
    assert head is not None and "retry_count" in (head.doc or "")
    assert head.down_revision is not None


def test_upgrade_from_empty_matches_the_models(tmp_path: Path) -> None:
    engine = create_writer_engine(tmp_path / "store.db")
    migrate.upgrade(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": True})
        assert compare_metadata(context, Base.metadata) == []
    assert set(inspect(engine).get_table_names()) >= set(Base.metadata.tables)


def test_upgrade_keeps_rows_and_gives_them_retry_count_zero(tmp_path: Path) -> None:
    engine = create_writer_engine(tmp_path / "store.db")
    head = ScriptDirectory.from_config(migrate.alembic_config()).get_revision("head")
    assert head is not None and isinstance(head.down_revision, str)
    migrate.upgrade(engine, head.down_revision)
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

    migrate.downgrade(engine, head.down_revision)
    assert _revision(engine) == head.down_revision
    columns = {column["name"] for column in inspect(engine).get_columns("tasks")}
    assert "retry_count" not in columns
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM tasks").scalar() == 3
        assert connection.exec_driver_sql("SELECT count(*) FROM task_dependencies").scalar() == 1
        assert connection.exec_driver_sql("SELECT task_id FROM agents").scalar() == "t1"

"""Applies the Alembic migrations; the store runs `upgrade_to_head` on every start."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _run(engine: Engine, action: str, revision: str) -> None:
    """On SQLite, runs with foreign keys off: batch mode copies and drops tables, and with them on,
    dropping the old copy would cascade into every referencing row; integrity is checked afterwards.
    PostgreSQL alters tables in place, in one transaction that holds the store's write lock
    (`postgres.py`), so replicas starting together migrate one after the other: the first upgrades,
    the others find the schema at head."""
    config = alembic_config()
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        if engine.dialect.name != "sqlite":
            getattr(command, action)(config, revision)
            connection.commit()
            return
        raw = connection.connection.dbapi_connection
        assert raw is not None
        raw.execute("PRAGMA foreign_keys=OFF")
        try:
            getattr(command, action)(config, revision)
            violations = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if violations:
                raise RuntimeError(f"migration left dangling foreign keys: {violations[:5]}")
            connection.commit()
        finally:
            raw.execute("PRAGMA foreign_keys=ON")


def upgrade(engine: Engine, revision: str = "head") -> None:
    _run(engine, "upgrade", revision)


def downgrade(engine: Engine, revision: str) -> None:
    _run(engine, "downgrade", revision)

"""Schema files and migrations agree, and stores refuse schemas they do not know.

For each dialect, a database made from ``schema.sql`` and one made by applying every numbered
migration in order must have the same schema: that is what lets a new database take the short
road and an old one the long one. PostgreSQL's half of this lives in test_postgresql.py.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from opstatus.errors import SchemaMismatch
from opstatus.stores import SQLiteStore
from opstatus.stores.migrations import latest_version, migrations, plan, schema_sql
from opstatus.stores.sqlite import _statements

pytestmark = pytest.mark.anyio

#: The schema opstatus 0.1.0 created, before migrations existed (user_version 1).
SCHEMA_0_1 = migrations("sqlite")[0].sql


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_migrations_are_numbered_from_one_each_once(dialect: str) -> None:
    found = migrations(dialect)
    numbers = [m.version for m in found]
    assert numbers[0] == 1 and numbers == sorted(set(numbers))
    assert latest_version(dialect) == numbers[-1]
    assert all(m.sql.strip() and m.name for m in found)
    assert "CREATE TABLE" in schema_sql(dialect)


def test_both_dialects_have_the_same_migration_numbers() -> None:
    """A file missing from one dialect's package would leave its databases a step behind."""
    assert [m.version for m in migrations("sqlite")] == [
        m.version for m in migrations("postgresql")
    ]


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_plan_for_each_starting_version(dialect: str) -> None:
    latest = latest_version(dialect)
    fresh = plan(dialect, 0, "db")
    assert fresh.schema == schema_sql(dialect)
    assert fresh.steps == migrations(dialect)
    assert plan(dialect, latest, "db").empty
    if latest > 1:
        assert plan(dialect, 1, "db").steps == migrations(dialect)[1:]
        before_last = migrations(dialect)[-2].version
        assert plan(dialect, before_last, "db").steps == migrations(dialect)[-1:]
    with pytest.raises(SchemaMismatch, match="upgrade opstatus"):
        plan(dialect, latest + 1, "db")


def sqlite_schema(path: Path) -> dict[str, Any]:
    """Everything that makes up a SQLite schema, compared structurally (not as SQL text)."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        objects = conn.execute(
            "SELECT type, name, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
            "ORDER BY type, name"
        ).fetchall()
        tables = [name for kind, name, _ in objects if kind == "table"]
        shape: dict[str, Any] = {"objects": objects}
        for table in tables:
            shape[table] = {
                "list": conn.execute(f"PRAGMA table_list('{table}')").fetchall(),
                "columns": conn.execute(f"PRAGMA table_xinfo('{table}')").fetchall(),
                "foreign_keys": conn.execute(f"PRAGMA foreign_key_list('{table}')").fetchall(),
                "indexes": [
                    (index, conn.execute(f"PRAGMA index_xinfo('{index[1]}')").fetchall())
                    for index in conn.execute(f"PRAGMA index_list('{table}')").fetchall()
                ],
            }
        shape["user_version"] = conn.execute("PRAGMA user_version").fetchone()[0]
        return shape


async def test_sqlite_schema_file_equals_all_migrations_applied(tmp_path: Path) -> None:
    from_schema = tmp_path / "schema.db"
    plan_used = await SQLiteStore(from_schema).migrate()
    assert plan_used.schema is not None  # a new database takes the schema file

    from_migrations = tmp_path / "migrations.db"
    with contextlib.closing(sqlite3.connect(from_migrations, isolation_level=None)) as conn:
        for migration in migrations("sqlite"):
            for statement in _statements(migration.sql):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version={migration.version}")

    assert sqlite_schema(from_schema) == sqlite_schema(from_migrations)
    assert sqlite_schema(from_schema)["user_version"] == latest_version("sqlite")


async def test_sqlite_database_from_before_migrations_opens_as_version_one(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute(SCHEMA_0_1)
        conn.execute("PRAGMA user_version=1")
    store = SQLiteStore(path)
    assert await store.schema_version() == 1
    await store.open()
    await store.close()
    assert await store.schema_version() == latest_version("sqlite")


async def test_sqlite_store_migrates_on_open_and_migrate_is_idempotent(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "sub" / "new.db")
    assert await store.schema_version() is None  # nothing on disk yet
    first = await store.migrate()
    assert first.schema is not None
    assert await store.schema_version() == latest_version("sqlite")
    assert (await SQLiteStore(store.path).migrate()).empty


async def test_sqlite_store_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "newer.db"
    newer = latest_version("sqlite") + 1
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute(SCHEMA_0_1)
        conn.execute(f"PRAGMA user_version={newer}")
    store = SQLiteStore(path)
    with pytest.raises(SchemaMismatch, match=f"version {newer}.*upgrade opstatus"):
        await store.open()
    await store.close()
    with pytest.raises(SchemaMismatch):
        await SQLiteStore(path).migrate()
    assert await SQLiteStore(path).schema_version() == newer  # left as it was


def test_statement_splitter_refuses_an_unterminated_statement() -> None:
    assert list(_statements("-- only a comment\n")) == []
    assert len(list(_statements("CREATE TABLE a (x);\n-- trailing\nCREATE TABLE b (y);\n"))) == 2
    with pytest.raises(RuntimeError, match="unterminated"):
        list(_statements("CREATE TABLE a (x)\n"))

"""Schema files and migrations agree, and stores refuse schemas they do not know.

For each dialect, a database made from ``schema.sql`` and one made by applying every numbered
migration in order must have the same schema: that is what lets a new database take the short
road and an old one the long one. PostgreSQL's half of this lives in test_postgresql.py.
Migrations that move data have a test here of a database that holds some, on both dialects.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from opstatus.auth import OID, UNBOUND, PrincipalId, RoleAssignment
from opstatus.errors import SchemaMismatch
from opstatus.security import SecuritySettings
from opstatus.stores import PostgreSQLStore, SQLiteStore
from opstatus.stores.base import Store
from opstatus.stores.migrations import latest_version, migrations, plan, schema_sql
from opstatus.stores.postgresql import MIGRATIONS_DDL, MIGRATIONS_TABLE
from opstatus.stores.roles import bind_unbound
from opstatus.stores.sqlite import _statements
from tests.idp import AUDIENCE, ISSUER, ISSUER_B, IdentityProvider
from tests.support import SUB_A, app_client, status_path

pytestmark = pytest.mark.anyio

#: The schema opstatus 0.1.0 created, before migrations existed (user_version 1).
SCHEMA_0_1 = migrations("sqlite")[0].sql


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_migrations_are_numbered_from_one_without_gaps(dialect: str) -> None:
    found = migrations(dialect)
    assert [m.version for m in found] == list(range(1, len(found) + 1))
    assert latest_version(dialect) == len(found) >= 1
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


# -- 0003: role assignments name their principal by issuer --------------------------------------

#: Assignments as schema version 2 held them: an id alone (an 'oid', as the README asked).
LEGACY = [
    ("p-1", "Contributor", f"/subscriptions/{SUB_A}", "2025-01-02T03:04:05.000Z"),
    ("p-2", "Owner", "/", "2025-01-02T03:04:06.000Z"),
]


def sqlite_at_0002(path: Path) -> SQLiteStore:
    """A SQLite database that migrations 0001 and 0002 made, holding ``LEGACY``."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        for migration in migrations("sqlite")[:2]:
            for statement in _statements(migration.sql):
                conn.execute(statement)
        conn.execute("PRAGMA user_version=2")
        conn.executemany(
            "INSERT INTO role_assignments (principal_id, role, scope, created_at) "
            "VALUES (?, ?, ?, ?)",
            LEGACY,
        )
    return SQLiteStore(path)


async def postgresql_at_0002(url: str) -> PostgreSQLStore:
    """A PostgreSQL database that migrations 0001 and 0002 made, holding ``LEGACY``."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(MIGRATIONS_DDL)
        for migration in migrations("postgresql")[:2]:
            await conn.execute(migration.sql)
            await conn.execute(
                f"INSERT INTO {MIGRATIONS_TABLE} (version, name) VALUES ($1, $2)",
                migration.version,
                migration.name,
            )
        await conn.executemany(
            "INSERT INTO opstatus_role_assignments (principal_id, role, scope, created_at) "
            "VALUES ($1, $2, $3, $4)",
            LEGACY,
        )
    finally:
        await conn.close()
    return PostgreSQLStore(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """``(dialect, where)``: a SQLite file's path, or an empty PostgreSQL database's URL."""
    if request.param == "sqlite":
        return "sqlite", str(tmp_path / "v2.db")
    return "postgresql", request.getfixturevalue("pg_empty_url")


@pytest.fixture
async def from_0002(database: tuple[str, str]) -> Callable[[], Store]:
    """Makes stores on a database at schema version 2 with ``LEGACY``, migrated to the latest."""
    dialect, where = database
    if dialect == "sqlite":
        store: Store = sqlite_at_0002(Path(where))
    else:
        store = await postgresql_at_0002(where)
    assert await store.schema_version() == 2
    steps = [m.label for m in (await store.migrate()).steps]
    assert steps[0] == "0003_principals_by_issuer" and len(steps) == latest_version(dialect) - 2
    assert await store.schema_version() == latest_version(dialect)
    return lambda: SQLiteStore(where) if dialect == "sqlite" else PostgreSQLStore(where)


async def listed(make: Callable[[], Store]) -> list[RoleAssignment]:
    store = make()
    await store.open()
    try:
        return await store.list_role_assignments()
    finally:
        await store.close()


def legacy_under(issuer: str) -> list[RoleAssignment]:
    return [
        RoleAssignment(role, scope, PrincipalId(issuer, OID, principal))
        for principal, role, scope, _ in LEGACY
    ]


async def test_0003_keeps_assignments_without_an_issuer_until_one_is_known(
    from_0002: Callable[[], Store],
) -> None:
    """Which provider an old assignment meant is not in the database: the migration keeps it
    under no issuer (it grants nothing), and a server with one provider gives it to that one."""
    store = from_0002()
    await store.open()
    try:
        assert await store.list_role_assignments() == legacy_under(UNBOUND)
        assert await store.list_role_assignments(PrincipalId(ISSUER, OID, "p-1")) == []
        assert await bind_unbound(store, [ISSUER, ISSUER_B]) == 0  # which one is unknown
        assert await store.list_role_assignments() == legacy_under(UNBOUND)
        assert await bind_unbound(store, [ISSUER]) == 2
        assert await store.list_role_assignments() == legacy_under(ISSUER)
        assert await bind_unbound(store, [ISSUER]) == 0
    finally:
        await store.close()


async def test_a_server_with_one_provider_gives_it_the_migrated_assignments(
    from_0002: Callable[[], Store], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "b").mkdir()
    idp, other = IdentityProvider(tmp_path, ISSUER), IdentityProvider(tmp_path / "b", ISSUER_B)
    p1 = {"Authorization": f"Bearer {idp.token('p-1')}"}
    both = SecuritySettings(
        jwks=(f"{ISSUER}={idp.jwks_path}", f"{ISSUER_B}={other.jwks_path}"),
        audiences=(AUDIENCE,),
    )
    async with app_client(home, store=from_0002(), security=both) as client:
        response = await client.get(status_path(), headers=p1)
        assert response.status_code == 403, response.text  # two providers: whose is unknown
    assert await listed(from_0002) == legacy_under(UNBOUND)
    async with app_client(home, store=from_0002(), security=idp.security()) as client:
        response = await client.get(status_path(), headers=p1)
        assert response.status_code == 404, response.text  # allowed to look: not found
    assert await listed(from_0002) == legacy_under(ISSUER)

"""Migration 0004: times an older opstatus wrote with a year of fewer than four digits
(``999-06-01T...``, from ``strftime``) are zero-padded, on SQLite and PostgreSQL.

A database is brought to schema version 2 by the migrations of that time, given rows as the
older opstatus wrote them, then migrated by the store: the times read back in RFC 3339 form,
and a list filtered by time puts the year 999 before the year 1000.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import asyncpg
import pytest

from opstatus.queries import OperationFilter, OperationQuery
from opstatus.stores import PostgreSQLStore, SQLiteStore
from opstatus.stores.base import Store
from opstatus.stores.migrations import migrations
from opstatus.stores.postgresql import MIGRATIONS_DDL, MIGRATIONS_TABLE
from opstatus.stores.sqlite import _statements

pytestmark = pytest.mark.anyio

SUB = "e7b5a9d2-6b6a-4d2f-9143-20d9a10f5b8f"
NOW = "2030-01-01T00:00:00.000Z"
#: (operation id, start_time, end_time) as an older opstatus stored them.
ROWS = [
    ("y999", "999-06-01T00:00:00.000Z", "999-06-02T00:00:00.000Z"),
    ("y5", "5-01-01T00:00:00.000Z", None),
    ("y1000", "1000-06-01T00:00:00.000Z", "1000-06-02T00:00:00.000Z"),
]
FIXED = {
    "y999": ("0999-06-01T00:00:00.000Z", "0999-06-02T00:00:00.000Z"),
    "y5": ("0005-01-01T00:00:00.000Z", None),
    "y1000": ("1000-06-01T00:00:00.000Z", "1000-06-02T00:00:00.000Z"),
}
COLUMNS = (
    "subscription_id, operation_key, operation_id, namespace, location, status, start_time, "
    "end_time, etag, created_at, updated_at, create_digest"
)
TOMBSTONE = (
    "subscription_id, operation_key, operation_id, namespace, location, status, end_time, "
    "expired_at, reason, forget_at"
)


def row(op_id: str, start: str, end: str | None) -> tuple[object, ...]:
    status = "Succeeded" if end else "InProgress"
    return (SUB, op_id, op_id, "Microsoft.Cache", "westus", status, start, end, "e", NOW, NOW, "")


def tombstone(end: str) -> tuple[object, ...]:
    return (SUB, "gone", "gone", "Microsoft.Cache", "westus", "Succeeded", end, NOW, "Expired", NOW)


async def check(store: Store) -> None:
    await store.open()
    try:
        for op_id, (start, end) in FIXED.items():
            op = await store.get(SUB, op_id)
            assert op is not None and (op.start_time, op.end_time) == (start, end)
        gone = await store.get_tombstone(SUB, "gone")
        assert gone is not None and gone.end_time == "0999-06-02T00:00:00.000Z"

        async def started(after: str | None = None, before: str | None = None) -> list[str]:
            query = OperationQuery(
                subscription_id=SUB,
                filter=OperationFilter(started_after=after, started_before=before),
            )
            return sorted(op.operation_id for op in await store.find(query))

        assert await started(after="0999-12-31T00:00:00.000Z") == ["y1000"]
        assert await started(before="1000-01-01T00:00:00.000Z") == ["y5", "y999"]
        assert await started(after="0500-01-01T00:00:00.000Z") == ["y1000", "y999"]
    finally:
        await store.close()


async def test_sqlite_pads_years_below_1000(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        for migration in migrations("sqlite")[:2]:
            for statement in _statements(migration.sql):
                conn.execute(statement)
        conn.execute("PRAGMA user_version=2")
        conn.executemany(
            f"INSERT INTO operations ({COLUMNS}) VALUES ({', '.join('?' * 12)})",
            [row(*r) for r in ROWS],
        )
        conn.execute(
            f"INSERT INTO tombstones ({TOMBSTONE}) VALUES ({', '.join('?' * 10)})",
            tombstone("999-06-02T00:00:00.000Z"),
        )
    await check(SQLiteStore(path))  # migrates on open


async def test_postgresql_pads_years_below_1000(pg_empty_url: str) -> None:
    conn = await asyncpg.connect(pg_empty_url)
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
            f"INSERT INTO opstatus_operations ({COLUMNS}) "
            f"VALUES ({', '.join(f'${i}' for i in range(1, 13))})",
            [row(*r) for r in ROWS],
        )
        await conn.execute(
            f"INSERT INTO opstatus_tombstones ({TOMBSTONE}) "
            f"VALUES ({', '.join(f'${i}' for i in range(1, 11))})",
            *tombstone("999-06-02T00:00:00.000Z"),
        )
    finally:
        await conn.close()
    store = PostgreSQLStore(pg_empty_url)
    assert "four_digit_years" in [step.name for step in (await store.migrate()).steps]
    await check(store)

"""``Store.tallies``, over every backend: the counts kept on write follow creates, status
changes, deletes and removals (retention's included), take off what is expired with
``live_at``, agree with ``counts``, stay exact under concurrent writers; and migration 0006
fills them from the operations of an existing database, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import pytest

from opstatus.lifecycle import Tombstone
from opstatus.models import CANCELED, FAILED, IN_PROGRESS, SUCCEEDED, Operation
from opstatus.queries import OperationQuery, Tally
from opstatus.stores import PostgreSQLStore, SQLiteStore
from opstatus.stores.base import Store
from opstatus.stores.migrations import migrations
from opstatus.stores.postgresql import MIGRATIONS_DDL, MIGRATIONS_TABLE
from opstatus.stores.sqlite import _statements
from tests.stores.test_contract import (
    BACKENDS,
    SUB_A,
    SUB_B,
    TIMES,
    make_op,
    opened,
    varied_operations,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(params=list(BACKENDS))
def make_store(request: pytest.FixtureRequest) -> Callable[[], Store]:
    return BACKENDS[request.param].factory(request)


@pytest.fixture
async def store(make_store: Callable[[], Store]) -> AsyncIterator[Store]:
    async with opened(make_store) as s:
        yield s


def expected(ops: list[Operation], subscriptions: set[str] | None = None) -> list[Tally]:
    counted = Counter(
        (op.subscription_id, op.namespace, op.location, op.status)
        for op in ops
        if subscriptions is None or op.subscription_id in subscriptions
    )
    return [Tally(*group, n) for group, n in sorted(counted.items())]


def tombstone_of(op: Operation) -> Tombstone:
    return Tombstone(
        op.subscription_id,
        op.operation_id,
        op.namespace,
        op.location,
        op.status,
        op.end_time,
        TIMES[0],
        "Expired",
        TIMES[1],
    )


async def test_tallies_follow_every_write(store: Store) -> None:
    ops = {op.key: op for op in varied_operations()}
    for op in ops.values():
        await store.create(op)
    assert await store.tallies(None) == expected(list(ops.values()))

    running = [op for op in ops.values() if op.status not in (SUCCEEDED, FAILED, CANCELED)]
    for op in running[:10]:  # status changes, and one to another namespace and location
        moved = op.key == running[0].key
        changed = dataclasses.replace(
            op,
            status=CANCELED,
            namespace="Contoso.Moved" if moved else op.namespace,
            location="northeurope" if moved else op.location,
        )
        await store.update(op.subscription_id, op.key, lambda current, c=changed: c)
        ops[op.key] = changed
    for op in running[10:14]:  # a write that changes neither status nor place
        await store.update(op.subscription_id, op.key, lambda c: dataclasses.replace(c, etag="x"))
    gone = list(ops.values())[::7]
    for op in gone[:3]:
        assert await store.delete(op.subscription_id, op.key, lambda current: None)
        del ops[op.key]
    removed = await store.remove([(op.subscription_id, op.key) for op in gone[3:]], tombstone_of)
    for op in gone[3:]:
        del ops[op.key]
    assert len(removed) == len(gone) - 3
    assert await store.tallies(None) == expected(list(ops.values()))
    assert await store.tallies([SUB_B]) == expected(list(ops.values()), {SUB_B})
    assert await store.tallies([SUB_A, "no-such"]) == expected(list(ops.values()), {SUB_A})
    assert await store.tallies([]) == []

    for op in list(ops.values()):  # every group falls to zero and is left out
        await store.delete(op.subscription_id, op.key, lambda current: None)
    assert await store.tallies(None) == []
    await store.create(make_op("again"))
    assert await store.tallies(None) == [Tally(SUB_A, "Microsoft.Cache", "westus", IN_PROGRESS, 1)]


@pytest.mark.parametrize("moment", [TIMES[0], TIMES[5], TIMES[-1]])
async def test_live_at_takes_off_what_is_expired_as_counts_does(store: Store, moment: str) -> None:
    ops = varied_operations()
    for op in ops:
        await store.create(op)
    tallies = await store.tallies(None, live_at=moment)
    live = [op for op in ops if op.expires_at is None or op.expires_at > moment]
    assert tallies == expected(live)
    for tally in tallies:
        scope = OperationQuery(
            subscription_id=tally.subscription_id,
            namespace=tally.namespace,
            location=tally.location,
            live_at=moment,
        )
        # counts compares namespaces case-insensitively; the test data spell each one way.
        assert (await store.counts(scope)).get(tally.status) == tally.operations
    in_a = await store.tallies([SUB_A], live_at=moment)
    assert in_a == expected(live, {SUB_A})


async def test_concurrent_writers_of_one_group_are_all_counted(store: Store) -> None:
    ops = [make_op(f"op-{i:03d}") for i in range(60)]
    await asyncio.gather(*(store.create(op) for op in ops))

    def finish(current: Operation) -> Operation:
        return dataclasses.replace(current, status=SUCCEEDED, end_time=TIMES[1])

    await asyncio.gather(*(store.update(SUB_A, op.key, finish) for op in ops[:40]))
    await asyncio.gather(
        *(store.delete(SUB_A, op.key, lambda current: None) for op in ops[50:]),
        store.remove([(SUB_A, op.key) for op in ops[:10]], tombstone_of),
    )
    assert await store.tallies(None) == [
        Tally(SUB_A, "Microsoft.Cache", "westus", IN_PROGRESS, 10),
        Tally(SUB_A, "Microsoft.Cache", "westus", SUCCEEDED, 30),
    ]


# --- migration 0006 fills the tallies of an existing database -------------------------------

COLUMNS = (
    "subscription_id, operation_key, operation_id, namespace, location, status, etag, "
    "created_at, updated_at, create_digest"
)
NOW = "2030-01-01T00:00:00.000Z"
ROWS = [
    (sub, f"op-{i}", f"op-{i}", ns, loc, status, "e", NOW, NOW, "")
    for i, (sub, ns, loc, status) in enumerate(
        [
            (SUB_A, "Microsoft.Cache", "westus", IN_PROGRESS),
            (SUB_A, "Microsoft.Cache", "westus", IN_PROGRESS),
            (SUB_A, "Microsoft.Cache", "westus", FAILED),
            (SUB_A, "Contoso.Widgets", "eastus", SUCCEEDED),
            (SUB_B, "Microsoft.Cache", "westus", IN_PROGRESS),
        ]
    )
]
BACKFILLED = [
    Tally(SUB_B, "Microsoft.Cache", "westus", IN_PROGRESS, 1),
    Tally(SUB_A, "Contoso.Widgets", "eastus", SUCCEEDED, 1),
    Tally(SUB_A, "Microsoft.Cache", "westus", FAILED, 1),
    Tally(SUB_A, "Microsoft.Cache", "westus", IN_PROGRESS, 2),
]


async def check_backfilled(store: Store) -> None:
    await store.open()
    try:
        assert await store.tallies(None) == sorted(BACKFILLED)
        await store.create(make_op("new", SUB_B))
        assert (await store.tallies([SUB_B]))[0].operations == 2
    finally:
        await store.close()


async def test_sqlite_0006_counts_the_operations_already_stored(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        for migration in migrations("sqlite")[:5]:
            for statement in _statements(migration.sql):
                conn.execute(statement)
        conn.execute("PRAGMA user_version=5")
        conn.executemany(f"INSERT INTO operations ({COLUMNS}) VALUES ({', '.join('?' * 10)})", ROWS)
    await check_backfilled(SQLiteStore(path))  # migrates on open


async def test_postgresql_0006_counts_the_operations_already_stored(pg_empty_url: str) -> None:
    conn = await asyncpg.connect(pg_empty_url)
    try:
        await conn.execute(MIGRATIONS_DDL)
        for migration in migrations("postgresql")[:5]:
            await conn.execute(migration.sql)
            await conn.execute(
                f"INSERT INTO {MIGRATIONS_TABLE} (version, name) VALUES ($1, $2)",
                migration.version,
                migration.name,
            )
        placeholders = ", ".join(f"${i}" for i in range(1, 11))
        await conn.executemany(
            f"INSERT INTO opstatus_operations ({COLUMNS}) VALUES ({placeholders})", ROWS
        )
    finally:
        await conn.close()
    store = PostgreSQLStore(pg_empty_url)
    assert "tallies_and_list_orders" in [step.name for step in (await store.migrate()).steps]
    await check_backfilled(store)

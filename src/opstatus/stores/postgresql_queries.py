"""The PostgreSQL store's lists, counts, retention and tombstones (a mixin of
:class:`PostgreSQLStore`).

``find`` and ``counts`` are :mod:`.query_sql`'s translation of the query, the same as
SQLite's, with ``$n`` parameters. Text compares in the database's collation: with ``C`` or
``C.UTF-8`` (the tests' databases) that is code point order, so lists come back exactly in
:class:`~opstatus.queries.Position` order; under another collation, operations created in
the same millisecond may come back in another order, but paging stays exact (the order and
the keyset comparison use the same collation).

``remove`` runs in one transaction: it locks the batch's rows (in key order, so that two
batches never deadlock), asks ``decide`` about each, then deletes the chosen operations, which
NOTIFYs their waiters at commit as delete does, and stores their tombstones.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Collection, Sequence

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from ..lifecycle import Tombstone
from ..models import Operation
from ..queries import OperationQuery, Tally
from . import postgresql_events as event_log
from .base import Removal
from .event_rows import removal_event
from .postgresql_rows import COLUMNS, NOTIFY, TABLE, from_row
from .query_sql import Parameters, counts_sql, find_sql, tallies_sql

TOMBSTONES = "opstatus_tombstones"
TALLIES = "opstatus_operation_tallies"
TOMBSTONE_FIELDS = tuple(f.name for f in dataclasses.fields(Tombstone))
_TOMBSTONE_COLUMNS = ", ".join(("operation_key", *TOMBSTONE_FIELDS))
_KEY = "subscription_id = $1 AND operation_key = $2"
_SELECT_TOMBSTONE = f"SELECT {_TOMBSTONE_COLUMNS} FROM {TOMBSTONES} WHERE {_KEY}"
#: What ``create`` runs after inserting: a new operation takes its key back.
DELETE_TOMBSTONE = f"DELETE FROM {TOMBSTONES} WHERE {_KEY}"
_PUT_TOMBSTONE = (
    f"INSERT INTO {TOMBSTONES} ({_TOMBSTONE_COLUMNS}) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(TOMBSTONE_FIELDS) + 2))}) "
    "ON CONFLICT (subscription_id, operation_key) DO UPDATE SET "
    + ", ".join(f"{f} = EXCLUDED.{f}" for f in TOMBSTONE_FIELDS if f != "subscription_id")
)
#: Keys given as two arrays, subscription ids and operation keys.
_IN_KEYS = "(subscription_id, operation_key) IN (SELECT * FROM unnest($1::text[], $2::text[]))"
_LOCK_KEYS = (
    f"SELECT {COLUMNS} FROM {TABLE} WHERE {_IN_KEYS} "
    "ORDER BY subscription_id, operation_key FOR UPDATE"
)
_DELETE_KEYS = f"DELETE FROM {TABLE} WHERE {_IN_KEYS} RETURNING {NOTIFY}"
#: Two sweepers at once take different tombstones rather than wait for each other.
_FORGET_TOMBSTONES = f"""
WITH forgotten AS (
    DELETE FROM {TOMBSTONES} WHERE (subscription_id, operation_key) IN (
        SELECT subscription_id, operation_key FROM {TOMBSTONES}
        WHERE forget_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED
    )
    RETURNING 1
)
SELECT count(*) FROM forgotten
"""


def _arrays(keys: Sequence[tuple[str, str]]) -> tuple[list[str], list[str]]:
    return [s for s, _ in keys], [k for _, k in keys]


class PostgreSQLQueries:
    def _connection(
        self,
    ) -> contextlib.AbstractAsyncContextManager[PoolConnectionProxy[asyncpg.Record]]:
        raise NotImplementedError

    async def find(self, query: OperationQuery) -> list[Operation]:
        p = Parameters(numbered=True)
        sql = find_sql(query, TABLE, COLUMNS, p)
        async with self._connection() as conn:
            rows = await conn.fetch(sql, *p.values)
        return [from_row(row) for row in rows]

    async def counts(self, query: OperationQuery) -> dict[str, int]:
        p = Parameters(numbered=True)
        sql = counts_sql(query, TABLE, p)
        async with self._connection() as conn:
            rows = await conn.fetch(sql, *p.values)
        return {status: count for status, count in rows}

    async def tallies(
        self, subscription_ids: Collection[str] | None, live_at: str | None = None
    ) -> list[Tally]:
        p = Parameters(numbered=True)
        sql = tallies_sql(subscription_ids, live_at, (TALLIES, TABLE), p)
        async with self._connection() as conn:
            rows = await conn.fetch(sql, *p.values)
        return [Tally(str(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4])) for r in rows]

    async def remove(self, keys: Sequence[tuple[str, str]], decide: Removal) -> list[Tombstone]:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return []
        async with self._connection() as conn, conn.transaction():
            rows = await conn.fetch(_LOCK_KEYS, *_arrays(wanted))
            current = {(op.subscription_id, op.key): op for op in map(from_row, rows)}
            decided: list[tuple[tuple[str, str], Tombstone]] = []
            for key in wanted:
                if key in current and (tombstone := decide(current[key])) is not None:
                    decided.append((key, tombstone))
            if decided:
                await conn.execute(_DELETE_KEYS, *_arrays([key for key, _ in decided]))
                await conn.executemany(
                    _PUT_TOMBSTONE,
                    [(t.key, *dataclasses.astuple(t)) for _, t in decided],
                )
                for key, tombstone in decided:
                    await event_log.record_last(conn, removal_event(current[key], tombstone))
        return [tombstone for _, tombstone in decided]

    async def get_tombstone(self, subscription_id: str, operation_key: str) -> Tombstone | None:
        async with self._connection() as conn:
            row = await conn.fetchrow(_SELECT_TOMBSTONE, subscription_id, operation_key)
        if row is None:
            return None
        return Tombstone(**dict(zip(TOMBSTONE_FIELDS, tuple(row)[1:], strict=True)))

    async def forget_tombstones(self, before: str, limit: int) -> int:
        async with self._connection() as conn:
            await event_log.forget_kept(conn, before)
            forgotten = await conn.fetchval(_FORGET_TOMBSTONES, before, limit)
        return int(forgotten)

"""The PostgreSQL store's event log (a mixin of :class:`PostgreSQLStore`), and the
statements its writes run to keep it.

Counters (``bigserial``) are handed out before commit, so on their own they are not commit
order: a transaction holding cursor 10 may commit after the one holding 11, and a reader
that passed 11 would never see 10. Each event therefore also records its transaction id,
its position is ``(txid, cursor)``, and a read returns only events of transactions older
than every transaction still open (``pg_snapshot_xmin``). Every event that becomes visible
later belongs to a transaction at least that new, so it sorts after everything already
read, on this instance and on any other.
"""

from __future__ import annotations

import contextlib

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from ..events import PROGRESS, Event, EventScope, Position
from .event_rows import READ_COLUMNS, NewEvent, event_from_row, scope_sql
from .query_sql import Parameters

TABLE = "opstatus_events"
_KEY = "subscription_id = $1 AND operation_key = $2"
_INSERT = (
    f"INSERT INTO {TABLE} (subscription_id, operation_key, sequence, type, namespace, "
    "location, status, created_at, keep_until, data) "
    "SELECT $1, $2, coalesce(max(sequence), 0) + 1, $3, $4, $5, $6, $7, $8, $9 "
    f"FROM {TABLE} WHERE {_KEY} RETURNING cursor"
)
_PRUNE_PROGRESS = (
    f"DELETE FROM {TABLE} WHERE {_KEY} AND type = '{PROGRESS}' AND sequence <= "
    f"(SELECT sequence FROM {TABLE} WHERE {_KEY} AND type = '{PROGRESS}' "
    "ORDER BY sequence DESC LIMIT 1 OFFSET $3)"
)
_FORGET_OPERATION = f"DELETE FROM {TABLE} WHERE {_KEY} AND cursor < $3"
_FORGET_KEPT = f"DELETE FROM {TABLE} WHERE keep_until <= $1"
#: Only events of transactions older than every open one (see the module docstring).
VISIBLE = "txid < pg_snapshot_xmin(pg_current_snapshot())"
POSITION_COLUMNS = "txid::text::bigint, cursor"
_LAST = (
    f"SELECT {POSITION_COLUMNS} FROM {TABLE} WHERE {VISIBLE} "
    "ORDER BY txid DESC, cursor DESC LIMIT 1"
)


async def record(
    conn: PoolConnectionProxy[asyncpg.Record], event: NewEvent | None, progress_kept: int
) -> None:
    """Insert ``event`` (if any) in the caller's transaction, keeping the newest
    ``progress_kept`` progress events of its operation."""
    if event is None:
        return
    await conn.fetchval(_INSERT, *event)
    if event.type == PROGRESS:
        await conn.execute(
            _PRUNE_PROGRESS, event.subscription_id, event.operation_key, progress_kept
        )


async def record_last(conn: PoolConnectionProxy[asyncpg.Record], event: NewEvent) -> None:
    """Insert ``event`` and forget its operation's earlier events (it was removed)."""
    cursor = await conn.fetchval(_INSERT, *event)
    await conn.execute(_FORGET_OPERATION, event.subscription_id, event.operation_key, cursor)


async def forget_operation(
    conn: PoolConnectionProxy[asyncpg.Record], subscription_id: str, operation_key: str
) -> None:
    """A new operation takes the key: the events of the one before it go."""
    await conn.execute(_FORGET_OPERATION, subscription_id, operation_key, 1 << 62)


async def forget_kept(conn: PoolConnectionProxy[asyncpg.Record], before: str) -> None:
    """Forget removal events whose keep is over."""
    await conn.execute(_FORGET_KEPT, before)


def events_sql(after: Position, limit: int, scope: EventScope | None) -> tuple[str, list[object]]:
    p = Parameters(numbered=True)
    group, cursor = p(after.group), p(after.cursor)
    where = scope_sql(scope, p)
    sql = (
        f"SELECT {POSITION_COLUMNS}, {READ_COLUMNS} FROM {TABLE} "
        f"WHERE (txid, cursor) > ({group}::bigint::text::xid8, {cursor}) AND {VISIBLE}{where} "
        f"ORDER BY txid, cursor LIMIT {p(limit)}"
    )
    return sql, p.values


class PostgreSQLEventLog:
    progress_events_kept: int

    def _connection(
        self,
    ) -> contextlib.AbstractAsyncContextManager[PoolConnectionProxy[asyncpg.Record]]:
        raise NotImplementedError

    async def events(
        self, after: Position, limit: int, scope: EventScope | None = None
    ) -> list[Event]:
        sql, values = events_sql(after, limit, scope)
        async with self._connection() as conn:
            rows = await conn.fetch(sql, *values)
        return [event_from_row(Position(row[0], row[1]), tuple(row)[2:]) for row in rows]

    async def last_position(self) -> Position:
        async with self._connection() as conn:
            row = await conn.fetchrow(_LAST)
        return Position(0, 0) if row is None else Position(row[0], row[1])

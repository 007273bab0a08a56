"""The SQLite store's event log (a mixin of :class:`SQLiteStore`), and the statements its
writes run to keep it.

One writer at a time (the writer thread, and ``BEGIN IMMEDIATE`` between processes) means
the log's AUTOINCREMENT counter is handed out in commit order, and is never reused: a
position is ``(0, cursor)``. Reads run on the reader connection, which sees every commit.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ..events import PROGRESS, Event, EventScope, Position
from .event_rows import READ_COLUMNS, NewEvent, event_from_row, scope_sql
from .query_sql import Parameters

_KEY = "subscription_id = ? AND operation_key = ?"
_INSERT = (
    "INSERT INTO events (subscription_id, operation_key, sequence, type, namespace, location, "
    "status, created_at, keep_until, data) "
    "SELECT ?, ?, coalesce(max(sequence), 0) + 1, ?, ?, ?, ?, ?, ?, ? "
    f"FROM events WHERE {_KEY}"
)
#: Progress events of an operation beyond the newest N (N the last parameter).
_PRUNE_PROGRESS = (
    f"DELETE FROM events WHERE {_KEY} AND type = '{PROGRESS}' AND sequence <= "
    f"(SELECT sequence FROM events WHERE {_KEY} AND type = '{PROGRESS}' "
    "ORDER BY sequence DESC LIMIT 1 OFFSET ?)"
)
_FORGET_OPERATION = f"DELETE FROM events WHERE {_KEY} AND cursor < ?"
_FORGET_KEPT = "DELETE FROM events WHERE keep_until <= ?"
_LAST = "SELECT max(cursor) FROM events"


def record(conn: sqlite3.Connection, event: NewEvent | None, progress_kept: int) -> None:
    """Insert ``event`` (if any) in the caller's transaction, keeping the newest
    ``progress_kept`` progress events of its operation."""
    if event is None:
        return
    key = (event.subscription_id, event.operation_key)
    conn.execute(_INSERT, (*key, *event[2:], *key))
    if event.type == PROGRESS:
        conn.execute(_PRUNE_PROGRESS, (*key, *key, progress_kept))


def record_last(conn: sqlite3.Connection, event: NewEvent) -> None:
    """Insert ``event`` and forget its operation's earlier events (it was removed)."""
    key = (event.subscription_id, event.operation_key)
    cursor = conn.execute(_INSERT, (*key, *event[2:], *key)).lastrowid
    conn.execute(_FORGET_OPERATION, (*key, cursor))


def forget_operation(conn: sqlite3.Connection, subscription_id: str, operation_key: str) -> None:
    """A new operation takes the key: the events of the one before it go."""
    conn.execute(_FORGET_OPERATION, (subscription_id, operation_key, 1 << 62))


def forget_kept(conn: sqlite3.Connection, before: str) -> int:
    """Forget removal events whose keep is over."""
    return int(conn.execute(_FORGET_KEPT, (before,)).rowcount)


class SQLiteEventLog:
    progress_events_kept: int

    def _read_all(self, sql: str, params: tuple[Any, ...] | list[Any]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    async def events(
        self, after: Position, limit: int, scope: EventScope | None = None
    ) -> list[Event]:
        p = Parameters(numbered=False)
        p(after.cursor)
        where = scope_sql(scope, p)
        sql = (
            f"SELECT cursor, {READ_COLUMNS} FROM events WHERE cursor > ?{where} "
            f"ORDER BY cursor LIMIT {p(limit)}"
        )
        return [
            event_from_row(Position(0, row[0]), row[1:]) for row in self._read_all(sql, p.values)
        ]

    async def last_position(self) -> Position:
        rows = self._read_all(_LAST, ())
        return Position(0, int(rows[0][0] or 0))

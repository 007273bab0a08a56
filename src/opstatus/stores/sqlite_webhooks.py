"""The SQLite store's webhook subscriptions, callbacks and deliveries (a mixin of
:class:`SQLiteStore`).

Every write runs on the writer thread in a ``BEGIN IMMEDIATE`` transaction, so fanning out
and claiming deliveries take turns also with other processes sharing the file: a claimed
delivery's ``next_attempt_at`` moves past its send's time limit (a lease), so no other
claimer takes it meanwhile, and a crashed sender's deliveries come due again after it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from ..events import Event, Position
from ..webhooks import PENDING, Callback, Delivery, Webhook
from .event_rows import READ_COLUMNS, event_from_row
from .webhook_rows import (
    DELIVERY_COLUMNS,
    FIRST_IN_LINE,
    NEW_DELIVERY_COLUMNS,
    WEBHOOK_COLUMNS,
    WEBHOOK_FIELDS,
    Finished,
    callback_from_row,
    callback_row,
    deliveries_for,
    delivery_from_row,
    webhook_from_row,
    webhook_row,
)

_PUT_CALLBACK = (
    "INSERT OR REPLACE INTO callbacks (subscription_id, operation_key, url, event_types) "
    "VALUES (?, ?, ?, ?)"
)
_CALLBACK = "SELECT url, event_types FROM callbacks WHERE subscription_id = ? AND operation_key = ?"
_DROP_CALLBACK = "DELETE FROM callbacks WHERE subscription_id = ? AND operation_key = ?"
_INSERT_WEBHOOK = (
    f"INSERT INTO webhooks ({WEBHOOK_COLUMNS}) VALUES ({', '.join('?' * len(WEBHOOK_FIELDS))})"
)
_SELECT_WEBHOOKS = f"SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE subscription_id = ?"
_UPDATE_WEBHOOK = (
    f"UPDATE webhooks SET {', '.join(f'{f} = ?' for f in WEBHOOK_FIELDS)} "
    "WHERE subscription_id = ? AND id = ?"
)
_DELETE_WEBHOOK = "DELETE FROM webhooks WHERE subscription_id = ? AND id = ?"
_DELETE_WEBHOOK_DELIVERIES = "DELETE FROM deliveries WHERE webhook_id = ?"
_POSITION = "SELECT position_cursor FROM event_dispatch WHERE name = 'webhooks'"
_ANY_NEW_EVENT = (
    "SELECT 1 FROM events WHERE cursor > "
    "(SELECT position_cursor FROM event_dispatch WHERE name = 'webhooks') LIMIT 1"
)
_MOVE = "UPDATE event_dispatch SET position_cursor = ? WHERE name = 'webhooks'"
_EVENTS = f"SELECT cursor, {READ_COLUMNS} FROM events WHERE cursor > ? ORDER BY cursor LIMIT ?"
_INSERT_DELIVERY = (
    f"INSERT OR IGNORE INTO deliveries ({NEW_DELIVERY_COLUMNS}) VALUES ({', '.join('?' * 12)})"
)
_DUE = (
    f"SELECT {DELIVERY_COLUMNS} FROM deliveries d WHERE state = '{PENDING}' "
    f"AND next_attempt_at <= ? AND {FIRST_IN_LINE.format(table='deliveries')} "
    "ORDER BY next_attempt_at, id LIMIT ?"
)
_FINISH = (
    "UPDATE deliveries SET state = ?, attempts = ?, next_attempt_at = ?, last_attempt_at = ?, "
    "last_status = ?, last_error = ? WHERE id = ?"
)
_REDELIVER = (
    f"UPDATE deliveries SET state = '{PENDING}', attempts = 0, next_attempt_at = ? "
    "WHERE subscription_id = ? AND webhook_id = ? AND id = ?"
)
_FORGET = (
    "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries WHERE created_at <= ? "
    f"AND state != '{PENDING}' LIMIT ?)"
)
#: Callbacks outlive their operation while its last events may still be fanned out.
_FORGET_CALLBACKS = (
    "DELETE FROM callbacks WHERE NOT EXISTS (SELECT 1 FROM events e WHERE "
    "e.subscription_id = callbacks.subscription_id AND e.operation_key = callbacks.operation_key)"
)


def put_callback(conn: sqlite3.Connection, key: tuple[str, str], callback: Callback | None) -> None:
    """In a create's transaction: the new operation's callback replaces any of its key's."""
    conn.execute(_DROP_CALLBACK, key)
    if callback is not None:
        conn.execute(_PUT_CALLBACK, (*key, *callback_row(callback)))


class SQLiteWebhooks:
    async def _commit(self, body: Any) -> Any:
        raise NotImplementedError

    def _read_all(self, sql: str, params: tuple[Any, ...] | list[Any]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    async def create_webhook(self, webhook: Webhook) -> None:
        await self._commit(lambda conn: conn.execute(_INSERT_WEBHOOK, webhook_row(webhook)))

    async def list_webhooks(self, subscription_id: str) -> list[Webhook]:
        rows = self._read_all(_SELECT_WEBHOOKS + " ORDER BY created_at, id", (subscription_id,))
        return [webhook_from_row(row) for row in rows]

    async def get_webhook(self, subscription_id: str, webhook_id: str) -> Webhook | None:
        rows = self._read_all(_SELECT_WEBHOOKS + " AND id = ?", (subscription_id, webhook_id))
        return webhook_from_row(rows[0]) if rows else None

    async def replace_webhook(self, webhook: Webhook) -> bool:
        def body(conn: sqlite3.Connection) -> bool:
            values = (*webhook_row(webhook), webhook.subscription_id, webhook.id)
            return bool(conn.execute(_UPDATE_WEBHOOK, values).rowcount)

        result: bool = await self._commit(body)
        return result

    async def delete_webhook(self, subscription_id: str, webhook_id: str) -> bool:
        def body(conn: sqlite3.Connection) -> bool:
            if not conn.execute(_DELETE_WEBHOOK, (subscription_id, webhook_id)).rowcount:
                return False
            conn.execute(_DELETE_WEBHOOK_DELIVERIES, (webhook_id,))
            return True

        result: bool = await self._commit(body)
        return result

    async def fan_out(self, limit: int, now: str) -> int:
        # Looked at first through the reader: the dispatcher asks every half second, and a
        # write transaction each time would cost a durable commit for nothing.
        if not self._read_all(_ANY_NEW_EVENT, ()):
            return 0

        def body(conn: sqlite3.Connection) -> int:
            (cursor,) = conn.execute(_POSITION).fetchone()
            rows = conn.execute(_EVENTS, (cursor, limit)).fetchall()
            if not rows:
                return 0
            events = [event_from_row(Position(0, row[0]), row[1:]) for row in rows]
            made = deliveries_for(
                events, self._webhooks(conn, events), _callbacks(conn, events), now
            )
            conn.executemany(_INSERT_DELIVERY, made)
            conn.execute(_MOVE, (rows[-1][0],))
            return len(events)

        result: int = await self._commit(body)
        return result

    @staticmethod
    def _webhooks(conn: sqlite3.Connection, events: Sequence[Event]) -> list[Webhook]:
        found = []
        for subscription_id in {e.subscription_id for e in events}:
            rows = conn.execute(_SELECT_WEBHOOKS, (subscription_id,)).fetchall()
            found += [webhook_from_row(row) for row in rows]
        return found

    async def claim_deliveries(self, now: str, until: str, limit: int) -> list[Delivery]:
        if not self._read_all(_DUE, (now, 1)):  # see fan_out
            return []

        def body(conn: sqlite3.Connection) -> list[Delivery]:
            due = [delivery_from_row(row) for row in conn.execute(_DUE, (now, limit))]
            conn.executemany(
                "UPDATE deliveries SET next_attempt_at = ? WHERE id = ?",
                [(until, d.id) for d in due],
            )
            return due

        result: list[Delivery] = await self._commit(body)
        return result

    async def finish_deliveries(self, finished: Sequence[Finished]) -> None:
        rows = [(*f[1:], f.id) for f in finished]
        await self._commit(lambda conn: conn.executemany(_FINISH, rows))

    async def list_deliveries(
        self,
        subscription_id: str,
        operation_key: str | None = None,
        webhook_id: str | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        sql = f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE subscription_id = ?"
        params: list[Any] = [subscription_id]
        if operation_key is not None:
            sql += " AND operation_key = ?"
            params.append(operation_key)
        if webhook_id is not None:
            sql += " AND webhook_id = ?"
            params.append(webhook_id)
        params.append(limit)
        rows = self._read_all(sql + " ORDER BY id DESC LIMIT ?", params)
        return [delivery_from_row(row) for row in rows]

    async def redeliver(
        self, subscription_id: str, webhook_id: str, delivery_id: int, now: str
    ) -> bool:
        def body(conn: sqlite3.Connection) -> bool:
            values = (now, subscription_id, webhook_id, delivery_id)
            changed = conn.execute(_REDELIVER, values).rowcount
            return bool(changed)

        result: bool = await self._commit(body)
        return result

    async def forget_deliveries(self, before: str, limit: int) -> int:
        def body(conn: sqlite3.Connection) -> int:
            conn.execute(_FORGET_CALLBACKS)
            return int(conn.execute(_FORGET, (before, limit)).rowcount)

        result: int = await self._commit(body)
        return result


def _callbacks(
    conn: sqlite3.Connection, events: Sequence[Event]
) -> dict[tuple[str, str], Callback]:
    found = {}
    for key in {(e.subscription_id, e.operation_key) for e in events}:
        row = conn.execute(_CALLBACK, key).fetchone()
        if row is not None:
            found[key] = callback_from_row(*row)
    return found

"""The PostgreSQL store's webhook subscriptions, callbacks and deliveries (a mixin of
:class:`PostgreSQLStore`).

Several instances share the work without sending anything twice in the normal case:

- fanning out locks the one dispatch position row, so one instance at a time turns events
  into deliveries, and moves the position in the same transaction;
- claiming takes due deliveries ``FOR UPDATE SKIP LOCKED`` and moves their
  ``next_attempt_at`` past the send's time limit (a lease): another instance skips them
  while they are being claimed and finds them not due afterwards. An instance that dies
  mid-send leaves them to come due again once the lease is over, and they go out again with
  the same ``webhook-id``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from ..events import Position
from ..webhooks import PENDING, Callback, Delivery, Webhook
from .event_rows import event_from_row
from .postgresql_events import events_sql
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

DELIVERIES = "opstatus_deliveries"
_PUT_CALLBACK = (
    "INSERT INTO opstatus_callbacks (subscription_id, operation_key, url, event_types) "
    "VALUES ($1, $2, $3, $4) ON CONFLICT (subscription_id, operation_key) DO UPDATE SET "
    "url = EXCLUDED.url, event_types = EXCLUDED.event_types"
)
_DROP_CALLBACK = "DELETE FROM opstatus_callbacks WHERE subscription_id = $1 AND operation_key = $2"
_CALLBACKS = (
    "SELECT subscription_id, operation_key, url, event_types FROM opstatus_callbacks "
    "WHERE (subscription_id, operation_key) IN (SELECT * FROM unnest($1::text[], $2::text[]))"
)
_INSERT_WEBHOOK = (
    f"INSERT INTO opstatus_webhooks ({WEBHOOK_COLUMNS}) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(WEBHOOK_FIELDS) + 1))})"
)
_SELECT_WEBHOOKS = f"SELECT {WEBHOOK_COLUMNS} FROM opstatus_webhooks WHERE subscription_id = $1"
_SELECT_WEBHOOKS_OF = (
    f"SELECT {WEBHOOK_COLUMNS} FROM opstatus_webhooks WHERE subscription_id = ANY($1::text[])"
)
_UPDATE_WEBHOOK = (
    "UPDATE opstatus_webhooks SET "
    + ", ".join(f"{f} = ${i}" for i, f in enumerate(WEBHOOK_FIELDS, 1))
    + f" WHERE subscription_id = ${len(WEBHOOK_FIELDS) + 1} AND id = ${len(WEBHOOK_FIELDS) + 2}"
)
_DELETE_WEBHOOK = "DELETE FROM opstatus_webhooks WHERE subscription_id = $1 AND id = $2"
_DELETE_WEBHOOK_DELIVERIES = f"DELETE FROM {DELIVERIES} WHERE webhook_id = $1"
_POSITION = (
    "SELECT position_group, position_cursor FROM opstatus_event_dispatch "
    "WHERE name = 'webhooks' FOR UPDATE"
)
_MOVE = (
    "UPDATE opstatus_event_dispatch SET position_group = $1, position_cursor = $2 "
    "WHERE name = 'webhooks'"
)
_INSERT_DELIVERY = (
    f"INSERT INTO {DELIVERIES} ({NEW_DELIVERY_COLUMNS}) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, 13))}) ON CONFLICT (message_id) DO NOTHING"
)
_CLAIM = f"""
WITH due AS (
    SELECT id FROM {DELIVERIES} d WHERE state = '{PENDING}' AND next_attempt_at <= $1
    AND {FIRST_IN_LINE.format(table=DELIVERIES)}
    ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED
)
UPDATE {DELIVERIES} SET next_attempt_at = $2 FROM due WHERE {DELIVERIES}.id = due.id
RETURNING {", ".join(f"{DELIVERIES}.{c}" for c in DELIVERY_COLUMNS.split(", "))}
"""
_FINISH = (
    f"UPDATE {DELIVERIES} SET state = $2, attempts = $3, next_attempt_at = $4, "
    "last_attempt_at = $5, last_status = $6, last_error = $7 WHERE id = $1"
)
_REDELIVER = (
    f"UPDATE {DELIVERIES} SET state = '{PENDING}', attempts = 0, next_attempt_at = $4 "
    "WHERE subscription_id = $1 AND webhook_id = $2 AND id = $3"
)
_FORGET = f"""
WITH gone AS (
    DELETE FROM {DELIVERIES} WHERE id IN (
        SELECT id FROM {DELIVERIES} WHERE created_at <= $1 AND state != '{PENDING}'
        LIMIT $2 FOR UPDATE SKIP LOCKED)
    RETURNING 1
)
SELECT count(*) FROM gone
"""
_FORGET_CALLBACKS = (
    "DELETE FROM opstatus_callbacks c WHERE NOT EXISTS (SELECT 1 FROM opstatus_events e "
    "WHERE e.subscription_id = c.subscription_id AND e.operation_key = c.operation_key)"
)


async def put_callback(
    conn: PoolConnectionProxy[asyncpg.Record], key: tuple[str, str], callback: Callback | None
) -> None:
    """In a create's transaction: the new operation's callback replaces any of its key's."""
    if callback is None:
        await conn.execute(_DROP_CALLBACK, *key)
    else:
        await conn.execute(_PUT_CALLBACK, *key, *callback_row(callback))


class PostgreSQLWebhooks:
    def _connection(
        self,
    ) -> contextlib.AbstractAsyncContextManager[PoolConnectionProxy[asyncpg.Record]]:
        raise NotImplementedError

    async def create_webhook(self, webhook: Webhook) -> None:
        async with self._connection() as conn:
            await conn.execute(_INSERT_WEBHOOK, *webhook_row(webhook))

    async def list_webhooks(self, subscription_id: str) -> list[Webhook]:
        async with self._connection() as conn:
            rows = await conn.fetch(_SELECT_WEBHOOKS + " ORDER BY created_at, id", subscription_id)
        return [webhook_from_row(tuple(row)) for row in rows]

    async def get_webhook(self, subscription_id: str, webhook_id: str) -> Webhook | None:
        async with self._connection() as conn:
            row = await conn.fetchrow(
                _SELECT_WEBHOOKS + " AND id = $2", subscription_id, webhook_id
            )
        return None if row is None else webhook_from_row(tuple(row))

    async def replace_webhook(self, webhook: Webhook) -> bool:
        async with self._connection() as conn:
            status = await conn.execute(
                _UPDATE_WEBHOOK, *webhook_row(webhook), webhook.subscription_id, webhook.id
            )
        return status.endswith(" 1")

    async def delete_webhook(self, subscription_id: str, webhook_id: str) -> bool:
        async with self._connection() as conn, conn.transaction():
            status = await conn.execute(_DELETE_WEBHOOK, subscription_id, webhook_id)
            if not status.endswith(" 1"):
                return False
            await conn.execute(_DELETE_WEBHOOK_DELIVERIES, webhook_id)
        return True

    async def fan_out(self, limit: int, now: str) -> int:
        async with self._connection() as conn, conn.transaction():
            row = await conn.fetchrow(_POSITION)
            assert row is not None  # the migration inserts it
            sql, values = events_sql(Position(row[0], row[1]), limit, None)
            rows = await conn.fetch(sql, *values)
            if not rows:
                return 0
            events = [event_from_row(Position(r[0], r[1]), tuple(r)[2:]) for r in rows]
            subscriptions = sorted({e.subscription_id for e in events})
            webhooks = [
                webhook_from_row(tuple(row))
                for row in await conn.fetch(_SELECT_WEBHOOKS_OF, subscriptions)
            ]
            keys = sorted({(e.subscription_id, e.operation_key) for e in events})
            found = await conn.fetch(_CALLBACKS, [k[0] for k in keys], [k[1] for k in keys])
            callbacks = {(r[0], r[1]): callback_from_row(r[2], r[3]) for r in found}
            made = deliveries_for(events, webhooks, callbacks, now)
            if made:
                await conn.executemany(_INSERT_DELIVERY, made)
            last = events[-1].position
            await conn.execute(_MOVE, last.group, last.cursor)
        return len(events)

    async def claim_deliveries(self, now: str, until: str, limit: int) -> list[Delivery]:
        async with self._connection() as conn:
            rows = await conn.fetch(_CLAIM, now, until, limit)
        return sorted((delivery_from_row(tuple(row)) for row in rows), key=lambda d: d.id)

    async def finish_deliveries(self, finished: Sequence[Finished]) -> None:
        async with self._connection() as conn:
            await conn.executemany(_FINISH, finished)

    async def list_deliveries(
        self,
        subscription_id: str,
        operation_key: str | None = None,
        webhook_id: str | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        sql = (
            f"SELECT {DELIVERY_COLUMNS} FROM {DELIVERIES} WHERE subscription_id = $1 "
            "AND ($2::text IS NULL OR operation_key = $2) "
            "AND ($3::text IS NULL OR webhook_id = $3) "
            "ORDER BY id DESC LIMIT $4"
        )
        async with self._connection() as conn:
            rows = await conn.fetch(sql, subscription_id, operation_key, webhook_id, limit)
        return [delivery_from_row(tuple(row)) for row in rows]

    async def redeliver(
        self, subscription_id: str, webhook_id: str, delivery_id: int, now: str
    ) -> bool:
        async with self._connection() as conn:
            status = await conn.execute(_REDELIVER, subscription_id, webhook_id, delivery_id, now)
        return status.endswith(" 1")

    async def forget_deliveries(self, before: str, limit: int) -> int:
        async with self._connection() as conn:
            await conn.execute(_FORGET_CALLBACKS)
            return int(await conn.fetchval(_FORGET, before, limit))

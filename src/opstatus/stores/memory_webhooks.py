"""The in-memory store's webhook subscriptions, callbacks and deliveries (a mixin of
:class:`MemoryStore`): the SQL stores' rules over dicts."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence

from ..events import Event, Position
from ..webhooks import PENDING, Callback, Delivery, Webhook
from .webhook_rows import Finished, deliveries_for


class MemoryWebhooks:
    _lock: threading.Lock
    _events: list[Event]

    def __init__(self) -> None:
        self._webhooks: dict[tuple[str, str], Webhook] = {}
        self._callbacks: dict[tuple[str, str], Callback] = {}
        self._deliveries: dict[int, Delivery] = {}
        self._dispatched = Position(0, 0)
        self._delivery_ids = 0

    def _put_callback(self, key: tuple[str, str], callback: Callback | None) -> None:
        """Under the store's lock, in a create."""
        self._callbacks.pop(key, None)
        if callback is not None:
            self._callbacks[key] = callback

    async def create_webhook(self, webhook: Webhook) -> None:
        with self._lock:
            self._webhooks[(webhook.subscription_id, webhook.id)] = webhook

    async def list_webhooks(self, subscription_id: str) -> list[Webhook]:
        with self._lock:
            found = [w for w in self._webhooks.values() if w.subscription_id == subscription_id]
        return sorted(found, key=lambda w: (w.created_at, w.id))

    async def get_webhook(self, subscription_id: str, webhook_id: str) -> Webhook | None:
        return self._webhooks.get((subscription_id, webhook_id))

    async def replace_webhook(self, webhook: Webhook) -> bool:
        key = (webhook.subscription_id, webhook.id)
        with self._lock:
            if key not in self._webhooks:
                return False
            self._webhooks[key] = webhook
            return True

    async def delete_webhook(self, subscription_id: str, webhook_id: str) -> bool:
        with self._lock:
            if self._webhooks.pop((subscription_id, webhook_id), None) is None:
                return False
            for d in [d for d in self._deliveries.values() if d.webhook_id == webhook_id]:
                del self._deliveries[d.id]
            return True

    async def fan_out(self, limit: int, now: str) -> int:
        with self._lock:
            events = [e for e in self._events if e.position > self._dispatched][:limit]
            if not events:
                return 0
            made = deliveries_for(events, list(self._webhooks.values()), self._callbacks, now)
            known = {d.message_id for d in self._deliveries.values()}
            for new in made:
                if new.message_id not in known:
                    self._delivery_ids += 1
                    number = self._delivery_ids
                    self._deliveries[number] = Delivery(number, *new[:-1], None, None, None, now)
            self._dispatched = events[-1].position
            return len(events)

    async def claim_deliveries(self, now: str, until: str, limit: int) -> list[Delivery]:
        with self._lock:
            blocked: set[tuple[str, str, str]] = set()
            due = []
            for d in sorted(self._deliveries.values(), key=lambda d: d.id):
                if d.state != PENDING:
                    continue
                line = (d.webhook_id, d.subscription_id, d.operation_key)
                if line not in blocked and d.next_attempt_at <= now:
                    due.append(d)
                blocked.add(line)
            due = sorted(due, key=lambda d: (d.next_attempt_at, d.id))[:limit]
            for d in due:
                self._deliveries[d.id] = dataclasses.replace(d, next_attempt_at=until)
            return sorted(due, key=lambda d: d.id)

    async def finish_deliveries(self, finished: Sequence[Finished]) -> None:
        with self._lock:
            for f in finished:
                if f.id in self._deliveries:
                    self._deliveries[f.id] = dataclasses.replace(
                        self._deliveries[f.id], **f._asdict()
                    )

    async def list_deliveries(
        self,
        subscription_id: str,
        operation_key: str | None = None,
        webhook_id: str | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        with self._lock:
            found = [
                d
                for d in self._deliveries.values()
                if d.subscription_id == subscription_id
                and operation_key in (None, d.operation_key)
                and webhook_id in (None, d.webhook_id)
            ]
        return sorted(found, key=lambda d: -d.id)[:limit]

    async def redeliver(
        self, subscription_id: str, webhook_id: str, delivery_id: int, now: str
    ) -> bool:
        with self._lock:
            d = self._deliveries.get(delivery_id)
            if d is None or (d.subscription_id, d.webhook_id) != (subscription_id, webhook_id):
                return False
            self._deliveries[d.id] = dataclasses.replace(
                d, state=PENDING, attempts=0, next_attempt_at=now
            )
            return True

    async def forget_deliveries(self, before: str, limit: int) -> int:
        with self._lock:
            keys = {(e.subscription_id, e.operation_key) for e in self._events}
            for key in [k for k in self._callbacks if k not in keys]:
                del self._callbacks[key]
            gone = [
                d.id
                for d in self._deliveries.values()
                if d.created_at <= before and d.state != PENDING
            ][:limit]
            for number in gone:
                del self._deliveries[number]
            return len(gone)

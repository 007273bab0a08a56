"""Webhook subscriptions, callbacks and deliveries as rows, shared by every store; and the
fan-out rule: which deliveries an event makes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import orjson

from ..events import Event
from ..webhooks import CALLBACK, PENDING, Callback, Delivery, Webhook, message_id

WEBHOOK_FIELDS = tuple(f.name for f in dataclasses.fields(Webhook))
WEBHOOK_COLUMNS = ", ".join(WEBHOOK_FIELDS)
DELIVERY_FIELDS = tuple(f.name for f in dataclasses.fields(Delivery))
DELIVERY_COLUMNS = ", ".join(DELIVERY_FIELDS)
#: What a new delivery sets; the rest start empty.
NEW_DELIVERY_COLUMNS = (
    "message_id, webhook_id, subscription_id, operation_key, event_id, event_type, url, "
    "payload, state, attempts, next_attempt_at, created_at"
)
#: Of an endpoint's deliveries for one operation, only the oldest pending one may be sent:
#: ``d`` is the candidate (SQL shared by both dialects).
FIRST_IN_LINE = (
    "NOT EXISTS (SELECT 1 FROM {table} e WHERE e.webhook_id = d.webhook_id "
    "AND e.subscription_id = d.subscription_id AND e.operation_key = d.operation_key "
    "AND e.state = 'pending' AND e.id < d.id)"
)


class NewDelivery(NamedTuple):
    message_id: str
    webhook_id: str
    subscription_id: str
    operation_key: str
    event_id: str
    event_type: str
    url: str
    payload: str
    state: str
    attempts: int
    next_attempt_at: str
    created_at: str


class Finished(NamedTuple):
    """What an attempt changes in its delivery."""

    id: int
    state: str
    attempts: int
    next_attempt_at: str
    last_attempt_at: str
    last_status: int | None
    last_error: str | None


def webhook_row(webhook: Webhook) -> tuple[Any, ...]:
    values = dataclasses.astuple(webhook)
    index = WEBHOOK_FIELDS.index("event_types")
    types = values[index]
    encoded = orjson.dumps(sorted(types)).decode() if types is not None else None
    return (*values[:index], encoded, *values[index + 1 :])


def webhook_from_row(row: Sequence[Any]) -> Webhook:
    values = dict(zip(WEBHOOK_FIELDS, row, strict=True))
    if values["event_types"] is not None:
        values["event_types"] = frozenset(orjson.loads(values["event_types"]))
    return Webhook(**values)


def callback_row(callback: Callback) -> tuple[str, str | None]:
    types = callback.event_types
    return callback.url, orjson.dumps(sorted(types)).decode() if types is not None else None


def callback_from_row(url: str, event_types: str | None) -> Callback:
    return Callback(url, frozenset(orjson.loads(event_types)) if event_types else None)


def delivery_from_row(row: Sequence[Any]) -> Delivery:
    return Delivery(*row)


def deliveries_for(
    events: Iterable[Event],
    webhooks: Sequence[Webhook],
    callbacks: Mapping[tuple[str, str], Callback],
    now: str,
) -> list[NewDelivery]:
    """One delivery per event and endpoint that wants it, its body made now (the event log
    may drop a progress event before every endpoint has it; a delivery keeps its own)."""
    made = []
    for event in events:
        endpoints = [(w.id, w.url) for w in webhooks if w.scope.matches(event)]
        callback = callbacks.get((event.subscription_id, event.operation_key))
        if callback is not None and callback.wants(event):
            endpoints.append((CALLBACK, callback.url))
        if not endpoints:
            continue
        payload = orjson.dumps(
            {"type": f"operation.{event.type}", "timestamp": event.time, "data": event.body()}
        ).decode()
        for webhook_id, url in endpoints:
            made.append(
                NewDelivery(
                    message_id(event, webhook_id),
                    webhook_id,
                    event.subscription_id,
                    event.operation_key,
                    str(event.position),
                    event.type,
                    url,
                    payload,
                    PENDING,
                    0,
                    now,
                    now,
                )
            )
    return made

"""The event log's rows, shared by every store: what a change writes, how a row reads back,
and an :class:`~opstatus.events.EventScope` as SQL.

A store calls :func:`change_event` (or :func:`removal_event`, :func:`deletion_event`) inside
the transaction that makes the change and inserts what it returns; the rules of which change
is which event are :mod:`opstatus.events`'.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson

from ..events import (
    DELETED,
    EXPIRED,
    Event,
    EventScope,
    Position,
    change_type,
    document,
)
from ..lifecycle import DAY, Tombstone, add_seconds
from ..models import Operation, clip_json
from .query_sql import Parameters

#: The columns a read of the log returns after the position's own, in :class:`Event` order.
READ_COLUMNS = (
    "subscription_id, operation_key, sequence, type, namespace, location, status, created_at, data"
)
#: How long the event that says an operation was deleted is kept (its readers' grace).
DELETED_KEPT_SECONDS = DAY


class NewEvent(NamedTuple):
    """An event to insert; the store gives it its sequence and position."""

    subscription_id: str
    operation_key: str
    type: str
    namespace: str
    location: str
    status: str
    time: str
    keep_until: str | None
    data: str


def _new(kind: str, op: Operation, time: str, keep_until: str | None, **extra: Any) -> NewEvent:
    data = document(op)
    data.update(extra)
    try:
        text = orjson.dumps(data).decode()
    except TypeError:  # a value stored before free-form JSON was bounded: shown cut, as reads do
        text = orjson.dumps(clip_json(data)).decode()
    return NewEvent(
        op.subscription_id,
        op.key,
        kind,
        op.namespace,
        op.location,
        op.status,
        time,
        keep_until,
        text,
    )


def change_event(before: Operation | None, after: Operation) -> NewEvent | None:
    """The event of a create (``before`` None) or an update; None when nothing visible changed."""
    kind = change_type(before, after)
    if kind is None:
        return None
    return _new(kind, after, after.updated_at or after.created_at, None)


def removal_event(op: Operation, tombstone: Tombstone) -> NewEvent:
    """Retention removed the operation (or a purge did): kept as long as its tombstone."""
    return _new(
        EXPIRED,
        op,
        tombstone.expired_at,
        tombstone.forget_at,
        expiredAt=tombstone.expired_at,
        reason=tombstone.reason,
    )


def deletion_event(op: Operation, now: str) -> NewEvent:
    return _new(DELETED, op, now, add_seconds(now, DELETED_KEPT_SECONDS), deletedAt=now)


def event_from_row(position: Position, row: Sequence[Any]) -> Event:
    """From a row of READ_COLUMNS (the columns after the position's)."""
    sub, key, sequence, kind, namespace, location, status, time, data = row
    return Event(
        position,
        sub,
        key,
        int(sequence),
        kind,
        namespace,
        location,
        status,
        time,
        orjson.loads(data),
    )


def scope_sql(scope: EventScope | None, p: Parameters) -> str:
    """`` AND ...`` conditions that :meth:`EventScope.matches` states, or ``""``."""
    if scope is None:
        return ""
    parts = []
    if scope.subscription_id is not None:
        parts.append(f"subscription_id = {p(scope.subscription_id)}")
    if scope.operation_key is not None:
        parts.append(f"operation_key = {p(scope.operation_key)}")
    if scope.namespace is not None:
        parts.append(f"lower(namespace) = {p(scope.namespace.lower())}")
    if scope.location is not None:
        parts.append(f"location = {p(scope.location)}")
    if scope.statuses is not None:
        parts.append(f"status IN ({p.many(sorted(scope.statuses))})")
    if scope.types is not None:
        parts.append(f"type IN ({p.many(sorted(scope.types))})")
    return "".join(f" AND {part}" for part in parts)

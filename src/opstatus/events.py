"""The event log's vocabulary: which change of an operation is which event, and what an
event carries. Pure: no I/O.

Every change of an operation that a reader can see is an event, written by the store in the
transaction that makes the change (an outbox: a committed change always has its event, a
rolled-back one never does). Events have two numbers:

- ``sequence``: per operation, 1, 2, 3, ... in the order of its changes;
- ``position``: store-wide, the order in which changes committed. SSE streams use it as the
  event id (``Last-Event-ID`` resumes after it), the webhook dispatcher as its cursor.

A position is a pair: on SQLite and in memory ``(0, n)`` with ``n`` the log's own counter
(one writer at a time, so counter order is commit order); on PostgreSQL ``(transaction id,
n)``, because there counters are handed out before commit and a reader must not pass an
event whose transaction is still open (``stores/postgresql_events.py``). Its text is ``n``
or ``t-n``.

Kept: a bounded number of ``progress`` events per operation (the newest); every other event
of an operation until the operation itself is removed; the ``expired`` and ``deleted`` events
that say it was removed for as long as the operation still reads as expired.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NamedTuple

from .errors import InvalidInput
from .models import CANCELED, FAILED, SUCCEEDED, Operation

CREATED = "created"
PROGRESS = "progress"
STATUS = "status"
ERROR = "error"
CANCELED_EVENT = "canceled"
CANCEL_REQUESTED = "cancelRequested"
EXPIRED = "expired"
DELETED = "deleted"
EVENT_TYPES = (CREATED, PROGRESS, STATUS, ERROR, CANCELED_EVENT, CANCEL_REQUESTED, EXPIRED, DELETED)
#: Events after which an operation changes no more (its stream ends).
FINAL_TYPES = frozenset({EXPIRED, DELETED})
#: Progress events kept per operation unless configured otherwise.
DEFAULT_PROGRESS_KEPT = 100

_POSITION = re.compile(r"(?:(\d{1,19})-)?(\d{1,19})\Z")


class Position(NamedTuple):
    """Where an event sits in the log, in commit order (see the module docstring)."""

    group: int
    cursor: int

    def __str__(self) -> str:
        return f"{self.group}-{self.cursor}" if self.group else str(self.cursor)


START = Position(0, 0)


def parse_position(text: str, target: str = "Last-Event-ID") -> Position:
    """A position from its text (``n`` or ``t-n``); InvalidInput for anything else."""
    match = _POSITION.match(text.strip())
    if not match:
        raise InvalidInput(
            f"'{target}' must be an event id this server sent (such as '42' or '812-42').",
            target=target,
        )
    return Position(int(match[1] or 0), int(match[2]))


@dataclass(frozen=True, slots=True)
class Event:
    """One change of one operation, as the log keeps it."""

    position: Position
    subscription_id: str
    operation_key: str
    sequence: int
    type: str
    namespace: str
    location: str
    status: str
    time: str
    #: The operation as it stood after the change (:func:`document`).
    data: dict[str, Any]

    @property
    def terminal(self) -> bool:
        """Whether the operation changes no more after this event."""
        return self.type in FINAL_TYPES or self.data.get("status") in (
            SUCCEEDED,
            FAILED,
            CANCELED,
        )

    def body(self) -> dict[str, Any]:
        """What SSE and webhooks send: the event and the operation after it."""
        return {
            "id": str(self.position),
            "type": f"operation.{self.type}",
            "sequence": self.sequence,
            "time": self.time,
            "subscriptionId": self.subscription_id,
            "provider": self.namespace,
            "location": self.location,
            "operation": self.data,
        }


def change_type(before: Operation | None, after: Operation) -> str | None:
    """The event a change from ``before`` to ``after`` is, or None when no reader could see
    a difference (a lease renewal, a replay)."""
    if before is None:
        return CREATED
    if after.status != before.status:
        if after.status == FAILED:
            return ERROR
        if after.status == CANCELED:
            return CANCELED_EVENT
        return STATUS
    if after.cancel_requested_at != before.cancel_requested_at:
        return CANCEL_REQUESTED
    if (after.percent_complete, after.properties, after.error, after.end_time) != (
        before.percent_complete,
        before.properties,
        before.error,
        before.end_time,
    ):
        return PROGRESS
    return None


def document(op: Operation) -> dict[str, Any]:
    """The operation as an event shows it: the ARM status document's flat shape and the
    fields a watcher wants (cancel requests), absent values left out."""
    body: dict[str, Any] = {
        "id": (
            f"/subscriptions/{op.subscription_id}/providers/{op.namespace}/locations/"
            f"{op.location}/operationsStatus/{op.operation_id}"
        ),
        "name": op.operation_id,
        "status": op.status,
    }
    values = {
        "startTime": op.start_time,
        "endTime": op.end_time,
        "percentComplete": op.percent_complete,
        "properties": op.properties if op.status == SUCCEEDED else None,
        "error": op.error,
        "cancelRequestedAt": op.cancel_requested_at,
    }
    body.update((key, value) for key, value in values.items() if value is not None)
    return body


@dataclass(frozen=True, slots=True)
class EventScope:
    """Which events a reader wants: one subscription, maybe one provider, location or
    operation, maybe only some statuses or event types. Provider names compare without case."""

    subscription_id: str | None = None
    namespace: str | None = None
    location: str | None = None
    operation_key: str | None = None
    statuses: frozenset[str] | None = None
    types: frozenset[str] | None = None

    def matches(self, event: Event) -> bool:
        return (
            (self.subscription_id is None or event.subscription_id == self.subscription_id)
            and (self.operation_key is None or event.operation_key == self.operation_key)
            and (self.namespace is None or event.namespace.lower() == self.namespace.lower())
            and (self.location is None or event.location == self.location)
            and (self.statuses is None or event.status in self.statuses)
            and (self.types is None or event.type in self.types)
        )


def parse_types(values: object, target: str) -> frozenset[str] | None:
    """A list of event type names (``created``, or ``operation.created``); None for all."""
    if values is None:
        return None
    if not isinstance(values, list) or not values or len(values) > len(EVENT_TYPES):
        raise InvalidInput(f"'{target}' must be a non-empty list of event types.", target=target)
    types = set()
    for value in values:
        name = value.removeprefix("operation.") if isinstance(value, str) else None
        if name not in EVENT_TYPES:
            raise InvalidInput(f"'{target}' may name only {', '.join(EVENT_TYPES)}.", target=target)
        types.add(name)
    return frozenset(types)

"""The in-memory store's event log (a mixin of :class:`MemoryStore`): the same rules as the
SQL stores' (``event_rows``), over a list in position order."""

from __future__ import annotations

import bisect
import threading

import orjson

from ..events import DEFAULT_PROGRESS_KEPT, PROGRESS, Event, EventScope, Position
from .event_rows import NewEvent


class MemoryEventLog:
    progress_events_kept = DEFAULT_PROGRESS_KEPT
    _lock: threading.Lock

    def __init__(self) -> None:
        self._events: list[Event] = []
        self._cursor = 0
        self._keep_until: dict[int, str] = {}

    def _record(self, event: NewEvent | None, last: bool = False) -> None:
        """Under the store's lock: append ``event``; ``last``: forget its operation's earlier
        events (it was removed)."""
        if event is None:
            return
        key = (event.subscription_id, event.operation_key)
        mine = [e for e in self._events if (e.subscription_id, e.operation_key) == key]
        self._cursor += 1
        self._events.append(
            Event(
                Position(0, self._cursor),
                *key,
                (mine[-1].sequence if mine else 0) + 1,
                event.type,
                event.namespace,
                event.location,
                event.status,
                event.time,
                orjson.loads(event.data),
            )
        )
        if event.keep_until is not None:
            self._keep_until[self._cursor] = event.keep_until
        if last:
            self._drop({e.position.cursor for e in mine})
        elif event.type == PROGRESS:
            progress = [e.position.cursor for e in mine if e.type == PROGRESS]
            kept = max(self.progress_events_kept - 1, 0)
            self._drop(set(progress[: max(len(progress) - kept, 0)]))

    def _forget_operation(self, subscription_id: str, operation_key: str) -> None:
        key = (subscription_id, operation_key)
        self._drop(
            {e.position.cursor for e in self._events if (e.subscription_id, e.operation_key) == key}
        )

    def _forget_kept(self, before: str) -> None:
        self._drop({cursor for cursor, until in self._keep_until.items() if until <= before})

    def _drop(self, cursors: set[int]) -> None:
        if cursors:
            self._events = [e for e in self._events if e.position.cursor not in cursors]
            for cursor in cursors:
                self._keep_until.pop(cursor, None)

    async def events(
        self, after: Position, limit: int, scope: EventScope | None = None
    ) -> list[Event]:
        with self._lock:
            start = bisect.bisect_right([e.position.cursor for e in self._events], after.cursor)
            found = []
            for event in self._events[start:]:
                if scope is None or scope.matches(event):
                    found.append(event)
                    if len(found) >= limit:
                        break
            return found

    async def last_position(self) -> Position:
        with self._lock:
            return self._events[-1].position if self._events else Position(0, self._cursor)

"""In-memory store: for fast tests and for embedding opstatus where nothing must persist."""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from collections.abc import Collection, Sequence

from ..errors import OperationNotFound
from ..lifecycle import Tombstone
from ..models import Operation, OperationStatus, now_text
from ..queries import NEWEST_FIRST, OperationQuery, Tally
from ..webhooks import Callback
from .base import Change, DeleteCheck, Key, Removal
from .event_rows import change_event, deletion_event, removal_event
from .memory_events import MemoryEventLog
from .memory_webhooks import MemoryWebhooks
from .notifier import Notifier
from .roles import MemoryRoleAssignments


class MemoryStore(MemoryRoleAssignments, MemoryEventLog, MemoryWebhooks):
    def __init__(self) -> None:
        MemoryRoleAssignments.__init__(self)
        MemoryEventLog.__init__(self)
        MemoryWebhooks.__init__(self)
        self._operations: dict[tuple[str, str], Operation] = {}
        self._tombstones: dict[tuple[str, str], Tombstone] = {}
        #: Operations per (subscription, namespace, location, status), kept on every write.
        self._tallies: Counter[tuple[str, str, str, str]] = Counter()
        # The app is single-threaded asyncio, but a lock keeps the store honest if a caller
        # shares it between threads (tests do).
        self._lock = threading.Lock()
        # Every write goes through this object, so every waiter hears of it: no polling.
        self.notifier = Notifier()

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def ping(self) -> None:
        pass

    async def create(
        self, operation: Operation, callback: Callback | None = None
    ) -> tuple[Operation, bool]:
        key = (operation.subscription_id, operation.key)
        with self._lock:
            existing = self._operations.get(key)
            if existing is not None:
                return existing, False
            self._operations[key] = operation
            self._tallies[_group(operation)] += 1
            self._tombstones.pop(key, None)
            self._forget_operation(*key)
            self._put_callback(key, callback)
            self._record(change_event(None, operation))
        self.notifier.notify(*key)
        return operation, True

    async def get(self, subscription_id: str, operation_key: str) -> Operation | None:
        return self._operations.get((subscription_id, operation_key))

    def statuses_now(self, keys: Sequence[Key]) -> dict[Key, OperationStatus]:
        operations = self._operations
        found = ((key, operations.get(key)) for key in keys)
        return {key: OperationStatus.of(op) for key, op in found if op is not None}

    async def update(self, subscription_id: str, operation_key: str, change: Change) -> Operation:
        key = (subscription_id, operation_key)
        with self._lock:
            current = self._operations.get(key)
            if current is None:
                raise OperationNotFound(f"The operation '{operation_key}' was not found.")
            changed = change(current)
            if changed is None:
                return current
            self._operations[key] = changed
            self._tallies[_group(current)] -= 1
            self._tallies[_group(changed)] += 1
            self._record(change_event(current, changed))
        self.notifier.notify(*key)
        return changed

    async def delete(self, subscription_id: str, operation_key: str, check: DeleteCheck) -> bool:
        key = (subscription_id, operation_key)
        with self._lock:
            current = self._operations.get(key)
            if current is None:
                return False
            check(current)
            del self._operations[key]
            self._tallies[_group(current)] -= 1
            self._record(deletion_event(current, now_text()), last=True)
        self.notifier.notify(*key)
        return True

    async def find(self, query: OperationQuery) -> list[Operation]:
        with self._lock:
            operations = list(self._operations.values())
        return query.select(operations)

    async def counts(self, query: OperationQuery) -> dict[str, int]:
        with self._lock:
            operations = list(self._operations.values())
        unbounded = dataclasses.replace(query, after=None, order=NEWEST_FIRST)
        return dict(Counter(op.status for op in operations if unbounded.matches(op)))

    async def tallies(
        self, subscription_ids: Collection[str] | None, live_at: str | None = None
    ) -> list[Tally]:
        wanted = None if subscription_ids is None else frozenset(subscription_ids)
        with self._lock:
            counts = Counter(
                {g: n for g, n in self._tallies.items() if wanted is None or g[0] in wanted}
            )
            if live_at is not None:  # a scan here; the SQL stores read their expiry index
                for op in self._operations.values():
                    expired = op.expires_at is not None and op.expires_at <= live_at
                    if expired and (wanted is None or op.subscription_id in wanted):
                        counts[_group(op)] -= 1
        return [Tally(*group, n) for group, n in sorted(counts.items()) if n]

    async def remove(self, keys: Sequence[tuple[str, str]], decide: Removal) -> list[Tombstone]:
        with self._lock:
            decided: list[tuple[tuple[str, str], Tombstone]] = []
            for key in dict.fromkeys(keys):
                current = self._operations.get(key)
                if current is None:
                    continue
                tombstone = decide(current)
                if tombstone is not None:
                    decided.append((key, tombstone))
            for key, tombstone in decided:
                removed = self._operations.pop(key)
                self._tallies[_group(removed)] -= 1
                self._record(removal_event(removed, tombstone), last=True)
                self._tombstones[key] = tombstone
            return [tombstone for _, tombstone in decided]

    async def get_tombstone(self, subscription_id: str, operation_key: str) -> Tombstone | None:
        return self._tombstones.get((subscription_id, operation_key))

    async def forget_tombstones(self, before: str, limit: int) -> int:
        with self._lock:
            self._forget_kept(before)
            due = [k for k, t in self._tombstones.items() if t.forget_at <= before][:limit]
            for key in due:
                del self._tombstones[key]
            return len(due)


def _group(op: Operation) -> tuple[str, str, str, str]:
    return (op.subscription_id, op.namespace, op.location, op.status)

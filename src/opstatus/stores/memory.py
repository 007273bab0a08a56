"""In-memory store: for fast tests and for embedding opstatus where nothing must persist."""

from __future__ import annotations

import threading
from collections import Counter

from ..errors import OperationNotFound
from ..models import Operation
from .base import Change, DeleteCheck


class MemoryStore:
    def __init__(self) -> None:
        self._operations: dict[tuple[str, str], Operation] = {}
        # The app is single-threaded asyncio, but a lock keeps the store honest if a caller
        # shares it between threads (tests do).
        self._lock = threading.Lock()

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def ping(self) -> None:
        pass

    async def create(self, operation: Operation) -> tuple[Operation, bool]:
        key = (operation.subscription_id, operation.key)
        with self._lock:
            existing = self._operations.get(key)
            if existing is not None:
                return existing, False
            self._operations[key] = operation
            return operation, True

    async def get(self, subscription_id: str, operation_key: str) -> Operation | None:
        return self._operations.get((subscription_id, operation_key))

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
            return changed

    async def count_by_status(self) -> dict[str, int]:
        with self._lock:
            return dict(Counter(op.status for op in self._operations.values()))

    async def delete(self, subscription_id: str, operation_key: str, check: DeleteCheck) -> bool:
        key = (subscription_id, operation_key)
        with self._lock:
            current = self._operations.get(key)
            if current is None:
                return False
            check(current)
            del self._operations[key]
            return True

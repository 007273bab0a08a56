"""The store interface: the one seam between the domain and any database.

The seam is at the domain level (create, get, update, delete; find and counts; remove,
get_tombstone and forget_tombstones for retention), not at the SQL level, so that
the in-memory store cannot drift from the real ones: every backend runs the same contract
suite (``tests/stores/test_contract.py``). Rules live in :mod:`opstatus.models`; a store only
promises to apply them atomically.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from ..lifecycle import Tombstone
from ..models import Operation
from ..queries import OperationQuery
from .roles import RoleAssignmentStore

#: Given the current operation, returns the changed one, or None when nothing changes.
#: May raise a domain error, which aborts the change and reaches the caller unchanged.
Change = Callable[[Operation], Operation | None]
#: Given the current operation, raises a domain error if it must not be deleted.
DeleteCheck = Callable[[Operation], None]
#: Given the current operation, returns the tombstone to leave in its place when it must be
#: removed, or None to keep it. May raise a domain error, which aborts the whole call: nothing
#: is removed and the error reaches the caller unchanged.
Removal = Callable[[Operation], Tombstone | None]


class Store(RoleAssignmentStore, Protocol):
    async def open(self) -> None:
        """Connect and create the schema if needed."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise StoreError unless the store answers."""

    async def create(self, operation: Operation) -> tuple[Operation, bool]:
        """Insert unless an operation with the same key exists.

        Returns ``(stored, created)``: the new operation and True, or the existing one and
        False. Atomic: of two racing creates, exactly one is told it created. Creating removes
        any tombstone left under the same key, in the same transaction.
        """

    async def get(self, subscription_id: str, operation_key: str) -> Operation | None: ...

    async def update(self, subscription_id: str, operation_key: str, change: Change) -> Operation:
        """Apply ``change`` to the current operation atomically, as if alone.

        Raises OperationNotFound when there is none. Returns the stored result (the current
        operation when ``change`` returned None). Durable on return.
        """

    async def delete(self, subscription_id: str, operation_key: str, check: DeleteCheck) -> bool:
        """Delete after ``check`` passes; False when there was nothing to delete."""

    async def find(self, query: OperationQuery) -> list[Operation]:
        """Up to ``query.limit`` operations for which ``query.matches`` is true.

        When ``query.ordered``, newest first by :class:`~opstatus.queries.Position`
        (descending), starting strictly after ``query.after``: exactly
        ``query.select(all operations)``. Otherwise in any order. Reads committed data only.
        """

    async def counts(self, query: OperationQuery) -> dict[str, int]:
        """How many operations match ``query``, per status (absent statuses are left out).

        ``query.after``, ``limit`` and ``ordered`` are ignored.
        """

    async def remove(self, keys: Sequence[tuple[str, str]], decide: Removal) -> list[Tombstone]:
        """For each ``(subscription_id, operation_key)``: call ``decide`` on the current
        operation and, if it returns a tombstone, delete the operation and store the tombstone
        (replacing any under that key). Keys without an operation are skipped.

        Atomic: one transaction for the batch, in which ``decide`` sees each operation as it
        is. Returns the tombstones stored, in the order of ``keys``. Durable on return.
        """

    async def get_tombstone(self, subscription_id: str, operation_key: str) -> Tombstone | None:
        """The tombstone under this key, if any (whether or not ``forget_at`` has passed)."""

    async def forget_tombstones(self, before: str, limit: int) -> int:
        """Delete up to ``limit`` tombstones whose ``forget_at <= before``; returns how many."""

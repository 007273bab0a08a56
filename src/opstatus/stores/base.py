"""The store interface: the one seam between the domain and any database.

The seam is at the domain level (create, get, update, delete; find and counts; remove,
get_tombstone and forget_tombstones for retention), not at the SQL level, so that
the in-memory store cannot drift from the real ones: every backend runs the same contract
suite (``tests/stores/test_contract.py``). Rules live in :mod:`opstatus.models`; a store only
promises to apply them atomically, and to tell its :class:`Notifier` when an operation
changes so that waiting readers wake.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Protocol, runtime_checkable

from ..events import Event, EventScope, Position
from ..lifecycle import Tombstone
from ..models import Operation, OperationStatus
from ..queries import OperationQuery, Tally
from ..webhooks import Callback, Delivery, Webhook
from .migrations import Plan
from .notifier import Notifier
from .roles import RoleAssignmentStore
from .webhook_rows import Finished

#: Where an operation is stored: ``(subscription_id, operation_key)``.
Key = tuple[str, str]
#: Given the current operation, returns the changed one, or None when nothing changes.
#: May raise a domain error, which aborts the change and reaches the caller unchanged.
Change = Callable[[Operation], Operation | None]
#: Given the current operation, raises a domain error if it must not be deleted.
DeleteCheck = Callable[[Operation], None]
#: Given the current operation, returns the tombstone to leave in its place when it must be
#: removed, or None to keep it. May raise a domain error, which aborts the whole call: nothing
#: is removed and the error reaches the caller unchanged.
Removal = Callable[[Operation], Tombstone | None]


class EventLog(Protocol):
    """Every change of an operation as an event (:mod:`opstatus.events`), written in the
    transaction of the change: create, update, delete and remove each record theirs, so a
    committed change always has its event and a rolled-back one never does."""

    #: Progress events kept per operation (the newest); other events are kept until the
    #: operation is removed, the removal's own event as long as its tombstone.
    progress_events_kept: int

    async def events(
        self, after: Position, limit: int, scope: EventScope | None = None
    ) -> list[Event]:
        """Up to ``limit`` events after ``after`` that ``scope`` matches, in position order.

        Committed events only, and never one that another event committed later could sort
        before: a reader that resumes after the last position it was given misses nothing.
        """

    async def last_position(self) -> Position:
        """The position of the newest event :meth:`events` could return now."""


class WebhookStore(Protocol):
    """Webhook subscriptions, operations' callbacks, and the outbox of deliveries
    (:mod:`opstatus.webhooks`). Operations' callbacks are written by :meth:`Store.create`."""

    async def create_webhook(self, webhook: Webhook) -> None: ...

    async def list_webhooks(self, subscription_id: str) -> list[Webhook]: ...

    async def get_webhook(self, subscription_id: str, webhook_id: str) -> Webhook | None: ...

    async def replace_webhook(self, webhook: Webhook) -> bool:
        """Store a changed webhook (a rotated secret); False when it is gone."""

    async def delete_webhook(self, subscription_id: str, webhook_id: str) -> bool:
        """Delete it and its deliveries, pending or past; False when there was none."""

    async def fan_out(self, limit: int, now: str) -> int:
        """Turn up to ``limit`` events after the dispatch position into deliveries for every
        endpoint that wants them, and move the position past them, atomically (one
        fan-out at a time, also between instances). Returns how many events it took."""

    async def claim_deliveries(self, now: str, until: str, limit: int) -> list[Delivery]:
        """Up to ``limit`` pending deliveries due at ``now``, each the oldest pending one of
        its endpoint and operation, leased until ``until`` (no other claim takes them before).
        """

    async def finish_deliveries(self, finished: Sequence[Finished]) -> None:
        """Record attempts' outcomes."""

    async def list_deliveries(
        self,
        subscription_id: str,
        operation_key: str | None = None,
        webhook_id: str | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        """The newest deliveries first."""

    async def redeliver(
        self, subscription_id: str, webhook_id: str, delivery_id: int, now: str
    ) -> bool:
        """Send a delivery of this webhook subscription again: pending from ``now``, with a
        fresh retry budget."""

    async def forget_deliveries(self, before: str, limit: int) -> int:
        """Drop up to ``limit`` finished deliveries made before ``before``, and callbacks
        whose operation has left no events."""


class Store(RoleAssignmentStore, EventLog, WebhookStore, Protocol):
    #: Wakes readers waiting on an operation after it changed (in this process or, for a
    #: shared store, in any); says how often they must read again anyway.
    notifier: Notifier

    async def open(self) -> None:
        """Connect, and check the schema (SQLite also creates or migrates it)."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise StoreError unless the store answers."""

    async def create(
        self, operation: Operation, callback: Callback | None = None
    ) -> tuple[Operation, bool]:
        """Insert unless an operation with the same key exists; with it, its callback.

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

        ``query.after``, ``limit``, ``ordered`` and ``order`` are ignored.
        """

    async def tallies(
        self, subscription_ids: Collection[str] | None, live_at: str | None = None
    ) -> list[Tally]:
        """How many operations each (subscription, namespace, location, status) group holds,
        in the subscriptions given (None: every one), sorted; groups of none are left out.

        Counted on write, not when asked: the cost is the number of groups, whatever the
        number of operations. What is counted is the operations stored, which includes those
        whose retention is over but that the sweep has not removed yet; with ``live_at``,
        those over at that moment are taken off (read through the expiry index, so that
        costs as many as there are), which makes each group's count what :meth:`counts`
        answers for ``OperationQuery(live_at=live_at)`` and the group.
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


@runtime_checkable
class ImmediateReads(Protocol):
    """A store whose reads never wait on I/O the event loop could overlap (SQLite, memory):
    it reads synchronously, which lets the server answer the status GETs that arrived together
    in its protocol, without scheduling a task for each (``server/fast_lane.py``)."""

    def statuses_now(self, keys: Sequence[Key]) -> dict[Key, OperationStatus]:
        """:meth:`BatchReads.statuses`, answered synchronously, in one read."""


@runtime_checkable
class BatchReads(Protocol):
    """A store whose reads wait on a round trip (PostgreSQL): it reads the statuses of many
    operations in one, which lets the server answer the status GETs that arrived in one turn
    of the event loop with one query (``server/fast_lane.py``)."""

    async def statuses(self, keys: Sequence[Key]) -> dict[Key, OperationStatus]:
        """What :meth:`Store.get` would return for each ``(subscription_id,
        operation_key)``, as a status read shows it; keys without an operation are left
        out."""


@runtime_checkable
class Migratable(Protocol):
    """A store whose data outlives the process, in a versioned schema (``migrations.py``).

    Both methods work on a store that is not open, with a connection of their own.
    """

    #: Which ``stores/sql/<dialect>/`` files apply.
    dialect: str
    #: The store's URL, as ``open_store`` takes it.
    url: str
    #: True when :meth:`Store.open` migrates by itself (the embedded SQLite store); False
    #: when the schema belongs to ``opstatus migrate`` and opening refuses an old one.
    migrates_on_open: bool

    def describe(self) -> str:
        """Where the data lives, for messages (no password)."""

    async def schema_version(self) -> int | None:
        """The schema version (0: no opstatus schema); None when the database does not exist
        yet. Raises StoreError when the store cannot be reached."""

    async def migrate(self) -> Plan:
        """Bring the schema to the latest version; returns what it applied."""

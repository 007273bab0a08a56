"""Which operations a list, a count or a sweep is about, and in what order. Pure.

:meth:`OperationQuery.matches` is the definition every store implements: the in-memory store
runs it as it is, SQL stores translate it, and the contract suite checks that they agree.

Order: by default newest first, by :class:`Position` (``created_at``, then subscription and
key to break ties), which is unique and never changes for an operation. A list may instead be
ordered by ``start_time`` or ``end_time`` (:class:`Order`), either way, with the same tie
breakers; it then holds only operations that have that time (running operations have no end
time), since an order with no place for them could not be paged by keyset. Paging is by
keyset: a page starts strictly after the last position of the previous one, so an operation
is never returned twice and none is skipped, whatever is created or deleted meanwhile (an
operation whose sort time changes between pages may be seen twice or not at all, as with any
keyset order on a changing value); in the default order, operations created after the first
page was read sort before it and are not returned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from .models import TERMINAL_STATUSES, Operation

#: The fields a list can be ordered by; the first is the default order.
SORT_FIELDS = ("created_at", "start_time", "end_time")


@dataclass(frozen=True, slots=True)
class Order:
    """What a list is ordered by (one of :data:`SORT_FIELDS`), and which way."""

    field: str = "created_at"
    descending: bool = True

    def __post_init__(self) -> None:
        if self.field not in SORT_FIELDS:
            raise ValueError(f"cannot order by {self.field!r}")

    def value(self, op: Operation) -> str | None:
        value: str | None = getattr(op, self.field)
        return value


NEWEST_FIRST = Order()


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """Where an operation is in an :class:`Order`: the value it is ordered by, then its
    subscription and key (unique, so the order is total)."""

    sort_key: str
    subscription_id: str
    operation_key: str


def position(op: Operation, order: Order = NEWEST_FIRST) -> Position:
    return Position(order.value(op) or "", op.subscription_id, op.key)


@dataclass(frozen=True, slots=True)
class OperationFilter:
    """What a caller filters a list on. Statuses compare case-insensitively (a producer's
    own words keep the case it gave them); time bounds: ``after`` inclusive, ``before`` not.
    ``cancel_requested``: True, only operations someone asked to cancel; False, only the
    others (a cancel watcher asks for True instead of reading every running operation)."""

    statuses: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()
    started_after: str | None = None
    started_before: str | None = None
    ended_after: str | None = None
    ended_before: str | None = None
    cancel_requested: bool | None = None
    #: Operations whose key (the id, lower-cased) starts with this, lower-case itself.
    id_prefix: str | None = None

    def matches(self, op: Operation) -> bool:
        return (
            (self.id_prefix is None or op.key.startswith(self.id_prefix))
            and (not self.statuses or op.status.lower() in {s.lower() for s in self.statuses})
            and (not self.kinds or op.kind in self.kinds)
            and (
                self.cancel_requested is None
                or (op.cancel_requested_at is not None) == self.cancel_requested
            )
            and _within(op.start_time, self.started_after, self.started_before)
            and _within(op.end_time, self.ended_after, self.ended_before)
        )


def _within(value: str | None, low: str | None, high: str | None) -> bool:
    if low is None and high is None:
        return True
    if value is None:
        return False
    return (low is None or value >= low) and (high is None or value < high)


@dataclass(frozen=True, slots=True)
class OperationQuery:
    """A selection of operations. Every condition left as None/empty selects everything."""

    subscription_id: str | None = None
    #: Compared case-insensitively.
    namespace: str | None = None
    location: str | None = None
    filter: OperationFilter = field(default_factory=OperationFilter)
    #: True: terminal operations only; False: running ones only.
    terminal: bool | None = None
    #: Leave out operations whose retention is over at this moment (``expires_at <= live_at``).
    live_at: str | None = None
    #: Only operations whose retention is over at this moment.
    expired_at: str | None = None
    #: Only running operations whose lease expired at or before this moment.
    lapsed_at: str | None = None
    #: Only operations after this position in the order (the previous page's last).
    after: Position | None = None
    #: The order (ignored when not ``ordered``); other than the default, it leaves out the
    #: operations without a value to order by.
    order: Order = NEWEST_FIRST
    limit: int = 100
    #: False: any order will do (sweeps), and ``after`` must be None.
    ordered: bool = True

    def matches(self, op: Operation) -> bool:
        terminal = op.status in TERMINAL_STATUSES
        return (
            (self.subscription_id is None or op.subscription_id == self.subscription_id)
            and (self.namespace is None or op.namespace.lower() == self.namespace.lower())
            and (self.location is None or op.location == self.location)
            and self.filter.matches(op)
            and (self.terminal is None or terminal == self.terminal)
            and (self.live_at is None or op.expires_at is None or op.expires_at > self.live_at)
            and (
                self.expired_at is None
                or (op.expires_at is not None and op.expires_at <= self.expired_at)
            )
            and (
                self.lapsed_at is None
                or (
                    not terminal
                    and op.lease_expires_at is not None
                    and op.lease_expires_at <= self.lapsed_at
                )
            )
            and self._in_order(op)
        )

    def _in_order(self, op: Operation) -> bool:
        order = self.order
        if self.ordered and order != NEWEST_FIRST and order.value(op) is None:
            return False
        if self.after is None:
            return True
        here = position(op, order)
        return here < self.after if order.descending else here > self.after

    def select(self, operations: list[Operation]) -> list[Operation]:
        """What a store must return for this query, given all its operations."""
        matching = [op for op in operations if self.matches(op)]
        if self.ordered:
            order = self.order
            matching.sort(key=lambda op: position(op, order), reverse=order.descending)
        return matching[: self.limit]


@dataclass(frozen=True, slots=True)
class Page:
    operations: list[Operation]
    #: Where the next page starts, or None when this one is the last.
    next: Position | None


class Tally(NamedTuple):
    """How many operations one group holds: a subscription's operations of one provider
    (``namespace`` as its producers spelled it), location and status."""

    subscription_id: str
    namespace: str
    location: str
    status: str
    operations: int

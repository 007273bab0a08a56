"""The rules for creating, reading, updating, canceling, listing and retiring operations.

The service knows no HTTP and no SQL. It resolves an operation by its full reference
(subscription, namespace, location, id) so that an operation can only be reached through
the URL it was created under: anything else is indistinguishable from an id that never
existed. The classic form addresses an operation by subscription and request id alone (the
request id is the operation id), so its references leave namespace and location open.

Every answer is true at the service's clock: an operation whose producer's lease ran out of
grace is Failed (``ProducerLost``) the moment anyone looks, and one whose retention is over
reads as expired, whether or not the background sweeps (:meth:`OperationService.maintain`)
have caught up yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from .errors import (
    OperationExists,
    OperationExpired,
    OperationNotFound,
    PreconditionFailed,
)
from .lifecycle import Clock, LifecyclePolicy, Tombstone, expired_error
from .models import (
    Operation,
    OperationDraft,
    OperationStatus,
    OperationUpdate,
    apply_update,
    now_text,
    operation_key,
)
from .queries import OperationFilter, OperationQuery, Page, Tally, position
from .stores.base import BatchReads, ImmediateReads, Key, Store
from .webhooks import Callback

#: How many operations one step of a sweep or a purge handles in one go.
DEFAULT_BATCH = 100


class OperationRef(NamedTuple):
    """Where an operation lives: validated and normalised by the caller.

    ``namespace`` and ``location`` are ``None`` in a reference by request id: the store keys
    operations by subscription and id, so those two are attributes, not part of the address.
    A NamedTuple rather than a frozen dataclass: every request makes one, and a tuple is
    built in a third of the time.
    """

    subscription_id: str
    namespace: str | None
    location: str | None
    operation_id: str

    @classmethod
    def by_request_id(cls, subscription_id: str, request_id: str) -> OperationRef:
        return cls(subscription_id, None, None, request_id)

    @property
    def key(self) -> str:
        return operation_key(self.operation_id)

    def matches(self, op: Operation | OperationStatus | Tombstone) -> bool:
        if self.namespace is None or self.location is None:
            return True
        return op.namespace.lower() == self.namespace.lower() and op.location == self.location


@dataclass(frozen=True, slots=True)
class MaintenanceReport:
    """What one step of the background sweeps did."""

    lapsed: int = 0
    expired: int = 0
    forgotten: int = 0

    def full(self, limit: int) -> bool:
        """Whether a sweep filled its batch, so that more may be waiting."""
        return max(self.lapsed, self.expired, self.forgotten) >= limit


class AnyVersion(enum.Enum):
    """The bare ``*`` of If-Match (and If-None-Match): any version at all. A separate value,
    not the string ``"*"``, because a quoted ``"*"`` is an ETag like any other, which
    matches only an operation whose ETag it is."""

    ANY = "*"


ANY_VERSION = AnyVersion.ANY
#: ETags the caller's If-Match accepts; ``None`` means no precondition, ANY_VERSION any.
IfMatch = frozenset[str] | AnyVersion | None


def _check_if_match(op: Operation, if_match: IfMatch) -> None:
    if isinstance(if_match, frozenset) and op.etag not in if_match:
        raise PreconditionFailed(
            "The operation's ETag does not match If-Match; it was changed since it was read. "
            "Read it again and retry.",
            target="If-Match",
        )


class OperationService:
    def __init__(
        self,
        store: Store,
        clock: Clock = now_text,
        policy: LifecyclePolicy | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.policy = policy if policy is not None else LifecyclePolicy()
        #: The store's synchronous status reads, if it has them (see :meth:`statuses_now`).
        self._immediate_reads = store if isinstance(store, ImmediateReads) else None
        #: The store's read of many statuses at once, if it has one (see :meth:`statuses`).
        self._batch_reads = store if isinstance(store, BatchReads) else None

    async def create(self, draft: OperationDraft) -> tuple[Operation, bool]:
        """Create, or recognise a replay of the same create (returns ``created=False``)."""
        now = self.clock()
        candidate = self.policy.on_create(draft.to_operation(now), draft.lease_seconds, now)
        callback = None
        if draft.callback_url is not None:
            callback = Callback(draft.callback_url, draft.callback_events)
        stored, created = await self.store.create(candidate, callback)
        if not created and self.policy.is_expired(stored, now):
            # Expired is gone, even if the sweep has not removed it yet: make room.
            await self.store.remove([(stored.subscription_id, stored.key)], self._expiry(now))
            stored, created = await self.store.create(candidate, callback)
        if not created and stored.create_digest != candidate.create_digest:
            raise OperationExists(
                f"The operation '{stored.operation_id}' already exists with different content. "
                "Replaying the original request is allowed; changing it needs PATCH.",
            )
        if not created:
            stored = await self._settle(stored, now)
        return stored, created

    async def get(self, ref: OperationRef) -> Operation:
        now = self.clock()
        op = await self.store.get(ref.subscription_id, ref.key)
        if op is None or not ref.matches(op):
            tombstone = await self.store.get_tombstone(ref.subscription_id, ref.key)
            if tombstone is not None and ref.matches(tombstone) and tombstone.forget_at > now:
                raise expired_error(
                    tombstone.operation_id,
                    tombstone.status,
                    tombstone.expired_at,
                    purged=tombstone.reason == "Purged",
                )
            raise _not_found(ref)
        return await self._settle(op, now)

    def statuses_now(self, refs: Sequence[OperationRef]) -> list[OperationStatus | None]:
        """What :meth:`get` answers for each of ``refs``, as a status read shows it, read
        synchronously from a store that reads without waiting (ImmediateReads); for each, None
        when it cannot be answered so: the store's reads wait (all None), or the answer is
        not a plain read (not found, expired, or a lapsed lease to record). The caller then
        awaits :meth:`get`, which answers those."""
        if self._immediate_reads is None:
            return [None] * len(refs)
        keys = [(ref.subscription_id, ref.key) for ref in refs]
        return self._plain(refs, keys, self._immediate_reads.statuses_now(keys))

    async def statuses(self, refs: Sequence[OperationRef]) -> list[OperationStatus | None]:
        """:meth:`statuses_now`, in one read of a store that reads in batches (BatchReads);
        all None on any other store."""
        if self._batch_reads is None:
            return [None] * len(refs)
        keys = [(ref.subscription_id, ref.key) for ref in refs]
        return self._plain(refs, keys, await self._batch_reads.statuses(list(dict.fromkeys(keys))))

    def _plain(
        self, refs: Sequence[OperationRef], keys: list[Key], found: dict[Key, OperationStatus]
    ) -> list[OperationStatus | None]:
        """For each of ``refs``, its status when it is what :meth:`get` would answer as it
        stands: found where the ref points, and nothing due (expiry, a lapsed lease) that
        get would record; else None."""
        now = self.clock()
        due = self.policy.due
        shown: list[OperationStatus | None] = []
        for ref, key in zip(refs, keys, strict=True):
            status = found.get(key)
            plain = status is not None and ref.matches(status) and not due(status, now)
            shown.append(status if plain else None)
        return shown

    async def _settle(self, op: Operation, now: str) -> Operation:
        """``op`` as it stands now; a lost producer's operation is failed for good on the way."""
        settled = self.policy.settle(op, now)
        if settled is op:
            return op

        def lapse(current: Operation) -> Operation | None:
            return self.policy.lapse(current, now)

        try:
            return await self.store.update(op.subscription_id, op.key, lapse)
        except OperationNotFound:  # deleted meanwhile: what was read is the last word
            return settled

    async def wait(self, ref: OperationRef, seconds: float, known: IfMatch = None) -> Operation:
        """Read, then hold until the operation changes, ends, or ``seconds`` pass.

        "Changes" means its ETag is no longer one the caller ``known`` has (If-None-Match),
        or without that, no longer the one read first. Answers with a fresh read whatever
        woke it: the store's notifier only says when to look again, and when pushes are not
        trusted (``poll_interval``) it looks on a timer.
        """
        notifier = self.store.notifier
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        with notifier.watch(ref.subscription_id, ref.key) as maybe_changed:
            op = await self.get(ref)  # after watch(): a change from here on still wakes us
            unchanged = known if isinstance(known, frozenset) else frozenset({op.etag})
            while not op.terminal and op.etag in unchanged and not notifier.closed:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                interval = notifier.poll_interval
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(remaining, interval or remaining)):
                        await maybe_changed.wait()
                maybe_changed.clear()
                op = await self.get(ref)
        return op

    async def update(
        self, ref: OperationRef, update: OperationUpdate, if_match: IfMatch = None
    ) -> Operation:
        now = self.clock()

        def change(current: Operation) -> Operation | None:
            if not ref.matches(current):
                raise _not_found(ref)
            _check_if_match(current, if_match)
            settled = self.policy.settle(current, now)
            updated = apply_update(settled, update, now)
            return self.policy.on_update(current, settled, updated, update, now)

        try:
            return await self.store.update(ref.subscription_id, ref.key, change)
        except OperationExpired:
            raise
        except OperationNotFound:
            await self.get(ref)  # says "expired" if it is
            raise _not_found(ref) from None

    async def cancel(self, ref: OperationRef) -> Operation:
        """Record a cancel request for the producer to act on (best effort)."""
        now = self.clock()

        def change(current: Operation) -> Operation | None:
            if not ref.matches(current):
                raise _not_found(ref)
            return self.policy.request_cancel(self.policy.settle(current, now), now)

        try:
            return await self.store.update(ref.subscription_id, ref.key, change)
        except OperationExpired:
            raise
        except OperationNotFound:
            await self.get(ref)
            raise _not_found(ref) from None

    async def delete(self, ref: OperationRef, if_match: IfMatch = None) -> bool:
        def check(current: Operation) -> None:
            if not ref.matches(current):
                raise _not_found(ref)
            _check_if_match(current, if_match)

        try:
            deleted = await self.store.delete(ref.subscription_id, ref.key, check)
        except OperationNotFound:
            return False
        if not deleted and if_match is not None:
            raise PreconditionFailed(
                "If-Match was given but the operation does not exist.", target="If-Match"
            )
        return deleted

    # --- lists ---------------------------------------------------------------------------

    async def list(self, query: OperationQuery) -> Page:
        """One page: up to ``query.limit`` live operations after ``query.after``."""
        now = self.clock()
        await self._settle_lapsed(query)
        query = dataclasses.replace(query, live_at=now, ordered=True)
        found = await self.store.find(dataclasses.replace(query, limit=query.limit + 1))
        operations = found[: query.limit]
        following = position(operations[-1], query.order) if len(found) > query.limit else None
        return Page(operations, following)

    async def counts(self, query: OperationQuery) -> dict[str, int]:
        """Live operations per status."""
        now = self.clock()
        await self._settle_lapsed(query)
        return await self.store.counts(dataclasses.replace(query, live_at=now))

    async def tallies(self, subscription_ids: Collection[str] | None) -> Sequence[Tally]:
        """Live operations per subscription, provider, location and status, from the counts
        the store keeps on write (``Store.tallies``); the lost producers' operations in these
        subscriptions are failed first, as for a list."""
        for subscription_id in [None] if subscription_ids is None else sorted(subscription_ids):
            await self._settle_lapsed(OperationQuery(subscription_id=subscription_id))
        return await self.store.tallies(subscription_ids, live_at=self.clock())

    async def tallied_counts(self, query: OperationQuery) -> dict[str, int]:
        """What :meth:`counts` answers for a query of a subscription, maybe a provider and a
        location, and statuses (nothing else), from the tallies."""
        f = query.filter
        if query.subscription_id is None or f != OperationFilter(statuses=f.statuses):
            raise ValueError("tallies answer a subscription's counts by status only")
        statuses = {status.lower() for status in f.statuses}
        namespace = None if query.namespace is None else query.namespace.lower()
        counts: dict[str, int] = {}
        for t in await self.tallies([query.subscription_id]):
            if (
                (namespace is None or t.namespace.lower() == namespace)
                and (query.location is None or t.location == query.location)
                and (not statuses or t.status.lower() in statuses)
            ):
                counts[t.status] = counts.get(t.status, 0) + t.operations
        return counts

    async def _settle_lapsed(self, scope: OperationQuery) -> None:
        """Fail the lost producers' operations in ``scope`` first, so no list shows them
        running (the same rule a read applies, and the sweep later)."""
        for _ in range(100):  # bounded: a list must answer even under a flood of lapses
            if await self.fail_lapsed(DEFAULT_BATCH, scope) < DEFAULT_BATCH:
                return

    async def purge(self, query: OperationQuery, batch: int = DEFAULT_BATCH) -> int:
        """Remove the terminal operations matching ``query`` now, leaving tombstones.

        Running operations are never purged: that would tell their producers and readers
        that they never existed.
        """
        now = self.clock()
        query = dataclasses.replace(query, terminal=True, ordered=True, after=None, limit=batch)
        purged = 0
        while True:
            candidates = await self.store.find(query)
            if not candidates:
                return purged

            def decide(current: Operation, selection: OperationQuery = query) -> Tombstone | None:
                if not selection.matches(current):
                    return None
                return self.policy.tombstone(current, now, "Purged")

            keys = [(op.subscription_id, op.key) for op in candidates]
            purged += len(await self.store.remove(keys, decide))
            if len(candidates) < batch:
                return purged
            query = dataclasses.replace(query, after=position(candidates[-1]))

    # --- background sweeps (see opstatus.maintenance) ---------------------------------

    async def fail_lapsed(
        self, limit: int = DEFAULT_BATCH, scope: OperationQuery | None = None
    ) -> int:
        """Fail (ProducerLost) up to ``limit`` operations whose producer's lease ran out of
        grace; returns how many candidates were looked at."""
        now = self.clock()
        scope = scope or OperationQuery()
        query = OperationQuery(
            subscription_id=scope.subscription_id,
            namespace=scope.namespace,
            location=scope.location,
            lapsed_at=self.policy.lapse_cutoff(now),
            ordered=False,
            limit=limit,
        )
        candidates = await self.store.find(query)

        def lapse(current: Operation) -> Operation | None:
            return self.policy.lapse(current, now)

        for op in candidates:
            with contextlib.suppress(OperationNotFound):  # deleted meanwhile
                await self.store.update(op.subscription_id, op.key, lapse)
        return len(candidates)

    async def purge_expired(self, limit: int = DEFAULT_BATCH) -> int:
        """Remove up to ``limit`` operations whose retention is over, leaving tombstones."""
        now = self.clock()
        query = OperationQuery(expired_at=now, ordered=False, limit=limit)
        candidates = await self.store.find(query)
        if not candidates:
            return 0
        keys = [(op.subscription_id, op.key) for op in candidates]
        return len(await self.store.remove(keys, self._expiry(now)))

    def _expiry(self, now: str) -> Callable[[Operation], Tombstone | None]:
        def decide(current: Operation) -> Tombstone | None:
            if not self.policy.is_expired(current, now):
                return None  # replaced by a new operation meanwhile
            return self.policy.tombstone(current, now, "Expired")

        return decide

    async def forget_tombstones(self, limit: int = DEFAULT_BATCH) -> int:
        """Drop up to ``limit`` tombstones whose own period is over."""
        return await self.store.forget_tombstones(self.clock(), limit)

    async def maintain(self, limit: int = DEFAULT_BATCH) -> MaintenanceReport:
        """One step of every sweep, each over at most ``limit`` items."""
        return MaintenanceReport(
            lapsed=await self.fail_lapsed(limit),
            expired=await self.purge_expired(limit),
            forgotten=await self.forget_tombstones(limit),
        )


def _not_found(ref: OperationRef) -> OperationNotFound:
    where = (
        f"subscription '{ref.subscription_id}'"
        if ref.namespace is None
        else f"location '{ref.location}' of provider '{ref.namespace}'"
    )
    return OperationNotFound(
        f"The operation '{ref.operation_id}' was not found in {where}.", target="operationId"
    )

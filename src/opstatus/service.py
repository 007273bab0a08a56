"""The rules for creating, reading, updating and deleting operations, over any store.

The service knows no HTTP and no SQL. It resolves an operation by its full reference
(subscription, namespace, location, id) so that an operation can only be reached through
the URL it was created under: anything else is indistinguishable from an id that never
existed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from .errors import OperationExists, OperationNotFound, PreconditionFailed
from .models import (
    Operation,
    OperationDraft,
    OperationUpdate,
    apply_update,
    now_text,
    operation_key,
)
from .stores.base import Store


@dataclass(frozen=True, slots=True)
class OperationRef:
    """Where an operation lives: validated and normalised by the caller."""

    subscription_id: str
    namespace: str
    location: str
    operation_id: str

    @property
    def key(self) -> str:
        return operation_key(self.operation_id)

    def matches(self, op: Operation) -> bool:
        return op.namespace.lower() == self.namespace.lower() and op.location == self.location


#: ETags the caller's If-Match accepts; ``None`` means no precondition, ``"*"`` any.
IfMatch = frozenset[str] | None


def _check_if_match(op: Operation, if_match: IfMatch) -> None:
    if if_match is not None and "*" not in if_match and op.etag not in if_match:
        raise PreconditionFailed(
            "The operation's ETag does not match If-Match; it was changed since it was read. "
            "Read it again and retry.",
            target="If-Match",
        )


class OperationService:
    def __init__(self, store: Store, clock: Callable[[], str] = now_text) -> None:
        self.store = store
        self.clock = clock

    async def create(self, draft: OperationDraft) -> tuple[Operation, bool]:
        """Create, or recognise a replay of the same create (returns ``created=False``)."""
        candidate = draft.to_operation(self.clock())
        stored, created = await self.store.create(candidate)
        if not created and stored.create_digest != candidate.create_digest:
            raise OperationExists(
                f"The operation '{stored.operation_id}' already exists with different content. "
                "Replaying the original request is allowed; changing it needs PATCH.",
            )
        return stored, created

    async def get(self, ref: OperationRef) -> Operation:
        op = await self.store.get(ref.subscription_id, ref.key)
        if op is None or not ref.matches(op):
            raise _not_found(ref)
        return op

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
            unchanged = known if known and "*" not in known else frozenset({op.etag})
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
        def change(current: Operation) -> Operation | None:
            if not ref.matches(current):
                raise _not_found(ref)
            _check_if_match(current, if_match)
            return apply_update(current, update, self.clock())

        try:
            return await self.store.update(ref.subscription_id, ref.key, change)
        except OperationNotFound:
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


def _not_found(ref: OperationRef) -> OperationNotFound:
    return OperationNotFound(
        f"The operation '{ref.operation_id}' was not found in location '{ref.location}' of "
        f"provider '{ref.namespace}'.",
        target="operationId",
    )

"""The rules for creating, reading, updating and deleting operations, over any store.

The service knows no HTTP and no SQL. It resolves an operation by its full reference
(subscription, namespace, location, id) so that an operation can only be reached through
the URL it was created under: anything else is indistinguishable from an id that never
existed. The classic form addresses an operation by subscription and request id alone (the
request id is the operation id), so its references leave namespace and location open.
"""

from __future__ import annotations

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
    """Where an operation lives: validated and normalised by the caller.

    ``namespace`` and ``location`` are ``None`` in a reference by request id: the store keys
    operations by subscription and id, so those two are attributes, not part of the address.
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

    def matches(self, op: Operation) -> bool:
        if self.namespace is None or self.location is None:
            return True
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
    where = (
        f"subscription '{ref.subscription_id}'"
        if ref.namespace is None
        else f"location '{ref.location}' of provider '{ref.namespace}'"
    )
    return OperationNotFound(
        f"The operation '{ref.operation_id}' was not found in {where}.", target="operationId"
    )

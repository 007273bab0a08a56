"""Role assignments in the store: who holds which role over which scope.

Tokens from an external identity provider carry no roles of opstatus's; their holders get
roles by assignment (``opstatus role assign``), read from the store on every request so
that a change takes effect on the next request, on every instance sharing the store. An
assignment names its principal by issuer, claim and id (:class:`PrincipalId`), so that the
same id at two providers, or one token's ``sub`` equal to another's ``oid``, are two
principals. Every backend implements :class:`RoleAssignmentStore`; the contract suite runs
over each.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Sequence
from typing import Protocol

from ..auth.roles import UNBOUND, PrincipalId, RoleAssignment
from ..errors import StoreError

log = logging.getLogger("opstatus.auth")


class RoleAssignmentStore(Protocol):
    async def assign_role(self, assignment: RoleAssignment) -> bool:
        """Store the assignment; False when the principal already held it (no change)."""

    async def remove_role(self, assignment: RoleAssignment) -> bool:
        """Remove the assignment; False when there was none."""

    async def list_role_assignments(
        self, principal: PrincipalId | None = None
    ) -> list[RoleAssignment]:
        """Every assignment (of ``principal`` when given), by principal, scope, role."""


def sort_key(a: RoleAssignment) -> tuple[str, str, str, str, str]:
    return (*a.principal, a.scope, a.role)


async def bind_unbound(store: RoleAssignmentStore, issuers: Sequence[str]) -> int:
    """Give assignments made before assignments named an issuer (schema version 2) to the
    one issuer configured; return how many moved.

    Such an assignment named an id that any configured provider's token could claim. With
    one provider that provider is the one meant; with several nobody knows which, so they
    stay unbound, granting nothing, and a warning says how to bind them.
    """
    unbound = [a for a in await store.list_role_assignments() if a.principal.issuer == UNBOUND]
    if not unbound:
        return 0
    if len(issuers) != 1:
        log.warning(
            "%d role assignments name no issuer (made before assignments named one) and "
            "grant nothing while several issuers are configured; 'opstatus role list' shows "
            "them; assign each again with --issuer, then remove it with --issuer ''",
            len(unbound),
        )
        return 0
    try:
        for a in unbound:
            bound = dataclasses.replace(a, principal=a.principal._replace(issuer=issuers[0]))
            await store.assign_role(bound)  # first: a crash in between leaves both, not none
            await store.remove_role(a)
    except StoreError as exc:  # read-only storage: they stay unbound, granting nothing
        log.warning("role assignments without an issuer could not be bound: %s", exc.message)
        return 0
    log.warning("%d role assignments without an issuer now name %s", len(unbound), issuers[0])
    return len(unbound)


class MemoryRoleAssignments:
    """The in-memory store's role assignments (a mixin of :class:`MemoryStore`)."""

    def __init__(self) -> None:
        # principal -> its assignments, so the per-request lookup is one dict access.
        self._role_assignments: dict[PrincipalId, set[RoleAssignment]] = {}
        self._role_lock = threading.Lock()

    async def assign_role(self, assignment: RoleAssignment) -> bool:
        with self._role_lock:
            held = self._role_assignments.setdefault(assignment.principal, set())
            if assignment in held:
                return False
            held.add(assignment)
            return True

    async def remove_role(self, assignment: RoleAssignment) -> bool:
        with self._role_lock:
            held = self._role_assignments.get(assignment.principal, set())
            if assignment not in held:
                return False
            held.discard(assignment)
            if not held:
                del self._role_assignments[assignment.principal]
            return True

    async def list_role_assignments(
        self, principal: PrincipalId | None = None
    ) -> list[RoleAssignment]:
        with self._role_lock:
            if principal is not None:
                found = list(self._role_assignments.get(principal, ()))
            else:
                found = [a for held in self._role_assignments.values() for a in held]
        return sorted(found, key=sort_key)

"""Role assignments in the store: who holds which role over which scope.

Tokens from an external identity provider carry no roles of opstatus's; their holders get
roles by assignment (``opstatus role assign``), read from the store on every request so
that a change takes effect on the next request, on every instance sharing the store.
Every backend implements :class:`RoleAssignmentStore`; the contract suite runs over each.
"""

from __future__ import annotations

import threading
from typing import Protocol

from ..auth.roles import RoleAssignment


class RoleAssignmentStore(Protocol):
    async def assign_role(self, assignment: RoleAssignment) -> bool:
        """Store the assignment; False when the principal already held it (no change)."""

    async def remove_role(self, assignment: RoleAssignment) -> bool:
        """Remove the assignment; False when there was none."""

    async def list_role_assignments(self, principal_id: str | None = None) -> list[RoleAssignment]:
        """Every assignment (of ``principal_id`` when given), by principal, scope, role."""


def sort_key(a: RoleAssignment) -> tuple[str, str, str]:
    return a.principal_id, a.scope, a.role


class MemoryRoleAssignments:
    """The in-memory store's role assignments (a mixin of :class:`MemoryStore`)."""

    def __init__(self) -> None:
        # principal id -> its assignments, so the per-request lookup is one dict access.
        self._role_assignments: dict[str, set[RoleAssignment]] = {}
        self._role_lock = threading.Lock()

    async def assign_role(self, assignment: RoleAssignment) -> bool:
        with self._role_lock:
            held = self._role_assignments.setdefault(assignment.principal_id, set())
            if assignment in held:
                return False
            held.add(assignment)
            return True

    async def remove_role(self, assignment: RoleAssignment) -> bool:
        with self._role_lock:
            held = self._role_assignments.get(assignment.principal_id, set())
            if assignment not in held:
                return False
            held.discard(assignment)
            if not held:
                del self._role_assignments[assignment.principal_id]
            return True

    async def list_role_assignments(self, principal_id: str | None = None) -> list[RoleAssignment]:
        with self._role_lock:
            if principal_id is not None:
                found = list(self._role_assignments.get(principal_id, ()))
            else:
                found = [a for held in self._role_assignments.values() for a in held]
        return sorted(found, key=sort_key)

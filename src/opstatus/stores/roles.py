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
        self._role_assignments: set[RoleAssignment] = set()
        self._role_lock = threading.Lock()

    async def assign_role(self, assignment: RoleAssignment) -> bool:
        with self._role_lock:
            if assignment in self._role_assignments:
                return False
            self._role_assignments.add(assignment)
            return True

    async def remove_role(self, assignment: RoleAssignment) -> bool:
        with self._role_lock:
            if assignment not in self._role_assignments:
                return False
            self._role_assignments.discard(assignment)
            return True

    async def list_role_assignments(self, principal_id: str | None = None) -> list[RoleAssignment]:
        with self._role_lock:
            found = [
                a
                for a in self._role_assignments
                if principal_id is None or a.principal_id == principal_id
            ]
        return sorted(found, key=sort_key)

"""The PostgreSQL store's role assignments (a mixin of :class:`PostgreSQLStore`).

The table is part of the store's schema (``opstatus_role_assignments``, migration 0002).
Every call is one statement on a pooled connection, so a change is seen by every instance on
the next request; the per-request lookup by principal reads a primary-key prefix.
"""

from __future__ import annotations

import contextlib

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from ..auth.roles import RoleAssignment
from ..models import now_text

TABLE = "opstatus_role_assignments"
_INSERT = (
    f"INSERT INTO {TABLE} (principal_id, role, scope, created_at) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT DO NOTHING RETURNING true"
)
_DELETE = f"DELETE FROM {TABLE} WHERE principal_id = $1 AND role = $2 AND scope = $3 RETURNING true"
_SELECT = f"SELECT principal_id, role, scope FROM {TABLE}"
#: By principal, scope, role, as code points compare (``roles.sort_key``), whatever the
#: database's collation.
_ORDER = ' ORDER BY principal_id COLLATE "C", scope COLLATE "C", role COLLATE "C"'
_SELECT_ALL = _SELECT + _ORDER
_SELECT_ONE = _SELECT + " WHERE principal_id = $1" + _ORDER


class PostgreSQLRoleAssignments:
    def _connection(
        self,
    ) -> contextlib.AbstractAsyncContextManager[PoolConnectionProxy[asyncpg.Record]]:
        raise NotImplementedError

    async def assign_role(self, assignment: RoleAssignment) -> bool:
        a = assignment
        async with self._connection() as conn:
            inserted = await conn.fetchval(_INSERT, a.principal_id, a.role, a.scope, now_text())
        return inserted is not None

    async def remove_role(self, assignment: RoleAssignment) -> bool:
        a = assignment
        async with self._connection() as conn:
            deleted = await conn.fetchval(_DELETE, a.principal_id, a.role, a.scope)
        return deleted is not None

    async def list_role_assignments(self, principal_id: str | None = None) -> list[RoleAssignment]:
        async with self._connection() as conn:
            if principal_id is None:
                rows = await conn.fetch(_SELECT_ALL)
            else:
                rows = await conn.fetch(_SELECT_ONE, principal_id)
        return [RoleAssignment(role, scope, principal) for principal, role, scope in rows]

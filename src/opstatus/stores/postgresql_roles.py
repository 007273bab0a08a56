"""The PostgreSQL store's role assignments (a mixin of :class:`PostgreSQLStore`).

The table is part of the store's schema (``opstatus_role_assignments``, migrations 0002 and
0003).
Every call is one statement on a pooled connection, so a change is seen by every instance on
the next request; the per-request lookup by principal reads a primary-key prefix.
"""

from __future__ import annotations

import contextlib

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from ..auth.roles import PrincipalId, RoleAssignment
from ..models import now_text

TABLE = "opstatus_role_assignments"
_COLUMNS = "issuer, principal_claim, principal_id, role, scope"
_INSERT = (
    f"INSERT INTO {TABLE} ({_COLUMNS}, created_at) VALUES ($1, $2, $3, $4, $5, $6) "
    "ON CONFLICT DO NOTHING RETURNING true"
)
_DELETE = (
    f"DELETE FROM {TABLE} WHERE issuer = $1 AND principal_claim = $2 AND principal_id = $3 "
    "AND role = $4 AND scope = $5 RETURNING true"
)
_SELECT = f"SELECT {_COLUMNS} FROM {TABLE}"
#: By principal, scope, role, as code points compare (``roles.sort_key``), whatever the
#: database's collation.
_ORDER = (
    ' ORDER BY issuer COLLATE "C", principal_claim COLLATE "C", principal_id COLLATE "C", '
    'scope COLLATE "C", role COLLATE "C"'
)
_SELECT_ALL = _SELECT + _ORDER
_SELECT_ONE = _SELECT + " WHERE issuer = $1 AND principal_claim = $2 AND principal_id = $3" + _ORDER


def _assignment(row: asyncpg.Record) -> RoleAssignment:
    issuer, claim, principal_id, role, scope = row
    return RoleAssignment(role, scope, PrincipalId(issuer, claim, principal_id))


class PostgreSQLRoleAssignments:
    def _connection(
        self,
    ) -> contextlib.AbstractAsyncContextManager[PoolConnectionProxy[asyncpg.Record]]:
        raise NotImplementedError

    async def assign_role(self, assignment: RoleAssignment) -> bool:
        a = assignment
        async with self._connection() as conn:
            inserted = await conn.fetchval(_INSERT, *a.principal, a.role, a.scope, now_text())
        return inserted is not None

    async def remove_role(self, assignment: RoleAssignment) -> bool:
        a = assignment
        async with self._connection() as conn:
            deleted = await conn.fetchval(_DELETE, *a.principal, a.role, a.scope)
        return deleted is not None

    async def list_role_assignments(
        self, principal: PrincipalId | None = None
    ) -> list[RoleAssignment]:
        async with self._connection() as conn:
            if principal is None:
                rows = await conn.fetch(_SELECT_ALL)
            else:
                rows = await conn.fetch(_SELECT_ONE, *principal)
        return [_assignment(row) for row in rows]

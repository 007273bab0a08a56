"""The SQLite store's role assignments (a mixin of :class:`SQLiteStore`).

The table is part of the store's schema (``role_assignments``, migrations 0002 and 0003). Writes
go through the store's writer thread and transactions; the per-request lookup by principal
is a primary-key prefix read on the reader connection, which in WAL mode sees every commit,
also those of other processes sharing the file.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ..auth.roles import PrincipalId, RoleAssignment
from ..models import now_text

_COLUMNS = "issuer, principal_claim, principal_id, role, scope"
_INSERT = (
    f"INSERT OR IGNORE INTO role_assignments ({_COLUMNS}, created_at) VALUES (?, ?, ?, ?, ?, ?)"
)
_DELETE = (
    "DELETE FROM role_assignments WHERE issuer = ? AND principal_claim = ? AND principal_id = ? "
    "AND role = ? AND scope = ?"
)
_SELECT = f"SELECT {_COLUMNS} FROM role_assignments"
_ORDER = " ORDER BY issuer, principal_claim, principal_id, scope, role"
_SELECT_ALL = _SELECT + _ORDER
_SELECT_ONE = _SELECT + " WHERE issuer = ? AND principal_claim = ? AND principal_id = ?" + _ORDER


def _row(a: RoleAssignment) -> tuple[str, ...]:
    return (*a.principal, a.role, a.scope)


def _assignment(row: tuple[Any, ...]) -> RoleAssignment:
    issuer, claim, principal_id, role, scope = row
    return RoleAssignment(role, scope, PrincipalId(issuer, claim, principal_id))


class SQLiteRoleAssignments:
    _reader: sqlite3.Connection | None

    async def _commit(self, body: Any) -> Any:
        raise NotImplementedError

    def _read_all(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    async def assign_role(self, assignment: RoleAssignment) -> bool:
        a = assignment

        def body(conn: sqlite3.Connection) -> bool:
            return conn.execute(_INSERT, (*_row(a), now_text())).rowcount == 1

        result: bool = await self._commit(body)
        return result

    async def remove_role(self, assignment: RoleAssignment) -> bool:
        a = assignment

        def body(conn: sqlite3.Connection) -> bool:
            return conn.execute(_DELETE, _row(a)).rowcount == 1

        result: bool = await self._commit(body)
        return result

    async def list_role_assignments(
        self, principal: PrincipalId | None = None
    ) -> list[RoleAssignment]:
        if principal is None:
            rows = self._read_all(_SELECT_ALL, ())
        else:
            rows = self._read_all(_SELECT_ONE, tuple(principal))
        return [_assignment(row) for row in rows]

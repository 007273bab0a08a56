"""The SQLite store's role assignments (a mixin of :class:`SQLiteStore`).

The table is part of the store's schema (``role_assignments``, migration 0002). Writes
go through the store's writer thread and transactions; the per-request lookup by principal
is a primary-key prefix read on the reader connection, which in WAL mode sees every commit,
also those of other processes sharing the file.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ..auth.roles import RoleAssignment
from ..models import now_text

_INSERT = (
    "INSERT OR IGNORE INTO role_assignments (principal_id, role, scope, created_at) "
    "VALUES (?, ?, ?, ?)"
)
_DELETE = "DELETE FROM role_assignments WHERE principal_id = ? AND role = ? AND scope = ?"
_SELECT = "SELECT principal_id, role, scope FROM role_assignments"
_ORDER = " ORDER BY principal_id, scope, role"
_SELECT_ALL = _SELECT + _ORDER
_SELECT_ONE = _SELECT + " WHERE principal_id = ?" + _ORDER


class SQLiteRoleAssignments:
    _reader: sqlite3.Connection | None

    async def _commit(self, body: Any) -> Any:
        raise NotImplementedError

    def _read_all(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    async def assign_role(self, assignment: RoleAssignment) -> bool:
        a = assignment

        def body(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(_INSERT, (a.principal_id, a.role, a.scope, now_text()))
            return cursor.rowcount == 1

        result: bool = await self._commit(body)
        return result

    async def remove_role(self, assignment: RoleAssignment) -> bool:
        a = assignment

        def body(conn: sqlite3.Connection) -> bool:
            return conn.execute(_DELETE, (a.principal_id, a.role, a.scope)).rowcount == 1

        result: bool = await self._commit(body)
        return result

    async def list_role_assignments(self, principal_id: str | None = None) -> list[RoleAssignment]:
        if principal_id is None:
            rows = self._read_all(_SELECT_ALL, ())
        else:
            rows = self._read_all(_SELECT_ONE, (principal_id,))
        return [RoleAssignment(role, scope, principal) for principal, role, scope in rows]

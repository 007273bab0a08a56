""":class:`~opstatus.queries.OperationQuery` as SQL, for every SQL store.

:meth:`OperationQuery.matches` is the rule; this is its translation, the same for SQLite and
PostgreSQL, which differ here only in how a statement names its parameters (``?`` against
``$1``, ``$2``...): :class:`Parameters` writes whichever the store needs. Both compare text as
the model writes it (times in one fixed-width format, which sorts as time does), and NULL
never satisfies a comparison, as None does not in ``matches``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from ..models import TERMINAL_STATUSES
from ..queries import OperationFilter, OperationQuery

_TERMINAL_LIST = ", ".join("'" + status + "'" for status in sorted(TERMINAL_STATUSES))
_TERMINAL = f"status IN ({_TERMINAL_LIST})"
#: Newest first, by :class:`~opstatus.queries.Position` (a unique order).
ORDER = " ORDER BY created_at DESC, subscription_id DESC, operation_key DESC"


class Parameters:
    """A statement's values, in order, and their placeholders: ``?`` or ``$n``."""

    def __init__(self, numbered: bool) -> None:
        #: True: ``$1``, ``$2``... (PostgreSQL); False: ``?`` (SQLite).
        self.numbered = numbered
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        """Add a value; returns its placeholder."""
        self.values.append(value)
        return f"${len(self.values)}" if self.numbered else "?"

    def many(self, values: Iterable[Any]) -> str:
        return ", ".join(self(value) for value in values)


def find_sql(query: OperationQuery, table: str, columns: str, p: Parameters) -> str:
    """``SELECT columns`` of up to ``query.limit`` matching rows, ordered if the query is."""
    where = where_sql(query, p)
    order = ORDER if query.ordered else ""
    return f"SELECT {columns} FROM {table}{where}{order} LIMIT {p(query.limit)}"


def counts_sql(query: OperationQuery, table: str, p: Parameters) -> str:
    """``(status, count)`` rows of the matching operations (``after`` and ``limit`` ignored)."""
    where = where_sql(dataclasses.replace(query, after=None), p)
    return f"SELECT status, COUNT(*) FROM {table}{where} GROUP BY status"


def where_sql(query: OperationQuery, p: Parameters) -> str:
    """`` WHERE ...`` for ``query.matches``, or "" when it matches everything."""
    clauses = [
        *_scope_clauses(query, p),
        *_filter_clauses(query.filter, p),
        *_lifecycle_clauses(query, p),
    ]
    after = query.after
    if after is not None:
        if query.subscription_id == after.subscription_id:
            # Same order within one subscription, and the form the index can seek on.
            values: tuple[str, ...] = (after.created_at, after.operation_key)
            clauses.append(f"(created_at, operation_key) < ({p.many(values)})")
        else:
            values = (after.created_at, after.subscription_id, after.operation_key)
            clauses.append(f"(created_at, subscription_id, operation_key) < ({p.many(values)})")
    return " WHERE " + " AND ".join(clauses) if clauses else ""


def _scope_clauses(query: OperationQuery, p: Parameters) -> list[str]:
    clauses = []
    if query.subscription_id is not None:
        clauses.append(f"subscription_id = {p(query.subscription_id)}")
    if query.namespace is not None:
        # lower() on both sides: one rule however the database folds case.
        clauses.append(f"lower(namespace) = lower({p(query.namespace)})")
    if query.location is not None:
        clauses.append(f"location = {p(query.location)}")
    return clauses


def _filter_clauses(f: OperationFilter, p: Parameters) -> list[str]:
    clauses = []
    statuses = sorted({status.lower() for status in f.statuses})
    for column, values in (("lower(status)", statuses), ("kind", sorted(f.kinds))):
        if values:
            clauses.append(f"{column} IN ({p.many(values)})")
    bounds = (
        ("start_time >=", f.started_after),
        ("start_time <", f.started_before),
        ("end_time >=", f.ended_after),
        ("end_time <", f.ended_before),
    )
    clauses.extend(f"{test} {p(value)}" for test, value in bounds if value is not None)
    if f.cancel_requested is not None:
        test = "IS NOT NULL" if f.cancel_requested else "IS NULL"
        clauses.append(f"cancel_requested_at {test}")
    return clauses


def _lifecycle_clauses(query: OperationQuery, p: Parameters) -> list[str]:
    clauses = []
    if query.terminal is not None:
        clauses.append(_TERMINAL if query.terminal else f"NOT {_TERMINAL}")
    if query.live_at is not None:
        clauses.append(f"(expires_at IS NULL OR expires_at > {p(query.live_at)})")
    if query.expired_at is not None:
        clauses.append(f"expires_at <= {p(query.expired_at)}")
    if query.lapsed_at is not None:
        clauses.append(f"lease_expires_at <= {p(query.lapsed_at)} AND NOT {_TERMINAL}")
    return clauses

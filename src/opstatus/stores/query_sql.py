""":class:`~opstatus.queries.OperationQuery` as SQL, for every SQL store.

:meth:`OperationQuery.matches` is the rule; this is its translation, the same for SQLite and
PostgreSQL, which differ here only in how a statement names its parameters (``?`` against
``$1``, ``$2``...): :class:`Parameters` writes whichever the store needs. Both compare text as
the model writes it (times in one fixed-width format, which sorts as time does), and NULL
never satisfies a comparison, as None does not in ``matches``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable
from typing import Any

from ..models import TERMINAL_STATUSES
from ..queries import NEWEST_FIRST, OperationFilter, OperationQuery, Order

_TERMINAL_LIST = ", ".join("'" + status + "'" for status in sorted(TERMINAL_STATUSES))
_TERMINAL = f"status IN ({_TERMINAL_LIST})"


def order_sql(order: Order) -> str:
    """`` ORDER BY`` the :class:`~opstatus.queries.Position` in ``order`` (a unique order)."""
    way = "DESC" if order.descending else "ASC"
    return f" ORDER BY {order.field} {way}, subscription_id {way}, operation_key {way}"


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
    order = order_sql(query.order) if query.ordered else ""
    return f"SELECT {columns} FROM {table}{where}{order} LIMIT {p(query.limit)}"


def counts_sql(query: OperationQuery, table: str, p: Parameters) -> str:
    """``(status, count)`` rows of the matching operations (``after`` and ``limit`` ignored)."""
    where = where_sql(dataclasses.replace(query, after=None, order=NEWEST_FIRST), p)
    return f"SELECT status, COUNT(*) FROM {table}{where} GROUP BY status"


def where_sql(query: OperationQuery, p: Parameters) -> str:
    """`` WHERE ...`` for ``query.matches``, or "" when it matches everything."""
    clauses = [
        *_scope_clauses(query, p),
        *_filter_clauses(query.filter, p, query.order.field if query.ordered else None),
        *_lifecycle_clauses(query, p),
    ]
    clauses.extend(_order_clauses(query, p))
    return " WHERE " + " AND ".join(clauses) if clauses else ""


def _order_clauses(query: OperationQuery, p: Parameters) -> list[str]:
    order, after = query.order, query.after
    clauses = []
    if query.ordered and order != NEWEST_FIRST:
        clauses.append(f"{order.field} IS NOT NULL")
    if after is not None:
        test = "<" if order.descending else ">"
        if query.subscription_id == after.subscription_id:
            # Same order within one subscription, and the form the index can seek on.
            values: tuple[str, ...] = (after.sort_key, after.operation_key)
            clauses.append(f"({order.field}, operation_key) {test} ({p.many(values)})")
        else:
            values = (after.sort_key, after.subscription_id, after.operation_key)
            columns = f"{order.field}, subscription_id, operation_key"
            clauses.append(f"({columns}) {test} ({p.many(values)})")
    return clauses


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


def _filter_clauses(f: OperationFilter, p: Parameters, order: str | None) -> list[str]:
    clauses = []
    if f.id_prefix is not None:
        # The range lets an index seek (ids are ASCII, below DEL); substr keeps it exact.
        low, length = f.id_prefix, len(f.id_prefix)
        clauses.append(f"operation_key >= {p(low)} AND operation_key < {p(low + chr(0x7F))}")
        clauses.append(f"substr(operation_key, 1, {length}) = {p(low)}")
    statuses = sorted({status.lower() for status in f.statuses})
    for column, values in (("lower(status)", statuses), ("kind", sorted(f.kinds))):
        if values:
            clauses.append(f"{column} IN ({p.many(values)})")
    bounds = (
        ("start_time", ">=", f.started_after),
        ("start_time", "<", f.started_before),
        ("end_time", ">=", f.ended_after),
        ("end_time", "<", f.ended_before),
    )
    for column, test, value in bounds:
        if value is not None:
            clauses.append(f"{_unindexed(column, p, order)} {test} {p(value)}")
    if f.cancel_requested is not None:
        test = "IS NOT NULL" if f.cancel_requested else "IS NULL"
        clauses.append(f"cancel_requested_at {test}")
    return clauses


def _unindexed(column: str, p: Parameters, order: str | None) -> str:
    """On SQLite, a time bound of a list ordered by another column is written ``+column``,
    which keeps the planner off that column's index: with no statistics, it would seek the
    bound's range and sort all of it (a million operations for ``startedAfter`` a month ago)
    rather than walk the order's index and stop at a page. PostgreSQL weighs both with its
    statistics."""
    return f"+{column}" if not p.numbered and order is not None and column != order else column


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


def tallies_sql(
    subscription_ids: Collection[str] | None,
    live_at: str | None,
    tables: tuple[str, str],
    p: Parameters,
) -> str:
    """``(subscription, namespace, location, status, count)`` rows, sorted, of the tallies
    table less the operations whose retention is over at ``live_at`` (one statement, so both
    are read in one snapshot). ``tables``: the tallies table, and the operations table as
    read through its expiry index."""
    tallies, operations = tables
    group = "subscription_id, namespace, location, status"

    def within() -> str:
        if subscription_ids is None:
            return ""
        return f" AND subscription_id IN ({p.many(sorted(subscription_ids)) or 'NULL'})"

    parts = [f"SELECT {group}, count AS n FROM {tallies} WHERE count <> 0{within()}"]
    if live_at is not None:
        expired = f"expires_at <= {p(live_at)}"
        parts.append(
            f"SELECT {group}, -COUNT(*) AS n FROM {operations} "
            f"WHERE {expired}{within()} GROUP BY {group}"
        )
    union = " UNION ALL ".join(parts)
    return (
        f"SELECT {group}, SUM(n) FROM ({union}) AS counted "
        f"GROUP BY {group} HAVING SUM(n) <> 0 ORDER BY {group}"
    )

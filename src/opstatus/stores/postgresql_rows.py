"""The PostgreSQL store's operations table: its rows and the statements on one operation.

Shared by :class:`~opstatus.stores.postgresql.PostgreSQLStore` and its mixins. Columns are
those of the SQLite table, one per :class:`~opstatus.models.Operation` field; JSON is text.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import asyncpg
import orjson

from ..models import Operation, OperationStatus
from .records import status_from_row

TABLE = "opstatus_operations"
CHANNEL = "opstatus_operations"

#: Operation fields in column order; ``operation_key`` is derived and stored beside them.
FIELDS = tuple(f.name for f in dataclasses.fields(Operation))
_JSON_FIELDS = frozenset({"properties", "error"})
MUTABLE = tuple(f for f in FIELDS if f not in ("subscription_id", "operation_id"))
COLUMNS = ", ".join(("operation_key", *FIELDS))
_WHERE = "WHERE subscription_id = $1 AND operation_key = $2"
#: Rides on each write's own statement: sent at commit, only for rows really written.
NOTIFY = f"pg_notify('{CHANNEL}', subscription_id || '/' || operation_key)"
SELECT = f"SELECT {COLUMNS} FROM {TABLE} {_WHERE}"
LOCK = f"{SELECT} FOR UPDATE"
#: Several operations by key, $1 and $2 the arrays of subscriptions and keys.
SELECT_MANY = (
    f"SELECT {COLUMNS} FROM {TABLE} WHERE (subscription_id, operation_key) IN "
    "(SELECT * FROM unnest($1::text[], $2::text[]))"
)
#: What a status read shows of several operations (OperationStatus's fields), keyed as
#: SELECT_MANY.
SELECT_STATUSES = (
    f"SELECT operation_key, {', '.join(OperationStatus._fields)} FROM {TABLE} "
    "WHERE (subscription_id, operation_key) IN (SELECT * FROM unnest($1::text[], $2::text[]))"
)
INSERT = (
    f"INSERT INTO {TABLE} ({COLUMNS}) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(FIELDS) + 2))}) "
    f"ON CONFLICT DO NOTHING RETURNING {NOTIFY}"
)
UPDATE = (
    f"UPDATE {TABLE} SET {', '.join(f'{f} = ${i}' for i, f in enumerate(MUTABLE, 3))} "
    f"{_WHERE} RETURNING {NOTIFY}"
)
DELETE = f"DELETE FROM {TABLE} {_WHERE} RETURNING {NOTIFY}"


def column(op: Operation, name: str) -> Any:
    value = getattr(op, name)
    if name in _JSON_FIELDS and value is not None:
        return orjson.dumps(value).decode()
    return value


def to_row(op: Operation) -> tuple[Any, ...]:
    return (op.key, *(column(op, name) for name in FIELDS))


def status_from_record(row: asyncpg.Record) -> OperationStatus:
    """From a row of SELECT_STATUSES (its key column first), checked as SQLite's are."""
    return status_from_row(list(row)[1:], _JSON_FIELDS)


def from_row(row: asyncpg.Record) -> Operation:
    values = dict(zip(FIELDS, tuple(row)[1:], strict=True))
    for name in _JSON_FIELDS:
        if values[name] is not None:
            values[name] = orjson.loads(values[name])
    return Operation(**values)

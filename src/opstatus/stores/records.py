"""Reading stored operations back, checked: a damaged or hand-edited row is reported, never
crashed on.

A backend hands :func:`operation_from_record` the stored values by field name (JSON columns
still as text), or :func:`operation_from_row` and :func:`status_from_row` in field order.
Every value is checked for the type the domain relies on, and the status is brought to its
canonical spelling (a hand-written ``succeeded`` is still terminal). Anything else raises
:class:`~opstatus.errors.CorruptRecord` naming the operation and the column.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from ..errors import CorruptRecord, InvalidInput
from ..models import Operation, OperationStatus, normalize_status

_TEXT = ("subscription_id", "operation_id", "namespace", "location", "etag", "created_at")
_OPTIONAL_TEXT = (
    "start_time",
    "end_time",
    "updated_at",
    "create_digest",
    "kind",
    "cancel_requested_at",
    "lease_expires_at",
    "expires_at",
)


_NUMBERS = ("percent_complete", "lease_seconds")
_FIELDS = tuple(f.name for f in dataclasses.fields(Operation))


class _Layout:
    """Where each checked field sits in a row of ``fields`` (a record type's fields, in order;
    a check of a field the row does not hold is skipped)."""

    def __init__(self, fields: tuple[str, ...]) -> None:
        index = {name: i for i, name in enumerate(fields)}
        self.fields = fields
        self.text = tuple(index[c] for c in _TEXT if c in index)
        self.optional_text = tuple(index[c] for c in _OPTIONAL_TEXT if c in index)
        self.numbers = tuple(index[c] for c in _NUMBERS if c in index)
        self.percent = index["percent_complete"]
        self.status = index["status"]
        self.error = index["error"]
        self.code = index.get("http_status_code")
        self.cancelable = index.get("cancelable")
        self.json = {c: index[c] for c in ("properties", "error")}
        self.operation_id = index["operation_id"]
        self.subscription_id = index["subscription_id"]


_OPERATION = _Layout(_FIELDS)
_STATUS = _Layout(OperationStatus._fields)


def operation_from_record(values: dict[str, Any], json_fields: frozenset[str]) -> Operation:
    """From the stored values by column name (any order, missing ones are damage)."""
    row = [values.get(name) for name in _FIELDS]
    if set(values) - set(_FIELDS) or len(values) != len(_FIELDS):
        unknown = sorted(set(values) ^ set(_FIELDS))
        raise _corrupt(row, _OPERATION, "*", f"does not fit (columns {', '.join(unknown)})")
    return operation_from_row(row, json_fields)


def operation_from_row(row: list[Any], json_fields: frozenset[str]) -> Operation:
    """From the stored values in the order of Operation's fields (changed in place).

    Position by position rather than through a dict: this runs on every status read.
    """
    return Operation(*_checked(row, _OPERATION, json_fields))


def status_from_row(row: list[Any], json_fields: frozenset[str]) -> OperationStatus:
    """From the stored values in the order of OperationStatus's fields (changed in place),
    checked as :func:`operation_from_row` checks them."""
    return OperationStatus._make(_checked(row, _STATUS, json_fields))


def _checked(row: list[Any], layout: _Layout, json_fields: frozenset[str]) -> list[Any]:
    _check_types(row, layout)
    _check_values(row, layout, json_fields)
    return row


def _check_types(row: list[Any], layout: _Layout) -> None:
    for i in layout.text:
        if not isinstance(row[i], str):
            raise _corrupt(row, layout, layout.fields[i], "is not text")
    for i in layout.optional_text:
        if row[i] is not None and not isinstance(row[i], str):
            raise _corrupt(row, layout, layout.fields[i], "is not text")
    for i in layout.numbers:
        number = row[i]
        if number is not None:
            if isinstance(number, bool) or not isinstance(number, int | float):
                raise _corrupt(row, layout, layout.fields[i], "is not a number")
            row[i] = float(number)
    if layout.code is not None:
        code = row[layout.code]
        if code is not None and not isinstance(code, int):
            raise _corrupt(row, layout, "http_status_code", "is not an integer")


def _check_values(row: list[Any], layout: _Layout, json_fields: frozenset[str]) -> None:
    percent = row[layout.percent]
    if percent is not None and not 0 <= percent <= 100:
        raise _corrupt(row, layout, "percent_complete", "is out of 0..100")
    if layout.cancelable is not None:
        if row[layout.cancelable] not in (0, 1, True, False):
            raise _corrupt(row, layout, "cancelable", "is not 0 or 1")
        row[layout.cancelable] = bool(row[layout.cancelable])
    try:
        row[layout.status] = normalize_status(row[layout.status])
    except InvalidInput:
        problem = f"holds {str(row[layout.status])[:40]!r}, not a status"
        raise _corrupt(row, layout, "status", problem) from None
    for column in json_fields:
        i = layout.json[column]
        row[i] = _json_object(row[i], column, row, layout)
    error = row[layout.error]
    if error is not None and not isinstance(error.get("code"), str):
        raise _corrupt(row, layout, "error", "has no error code")


def _corrupt(row: list[Any], layout: _Layout, column: str, problem: str) -> CorruptRecord:
    name = row[layout.operation_id]
    name = name if isinstance(name, str) else "?"
    sub = row[layout.subscription_id]
    return CorruptRecord(
        f"The stored operation '{name}' (subscription {sub}) is damaged: column "
        f"'{column}' {problem}. It is kept as it is; repair or delete the row.",
        operation_id=name,
    )


def _json_object(value: Any, column: str, row: list[Any], layout: _Layout) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, str | bytes):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise _corrupt(row, layout, column, "is not valid JSON") from None
    if not isinstance(value, dict):
        raise _corrupt(row, layout, column, "is not a JSON object")
    return value

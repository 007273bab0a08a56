"""Reading stored operations back, checked: a damaged or hand-edited row is reported, never
crashed on.

A backend hands :func:`operation_from_record` the stored values by field name (JSON columns
still as text). Every value is checked for the type the domain relies on, and the status is
brought to its canonical spelling (a hand-written ``succeeded`` is still terminal). Anything
else raises :class:`~opstatus.errors.CorruptRecord` naming the operation and the column.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from ..errors import CorruptRecord, InvalidInput
from ..models import Operation, normalize_status

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


_FIELDS = tuple(f.name for f in dataclasses.fields(Operation))
_INDEX = {name: i for i, name in enumerate(_FIELDS)}
_TEXT_AT = tuple(_INDEX[c] for c in _TEXT)
_OPTIONAL_TEXT_AT = tuple(_INDEX[c] for c in _OPTIONAL_TEXT)
_NUMBERS_AT = tuple(_INDEX[c] for c in ("percent_complete", "lease_seconds"))
_STATUS, _PERCENT, _CODE, _CANCELABLE, _ERROR = (
    _INDEX[c] for c in ("status", "percent_complete", "http_status_code", "cancelable", "error")
)


def operation_from_record(values: dict[str, Any], json_fields: frozenset[str]) -> Operation:
    """From the stored values by column name (any order, missing ones are damage)."""
    row = [values.get(name) for name in _FIELDS]
    if set(values) - set(_FIELDS) or len(values) != len(_FIELDS):
        unknown = sorted(set(values) ^ set(_FIELDS))
        raise _corrupt(row, "*", f"does not fit (columns {', '.join(unknown)})")
    return operation_from_row(row, json_fields)


def operation_from_row(row: list[Any], json_fields: frozenset[str]) -> Operation:
    """From the stored values in the order of Operation's fields (changed in place).

    Position by position rather than through a dict: this runs on every status read.
    """
    _check_types(row)
    return _finish(row, json_fields)


def _check_types(row: list[Any]) -> None:
    for i in _TEXT_AT:
        if not isinstance(row[i], str):
            raise _corrupt(row, _FIELDS[i], "is not text")
    for i in _OPTIONAL_TEXT_AT:
        if row[i] is not None and not isinstance(row[i], str):
            raise _corrupt(row, _FIELDS[i], "is not text")
    for i in _NUMBERS_AT:
        number = row[i]
        if number is not None:
            if isinstance(number, bool) or not isinstance(number, int | float):
                raise _corrupt(row, _FIELDS[i], "is not a number")
            row[i] = float(number)


def _finish(row: list[Any], json_fields: frozenset[str]) -> Operation:
    percent = row[_PERCENT]
    if percent is not None and not 0 <= percent <= 100:
        raise _corrupt(row, "percent_complete", "is out of 0..100")
    code = row[_CODE]
    if code is not None and not isinstance(code, int):
        raise _corrupt(row, "http_status_code", "is not an integer")
    if row[_CANCELABLE] not in (0, 1, True, False):
        raise _corrupt(row, "cancelable", "is not 0 or 1")
    row[_CANCELABLE] = bool(row[_CANCELABLE])
    try:
        row[_STATUS] = normalize_status(row[_STATUS])
    except InvalidInput:
        raise _corrupt(row, "status", f"holds {str(row[_STATUS])[:40]!r}, not a status") from None
    for column in json_fields:
        i = _INDEX[column]
        row[i] = _json_object(row[i], column, row)
    error = row[_ERROR]
    if error is not None and not isinstance(error.get("code"), str):
        raise _corrupt(row, "error", "has no error code")
    return Operation(*row)


def _corrupt(row: list[Any], column: str, problem: str) -> CorruptRecord:
    name = row[_INDEX["operation_id"]]
    name = name if isinstance(name, str) else "?"
    sub = row[_INDEX["subscription_id"]]
    return CorruptRecord(
        f"The stored operation '{name}' (subscription {sub}) is damaged: column "
        f"'{column}' {problem}. It is kept as it is; repair or delete the row.",
        operation_id=name,
    )


def _json_object(value: Any, column: str, row: list[Any]) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, str | bytes):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise _corrupt(row, column, "is not valid JSON") from None
    if not isinstance(value, dict):
        raise _corrupt(row, column, "is not a JSON object")
    return value

"""Reading stored operations back, checked: a damaged or hand-edited row is reported, never
crashed on.

A backend hands :func:`operation_from_record` the stored values by field name (JSON columns
still as text). Every value is checked for the type the domain relies on, and the status is
brought to its canonical spelling (a hand-written ``succeeded`` is still terminal). Anything
else raises :class:`~opstatus.errors.CorruptRecord` naming the operation and the column.
"""

from __future__ import annotations

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


def operation_from_record(values: dict[str, Any], json_fields: frozenset[str]) -> Operation:
    key = values.get("operation_id")
    name = key if isinstance(key, str) else "?"

    def corrupt(column: str, problem: str) -> CorruptRecord:
        sub = values.get("subscription_id")
        return CorruptRecord(
            f"The stored operation '{name}' (subscription {sub}) is damaged: column "
            f"'{column}' {problem}. It is kept as it is; repair or delete the row.",
            operation_id=name,
        )

    _check_scalars(values, corrupt)
    try:
        values["status"] = normalize_status(values.get("status"))
    except InvalidInput:
        raise corrupt("status", f"holds {str(values.get('status'))[:40]!r}, not a status") from None
    for column in json_fields:
        values[column] = _json_object(values.get(column), column, corrupt)
    error = values.get("error")
    if error is not None and not isinstance(error.get("code"), str):
        raise corrupt("error", "has no error code")
    try:
        return Operation(**values)
    except TypeError as exc:  # a column this opstatus does not know, or one missing
        raise corrupt("*", f"does not fit ({exc})") from None


def _check_scalars(values: dict[str, Any], corrupt: Any) -> None:
    for column in _TEXT:
        if not isinstance(values.get(column), str):
            raise corrupt(column, "is not text")
    for column in _OPTIONAL_TEXT:
        if values.get(column) is not None and not isinstance(values[column], str):
            raise corrupt(column, "is not text")
    for column in ("percent_complete", "lease_seconds"):
        number = values.get(column)
        if number is not None:
            if isinstance(number, bool) or not isinstance(number, int | float):
                raise corrupt(column, "is not a number")
            values[column] = float(number)
    percent = values.get("percent_complete")
    if percent is not None and not 0 <= percent <= 100:
        raise corrupt("percent_complete", "is out of 0..100")
    code = values.get("http_status_code")
    if code is not None and not isinstance(code, int):
        raise corrupt("http_status_code", "is not an integer")
    if values.get("cancelable") not in (0, 1, True, False):
        raise corrupt("cancelable", "is not 0 or 1")
    values["cancelable"] = bool(values["cancelable"])


def _json_object(value: Any, column: str, corrupt: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, str | bytes):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise corrupt(column, "is not valid JSON") from None
    if not isinstance(value, dict):
        raise corrupt(column, "is not a JSON object")
    return value

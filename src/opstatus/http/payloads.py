"""Request bodies of the producer API: bounded reading, then strict parsing into the domain.

Unknown properties are refused (``target`` names them) so that a producer's typo
(``percentcomplete``) fails loudly instead of being silently ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from starlette.requests import Request

from ..errors import InvalidInput
from ..events import parse_types
from ..lifecycle import validate_kind, validate_lease_seconds
from ..models import (
    OperationDraft,
    OperationUpdate,
    normalize_status,
    parse_time,
    validate_error,
    validate_http_status_code,
    validate_json_object,
    validate_percent,
)
from ..webhooks import check_url
from .errors import RequestTooLarge, UnsupportedMediaType

T = TypeVar("T")

CREATE_FIELDS = (
    "status",
    "percentComplete",
    "startTime",
    "endTime",
    "properties",
    "error",
    "httpStatusCode",
    "kind",
    "cancelable",
    "leaseSeconds",
    "callbackUrl",
    "callbackEvents",
)
UPDATE_FIELDS = (
    "status",
    "percentComplete",
    "resetProgress",
    "endTime",
    "properties",
    "error",
    "httpStatusCode",
    "leaseSeconds",
)


async def read_json_object(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object; an empty body is ``{}``."""
    content_type = request.headers.get("content-type", "application/json")
    if content_type.split(";")[0].strip().lower() not in ("application/json", "text/json", ""):
        # Not echoed: no header value is ever repeated back in an error.
        raise UnsupportedMediaType(
            "The request's content type is not supported; send application/json."
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
    if not body.strip():
        return {}
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"The request content was not valid JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise InvalidInput("The request content must be a JSON object.")
    return data


def _too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(f"The request body is larger than the limit of {limit} bytes.")


def _check_fields(data: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for key in data:
        if key not in allowed:
            shown = "".join(c if c.isprintable() else "?" for c in key[:80])
            raise InvalidInput(
                f"The request content has an unknown property '{shown}'. Known properties are: "
                f"{', '.join(allowed)}.",
                target=shown,
            )


def _error(value: object) -> dict[str, Any]:
    # Accept the flat ErrorDetail and, for producers copying the swagger, the nested form.
    if isinstance(value, dict) and set(value) == {"error"}:
        value = value["error"]
    return validate_error(value)


def _properties(value: object) -> dict[str, Any]:
    return validate_json_object(value, "properties")


def parse_create(
    data: dict[str, Any],
    subscription_id: str,
    namespace: str,
    location: str,
    operation_id: str,
    allow_http: bool = False,
) -> OperationDraft:
    """``allow_http``: whether ``callbackUrl`` may be a plain http URL (the server's
    ``--webhook-allow-http``)."""
    _check_fields(data, CREATE_FIELDS)
    if "callbackEvents" in data and "callbackUrl" not in data:
        raise InvalidInput("'callbackEvents' needs a 'callbackUrl'.", target="callbackEvents")
    return OperationDraft(
        subscription_id=subscription_id,
        operation_id=operation_id,
        namespace=namespace,
        location=location,
        status=normalize_status(data["status"]) if "status" in data else "InProgress",
        start_time=parse_time(data["startTime"], "startTime") if "startTime" in data else None,
        end_time=parse_time(data["endTime"], "endTime") if "endTime" in data else None,
        percent_complete=(
            validate_percent(data["percentComplete"]) if "percentComplete" in data else None
        ),
        properties=_properties(data["properties"]) if "properties" in data else None,
        error=_error(data["error"]) if "error" in data else None,
        http_status_code=_optional(data, "httpStatusCode", validate_http_status_code),
        kind=_optional(data, "kind", validate_kind),
        cancelable=_cancelable(data.get("cancelable", True)),
        lease_seconds=_optional(data, "leaseSeconds", validate_lease_seconds),
        callback_url=(
            check_url(data["callbackUrl"], allow_http, "callbackUrl")
            if "callbackUrl" in data
            else None
        ),
        callback_events=parse_types(data.get("callbackEvents"), "callbackEvents"),
    )


def _optional(data: dict[str, Any], name: str, validate: Callable[[object], T]) -> T | None:
    return validate(data[name]) if name in data else None


def _cancelable(value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput("'cancelable' must be true or false.", target="cancelable")
    return value


def parse_update(data: dict[str, Any]) -> OperationUpdate:
    _check_fields(data, UPDATE_FIELDS)
    reset = data.get("resetProgress", False)
    if not isinstance(reset, bool):
        raise InvalidInput("'resetProgress' must be true or false.", target="resetProgress")
    return OperationUpdate(
        status=normalize_status(data["status"]) if "status" in data else None,
        percent_complete=(
            validate_percent(data["percentComplete"]) if "percentComplete" in data else None
        ),
        reset_progress=reset,
        end_time=parse_time(data["endTime"], "endTime") if "endTime" in data else None,
        properties=_properties(data["properties"]) if "properties" in data else None,
        error=_error(data["error"]) if "error" in data else None,
        http_status_code=_optional(data, "httpStatusCode", validate_http_status_code),
        lease_seconds=_optional(data, "leaseSeconds", validate_lease_seconds),
    )

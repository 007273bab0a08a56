"""Domain errors to ARM's error envelope, in one place: no handler builds an error by hand.

Every error is ``{"error": {"code", "message"[, "target"]}}``. Only 503 carries Retry-After:
azure-core retries any 4xx that has one, which would turn a final answer into a retry loop.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from .. import errors

log = logging.getLogger("opstatus.http")

CHALLENGE_AUTHORITY = "https://login.microsoftonline.com/common"


class RequestTooLarge(errors.OpstatusError):
    """The request body is larger than the server accepts."""

    code = "RequestEntityTooLarge"


class UnsupportedMediaType(errors.OpstatusError):
    """The request body is not JSON."""

    code = "UnsupportedMediaType"


class RequestTimeout(errors.OpstatusError):
    """The client did not send its request in time."""

    code = "RequestTimeout"


class TooManyRequests(errors.OpstatusError):
    """The caller is over its request rate; Retry-After says when to come back."""

    code = "TooManyRequests"


class NotAcceptable(errors.OpstatusError):
    """The request's Accept names no media type the resource answers in."""

    code = "NotAcceptable"


class ServerBusy(errors.OpstatusError):
    """The server holds as many long-lived requests (event streams) as it may; 503 with
    Retry-After."""

    code = "ServerBusy"


STATUS_BY_ERROR: list[tuple[type[errors.OpstatusError], int]] = [
    (errors.InvalidInput, 400),
    (errors.NotAuthenticated, 401),
    (errors.NotAuthorized, 403),
    (errors.OperationNotFound, 404),
    (errors.Conflict, 409),
    (NotAcceptable, 406),
    (RequestTimeout, 408),
    (errors.PreconditionFailed, 412),
    (RequestTooLarge, 413),
    (UnsupportedMediaType, 415),
    (TooManyRequests, 429),
    (errors.StoreError, 503),
    (ServerBusy, 503),
]


def status_of(exc: errors.OpstatusError) -> int:
    for cls, status in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return status
    return 500


def error_response(
    status: int,
    code: str,
    message: str,
    target: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    detail: dict[str, Any] = {"code": code, "message": message}
    if target:
        detail["target"] = target
    return Response(
        orjson.dumps({"error": detail}),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


async def handle_opstatus_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.OpstatusError)
    return opstatus_error_response(exc)


def opstatus_error_response(exc: errors.OpstatusError) -> Response:
    """A domain error as ARM's envelope, with the headers its status needs."""
    status = status_of(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, errors.NotAuthenticated):
        headers["WWW-Authenticate"] = (
            f'Bearer authorization_uri="{CHALLENGE_AUTHORITY}", error="invalid_token", '
            f'error_description="{exc.challenge}"'
        )
    elif isinstance(exc, ServerBusy):
        headers["Retry-After"] = "5"
    elif isinstance(exc, errors.CorruptRecord):
        headers["Retry-After"] = "1"
        log.error("corrupt record: %s", exc.message)
        exc = errors.StoreError(
            f"The operation '{exc.operation_id}' cannot be served: its stored record is "
            "damaged. The server has logged the details for its operator."
        )
    elif isinstance(exc, errors.StoreError):
        headers["Retry-After"] = "1"
        log.error("store unavailable, request refused with 503: %s", exc.message)
        exc = errors.StoreError("The service is temporarily unavailable. Retry the request.")
    return error_response(status, exc.code, exc.message, exc.target, headers)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    """Routing errors (no such path, wrong method) in the same envelope as everything else."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        allow = (exc.headers or {}).get("Allow", "")
        return error_response(
            405,
            "MethodNotAllowed",
            f"The HTTP method '{request.method}' is not supported for this resource.",
            headers={"Allow": allow} if allow else None,
        )
    if exc.status_code == 404:
        return error_response(404, "NotFound", "The requested path does not exist.")
    return error_response(exc.status_code, "BadRequest", str(exc.detail))


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(
        500,
        "InternalServerError",
        "The server encountered an internal error. Please retry the request.",
    )

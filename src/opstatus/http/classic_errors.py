"""Domain errors to the classic XML error, in one place: no classic handler builds one by hand.

The classic API has its own codes and fixed messages (MSDN ee460801), and answers an
authentication failure with 403, not ARM's 401 with a challenge. Where the classic form has
a code for the situation it is used, with its documented message when that message is all
the classic API said; where the domain's message says more (which field is wrong, which
role is missing), that message is kept. Errors the classic form has no code for keep ARM's
status and the domain's code.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from .. import errors
from .classic_xml import MEDIA_TYPE, error_xml
from .errors import status_of

log = logging.getLogger("opstatus.http")

Endpoint = Callable[[Request], Awaitable[Response]]


class VersionHeaderInvalid(errors.InvalidInput):
    """The x-ms-version header is missing, malformed, or older than the classic API."""

    code = "MissingOrIncorrectVersionHeader"


VERSION_MESSAGE = "The versioning header is not specified or was specified incorrectly."
#: The classic service's first sentence; it then said to check a management certificate,
#: where opstatus says what is wrong with the bearer token it takes instead.
AUTHENTICATION_PREFIX = "The server failed to authenticate the request."
NOT_FOUND_MESSAGE = "The specified resource does not exist."
VERB_MESSAGE = (
    "The HTTP verb specified was not recognized by the server or isn't valid for this resource."
)
INTERNAL_MESSAGE = "The server encountered an internal error. Please retry the request."
BUSY_MESSAGE = (
    "The server (or an internal component) is currently unavailable to receive requests. "
    "Please retry your request."
)

#: Domain error -> (HTTP status, classic code, the documented message or None for the domain's).
#: First match wins, so subclasses come before their bases.
CLASSIC_ERRORS: list[tuple[type[errors.OpstatusError], int, str, str | None]] = [
    (VersionHeaderInvalid, 400, "MissingOrIncorrectVersionHeader", VERSION_MESSAGE),
    (errors.InvalidInput, 400, "BadRequest", None),
    (errors.NotAuthenticated, 403, "AuthenticationFailed", None),
    (errors.NotAuthorized, 403, "AuthenticationFailed", None),
    (errors.OperationNotFound, 404, "ResourceNotFound", NOT_FOUND_MESSAGE),
    (errors.Conflict, 409, "ConflictError", None),
    (errors.StoreError, 503, "ServerBusy", BUSY_MESSAGE),
]


def classic_error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    return Response(error_xml(code, message), status, headers=headers, media_type=MEDIA_TYPE)


def _classify(exc: errors.OpstatusError) -> tuple[int, str, str]:
    for cls, status, code, message in CLASSIC_ERRORS:
        if isinstance(exc, cls):
            if isinstance(exc, errors.NotAuthenticated):
                reason = exc.message.removeprefix("Authentication failed. ")
                return status, code, f"{AUTHENTICATION_PREFIX} {reason}"
            return status, code, message or exc.message
    return status_of(exc), exc.code, exc.message


def response_for(exc: errors.OpstatusError) -> Response:
    status, code, message = _classify(exc)
    headers = None
    if isinstance(exc, errors.StoreError):
        log.error("store unavailable: %s", exc.message)
        headers = {"Retry-After": "1"}
    return classic_error_response(status, code, message, headers)


def speaks_classic(endpoint: Endpoint) -> Endpoint:
    """Wrap a classic endpoint so that whatever goes wrong is answered in the classic form."""

    async def classic_endpoint(request: Request) -> Response:
        try:
            return await endpoint(request)
        except errors.OpstatusError as exc:
            return response_for(exc)
        except HTTPException as exc:
            if exc.status_code != 405:
                raise
            allow = (exc.headers or {}).get("Allow")
            headers = {"Allow": allow} if allow else None
            return classic_error_response(400, "InvalidHttpVerb", VERB_MESSAGE, headers)
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.url.path)
            return classic_error_response(500, "InternalError", INTERNAL_MESSAGE)

    return classic_endpoint

"""The access log: when on (``serve --access-log``), one JSON line per request on logger
``opstatus.access``, in the audit log's form (``time``, ``principal``, ``requestId``...).

A line holds the method, the path (never the query string, which may carry a continuation
token; the ``api-version`` is kept apart), the status answered, how long the answer took, the
principal (``issuer|claim|id``, as in the audit log; null without a valid token), the
``x-ms-request-id`` the caller saw and the client's address. Like the audit log, it never
holds a token, a header value or a body. Refusals (401, 403, 429...) are logged like any
answer.

Status reads are counted too: with the access log on, the fast reads are off and the app
answers every request (see :func:`.app.create_app` and docs/operations.md for the cost).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .audit import file_handler
from .guard import client_address

access_log = logging.getLogger("opstatus.access")
#: ``--access-log`` value that sends the lines to standard error.
STDERR = "-"


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def noting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting)
        except BaseException:
            status = status or 500
            raise
        finally:
            record(scope, status or 499, time.perf_counter() - started)


def record(scope: Scope, status: int, seconds: float) -> None:
    """Write one access line (a JSON object) at INFO."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    state: dict[str, Any] = scope.get("state") or {}
    principal = state.get("principal")
    line = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "method": scope["method"],
        "path": scope["path"][:1000],
        "apiVersion": _api_version(scope.get("query_string", b"")),
        "status": status,
        "durationMs": round(seconds * 1000, 1),
        "principal": principal.key if principal is not None else None,
        "requestId": state.get("request_id"),
        "client": client_address(scope),
    }
    access_log.info(orjson.dumps(line).decode())


def _api_version(query: bytes) -> str | None:
    for pair in query.split(b"&"):
        name, _, value = pair.partition(b"=")
        if name.lower() == b"api-version":
            return value[:40].decode("latin-1")
    return None


def configure_access(target: str | None) -> None:
    """For the server's life: lines to the file ``target`` (created 0600), to standard error
    for ``-``, or nowhere for None (the default)."""
    logger = access_log
    logger.propagate = False
    if target is None:
        logger.setLevel(logging.CRITICAL + 1)
        return
    logger.addHandler(file_handler(None if target == STDERR else Path(target)))
    logger.setLevel(logging.INFO)

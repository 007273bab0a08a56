"""The status read, answered without the framework.

Clients poll one operation's status thousands of times for every write, so that GET is the
request the server answers most. Here it is answered in plain ASGI, behind the guard (which
has verified the token) and before Starlette's exception middleware and router: no route
search, no Request or Response object. The checks and the document are the ones the
framework's handler uses (:func:`.arm.target_of`, :meth:`OperationService.get`,
:func:`.arm.document`), so both paths answer alike; tests/http/test_status_read.py holds
them to that.

A request this path does not fully understand goes on to the app, which answers it as it
always has: a missing or refused token (the guard's error), a Prefer header (waiting, full
detail), an api-version that is not a single plain value, any method but GET.
"""

from __future__ import annotations

import re

from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import OpstatusError
from ..models import Operation
from ..providers import Provider
from .arm import document, operation_headers, target_of
from .context import AppContext
from .errors import opstatus_error_response

_PLAIN_API_VERSION = re.compile(rb"api-version=([A-Za-z0-9.\-]{1,64})\Z")

#: What a status read needs from its request: the path's parameters and the api-version.
Request = tuple[dict[str, str], str]


class StatusRead:
    """Recognising a status read and writing its answer: shared by the middleware below and
    the protocol's inline lane (:mod:`.inline`)."""

    def __init__(self, ctx: AppContext, route: Route) -> None:
        self.ctx = ctx
        #: The status item's route: its pattern decides what is a status read, and it is
        #: left in the scope so that the metrics label the request as the router would.
        self.route = route
        self._match = route.path_regex.match

    def parse(self, path: str, query: bytes) -> Request | None:
        """None unless ``path`` is an operation's status and the query a plain api-version."""
        match = self._match(path)
        version = _PLAIN_API_VERSION.match(query)
        if match is None or version is None:
            return None
        return match.groupdict(), version.group(1).decode()

    def parse_url(self, url: bytes) -> Request | None:
        """:meth:`parse` on a raw request target; None for anything the router would have
        to decode first (percent-escapes, non-ASCII) or an absolute-form URL."""
        path, _, query = url.partition(b"?")
        if not path.startswith(b"/") or b"%" in path or b"#" in url or not path.isascii():
            return None
        return self.parse(path.decode("ascii"), query)

    def respond(self, op: Operation, provider: Provider) -> tuple[list[tuple[bytes, bytes]], bytes]:
        """The 200's headers (before the ARM ones) and body."""
        body = document(self.ctx, op, provider, False)
        headers = [
            (b"content-length", b"%d" % len(body)),
            (b"content-type", b"application/json"),
        ]
        for name, value in operation_headers(self.ctx, op).items():
            headers.append((name.lower().encode(), value.encode()))
        return headers, body


class StatusReadMiddleware:
    def __init__(self, app: ASGIApp, read: StatusRead) -> None:
        self.app = app
        self.read = read

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            request = self.read.parse(scope["path"], scope["query_string"])
            if request is not None and await self.answer(scope, receive, send, request):
                return
        await self.app(scope, receive, send)

    async def answer(self, scope: Scope, receive: Receive, send: Send, request: Request) -> bool:
        """Answer the read and return True, or return False to leave it to the app."""
        state = scope.get("state")
        principal = state.get("principal") if state else None
        if principal is None or any(name == b"prefer" for name, _ in scope["headers"]):
            return False
        ctx = self.read.ctx
        scope["route"] = self.read.route
        params, api_version = request
        try:
            target = target_of(ctx, principal, params, api_version, "read", "read")
            op = await ctx.service.get(target.ref)
        except OpstatusError as exc:
            await opstatus_error_response(exc)(scope, receive, send)
            return True
        headers, body = self.read.respond(op, target.provider)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return True

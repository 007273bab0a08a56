"""The guard in front of every route: who is calling, may they call now, and the audit trail.

Plain ASGI middleware, because it sits on the hot read path (a few microseconds there: one
pass over the headers, a cached token lookup, a token-bucket update). Per request it:

1. verifies the bearer token (cached) and, for a token of an external identity provider,
   reads the principal's role assignments from the store, so that a role change takes
   effect on the next request on every instance. The outcome, a Principal or the error to
   answer with, is left in the request state for :func:`principal_of`: handlers still
   check in ARM's order (401, 400, 403, ...), the guard answers nothing itself here;
2. spends a token of the caller's bucket (the principal, or without a valid token the
   client address): over the limit, 429 ``TooManyRequests`` with Retry-After, held back
   ``reject_delay`` seconds so that a flood costs the server little;
3. refuses a Host the server does not answer for (400, see :mod:`.hosts`), a body over the
   size limit (413) and a body that is not sent in time (408);
4. writes one audit line per write request, whatever its outcome, before its answer leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import re
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..auth import Principal
from ..errors import OpstatusError
from . import audit
from .classic_errors import classic_error_response
from .context import AppContext
from .errors import RequestTimeout, RequestTooLarge, error_response
from .hosts import HOST_MESSAGE, HOST_NOT_ALLOWED
from .limits import CHARGED


def principal_of(request: Request) -> Principal:
    """The verified caller of a request, with its roles; raises the 401 (or 503) to answer."""
    state: dict[str, Any] = request.scope.get("state") or {}
    principal: Principal | None = state.get("principal")
    if principal is not None:
        return principal
    error: OpstatusError | None = state.get("auth_error")
    if error is not None:
        raise error
    ctx: AppContext = request.app.state.ctx
    # No Authorization header (raises the 401), or an app used without the guard; then an
    # external principal has no roles and is refused: closed, not open.
    return ctx.verifier.authenticate(request.headers.get("authorization"))


def too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(f"The request body is larger than the limit of {limit} bytes.")


class GuardMiddleware:
    def __init__(self, app: ASGIApp, ctx: AppContext) -> None:
        self.app = app
        self.ctx = ctx
        security = ctx.settings.security
        self.limiter = ctx.limiter
        self.max_body = ctx.settings.max_body_bytes
        self.body_timeout = security.body_timeout
        self.reject_delay = security.reject_delay
        self.max_held = security.max_held_rejections
        self.held = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        authorization, length, has_body = _scan(scope["headers"])
        state: dict[str, Any] = scope.setdefault("state", {})
        principal = None
        if authorization is not None:
            try:
                principal = await self.identify(authorization.decode("latin-1"))
            except OpstatusError as exc:
                state["auth_error"] = exc
            else:
                state["principal"] = principal
        if scope["method"] in audit.WRITE_METHODS:
            await self.audited(scope, receive, send, principal, length, has_body)
            return
        refusal = await self.refusal(scope, principal, length)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        with contextlib.suppress(ClientDisconnect):  # gone mid-body: no one to answer
            await self.app(scope, self.bounded(receive) if has_body else receive, send)

    async def identify(self, authorization: str) -> Principal:
        principal = await self.ctx.verifier.authenticate_async(authorization)
        if principal.external:
            roles = await self.ctx.store.list_role_assignments(principal.id)
            principal = principal.with_roles(tuple(roles))
        return principal

    async def refusal(
        self, scope: Scope, principal: Principal | None, length: bytes | None
    ) -> ASGIApp | None:
        """The answer that refuses the request (429, held back; 413), or None: it may go on."""
        wait, refusal = self.check(scope, principal, length)
        if wait:
            return await self.too_many(scope, wait)
        return refusal

    def check(
        self, scope: Scope, principal: Principal | None, length: bytes | None
    ) -> tuple[float, ASGIApp | None]:
        """``(seconds to wait, None)`` when over the rate (429), ``(0, answer)`` for a Host
        the server does not answer for (400) or a declared body over the limit (413), else
        ``(0, None)``: the request may proceed."""
        if self.limiter is not None and not scope.get("state", {}).get(CHARGED):
            key = principal.key if principal is not None else client_address(scope)
            wait = self.limiter.take(key)
            if wait:
                return wait, None
        if not self.ctx.hosts.allows(scope):
            return 0.0, refuse(scope, 400, HOST_NOT_ALLOWED, HOST_MESSAGE)
        if length is not None and length.isdigit() and int(length) > self.max_body:
            exc = too_large(self.max_body)
            return 0.0, refuse(scope, 413, exc.code, exc.message)
        return 0.0, None

    async def too_many(self, scope: Scope, wait: float) -> ASGIApp:
        if self.reject_delay > 0 and self.held < self.max_held:
            self.held += 1
            try:
                # Jittered, so that a flood's held connections do not come back in lockstep
                # and spend a refilled bucket in one burst.
                await asyncio.sleep(self.reject_delay * (0.5 + random.random()))
            finally:
                self.held -= 1
        seconds = max(1, math.ceil(wait))
        assert self.limiter is not None
        return refuse(
            scope,
            429,
            "TooManyRequests",
            f"The caller has sent more than {self.limiter.rate:g} requests per second. "
            f"Retry after {seconds} seconds.",
            headers={"Retry-After": str(seconds)},
        )

    def bounded(self, receive: Receive) -> Receive:
        """``receive`` that enforces the body size and the time to send the body."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout
        limit, timeout = self.max_body, self.body_timeout
        received = 0
        complete = False

        async def guarded() -> Message:
            nonlocal received, complete
            if complete:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise RequestTimeout(
                    f"The request body was not received within {timeout:g} seconds."
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise too_large(limit)
                complete = not message.get("more_body", False)
            return message

        return guarded

    async def audited(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        principal: Principal | None,
        length: bytes | None,
        has_body: bool,
    ) -> None:
        status = 500
        created: str | None = None
        recorded = False

        def record() -> None:
            nonlocal recorded
            recorded = True
            action, subscription, operation_id = audit.write_target(scope["method"], scope["path"])
            state = scope.get("state") or {}
            audit.record(
                action=action,
                principal=principal.key if principal is not None else None,
                subscription=subscription,
                operation_id=operation_id or created,
                result=status,
                request_id=state.get("request_id"),
                method=scope["method"],
                client=client_address(scope),
            )

        async def send_and_note(message: Message) -> None:
            nonlocal status, created
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", ()):
                    if name == b"azure-asyncoperation":
                        created = audit.operation_from_link(value)
                record()  # before the answer leaves: no client sees a write not yet audited
            await send(message)

        try:
            refusal = await self.refusal(scope, principal, length)
            if refusal is not None:
                await refusal(scope, receive, send_and_note)
                return
            try:
                await self.app(scope, self.bounded(receive) if has_body else receive, send_and_note)
            except ClientDisconnect:
                status = 499  # nginx's "client closed request": nothing was answered
        finally:
            if not recorded:  # nothing was answered: the app failed, or the client left
                record()


def _scan(headers: list[tuple[bytes, bytes]]) -> tuple[bytes | None, bytes | None, bool]:
    """``(authorization, content-length, has a body)`` in one pass over the headers."""
    authorization = length = None
    chunked = False
    for name, value in headers:
        if name == b"authorization":
            authorization = value
        elif name == b"content-length":
            length = value
        elif name == b"transfer-encoding":
            chunked = True
    return authorization, length, chunked or (length is not None and length != b"0")


_CLASSIC_PATH = re.compile(r"/[^/]+/operations/[^/]+\Z", re.IGNORECASE)


def refuse(
    scope: Scope, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> ASGIApp:
    """The guard's own answers in the form the path speaks: the classic XML error on the
    classic Service Management path (its clients parse nothing else), ARM's envelope elsewhere."""
    if _CLASSIC_PATH.match(scope.get("path", "")):
        return classic_error_response(status, code, message, headers)
    return error_response(status, code, message, headers=headers)


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"

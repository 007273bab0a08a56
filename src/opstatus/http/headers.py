"""ARM's common response headers, added to every response, errors included.

``x-ms-request-id`` is generated per request; ``x-ms-correlation-request-id`` is echoed or
generated; ``x-ms-client-request-id`` is echoed when the caller asks with
``x-ms-return-client-request-id: true``; ``Date`` in RFC 1123 form. Written as plain ASGI
middleware because it sits on the hot read path.
"""

from __future__ import annotations

import random
import re
import time
from email.utils import formatdate
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..logs import request_id as request_id_var

_SAFE_ECHO = re.compile(rb"[\x21-\x7e]{1,200}\Z")


class _DateHeader:
    """Formatting a date costs more than the rest of the headers; do it once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def value(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._value = formatdate(now, usegmt=True).encode()
        return self._value


#: The RFC 1123 date of now, for the Date header.
http_date = _DateHeader().value

_random_bits = random.getrandbits
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def new_request_id() -> bytes:
    """A random (version 4) UUID for tracing, formatted directly: a fifth of ``uuid.uuid4``'s
    cost. Unique, not secret, so from ``random`` (reseeded in every forked worker) rather
    than a system call per request."""
    h = f"{_random_bits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}".encode()


def arm_headers(request_headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The ARM headers of the response to a request with these headers, Date excepted;
    ``x-ms-request-id`` first."""
    request_id = new_request_id()
    correlation_id = request_id
    client_request_id = None
    return_client_id = False
    for name, value in request_headers:
        if name == b"x-ms-correlation-request-id" and _SAFE_ECHO.match(value):
            correlation_id = value
        elif name == b"x-ms-client-request-id" and _SAFE_ECHO.match(value):
            client_request_id = value
        elif name == b"x-ms-return-client-request-id":
            return_client_id = value.lower() == b"true"
    extra = [(b"x-ms-request-id", request_id), (b"x-ms-correlation-request-id", correlation_id)]
    if return_client_id and client_request_id is not None:
        extra.append((b"x-ms-client-request-id", client_request_id))
    return extra


class ArmHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = arm_headers(scope["headers"])
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = extra[0][1].decode()
        token = request_id_var.set(state["request_id"])  # for the log lines of this request

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(extra)
                headers.append((b"date", http_date()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            request_id_var.reset(token)

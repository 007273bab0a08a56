"""Status reads answered inline, by the HTTP protocol, without an ASGI request.

A status GET by a caller whose token was verified before needs nothing awaited when the
store reads without waiting (SQLite, memory: :class:`~opstatus.stores.base.ImmediateReads`).
Such a request is answered where its head is parsed (:mod:`.protocol`), in one write: no
ASGI scope, task or messages, and no middleware stack. That is most of what a status read
costs, and status reads are most of what the server answers.

So this lane carries the middlewares' duties itself, through the functions they use: the
guard's token cache and rate limit, the ARM headers, the request metrics, and the status
read's checks and document (:mod:`.status_read`). It answers only the plain success: any
other outcome (a token to verify, a 4xx, a Prefer header, an expired or lapsed operation,
a store error) returns None and the request takes the ordinary path, which answers it as
it always has. tests/http/test_inline.py holds both paths to the same answers.
"""

from __future__ import annotations

import time

from uvicorn.protocols.http.httptools_impl import STATUS_LINE

from ..errors import OpstatusError
from ..metrics import Metrics
from .arm import target_of
from .context import AppContext
from .headers import arm_headers, http_date
from .status_read import StatusRead

#: Request headers that send a request the ordinary way: a body, or preferences to honour.
_ORDINARY = frozenset({b"prefer", b"content-length", b"transfer-encoding"})
_CLOSE = (b"connection", b"close")


class InlineStatusReads:
    def __init__(self, ctx: AppContext, read: StatusRead, metrics: Metrics) -> None:
        self.ctx = ctx
        self.read = read
        self.metrics = metrics
        self.template = read.route.path

    def answer(
        self, url: bytes, headers: list[tuple[bytes, bytes]], keep_alive: bool
    ) -> bytes | None:
        """The whole HTTP response to ``GET url``, or None to answer it the ordinary way."""
        start = time.perf_counter()
        request = self.read.parse_url(url)
        if request is None:
            return None
        authorization = None
        for name, value in headers:
            if name == b"authorization":
                authorization = value
            elif name in _ORDINARY:
                return None
        if authorization is None:
            return None
        ctx = self.ctx
        principal = ctx.verifier.known(authorization.decode("latin-1"))
        if principal is None or principal.external:  # to verify, or roles to read: await
            return None
        if ctx.limiter is not None and ctx.limiter.take(principal.key):
            return None  # the guard answers 429, the same way every time
        params, api_version = request
        try:
            target = target_of(ctx, principal, params, api_version, "read", "read")
            op = ctx.service.read_now(target.ref)
        except OpstatusError:
            return None
        if op is None:
            return None
        response_headers, body = self.read.respond(op, target.provider)
        response_headers += arm_headers(headers)
        response_headers.append((b"date", http_date()))
        if not keep_alive:
            response_headers.append(_CLOSE)
        lines = [STATUS_LINE[200]]
        for name, value in response_headers:
            lines += (name, b": ", value, b"\r\n")
        lines += (b"\r\n", body)
        self.metrics.observe_request(self.template, "GET", 200, time.perf_counter() - start)
        return b"".join(lines)

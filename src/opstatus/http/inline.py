"""Status reads answered by the HTTP protocol, without the ASGI app.

A status GET by a caller whose token was verified before is admitted by the protocol where
uvicorn would start the app on it (:mod:`.protocol`), and answered in one write through
uvicorn's own request cycle: no ASGI messages, and no middleware stack. That is most of what
a status read costs, and status reads are most of what the server answers.

The protocol answers the status reads admitted during one turn of the event loop together
at its end (``protocol.AnswersAtTurnEnd``): on a store that reads without waiting (SQLite,
memory: :class:`~opstatus.stores.base.ImmediateReads`) each is read at once
(:meth:`InlineStatusReads.status_now`); on one that reads in batches (PostgreSQL:
:class:`~opstatus.stores.base.BatchReads`) all in one query
(:meth:`InlineStatusReads.statuses`). Requests the protocol did not answer take the same
shortcut in ASGI, before the middlewares and the router (:meth:`InlineStatusReads.serve`).

So the lanes carry the middlewares' duties themselves, through the functions those use:
the guard's token cache, rate limit and Host check, the ARM headers, the request metrics, and the
status read's checks and document (:mod:`.status_read`). The protocol's lane answers only
the plain success; the ASGI lane also the read's own errors (not found, expired), through
the app's error response. Anything else (a token to verify, another 4xx, a Prefer header,
a lapse to record, a store error) goes the ordinary way, which answers it as it always
has. tests/http/test_inline.py holds every path to the same answers.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from starlette.types import Scope, Send
from uvicorn.protocols.http.httptools_impl import STATUS_LINE

from ..errors import OpstatusError, StoreError
from ..metrics import Metrics
from ..models import OperationStatus
from ..stores.base import BatchReads, ImmediateReads
from .arm import Target, target_of
from .context import AppContext
from .errors import opstatus_error_response
from .headers import arm_headers, http_date
from .limits import CHARGED
from .representation import Shown
from .status_read import Request, StatusRead

#: Request headers that send a request the ordinary way: a body, or preferences to honour.
_ORDINARY = frozenset({b"prefer", b"content-length", b"transfer-encoding"})
_CLOSE = (b"connection", b"close")


class InlineStatusReads:
    def __init__(self, ctx: AppContext, read: StatusRead, metrics: Metrics) -> None:
        self.ctx = ctx
        self.read = read
        self.metrics = metrics
        #: Whether the store reads without waiting (SQLite, memory), so that the protocol
        #: reads each status at once (:meth:`status_now`), and whether it reads many in one
        #: query instead (PostgreSQL: :meth:`statuses`).
        self.immediate = isinstance(ctx.store, ImmediateReads)
        self.batched = isinstance(ctx.store, BatchReads)
        self.template = read.route.path
        # The labels of the lanes' usual answer, made once (see Metrics.observe_request).
        self._counted = (self.template, "GET", "200")
        self._timed = (self.template, "GET")

    def status_now(self, target: Target) -> OperationStatus | None:
        """The status :meth:`answer` shows, read now from a store that reads without
        waiting; None to answer the request the ordinary way."""
        try:
            return self.ctx.service.status_now(target.ref)
        except Exception:  # noqa: BLE001 - the app answers it, logs it, in its own words
            return None

    async def statuses(self, targets: Sequence[Target]) -> list[OperationStatus | None]:
        """The statuses :meth:`answer` shows, read together from a store that reads in
        batches; None for each to answer the ordinary way (all of them, if the read fails)."""
        metrics = self.metrics
        metrics.requests_in_flight += len(targets)
        try:
            return await self.ctx.service.statuses([target.ref for target in targets])
        except Exception:  # noqa: BLE001 - the app answers them, logs it, in its own words
            return [None] * len(targets)
        finally:
            metrics.requests_in_flight -= len(targets)

    def answer(
        self,
        target: Target,
        status: OperationStatus | None,
        headers: list[tuple[bytes, bytes]],
        keep_alive: bool,
        start: float,
    ) -> bytes | None:
        """The whole HTTP response to an admitted GET whose status was read, or None to answer
        it the ordinary way; ``start``: when it was admitted (``time.perf_counter``)."""
        if status is None:
            return None
        response_headers, body = self._respond(status, target, headers)
        response = _http_response(200, response_headers, body, keep_alive)
        metrics = self.metrics
        metrics.requests.inc(self._counted)
        metrics.latency.observe(self._timed, time.perf_counter() - start)
        return response

    def admit(self, scope: Scope) -> Target | None:
        """The operation of a GET :meth:`answer` can answer once its status is read, or None
        (decided before the store is read).

        An admitted read has spent its caller's token: reads admitted together (in one turn
        of the event loop, or awaiting the store) could otherwise all pass a bucket that
        holds one. Its scope says so, so that if the app answers it after all, the guard
        does not charge it again. A read over the rate is not admitted: the guard answers
        it 429; nor one naming a Host the server does not answer for: the guard answers it
        400."""
        if not self.ctx.hosts.allows(scope):
            return None
        admitted = self._admit(
            self.read.parse(scope["path"], scope["query_string"]), scope["headers"]
        )
        if admitted is None:
            return None
        caller, target = admitted
        limiter = self.ctx.limiter
        if limiter is not None:
            state = scope.setdefault("state", {})
            if not state.get(CHARGED):  # the ASGI lane, after the protocol's: charged there
                if limiter.take(caller):
                    return None
                state[CHARGED] = True
        return target

    async def serve(self, scope: Scope, send: Send) -> bool:
        """Answer an ASGI GET the same way, awaiting the store; False to leave it to the app.
        For requests the protocol did not answer itself (an app run by another server,
        tests)."""
        start = time.perf_counter()
        target = self.admit(scope)
        if target is None:
            return False
        answer = await self._read(target, scope["headers"])
        if answer is None:
            return False
        status, headers, body = answer
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        self.metrics.observe_request(self.template, "GET", status, time.perf_counter() - start)
        return True

    async def _read(
        self, target: Target, request_headers: list[tuple[bytes, bytes]]
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        """Status, headers and body of the answer, the read's own errors (not found, expired)
        included, as the app gives them; None for the app to answer (a store error)."""
        metrics = self.metrics
        metrics.requests_in_flight += 1
        try:
            op = await self.ctx.service.get(target.ref)
        except Exception as exc:  # noqa: BLE001
            if isinstance(exc, StoreError) or not isinstance(exc, OpstatusError):
                return None  # the app answers it and logs it, in its own words
            error = opstatus_error_response(exc)
            headers = _with_arm_headers(list(error.raw_headers), request_headers)
            return error.status_code, headers, bytes(error.body)
        finally:
            metrics.requests_in_flight -= 1
        headers, body = self._respond(op, target, request_headers)
        return 200, headers, body

    def _admit(
        self, request: Request | None, headers: list[tuple[bytes, bytes]]
    ) -> tuple[str, Target] | None:
        """The caller's key (for its rate limit) and the operation, for a status read by a
        known caller with the right to read it; else None."""
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
        params, api_version = request
        try:
            return principal.key, target_of(ctx, principal, params, api_version, "read", "read")
        except OpstatusError:
            return None

    def _respond(
        self, op: Shown, target: Target, request_headers: list[tuple[bytes, bytes]]
    ) -> tuple[list[tuple[bytes, bytes]], bytes]:
        """The 200's headers, the ARM ones included, and body."""
        headers, body = self.read.respond(op, target.provider)
        return _with_arm_headers(headers, request_headers), body


def _http_response(
    status: int, headers: list[tuple[bytes, bytes]], body: bytes, keep_alive: bool
) -> bytes:
    """Status line, headers and body, as uvicorn writes them."""
    if not keep_alive:
        headers.append(_CLOSE)
    lines = [STATUS_LINE[status]]
    for name, value in headers:
        lines += (name, b": ", value, b"\r\n")
    lines += (b"\r\n", body)
    return b"".join(lines)


def _with_arm_headers(
    headers: list[tuple[bytes, bytes]], request_headers: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """``headers`` and then ARM's, as ArmHeadersMiddleware adds them to every answer."""
    headers += arm_headers(request_headers)
    headers.append((b"date", http_date()))
    return headers

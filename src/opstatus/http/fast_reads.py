"""Fast status reads: a status GET by a known caller answered without the middleware stack
and the router.

Clients poll one operation's status thousands of times for every write, so that GET is most
of what the server answers, and the middlewares and the router are most of what it costs.
:class:`FastReads` decides which requests are such reads (:meth:`FastReads.admit`), reads
their statuses, and writes their answers, in two lanes:

- in ASGI, before the middlewares (:meth:`FastReads.serve`, used by :class:`.app.OpstatusApp`),
  for any ASGI server;
- in the HTTP server's protocol, where the server would start the app (``opstatus.server``),
  which reads the statuses of the reads that arrived together: at once from a store that
  reads without waiting (:meth:`statuses_now`; SQLite, memory), else in one query
  (:meth:`statuses`; PostgreSQL).

So the lanes carry the middlewares' duties themselves, through the functions those use: the
guard's token cache, rate limit and Host check, the ARM headers, the request metrics, and the status
read's checks and document (:mod:`.status_read`). The protocol lane answers only the plain
success; the ASGI lane also the read's own errors (not found, expired), through the app's
error response. Anything else (a token to verify, another 4xx, a Prefer header, an Accept
other than JSON's, a lapse to record, a store error) goes the ordinary way, which answers it
as it always has. tests/http/test_fast_reads.py holds every path to the same answers.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from starlette.types import Scope, Send

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

#: Request headers that send a request the ordinary way: a body, preferences to honour, or
#: another representation asked for (an event stream).
_ORDINARY = frozenset({b"prefer", b"content-length", b"transfer-encoding"})
_JSON_ACCEPTS = frozenset({b"*/*", b"application/json", b"application/*"})

Headers = list[tuple[bytes, bytes]]


class FastReads:
    def __init__(self, ctx: AppContext, read: StatusRead, metrics: Metrics) -> None:
        self.ctx = ctx
        self.read = read
        self.metrics = metrics
        #: Whether the store reads without waiting (SQLite, memory), so that the protocol
        #: reads the statuses at once (:meth:`statuses_now`), and whether it reads many in one
        #: query instead (PostgreSQL: :meth:`statuses`). On neither, the protocol lane is off.
        self.immediate = isinstance(ctx.store, ImmediateReads)
        self.batched = isinstance(ctx.store, BatchReads)
        self.template = read.route.path
        # The labels of the lanes' usual answer, made once (see Metrics.observe_request).
        self._counted = (self.template, "GET", "200")
        self._timed = (self.template, "GET")

    def statuses_now(self, targets: Sequence[Target]) -> list[OperationStatus | None]:
        """The statuses :meth:`respond` shows, read now from a store that reads without
        waiting; None for each to answer the ordinary way (all of them, if the read fails)."""
        try:
            return self.ctx.service.statuses_now([target.ref for target in targets])
        except Exception:  # noqa: BLE001 - the app answers them, logs it, in its own words
            return [None] * len(targets)

    async def statuses(self, targets: Sequence[Target]) -> list[OperationStatus | None]:
        """The statuses :meth:`respond` shows, read together from a store that reads in
        batches; None for each to answer the ordinary way (all of them, if the read fails)."""
        metrics = self.metrics
        metrics.requests_in_flight += len(targets)
        try:
            return await self.ctx.service.statuses([target.ref for target in targets])
        except Exception:  # noqa: BLE001 - the app answers them, logs it, in its own words
            return [None] * len(targets)
        finally:
            metrics.requests_in_flight -= len(targets)

    def respond(
        self, target: Target, status: OperationStatus | None, request_headers: Headers, start: float
    ) -> tuple[Headers, bytes] | None:
        """The headers and body of the 200 to an admitted GET whose status was read, counted
        as answered by the protocol lane; None to answer it the ordinary way. ``start``: when
        it was admitted (``time.perf_counter``)."""
        if status is None:
            return None
        headers, body = self._respond(status, target, request_headers)
        metrics = self.metrics
        metrics.requests.inc(self._counted)
        metrics.latency.observe(self._timed, time.perf_counter() - start)
        metrics.fast_reads.inc(("protocol",))
        return headers, body

    def admit(self, scope: Scope) -> Target | None:
        """The operation of a GET :meth:`respond` can answer once its status is read, or None
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
        """Answer an ASGI GET the same way, awaiting the store; False to leave it to the app."""
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
        self.metrics.fast_reads.inc(("asgi",))
        return True

    async def _read(
        self, target: Target, request_headers: Headers
    ) -> tuple[int, Headers, bytes] | None:
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

    def _admit(self, request: Request | None, headers: Headers) -> tuple[str, Target] | None:
        """The caller's key (for its rate limit) and the operation, for a status read by a
        known caller with the right to read it; else None."""
        if request is None:
            return None
        authorization = None
        for name, value in headers:
            if name == b"authorization":
                authorization = value
            elif name in _ORDINARY or (name == b"accept" and not _accepts_json(value)):
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
        self, op: Shown, target: Target, request_headers: Headers
    ) -> tuple[Headers, bytes]:
        """The 200's headers, the ARM ones included, and body."""
        headers, body = self.read.respond(op, target.provider)
        return _with_arm_headers(headers, request_headers), body


def _accepts_json(accept: bytes) -> bool:
    """Whether an Accept header lets a JSON answer be given (any JSON-compatible range);
    anything else, an event stream for one, goes to the app."""
    return any(
        part.split(b";", 1)[0].strip().lower() in _JSON_ACCEPTS for part in accept.split(b",")
    )


def _with_arm_headers(headers: Headers, request_headers: Headers) -> Headers:
    """``headers`` and then ARM's, as ArmHeadersMiddleware adds them to every answer."""
    headers += arm_headers(request_headers)
    headers.append((b"date", http_date()))
    return headers

"""The fast lane: status reads answered by the HTTP protocol, without the ASGI app.

Where uvicorn starts the app on a request, in turn after pipelined ones (its
``_start_asgi_task``), a status read that :class:`~opstatus.http.fast_reads.FastReads` admits
is instead read with the other reads that arrive with it
(:class:`~opstatus.batching.Batcher`) and answered in one write through uvicorn's own request
cycle, so that pipelining, keep-alive, shutdown and disconnects go as for any request.
Reading a batch together and then writing every answer, rather than answering each as it
is parsed, keeps the server's reads of requests and writes of answers from alternating.

What it relies on of uvicorn beyond its public API (the hook above, the cycle's fields, the
protocol's ``flow``, ``pipeline`` and ``server_state``) is checked at start-up by
:mod:`.uvicorn_check`; on a uvicorn without it, the server runs
:class:`~.protocol.TimedHttpToolsProtocol` alone and the app answers every read.

Its invariants (docs/architecture.md):

- order: a connection's requests are answered in order, since a read is admitted only when
  uvicorn would start it, after the answers before it;
- rate limits: a read spends its caller's token when admitted (``FastReads.admit``);
- read-after-write: a batch is read after every read in it arrived, so it sees every write
  acknowledged before any of them;
- anything the lane cannot answer, or any fault in it, goes to the app, which answers it as
  it would any request; a fault is logged once.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, NamedTuple, cast

from starlette.types import Scope

from ..batching import Batcher
from ..http.fast_reads import FastReads, Headers
from ..models import OperationStatus
from .protocol import STATUS_LINE, ConnectionLimits, TimedHttpToolsProtocol

if TYPE_CHECKING:
    from uvicorn._types import ASGI3Application
    from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

    from ..http.arm import Target

log = logging.getLogger("opstatus.server")
_CLOSE = (b"connection", b"close")


class _Pending(NamedTuple):
    protocol: FastLaneProtocol
    cycle: RequestResponseCycle
    target: Target
    start: float  # when it was admitted (time.perf_counter)


class FastLaneProtocol(TimedHttpToolsProtocol):
    lane: FastLane

    @classmethod
    def with_lane(cls, limits: ConnectionLimits, reads: FastReads) -> type[FastLaneProtocol]:
        """A subclass with these limits whose status reads go through ``reads``."""
        return type(cls.__name__, (cls,), {"limits": limits, "lane": FastLane(reads)})

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        """A status read is left to the lane; a limit on concurrency (``app`` is then
        uvicorn's 503), a client that is not reading its answers (the app waits for it to
        drain) and every other request go to the app."""
        if app is self.app and cycle.scope["method"] == "GET" and not self.flow.write_paused:
            try:
                target = self.lane.reads.admit(cast(Scope, cycle.scope))
            except Exception:  # noqa: BLE001 - the app answers it
                self.lane.fault("admitting a status read")
                target = None
            if target is not None:
                self.lane.add(_Pending(self, cycle, target, time.perf_counter()))
                return
        super()._start_asgi_task(cycle, app)

    def finish(self, cycle: RequestResponseCycle, response: bytes) -> None:
        """Write a whole response to ``cycle``'s request, and end it as uvicorn's own send
        does: the connection closed or kept, the next pipelined request started."""
        cycle.response_started = cycle.response_complete = True
        if not cycle.disconnected:
            self.transport.write(response)
        cycle.message_event.set()
        if not cycle.keep_alive:
            self.transport.close()
        cycle.on_response()

    def _start_next_request(self) -> None:
        """uvicorn's end of an answer without its keep-alive timer, which this protocol's
        own timer makes redundant: arming one and cancelling it on the next request, for
        every answer, is a measurable part of what a status read costs (docs/performance.md).
        The rest is uvicorn's ``on_response_complete`` as of every release in the supported
        range."""
        self.server_state.total_requests += 1  # for --limit-max-requests
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            self._start_asgi_task(*self.pipeline.pop())

    def start_app(self, cycle: RequestResponseCycle) -> None:
        """Leave ``cycle``'s request to the app after all."""
        super()._start_asgi_task(cycle, self.app)


class FastLane:
    """The status reads of each turn, read together and answered by the protocol."""

    def __init__(self, reads: FastReads) -> None:
        self.reads = reads
        self._faulted = False
        self.batches: Batcher[_Pending, list[OperationStatus | None]] = (
            Batcher(self._answer, read_now=self._read_now)
            if reads.immediate
            else Batcher(self._answer, read=self._read)
        )

    def add(self, pending: _Pending) -> None:
        self.batches.add(pending)

    def _read_now(self, batch: list[_Pending]) -> list[OperationStatus | None]:
        return self.reads.statuses_now([p.target for p in batch])

    async def _read(self, batch: list[_Pending]) -> list[OperationStatus | None]:
        return await self.reads.statuses([p.target for p in batch])

    def _answer(
        self, batch: list[_Pending], statuses: list[OperationStatus | None] | BaseException
    ) -> None:
        """Every answer first, then every write; the app answers those the lane does not."""
        if isinstance(statuses, BaseException):
            self.fault("reading a batch of status reads", statuses)
            statuses = [None] * len(batch)
        responses: list[bytes | None] = []
        for p, status in zip(batch, statuses, strict=True):
            try:
                headers = cast(Headers, p.cycle.scope["headers"])
                answer = self.reads.respond(p.target, status, headers, p.start)
                responses.append(
                    None if answer is None else _http_response(*answer, p.cycle.keep_alive)
                )
            except Exception:  # noqa: BLE001 - the app answers it
                self.fault("answering a status read")
                responses.append(None)
        for p, response in zip(batch, responses, strict=True):
            try:
                # A client that stopped reading meanwhile: the app waits for it to drain.
                if response is None or (p.protocol.flow.write_paused and not p.cycle.disconnected):
                    p.protocol.start_app(p.cycle)
                else:
                    p.protocol.finish(p.cycle, response)
            except Exception:  # noqa: BLE001 - never leave the connection waiting
                self.fault("writing a status read's answer")
                p.protocol.transport.close()

    def fault(self, doing: str, exc: BaseException | None = None) -> None:
        """Log the lane's first fault with its traceback; later ones only at debug level, so
        that a fault on every read does not flood the log (the app logs its own errors)."""
        if not self._faulted:
            self._faulted = True
            log.error("fast lane: %s failed; the app answers instead", doing, exc_info=exc or True)
        else:
            log.debug("fast lane: %s failed again", doing, exc_info=exc or True)


def _http_response(headers: Headers, body: bytes, keep_alive: bool) -> bytes:
    """A 200's status line, headers and body, as uvicorn writes them."""
    if not keep_alive:
        headers.append(_CLOSE)
    lines = [STATUS_LINE[200]]
    for name, value in headers:
        lines += (name, b": ", value, b"\r\n")
    lines += (b"\r\n", body)
    return b"".join(lines)

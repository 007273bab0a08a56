"""uvicorn's httptools protocol with two limits it lacks: request head size and head time.

uvicorn bounds neither how large a request line plus headers may grow nor how long a
client may take to send them (its keep-alive timer only runs between requests, and a new
connection has none), so one slow or bloated client could hold memory and a connection
forever. Here a connection must deliver each request head within ``head_timeout`` seconds
and ``max_head_bytes`` bytes; otherwise it gets 408 or 431 in ARM's error envelope and is
closed. An idle connection that never starts a request is closed silently.

It also answers status reads itself, in one write each (see inline.py), those of one turn
of the event loop together at its end (:class:`AnswersAtTurnEnd`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import orjson
from starlette.types import Scope
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

if TYPE_CHECKING:
    from uvicorn._types import ASGI3Application
    from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

    from ..models import OperationStatus
    from .arm import Target
    from .inline import InlineStatusReads


class _HeadRefused(Exception):
    """Stops the parser; the refusal itself is written by ``send_400_response``."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    max_head_bytes = 16 * 1024
    head_timeout = 10.0
    #: Status reads answered at the end of the event loop's turn (see inline.py); None: none.
    status_reads: AnswersAtTurnEnd | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = False
        self._head_bytes = 0
        self._raw_head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._started = False  # has any request begun on this connection
        self._begun_in_chunk = False  # did one begin in the chunk being parsed
        self._head_started = 0.0
        self._refusal: tuple[int, bytes, str] | None = None

    @classmethod
    def configured(
        cls,
        max_head_bytes: int,
        head_timeout: float,
        status_reads: InlineStatusReads | None = None,
    ) -> type[HttpToolsProtocol]:
        """A subclass with these limits that answers status reads through ``status_reads``;
        uvicorn instantiates the protocol class itself."""
        attributes = {
            "max_head_bytes": max_head_bytes,
            "head_timeout": head_timeout,
            "status_reads": None
            if status_reads is None
            else AnswersAtTurnEnd(status_reads, status_reads.immediate),
        }
        return type(cls.__name__, (cls,), attributes)

    # -- connection ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._begun_in_chunk = False
        super().data_received(data)
        # httptools buffers a header it has not finished without calling back: count the
        # raw bytes of a head still incomplete after this chunk. When the head began in
        # this chunk (after pipelined requests), that is what follows the chunk's last
        # blank line; a request that starts in the same chunk as the end of a body may be
        # over-counted by that body.
        if self._in_head:
            if self._begun_in_chunk:
                end = data.rfind(b"\r\n\r\n")
                self._raw_head_bytes += len(data) - (end + 4 if end >= 0 else 0)
            else:
                self._raw_head_bytes += len(data)
            if self._raw_head_bytes > self.max_head_bytes and not self.transport.is_closing():
                self._refuse_too_large()
                self.send_400_response("")

    # -- parser callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = self._started = self._begun_in_chunk = True
        self._head_started = self.loop.time()
        self._head_bytes = 0  # as parsed: request line and complete headers
        self._raw_head_bytes = 0  # as received, while the head is incomplete
        self._arm_head_timer()

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._count(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._count(len(name) + len(value) + 4)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        """uvicorn resumes reading after every response, and each read parses every request
        in the chunk into its queue: a client pipelining faster than answers go would grow
        that queue without bound while answers still drain. Read again only once the queue
        is empty, so a connection holds at most one chunk of waiting requests. A head left
        half-read meanwhile has its time limit from when reading resumes: the wait was the
        server's, not the client's. (A held request listening for its client to leave
        resumes reading once; a request queued meanwhile still means the server was not
        reading on.)"""
        paused = self.flow.read_paused or bool(self.pipeline)
        super().on_response_complete()
        if self.pipeline:
            self.flow.pause_reading()
        elif paused and self._in_head:
            self._head_started = self.loop.time()

    # -- status reads ----------------------------------------------------------------------

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        """Where uvicorn starts the app on a request, in turn (after pipelined ones), a status
        read is left for :class:`AnswersAtTurnEnd`, which answers it in one write through
        uvicorn's own cycle, so that pipelining, keep-alive, shutdown and disconnects go as
        for any request. A limit on concurrency (``app`` is then uvicorn's 503), a client
        that is not reading its answers (the app waits for it to drain) and every other
        request go to the app."""
        status_reads = self.status_reads
        if (
            status_reads is not None
            and app is self.app
            and cycle.scope["method"] == "GET"
            and not self.flow.write_paused
        ):
            target = status_reads.lane.admit(cast(Scope, cycle.scope))
            if target is not None:
                status_reads.add(self, cycle, target)
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

    def start_app(self, cycle: RequestResponseCycle) -> None:
        """Leave ``cycle``'s request to the app after all."""
        super()._start_asgi_task(cycle, self.app)

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self.max_head_bytes:
            self._refuse_too_large()
            raise _HeadRefused()

    # -- refusals --------------------------------------------------------------------------

    def _refuse_too_large(self) -> None:
        self._refusal = (
            431,
            b"RequestHeaderFieldsTooLarge",
            f"The request line and headers are larger than the limit of "
            f"{self.max_head_bytes} bytes.",
        )

    def send_400_response(self, msg: str) -> None:
        if self._refusal is None:
            super().send_400_response(msg)
            return
        status, code, message = self._refusal
        body = orjson.dumps({"error": {"code": code.decode(), "message": message}})
        head = b"".join(
            (
                STATUS_LINE[status],
                b"content-type: application/json\r\n",
                b"content-length: %d\r\n" % len(body),
                b"x-ms-request-id: %s\r\n" % str(uuid.uuid4()).encode(),
                b"connection: close\r\n\r\n",
            )
        )
        self.transport.write(head + body)
        self.transport.close()

    # -- the head timer --------------------------------------------------------------------
    # One timer per connection, not one per request: a request only notes when its head
    # began, and the timer, when it fires, checks the head in progress and re-arms for what
    # is left of its time.

    def _arm_head_timer(self, delay: float | None = None) -> None:
        if self._head_timer is None:
            delay = self.head_timeout if delay is None else delay
            self._head_timer = self.loop.call_later(delay, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if not self._in_head:
            if not self._started:
                self.transport.close()  # connected but never started a request
            return  # between requests: uvicorn's keep-alive timeout closes idle connections
        if self.flow.read_paused or self.pipeline:  # not read on: see on_response_complete
            self._arm_head_timer()
            return
        left = self._head_started + self.head_timeout - self.loop.time()
        if left > 0:
            self._arm_head_timer(left)
            return
        self._refusal = (
            408,
            b"RequestTimeout",
            f"The request line and headers were not received within {self.head_timeout:g} seconds.",
        )
        self.send_400_response("")


class _Pending(NamedTuple):
    protocol: GuardedHttpToolsProtocol
    cycle: RequestResponseCycle
    target: Target
    start: float  # when it was admitted (time.perf_counter)


class AnswersAtTurnEnd:
    """Status reads admitted during one turn of the event loop, answered together at its
    end: read at once from a store that reads without waiting (SQLite, memory), else in one
    query for all of them (PostgreSQL), one query in flight at a time; the reads that arrive
    meanwhile wait for the next. A query starts after every read it answers arrived, so it
    sees every write acknowledged before any of them.

    Answering each as its head was parsed interleaved the server's reads of requests with
    its writes of answers, one connection at a time. Under load the loop reads some dozens
    of requests a turn; answering them together, every read and answer first and then
    every write, took the server's CPU time per request on SQLite from about 70 to 44
    microseconds (pinned): the kernel's part from 20 to 8, the rest the same Python code
    run back to back. The bare ASGI app's tasks answer that way too. On PostgreSQL, one
    task and one query per turn instead of a task and a batched read per request: 70 to
    45 microseconds (docs/performance.md).
    """

    def __init__(self, lane: InlineStatusReads, immediate: bool, max_batch: int = 256) -> None:
        self.lane = lane
        self.immediate = immediate
        self.max_batch = max_batch
        self._pending: list[_Pending] = []
        self._scheduled = False  # is the end of this turn on the loop's list
        self._in_flight = False  # is a query running
        self._tasks: set[asyncio.Task[None]] = set()

    def add(
        self, protocol: GuardedHttpToolsProtocol, cycle: RequestResponseCycle, target: Target
    ) -> None:
        self._pending.append(_Pending(protocol, cycle, target, time.perf_counter()))
        if not self._scheduled and not self._in_flight:
            self._scheduled = True
            protocol.loop.call_soon(self._turn_ended)

    def _turn_ended(self) -> None:
        self._scheduled = False
        if self.immediate:
            pending, self._pending = self._pending, []
            self._answer(pending, [self.lane.status_now(p.target) for p in pending])
        elif not self._in_flight and self._pending:
            self._send()

    def _send(self) -> None:
        batch = self._pending[: self.max_batch]
        del self._pending[: self.max_batch]
        self._in_flight = True
        task = asyncio.get_running_loop().create_task(self._read_and_answer(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read_and_answer(self, batch: list[_Pending]) -> None:
        try:
            statuses = await self.lane.statuses([p.target for p in batch])
        finally:
            self._in_flight = False
            if self._pending:
                self._send()  # the reads that arrived meanwhile, while these are answered
        self._answer(batch, statuses)

    def _answer(self, pending: list[_Pending], statuses: list[OperationStatus | None]) -> None:
        """Every answer first, then every write; the app answers those the lane does not."""
        lane = self.lane
        responses: list[bytes | None] = []
        for p, status in zip(pending, statuses, strict=True):
            try:
                headers = cast(list[tuple[bytes, bytes]], p.cycle.scope["headers"])
                responses.append(
                    lane.answer(p.target, status, headers, p.cycle.keep_alive, p.start)
                )
            except Exception:  # noqa: BLE001 - the app answers it, logs it, in its own words
                responses.append(None)
        for p, response in zip(pending, responses, strict=True):
            # A client that stopped reading meanwhile: the app waits for it to drain.
            if response is None or (p.protocol.flow.write_paused and not p.cycle.disconnected):
                p.protocol.start_app(p.cycle)
            else:
                p.protocol.finish(p.cycle, response)

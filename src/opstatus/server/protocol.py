"""uvicorn's httptools protocol with every connection under a timer, and a bound on the head.

uvicorn bounds neither how large a request line plus headers may grow nor how long a client
may take to send them, and its keep-alive timer is cancelled by any bytes that arrive: a
client that sends a bare CRLF (or the rest of a body the app did not read) after an answer,
then nothing, keeps its connection for ever (uvicorn's pull request #1192). Its keep-alive
timer also outlives a connection reset by the peer, holding the protocol, the request cycle
and its headers until it fires.

Here each connection has one deadline, by what the server is waiting for:

- a request's line and headers: ``header_timeout`` from its first byte (408, then closed);
  also a new connection's first request, and a TLS handshake (see ``running.py``);
- its body: ``body_timeout`` from the end of its head (the app answers 408 while it reads
  the body; past that, or when the app answered without reading it, the connection closes);
- the next request, while no answer is owed: ``keep_alive_timeout`` from the last answer
  (closed silently). Bytes that start no request do not restart this clock;
- a client that stops reading its answers: ``body_timeout`` while the server cannot write.

While the app works on a request, no deadline runs: its own limits bound it (the longest
long-poll, the store's timeouts). The head is also bounded in size: ``max_head_bytes``, else
431. Refusals are in ARM's error envelope.

One timer per connection, not one per request: each change of state only makes sure the
timer fires no later than the deadline that change brings (almost always it already does),
and the timer, when it fires, works out from the state which deadline applies, and waits
again for what is left of it.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: Status lines as uvicorn writes them.
STATUS_LINE = {s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode()) for s in HTTPStatus}

#: Grace after the body deadline for the app, which answers 408 itself at the deadline.
_BODY_GRACE = 1.0


@dataclass(frozen=True)
class ConnectionLimits:
    max_head_bytes: int = 16 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive_timeout: float = 5.0


class _HeadRefused(Exception):
    """Stops the parser; the refusal itself is written by ``send_400_response``."""


class TimedHttpToolsProtocol(HttpToolsProtocol):
    # Slots, not the instance's dict, which uvicorn's own attributes fill: one more key there
    # would make every connection's dict grow to the next size.
    __slots__ = (
        "_timer",
        "_timer_at",
        "_in_head",
        "_owed",
        "_served",
        "_idle_since",
        "_head_started",
        "_body_started",
        "_write_paused_since",
        "_has_body",
        "_head_bytes",
        "_raw_head_bytes",
        "_begun_in_chunk",
        "_refusal",
    )
    limits = ConnectionLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._in_head = False
        self._owed = 0  # requests whose head was read and whose answer is not complete
        self._served = False  # has an answer been completed on this connection
        self._idle_since = 0.0
        self._head_started = 0.0
        self._body_started = 0.0
        self._write_paused_since: float | None = None
        self._has_body = False
        self._head_bytes = 0
        self._raw_head_bytes = 0
        self._begun_in_chunk = False
        self._refusal: tuple[int, bytes, str] | None = None

    @classmethod
    def configured(cls, limits: ConnectionLimits) -> type[TimedHttpToolsProtocol]:
        """A subclass with these limits; uvicorn instantiates the protocol class itself."""
        return type(cls.__name__, (cls,), {"limits": limits})

    # -- connection ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._idle_since = self.loop.time()
        self._expect(self._idle_since + self.limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)
        # uvicorn cancels its keep-alive timer only on a clean close: after a reset, it
        # would hold this protocol, its cycle and their headers until it fires.
        unset = getattr(self, "_unset_keepalive_if_required", None)
        if unset is not None:
            unset()

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
            too_large = self._raw_head_bytes > self.limits.max_head_bytes
            if too_large and not self.transport.is_closing():
                self._refuse_too_large()
                self.send_400_response("")

    def pause_writing(self) -> None:
        super().pause_writing()
        self._write_paused_since = now = self.loop.time()
        self._expect(now + self.limits.body_timeout)

    def resume_writing(self) -> None:
        super().resume_writing()
        self._write_paused_since = None

    # -- parser callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = self._begun_in_chunk = True
        self._has_body = False
        self._head_started = now = self.loop.time()
        self._head_bytes = 0  # as parsed: request line and complete headers
        self._raw_head_bytes = 0  # as received, while the head is incomplete
        self._expect(now + self.limits.header_timeout)

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._count(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._count(len(name) + len(value) + 4)
        if len(name) in (14, 17):  # content-length, transfer-encoding
            lowered = name.lower()
            if lowered == b"transfer-encoding" or (
                lowered == b"content-length" and value.strip() not in (b"0", b"")
            ):
                self._has_body = True

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._owed += 1
        if self._has_body:
            self._body_started = now = self.loop.time()
            self._expect(now + self.limits.body_timeout + _BODY_GRACE)
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        """uvicorn resumes reading after every response, and each read parses every request
        in the chunk into its queue: a client pipelining faster than answers go would grow
        that queue without bound while answers still drain. Read again only once the queue
        is empty, so a connection holds at most one chunk of waiting requests. A head left
        half-read meanwhile has its time limit from when reading resumes: the wait was the
        server's, not the client's."""
        self._owed = max(0, self._owed - 1)
        self._served = True
        paused = self.flow.read_paused or bool(self.pipeline)
        self._start_next_request()
        if self.pipeline:
            self.flow.pause_reading()
        elif paused and self._in_head:
            self._head_started = self.loop.time()
        if not self._owed and not self._in_head:
            self._idle_since = now = self.loop.time()
            if not self._in_body():
                self._expect(now + self.limits.keep_alive_timeout)

    def _start_next_request(self) -> None:
        """uvicorn's own end of an answer: reading resumed, and the next pipelined request
        started or, with none, uvicorn's keep-alive timer armed."""
        super().on_response_complete()

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self.limits.max_head_bytes:
            self._refuse_too_large()
            raise _HeadRefused()

    # -- the timer -------------------------------------------------------------------------

    def _deadline(self) -> float | None:
        """When the connection has waited too long for what it is waiting for; None while
        the app works on a request (or the server holds a head it is not reading yet)."""
        limits = self.limits
        deadlines = []
        if self._write_paused_since is not None:
            deadlines.append(self._write_paused_since + limits.body_timeout)
        if self._in_head:
            if not self.flow.read_paused and not self.pipeline:
                deadlines.append(self._head_started + limits.header_timeout)
        elif self._in_body():
            grace = _BODY_GRACE if self._owed else 0.0
            deadlines.append(self._body_started + limits.body_timeout + grace)
        elif not self._owed:
            idle = limits.keep_alive_timeout if self._served else limits.header_timeout
            deadlines.append(self._idle_since + idle)
        return min(deadlines) if deadlines else None

    def _in_body(self) -> bool:
        """Whether the last request's body is still being received. An answer may come
        before the body it did not read; the idle clock then runs from the answer."""
        return self._has_body and self.cycle is not None and self.cycle.more_body

    def _expect(self, deadline: float) -> None:
        """Make sure the timer fires by ``deadline``; firing earlier is harmless."""
        timer = self._timer
        if timer is not None:
            if self._timer_at <= deadline:
                return
            timer.cancel()
        self._timer = self.loop.call_at(deadline, self._timer_fired)
        self._timer_at = deadline

    def _timer_fired(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        deadline = self._deadline()
        if deadline is None:
            return
        if deadline > self.loop.time():
            self._timer = self.loop.call_at(deadline, self._timer_fired)
            self._timer_at = deadline
        elif self._in_head and not self._owed and self._write_paused_since is None:
            self._refusal = (
                408,
                b"RequestTimeout",
                "The request line and headers were not received within "
                f"{self.limits.header_timeout:g} seconds.",
            )
            self.send_400_response("")
        else:  # idle, a body never finished, or a client that does not read: no answer fits
            self.transport.close()

    # -- refusals --------------------------------------------------------------------------

    def _refuse_too_large(self) -> None:
        self._refusal = (
            431,
            b"RequestHeaderFieldsTooLarge",
            "The request line and headers are larger than the limit of "
            f"{self.limits.max_head_bytes} bytes.",
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

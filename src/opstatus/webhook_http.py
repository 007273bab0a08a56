"""HTTP/1.1 POSTs for webhooks over kept-alive connections: the transport of
:class:`opstatus.webhook_sender.Sender`.

A general client (httpx) spent most of a send in its connection pool, which looks at every
connection on each request, so one process could not send more than a few hundred webhooks a
second to a receiver however fast. This client does only what a webhook needs: one POST
written in one piece, the answer parsed by ``httptools`` (uvicorn's parser), at most
``max_response_bytes`` of its body read, the connection then kept for the next POST to the
same origin unless the answer or its size says otherwise.

A connection goes to the address the caller checked (``connect`` is given the resolved
address, and TLS still verifies the host's name), so a name that resolves differently
between the check and the connection cannot move a webhook elsewhere. A kept connection
that the receiver closed while idle is noticed (its end of file arrives while it waits) and
dropped; one that closes as a POST is written (before any byte of an answer) is replaced by a
new connection once, which receivers see as the at-least-once retry a webhook is anyway.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from typing import NamedTuple

import certifi
import httptools

#: Seconds a kept connection may sit idle before it is closed rather than reused (receivers
#: commonly close theirs after 5 to 75 seconds).
IDLE_SECONDS = 30.0
#: Bytes of an answer's head (status line and headers) beyond which it is refused.
MAX_HEAD_BYTES = 64 * 1024


class Origin(NamedTuple):
    """Where a connection goes: scheme, host name (for Host and TLS), port, and the address
    the host resolved to when it was checked."""

    scheme: str
    host: str
    port: int
    address: str


class Answer(NamedTuple):
    status: int


class AnswerError(Exception):
    """The receiver's answer was not HTTP, or too large before its body."""


class _Closed(ConnectionError):
    """The connection ended before any byte of an answer (a kept one may be stale)."""


class Connection(asyncio.Protocol):
    """One connection, one POST at a time; its answer parsed as it arrives."""

    def __init__(self, max_body: int) -> None:
        self.max_body = max_body
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.alive = True
        self.idle_since = time.monotonic()
        self._answer: asyncio.Future[Answer] | None = None
        self._received = 0
        self._body = 0
        self._head_done = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment] # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        if self._answer is None or self._answer.done():
            self._close()  # bytes nobody asked for: the connection is out of step
            return
        self._received += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(AnswerError("the receiver switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(AnswerError(f"not an HTTP answer: {exc}"))
        if not self._head_done and self._received > MAX_HEAD_BYTES:
            self._fail(AnswerError(f"an answer's head over {MAX_HEAD_BYTES} bytes"))

    def eof_received(self) -> bool | None:
        self._ended()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended()

    # httptools callbacks
    def on_headers_complete(self) -> None:
        self._head_done = True

    def on_body(self, body: bytes) -> None:
        self._body += len(body)
        if self._body >= self.max_body:  # enough read: the status stands, the rest is not read
            self.alive = False
            self._resolve()
            self._close()

    def on_message_complete(self) -> None:
        if 100 <= self.parser.get_status_code() < 200:  # informational: the answer follows
            self._head_done = False
            return
        if not self.parser.should_keep_alive():
            self.alive = False
        self._resolve()

    # the caller's side
    async def post(self, request: bytes) -> Answer:
        """Write ``request``; the answer's status once it is read (or enough of it)."""
        assert self.transport is not None
        self._answer = asyncio.get_running_loop().create_future()
        self._received = self._body = 0
        self._head_done = False
        self.transport.write(request)
        try:
            return await self._answer
        except BaseException:
            self._close()  # cancelled or failed mid-answer: never reused
            raise
        finally:
            self._answer = None

    def close(self) -> None:
        self._close()

    def _resolve(self) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_result(Answer(self.parser.get_status_code()))

    def _fail(self, exc: Exception) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(exc)
        self._close()

    def _ended(self) -> None:
        self.alive = False
        if self._answer is not None and not self._answer.done():
            if self._head_done:  # a body that ends with the connection (or cut short)
                self._resolve()
            elif self._received:
                self._answer.set_exception(ConnectionError("the connection closed mid-answer"))
            else:
                self._answer.set_exception(_Closed("the connection closed before an answer"))

    def _close(self) -> None:
        self.alive = False
        if self.transport is not None:
            self.transport.close()


class Pool:
    """Kept-alive connections by :class:`Origin`; at most ``max_connections`` in use at once
    (the rest of the callers wait), and as many kept idle."""

    def __init__(self, max_connections: int, max_response_bytes: int) -> None:
        self.max_response_bytes = max_response_bytes
        self.max_idle = max_connections
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: dict[Origin, deque[Connection]] = {}
        self._idle_count = 0
        self._tls: ssl.SSLContext | None = None
        #: Connections made, for the tests and the benchmarks to see reuse.
        self.opened = 0

    async def post(self, origin: Origin, request: bytes) -> Answer:
        """POST ``request`` (a whole HTTP/1.1 request, head and body) to ``origin``."""
        async with self._slots:
            connection = self._take(origin)
            if connection is not None:
                try:
                    answer = await connection.post(request)
                except _Closed:  # closed by the receiver while idle: once more, anew
                    connection = None
                else:
                    self._give_back(origin, connection)
                    return answer
            connection = await self._connect(origin)
            try:
                answer = await connection.post(request)
            except _Closed as exc:
                raise ConnectionError(str(exc)) from None
            self._give_back(origin, connection)
            return answer

    def close(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()
        self._idle_count = 0

    def _take(self, origin: Origin) -> Connection | None:
        connections = self._idle.get(origin)
        now = time.monotonic()
        while connections:
            connection = connections.pop()
            self._idle_count -= 1
            if connection.alive and now - connection.idle_since < IDLE_SECONDS:
                return connection
            connection.close()
        return None

    def _give_back(self, origin: Origin, connection: Connection) -> None:
        if not connection.alive:
            connection.close()
            return
        if self._idle_count >= self.max_idle:
            self._drop_oldest()
        connection.idle_since = time.monotonic()
        self._idle.setdefault(origin, deque()).append(connection)
        self._idle_count += 1

    def _drop_oldest(self) -> None:
        origin = min(
            (o for o, c in self._idle.items() if c), key=lambda o: self._idle[o][0].idle_since
        )
        self._idle[origin].popleft().close()
        self._idle_count -= 1
        if not self._idle[origin]:
            del self._idle[origin]

    async def _connect(self, origin: Origin) -> Connection:
        loop = asyncio.get_running_loop()
        tls = None
        if origin.scheme == "https":
            if self._tls is None:
                # As httpx verified before: certifi's authorities, not the environment's.
                self._tls = ssl.create_default_context(cafile=certifi.where())
            tls = self._tls
        _, connection = await loop.create_connection(
            lambda: Connection(self.max_response_bytes),
            origin.address,
            origin.port,
            ssl=tls,
            server_hostname=origin.host if tls is not None else None,
        )
        self.opened += 1
        return connection

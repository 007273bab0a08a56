"""The webhook sender against real receivers on loopback (asyncio servers written byte by
byte): kept-alive connections, a receiver that closes an idle one, redirects, the size cap,
the time limit and the outbound checks."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable

import pytest
from standardwebhooks.webhooks import Webhook

from opstatus.webhook_sender import Sender
from opstatus.webhooks import new_secret

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)
BODY = b'{"type":"operation.created","timestamp":"2025-01-01T00:00:00.000Z","data":{}}'

Answer = Callable[[bytes], bytes | None]


class Receiver(asyncio.Protocol):
    """Parses each request (Content-Length bodies), keeps it, answers what ``answer`` says
    (None: close the connection without answering)."""

    def __init__(self, answer: Answer, requests: list[bytes], connections: list[object]) -> None:
        self.answer = answer
        self.requests = requests
        self.buffer = b""
        connections.append(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            head, _, rest = self.buffer.partition(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            if len(rest) < length:
                return
            self.buffer = rest[length:]
            request = head + b"\r\n\r\n" + rest[:length]
            self.requests.append(request)
            reply = self.answer(request)
            if reply is None:
                self.transport.close()
                return
            self.transport.write(reply)


async def receiver(answer: Answer) -> tuple[asyncio.Server, str, list[bytes], list[object]]:
    requests: list[bytes] = []
    connections: list[object] = []
    server = await asyncio.get_running_loop().create_server(
        lambda: Receiver(answer, requests, connections), "127.0.0.1", 0
    )
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/hook?x=1", requests, connections


def ok(_: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"


def sender(**options: object) -> Sender:
    return Sender(LOOPBACK, allow_http=True, **options)  # type: ignore[arg-type]


def verified(request: bytes, secret: str) -> object:
    head, _, body = request.partition(b"\r\n\r\n")
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    return Webhook(secret).verify(body, headers)


@pytest.mark.anyio
async def test_sends_are_signed_and_share_one_kept_connection() -> None:
    server, url, requests, connections = await receiver(ok)
    secret = new_secret()
    out = sender()
    try:
        for n in range(20):
            outcome = await out.send(url, f"msg_{n}", BODY, (secret,))
            assert outcome.delivered and outcome.status == 200
        assert len(requests) == 20 and len(connections) == 1 and out.pool.opened == 1
        assert requests[0].startswith(b"POST /hook?x=1 HTTP/1.1\r\n")
        assert b"\r\nhost: 127.0.0.1:" in requests[0]
        assert verified(requests[0], secret)["type"] == "operation.created"  # type: ignore[index]
    finally:
        await out.close()
        server.close()


@pytest.mark.anyio
async def test_concurrent_sends_use_at_most_max_connections() -> None:
    server, url, requests, connections = await receiver(ok)
    out = sender(max_connections=4)
    try:
        outcomes = await asyncio.gather(
            *(out.send(url, f"msg_{n}", BODY, (new_secret(),)) for n in range(100))
        )
        assert all(o.delivered for o in outcomes) and len(requests) == 100
        assert len(connections) <= 4
    finally:
        await out.close()
        server.close()


@pytest.mark.anyio
async def test_an_idle_connection_the_receiver_closed_is_replaced() -> None:
    server, url, requests, connections = await receiver(ok)
    out = sender()
    try:
        assert (await out.send(url, "msg_1", BODY, (new_secret(),))).delivered
        for connection in connections:
            connection.transport.close()  # type: ignore[attr-defined]
        await asyncio.sleep(0.05)
        assert (await out.send(url, "msg_2", BODY, (new_secret(),))).delivered
        assert len(connections) == 2
    finally:
        await out.close()
        server.close()


@pytest.mark.anyio
async def test_connection_close_is_honoured_and_a_closed_answer_is_an_error() -> None:
    closing = b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n"
    server, url, _, connections = await receiver(lambda _: closing)
    out = sender()
    try:
        for n in range(3):
            assert (await out.send(url, f"msg_{n}", BODY, (new_secret(),))).status == 204
        assert len(connections) == 3
    finally:
        server.close()
    server, url, _, _ = await receiver(lambda _: None)
    try:
        outcome = await out.send(url, "msg_x", BODY, (new_secret(),))
        assert not outcome.delivered and "ConnectionError" in (outcome.error or "")
    finally:
        await out.close()
        server.close()


@pytest.mark.anyio
async def test_redirects_are_not_followed() -> None:
    moved = b"HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:1/\r\ncontent-length: 0\r\n\r\n"
    server, url, requests, _ = await receiver(lambda _: moved)
    out = sender()
    try:
        outcome = await out.send(url, "msg_1", BODY, (new_secret(),))
        assert outcome.status == 302 and outcome.error == "redirects are not followed"
        assert len(requests) == 1
    finally:
        await out.close()
        server.close()


@pytest.mark.anyio
async def test_at_most_max_response_bytes_of_an_answer_are_read() -> None:
    huge = b"HTTP/1.1 200 OK\r\ncontent-length: 10000000\r\n\r\n" + b"x" * 10_000_000
    server, url, _, connections = await receiver(lambda _: huge)
    out = sender(max_response_bytes=1024)
    try:
        outcome = await out.send(url, "msg_1", BODY, (new_secret(),))
        assert outcome.delivered
        assert (await out.send(url, "msg_2", BODY, (new_secret(),))).delivered
        assert len(connections) == 2  # the first, not read to its end, was not reused
    finally:
        await out.close()
        server.close()


@pytest.mark.anyio
async def test_a_receiver_that_never_answers_times_out() -> None:
    server, url, _, _ = await receiver(lambda _: b"")
    out = sender(timeout=0.3)
    try:
        outcome = await out.send(url, "msg_1", BODY, (new_secret(),))
        assert outcome.error == "no answer within 0.3 seconds"
    finally:
        await out.close()
        server.close()


@pytest.mark.anyio
async def test_loopback_and_plain_http_are_refused_unless_allowed() -> None:
    server, url, requests, _ = await receiver(ok)
    try:
        outcome = await Sender().send(url, "msg_1", BODY, (new_secret(),))
        assert outcome.error is not None and outcome.error.startswith("refused: only https")
        strict = Sender(allow_http=True)
        outcome = await strict.send(url, "msg_1", BODY, (new_secret(),))
        assert outcome.error is not None and "loopback" in outcome.error
        outcome = await strict.send(
            url.replace("127.0.0.1", "localhost"), "msg_1", BODY, (new_secret(),)
        )
        assert outcome.error is not None and outcome.error.startswith("refused:")
        assert requests == []
    finally:
        server.close()


@pytest.mark.anyio
async def test_https_verifies_the_receivers_certificate() -> None:
    """TLS to the checked address, the certificate verified against certifi's authorities:
    a receiver whose certificate a private authority signed is refused."""
    import ssl

    import trustme

    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    requests: list[bytes] = []
    server = await asyncio.get_running_loop().create_server(
        lambda: Receiver(ok, requests, []), "127.0.0.1", 0, ssl=context
    )
    port = server.sockets[0].getsockname()[1]
    out = sender()
    try:
        outcome = await out.send(f"https://127.0.0.1:{port}/", "msg_1", BODY, (new_secret(),))
        assert not outcome.delivered and "SSLCertVerificationError" in (outcome.error or "")
        assert requests == []
    finally:
        await out.close()
        server.close()

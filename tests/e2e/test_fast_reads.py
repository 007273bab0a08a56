"""The protocol's status reads in a real server: keep-alive, pipelining, HTTP/1.0, metrics.

The lane answers inside the HTTP protocol (server/fast_lane.py), so what it must keep is the
protocol's contract: answers in request order on a connection, however requests arrive,
and the connection kept or closed as the client asked. CI runs the end-to-end suite a
second time with the lane off (OPSTATUS_FAST_READS=false): every test here holds either way,
and :func:`test_the_protocol_lane_itself_answers` tells which way it ran.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests import pg
from tests.support import SUB_A, ServerProcess, read_responses, status_path

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """The protocol answers the reads of one turn of the event loop together at its end
    (server/fast_lane.py): on SQLite each read at once, on PostgreSQL all in one query.
    Both must keep the protocol's contract."""
    with serving(request, tmp_path_factory.mktemp("inline") / "home", request.param) as proc:
        yield proc


@contextlib.contextmanager
def serving(
    request: pytest.FixtureRequest, home: Path, store: str, *extra: str
) -> Iterator[ServerProcess]:
    """A server on ``store`` with two operations: op1 InProgress, op2 Succeeded."""
    with contextlib.ExitStack() as cleanup:
        if store == "postgres":
            databases: pg.Databases = request.getfixturevalue("pg_databases")
            url = databases.take()
            cleanup.callback(databases.give_back, url)
            extra = ("--store", url, *extra)
        proc = ServerProcess(home, *extra).start()
        cleanup.callback(proc.stop)
        owner = {"Authorization": f"Bearer {proc.token()}"}
        for op in ("op1", "op2"):
            body = {"status": "InProgress"} if op == "op1" else {"status": "Succeeded"}
            put = httpx.put(proc.url + status_path(op_id=op), json=body, headers=owner)
            assert put.is_success
        yield proc


def request(
    port: int, method: str, path: str, token: str, body: bytes = b"", version: str = "1.1"
) -> bytes:
    """A request as a client sends it to the server on ``port`` (Host names the port)."""
    head = f"{method} {path} HTTP/{version}\r\nHost: 127.0.0.1:{port}\r\n"
    head += f"Authorization: Bearer {token}\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def test_keep_alive_and_pipelined_requests_answer_in_order(server: ServerProcess) -> None:
    token = server.token("Owner", f"/subscriptions/{SUB_A}", "pipeliner")
    patch = b'{"percentComplete": 50}'
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            request(server.port, "GET", status_path(op_id="op1"), token)
        )  # verifies the token
        first = read_responses(sock, 1)[0]
        assert first[0] == 200 and b'"name":"op1"' in first[2]
        # Inline-able reads around a write and a 404, all in one segment.
        burst = b"".join(
            [
                request(server.port, "GET", status_path(op_id="op1"), token),
                request(server.port, "GET", status_path(op_id="op2"), token),
                request(server.port, "PATCH", status_path(op_id="op1"), token, patch),
                request(server.port, "GET", status_path(op_id="op1"), token),
                request(server.port, "GET", status_path(op_id="missing"), token),
                request(server.port, "GET", status_path(op_id="op2"), token),
            ]
        )
        sock.sendall(burst)
        answers = read_responses(sock, 6)
    assert [status for status, _, _ in answers] == [200, 200, 200, 200, 404, 200]
    names = [body.split(b'"name":"', 1)[1].split(b'"', 1)[0] for _, _, body in answers[:4]]
    assert names == [b"op1", b"op2", b"op1", b"op1"]
    assert b"percentComplete" not in answers[0][2]  # read before the PATCH...
    assert answers[3][1]["etag"] != answers[0][1]["etag"]  # ...and after it
    assert answers[1][1].get("retry-after") is None  # Succeeded: no Retry-After
    ids = {headers["x-ms-request-id"] for _, headers, _ in answers}
    assert len(ids) == 6


def test_reads_on_many_connections_at_once_get_their_own_answers(server: ServerProcess) -> None:
    """Reads that arrive together are answered together: each connection must get its own
    answer, a 404 among them answered by the app, and a client gone before its answer must
    cost the others nothing."""
    token = server.token("Reader", f"/subscriptions/{SUB_A}", "crowd")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            request(server.port, "GET", status_path(op_id="op1"), token)
        )  # verifies the token
        assert read_responses(sock, 1)[0][0] == 200
    wanted = ["op1", "op2", "missing"] * 12
    with contextlib.ExitStack() as stack:
        socks = [
            stack.enter_context(socket.create_connection(("127.0.0.1", server.port), timeout=10))
            for _ in wanted
        ]
        for _ in range(3):
            gone = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            gone.sendall(request(server.port, "GET", status_path(op_id="op1"), token))
            gone.close()
        for sock, op_id in zip(socks, wanted, strict=True):
            sock.sendall(request(server.port, "GET", status_path(op_id=op_id), token))
        for sock, op_id in zip(socks, wanted, strict=True):
            status, _, body = read_responses(sock, 1)[0]
            if op_id == "missing":
                assert status == 404 and b"ResourceNotFound" in body
            else:
                assert status == 200 and f'"name":"{op_id}"'.encode() in body


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_reads_that_arrive_together_cannot_overspend_the_rate_limit(
    request: pytest.FixtureRequest, tmp_path: Path, store: str
) -> None:
    """Reads answered together are charged as they are admitted: a burst on many
    connections at once gets the bucket's worth of answers, and 429 for the rest."""
    with serving(
        request, tmp_path / "home", store, "--rate-limit", "1", "--rate-burst", "5"
    ) as proc:
        read = request_bytes(
            proc.port, proc.token("Reader", f"/subscriptions/{SUB_A}", "burst"), "op1"
        )
        with contextlib.ExitStack() as stack:
            socks = [
                stack.enter_context(socket.create_connection(("127.0.0.1", proc.port), timeout=10))
                for _ in range(30)
            ]
            socks[0].sendall(read)  # verifies the token
            assert read_responses(socks[0], 1)[0][0] == 200
            for sock in socks:
                sock.sendall(read)
            statuses = [read_responses(sock, 1)[0][0] for sock in socks]
    assert set(statuses) <= {200, 429}
    assert statuses.count(200) <= 5, statuses  # 4 tokens left, and at most 1 refilled


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_a_read_the_app_answers_after_all_costs_one_token(
    request: pytest.FixtureRequest, tmp_path: Path, store: str
) -> None:
    """A read the lane admits (and charges) but leaves to the app, a 404 here, is not
    charged again by the guard."""
    with serving(
        request, tmp_path / "home", store, "--rate-limit", "0.001", "--rate-burst", "3"
    ) as proc:
        token = proc.token("Reader", f"/subscriptions/{SUB_A}", "counted-once")
        with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
            got = []
            for op_id in ("op1", "missing", "op1", "op1"):  # the first verifies the token
                sock.sendall(request_bytes(proc.port, token, op_id))
                got.append(read_responses(sock, 1)[0][0])
    assert got == [200, 404, 200, 429]


def request_bytes(port: int, token: str, op_id: str) -> bytes:
    return request(port, "GET", status_path(op_id=op_id), token)


def test_http_1_0_gets_its_answer_and_the_connection_closes(server: ServerProcess) -> None:
    token = server.token("Reader", f"/subscriptions/{SUB_A}", "old-client")
    for _ in range(2):  # the first through the app, the second inline
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(
                request(server.port, "GET", status_path(op_id="op2"), token, version="1.0")
            )
            status, headers, body = read_responses(sock, 1)[0]
            # HTTP/1.0 closes by default; uvicorn before 0.46 does not say so in a header.
            assert status == 200 and headers.get("connection", "close") == "close"
            assert b'"status":"Succeeded"' in body
            assert sock.recv(100) == b""  # closed by the server


def test_fast_lane_answers_are_counted(server: ServerProcess, tmp_path: Path) -> None:
    token = server.token("Reader", f"/subscriptions/{SUB_A}", "counted")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as c:
        before = _status_reads(c.get("/metrics").text)
        for _ in range(20):
            assert c.get(status_path(op_id="op1")).status_code == 200
        assert _status_reads(c.get("/metrics").text) == before + 20


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_with_the_access_log_on_every_status_read_is_logged(
    request: pytest.FixtureRequest, tmp_path: Path, store: str
) -> None:
    """The protocol's own answers would bypass uvicorn's access log, so at debug level,
    where that log is on, the app answers them."""
    with serving(request, tmp_path / "home", store, "--log-level", "debug") as proc:
        token = proc.token("Reader", f"/subscriptions/{SUB_A}", "logged")
        with httpx.Client(base_url=proc.url, headers={"Authorization": f"Bearer {token}"}) as c:
            for _ in range(5):
                assert c.get(status_path(op_id="op1")).status_code == 200
        proc.stop()
        lines = proc.log.read_text().splitlines()
    logged = [line for line in lines if '"GET ' in line and "operationsStatus/op1" in line]
    assert len(logged) == 5 and all('" 200' in line for line in logged), logged


#: Whether the servers here run with the fast lane (the default) or without it.
LANE_ON = os.environ.get("OPSTATUS_FAST_READS", "true").lower() not in ("0", "false", "no", "off")


def test_the_protocol_lane_itself_answers(server: ServerProcess) -> None:
    """Fails unless the protocol lane answered the reads: the first scrape of /metrics has
    the token verified by the app, so every read after it is counted as the lane's. With the
    lane off, none is."""
    token = server.token("Reader", f"/subscriptions/{SUB_A}", "lane")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as c:
        before = _lane_reads(c.get("/metrics").text)
        for _ in range(10):
            assert c.get(status_path(op_id="op1")).status_code == 200
        after = _lane_reads(c.get("/metrics").text)
    if LANE_ON:
        assert after["protocol"] - before["protocol"] == 10
        assert after["asgi"] == before["asgi"]
    else:
        assert after == before == {"protocol": 0.0, "asgi": 0.0}


def _lane_reads(metrics: str) -> dict[str, float]:
    counts = {"protocol": 0.0, "asgi": 0.0}
    for line in metrics.splitlines():
        if line.startswith("opstatus_fast_reads_total{"):
            lane = line.split('lane="', 1)[1].split('"', 1)[0]
            counts[lane] = float(line.rsplit(" ", 1)[1])
    return counts


def _status_reads(metrics: str) -> float:
    for line in metrics.splitlines():
        if (
            line.startswith("opstatus_http_requests_total{")
            and "operationsStatus/{operation_id}" in line
            and 'method="GET"' in line
            and 'status="200"' in line
        ):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_client_that_does_not_read_cannot_fill_the_servers_memory(
    server: ServerProcess,
) -> None:
    """Pipelined reads from a client that reads none of its answers: once the answers back
    up, the server stops answering inline and stops reading, and while it works through
    what it read it reads no more (uvicorn alone would queue the whole burst)."""
    token = server.token("Reader", f"/subscriptions/{SUB_A}", "hoarder")
    one = request(server.port, "GET", status_path(op_id="op1"), token)
    assert server.proc is not None
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(one)  # verifies the token: the rest would be answered inline
        read_responses(sock, 1)
        before = rss_kib(server.proc.pid)
        burst = one * 40_000  # ~16 MB of requests, ~25 MB of answers
        sock.setblocking(False)
        sent, stalled_since = 0, None
        while sent < len(burst):
            try:
                sent += sock.send(burst[sent : sent + 65536])
                stalled_since = None
            except BlockingIOError:
                stalled_since = stalled_since or time.monotonic()
                if time.monotonic() - stalled_since > 1.0:
                    break  # the server stopped reading
                time.sleep(0.01)
        grown = rss_kib(server.proc.pid) - before
        assert sent < len(burst), "the server read everything a non-reading client sent"
        assert grown < 8 * 1024, f"the server grew by {grown} KiB"
        sock.setblocking(True)
        sock.settimeout(10)
        answers = read_responses(sock, sent // len(one))
    assert {status for status, _, _ in answers} == {200}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def collection_path() -> str:
    """Where a POST creates an operation with an id of the server's choosing."""
    return status_path().replace("/op1?", "?")


def test_a_foreign_host_is_refused_whichever_lane_reads_it(server: ServerProcess) -> None:
    """A status read naming a Host the server does not answer for (http/hosts.py) is not
    answered by the protocol's lane: the app refuses it, in its order on the connection."""
    token = server.token("Reader", f"/subscriptions/{SUB_A}", "host-checked")
    own = request(server.port, "GET", status_path(op_id="op1"), token)
    foreign = own.replace(f"Host: 127.0.0.1:{server.port}".encode(), b"Host: evil.example")
    other_port = own.replace(f":{server.port}\r\n".encode(), b":1\r\n")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(own)  # verifies the token: the reads below could be answered inline
        assert read_responses(sock, 1)[0][0] == 200
        sock.sendall(own + foreign + own + other_port + foreign.replace(b"op1", b"missing"))
        answers = read_responses(sock, 5)
    assert [status for status, _, _ in answers] == [200, 400, 200, 400, 400]
    for _, headers, body in answers[1::2] + answers[4:]:
        assert orjson.loads(body)["error"]["code"] == "HostNotAllowed"
        assert b"evil" not in body and "evil" not in str(headers)
    owner = {"Authorization": f"Bearer {server.token()}", "Host": "evil.example"}
    created = httpx.post(server.url + collection_path(), json={}, headers=owner)
    assert created.status_code == 400 and "azure-asyncoperation" not in created.headers


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_with_a_public_url_no_answer_names_the_host(
    request: pytest.FixtureRequest, tmp_path: Path, store: str
) -> None:
    public = "https://ops.example.net"
    with serving(request, tmp_path / "home", store, "--public-url", public) as proc:
        headers = {"Authorization": f"Bearer {proc.token()}", "Host": "evil.example"}
        created = httpx.post(proc.url + collection_path(), json={}, headers=headers)
        assert created.status_code == 201, created.text
        assert created.headers["azure-asyncoperation"].startswith(f"{public}/subscriptions/")
        canceled = httpx.post(
            proc.url + status_path(op_id="op1").replace("op1?", "op1/cancel?"), headers=headers
        )
        assert canceled.status_code == 202, canceled.text
        for name in ("azure-asyncoperation", "location"):
            assert canceled.headers[name].startswith(f"{public}/subscriptions/")
        listed = httpx.get(proc.url + collection_path() + "&maxpagesize=1", headers=headers)
        assert listed.json()["nextLink"].startswith(f"{public}/subscriptions/")
        # A status read has no links: answered inline, as the app answers it.
        inline = httpx.get(proc.url + status_path(op_id="op2"), headers=headers)
        app = httpx.get(proc.url + status_path(op_id="op2"), headers={**headers, "Prefer": "x"})
        assert inline.status_code == app.status_code == 200
        assert inline.content == app.content
        for answer in (created, canceled, listed, inline):
            assert "evil" not in answer.text and "evil" not in str(answer.headers)


def test_allowed_hosts_with_a_wildcard(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    hosts = "--allowed-hosts", "*.example.com,127.0.0.1"
    with serving(request, tmp_path / "home", "sqlite", *hosts) as proc:
        owner = {"Authorization": f"Bearer {proc.token()}"}
        for host, status in [
            ("a.example.com", 201),
            ("b.c.example.com:8443", 201),
            ("example.com", 400),
            ("a.example.com.evil.example", 400),
            ("localhost", 400),
        ]:
            headers = {**owner, "Host": host}
            created = httpx.post(proc.url + collection_path(), json={}, headers=headers)
            assert created.status_code == status, (host, created.text)
            if status == 201:
                link = created.headers["azure-asyncoperation"]
                assert link.startswith(f"http://{host}/subscriptions/"), link

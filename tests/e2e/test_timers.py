"""Every connection is under a timer (server/protocol.py), with the fast lane on and off:
bytes that start no request after an answer, a body the app did not read, a TLS handshake
that never starts, a thousand such connections, and ten thousand reset by their clients."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme

from tests.support import ServerProcess, status_path

pytestmark = pytest.mark.e2e

TIMERS = ("--keep-alive-timeout", "1", "--header-timeout", "2", "--body-timeout", "2")


@pytest.fixture(scope="module", params=["fast-reads", "no-fast-reads"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    home = tmp_path_factory.mktemp("timers") / "home"
    home.mkdir()
    proc = ServerProcess(home, *TIMERS, f"--{request.param}").start()
    token = proc.token()
    owner = {"Authorization": f"Bearer {token}"}
    assert httpx.put(proc.url + status_path(), json={}, headers=owner).status_code == 201
    yield proc
    proc.stop()


def answered(server: ServerProcess, extra_head: str = "") -> socket.socket:
    """A connection whose status read was answered (through the lane, when it is on)."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    head = f"GET {status_path()} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
    head += f"Authorization: Bearer {server.token()}\r\n{extra_head}\r\n"
    sock.sendall(head.encode())
    answer = b""
    while b'"status"' not in answer:
        chunk = sock.recv(65536)
        assert chunk, answer
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 ")
    return sock


def closed_after(sock: socket.socket, limit: float) -> float:
    """Seconds until the server closed ``sock`` (reading and dropping what it sends)."""
    started = time.monotonic()
    sock.settimeout(limit)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        pytest.fail(f"still open after {limit} s")
    finally:
        sock.close()
    return time.monotonic() - started


def test_a_crlf_after_an_answer_does_not_keep_the_connection(server: ServerProcess) -> None:
    sock = answered(server)
    sock.sendall(b"\r\n")
    time.sleep(0.5)
    sock.sendall(b"\r\n")  # bytes that start no request do not restart the idle clock
    assert closed_after(sock, 5) < 1.5


def test_a_body_the_app_did_not_read_does_not_keep_the_connection(
    server: ServerProcess,
) -> None:
    sock = answered(server, "Content-Length: 1\r\n")  # a GET's body, never read
    sock.sendall(b"x")
    assert closed_after(sock, 6) < 3.5
    never = answered(server, "Content-Length: 5\r\n")  # and one never sent whole
    assert closed_after(never, 6) < 3.5


def test_a_client_that_never_starts_tls_is_closed_at_the_head_limit(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    key, chain, ca_file = tmp_path / "key.pem", tmp_path / "cert.pem", tmp_path / "ca.pem"
    cert.private_key_pem.write_to_path(str(key))
    key.chmod(0o600)
    cert.cert_chain_pems[0].write_to_path(str(chain))
    ca.cert_pem.write_to_path(str(ca_file))
    home = tmp_path / "home"
    home.mkdir()
    tls = ("--tls-cert", str(chain), "--tls-key", str(key))
    proc = ServerProcess(home, *TIMERS, *tls, ca=ca_file).start()
    try:
        silent = socket.create_connection(("127.0.0.1", proc.port))
        assert closed_after(silent, 8) < 3.5
        context = ssl.create_default_context(cafile=str(ca_file))
        raw = socket.create_connection(("127.0.0.1", proc.port))
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 200 ")
    finally:
        proc.stop()


def test_a_thousand_silent_connections_cannot_lock_others_out(tmp_path: Path) -> None:
    """With --max-connections 1000, 999 connections each answered and then sent a CRLF:
    the next connection is the 1,000th, and gets 503 while they are open; once their
    keep-alive timers fire, it is answered."""
    home = tmp_path / "home"
    home.mkdir()
    proc = ServerProcess(home, *TIMERS, "--max-connections", "1000").start()
    held: list[socket.socket] = []
    try:
        for _ in range(999):
            sock = socket.create_connection(("127.0.0.1", proc.port), timeout=10)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            held.append(sock)
        for sock in held:
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
            sock.sendall(b"\r\n")
        reader = {"Authorization": f"Bearer {proc.token('Reader')}"}
        assert httpx.get(proc.url + "/healthz", headers=reader).status_code == 503
        time.sleep(2)  # the keep-alive limit is 1 s
        response = httpx.get(proc.url + status_path(), headers=reader)
        assert response.status_code == 404  # answered: a read of an operation never made
        assert all(closed_after(sock, 1) < 1 for sock in held)
    finally:
        for sock in held:
            sock.close()
        proc.stop()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc for RSS")
@pytest.mark.parametrize("lane", ["--fast-reads", "--no-fast-reads"])
def test_connections_reset_after_an_answer_are_let_go_at_once(tmp_path: Path, lane: str) -> None:
    """uvicorn's keep-alive timer outlives a connection its client reset: with a minute of
    keep-alive, 10,000 resets would each hold a protocol and its request for that minute."""
    home = tmp_path / "home"
    home.mkdir()
    proc = ServerProcess(home, "--keep-alive-timeout", "60", lane).start()
    assert proc.proc is not None
    token = proc.token()
    owner = {"Authorization": f"Bearer {token}"}
    assert httpx.put(proc.url + status_path(), json={}, headers=owner).status_code == 201
    head = f"GET {status_path()} HTTP/1.1\r\nHost: 127.0.0.1:{proc.port}\r\n"
    head += f"Authorization: Bearer {token}\r\n"
    head += "X-Padding: " + "p" * 2000 + "\r\n\r\n"  # what a held request would keep
    request = head.encode()
    linger = (1).to_bytes(4, "little") + (0).to_bytes(4, "little")

    def reset_after_answer(count: int) -> None:
        for _ in range(count):
            with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
                sock.sendall(request)
                assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)  # close: RST

    try:
        reset_after_answer(2000)  # the server's caches and pools warm
        time.sleep(0.5)
        before = rss_kib(proc.proc.pid)
        reset_after_answer(10_000)
        time.sleep(0.5)
        grown = rss_kib(proc.proc.pid) - before
        assert grown < 8 * 1024, f"RSS grew by {grown} KiB"
    finally:
        proc.stop()

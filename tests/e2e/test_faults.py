"""Faults with real server processes: a full file system, read-only storage, SIGTERM.

- Disk full (a 2 MiB tmpfs filled up; needs root to mount): writes answer 503 with
  Retry-After and the server logs why; reads keep working; writes work again once there
  is room, and nothing refused is half-written.
- Read-only storage (a read-only bind mount as root, file modes otherwise): the server
  starts and serves reads; writes answer 503 until the storage is writable again.
- SIGTERM: a request in flight is answered before the process exits (the store closed), new
  connections are refused, and the write it carried is durable.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.support import SUB_A, ServerProcess, status_path

from .conftest import bearer

pytestmark = pytest.mark.e2e


def _run(*argv: str | Path) -> bool:
    return subprocess.run([str(a) for a in argv], capture_output=True).returncode == 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A home folder on its own 2 MiB file system (the server's log stays outside it)."""
    home = tmp_path / "small"
    home.mkdir()
    if os.geteuid() != 0 or not _run("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", home):
        pytest.skip("mounting a small tmpfs needs root")
    yield home
    _run("umount", "-l", home)


def fill(folder: Path) -> Path:
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


@contextlib.contextmanager
def read_only(home: Path) -> Iterator[None]:
    """Make ``home`` read-only for the server: a read-only bind mount as root (root ignores
    file modes), the files' and folder's modes otherwise."""
    if os.geteuid() == 0:
        if not _run("mount", "--bind", home, home):
            pytest.skip("bind mounts are not allowed here")
        if not _run("mount", "-o", "remount,bind,ro", home):
            _run("umount", "-l", home)
            pytest.skip("read-only remounts are not allowed here")
        try:
            yield
        finally:
            _run("umount", "-l", home)
        return
    modes = {p: p.stat().st_mode for p in [home, *home.iterdir()]}
    for path in modes:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        yield
    finally:
        for path, mode in modes.items():
            path.chmod(mode)


def client(server: ServerProcess) -> httpx.Client:
    headers = bearer(server.token("Contributor", f"/subscriptions/{SUB_A}"))
    return httpx.Client(base_url=server.url, headers=headers, timeout=10)


def test_disk_full_refuses_writes_with_503_and_keeps_reads(small_disk: Path) -> None:
    server = ServerProcess(small_disk, "--retry-after", "0").start()
    try:
        with client(server) as c:
            assert c.put(status_path(op_id="before"), json={}).status_code == 201
            filler = fill(small_disk)
            refused = [
                c.put(status_path(op_id="new"), json={"properties": {"x": "y" * 9000}}),
                c.patch(status_path(op_id="before"), json={"percentComplete": 50}),
            ]
            read = c.get(status_path(op_id="before"))
            ready = httpx.get(f"{server.url}/readyz")
            filler.unlink()
            after_put = c.put(status_path(op_id="new"), json={"properties": {"x": "y" * 9000}})
            after_patch = c.patch(status_path(op_id="before"), json={"percentComplete": 50})
    finally:
        server.stop()
    for response in refused:
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "1"
    assert read.status_code == 200 and read.json()["status"] == "InProgress"
    assert ready.status_code == 200 and ready.json()["writes"] == "failing"
    assert "database or disk is full" in ready.json()["lastWriteError"]
    assert after_put.status_code == 201, after_put.text  # not there before: nothing half-done
    assert after_patch.status_code == 200, after_patch.text
    log = server.log.read_text()
    assert "store unavailable, request refused with 503" in log
    assert "database or disk is full" in log
    assert "Traceback" not in log


def test_read_only_storage_serves_reads_and_refuses_writes(home: Path) -> None:
    server = ServerProcess(home, "--retry-after", "0").start()
    with client(server) as c:
        assert c.put(status_path(op_id="kept"), json={"status": "Succeeded"}).status_code == 201
    server.stop()  # a clean stop: the WAL is checkpointed into the database file

    with read_only(home):
        server = ServerProcess(home, "--retry-after", "0").start()
        try:
            with client(server) as c:
                read = c.get(status_path(op_id="kept"))
                refused = c.put(status_path(op_id="new"), json={})
        except BaseException:
            server.stop()
            raise
    try:
        with client(server) as c:  # the storage is writable again; no restart needed
            accepted = c.put(status_path(op_id="new"), json={})
            read_new = c.get(status_path(op_id="new"))
    finally:
        server.stop()
    assert read.status_code == 200 and read.json()["status"] == "Succeeded"
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert accepted.status_code == 201, accepted.text
    assert read_new.status_code == 200
    log = server.log.read_text()
    assert "the database is read-only, serving reads only" in log
    assert "store unavailable, request refused with 503" in log


def test_sigterm_answers_the_request_in_flight_before_exiting(home: Path) -> None:
    server = ServerProcess(home, "--retry-after", "0").start()
    assert server.proc is not None
    body = orjson.dumps({"percentComplete": 42})
    token = server.token("Contributor", f"/subscriptions/{SUB_A}")
    head = (
        f"PUT {status_path(op_id='drained')} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + body[:5])  # the request has started; its body is still coming
        time.sleep(0.3)
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert server.proc.poll() is None, "exited with a request in flight"
        with pytest.raises(OSError):  # no new connections while draining
            socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
        sock.sendall(body[5:])
        answer = sock.recv(65536).decode()
    assert answer.startswith("HTTP/1.1 201 "), answer
    # uvicorn re-raises SIGTERM once it has drained, so the exit is "killed by SIGTERM" (which
    # service managers count as a clean stop); the store was closed on the way out: SQLite
    # removes the WAL file when its last connection closes cleanly.
    assert server.proc.wait(10) in (0, -signal.SIGTERM)
    assert not (home / "opstatus.db-wal").exists()
    revived = ServerProcess(home, "--retry-after", "0").start()
    try:
        with client(revived) as c:
            assert c.get(status_path(op_id="drained")).status_code == 200
    finally:
        revived.stop()

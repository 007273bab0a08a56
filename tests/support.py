"""Helpers shared by the tests: tokens, an in-process app, and a real server process."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import xmlschema

from opstatus.auth import load_or_create_key, mint_token
from opstatus.lifecycle import Clock
from opstatus.models import format_time, now_text
from opstatus.server import build_app
from opstatus.settings import Settings
from opstatus.stores.base import Store

SUB_A = "e7b5a9d2-6b6a-4d2f-9143-20d9a10f5b8f"
SUB_B = "0c3a1f4e-2b7d-4e58-9a61-5d3b2c1e0f99"
API_VERSION = "2025-07-01"


def status_path(
    sub: str = SUB_A,
    op_id: str = "op1",
    location: str = "westus",
    namespace: str = "Microsoft.Cache",
    api_version: str | None = API_VERSION,
) -> str:
    path = (
        f"/subscriptions/{sub}/providers/{namespace}/locations/{location}/operationsStatus/{op_id}"
    )
    return path + (f"?api-version={api_version}" if api_version is not None else "")


#: The classic form's namespace, written out here so tests do not trust the code's constant.
CLASSIC_NS = "http://schemas.microsoft.com/windowsazure"
#: The x-ms-version the legacy Python SDK (azure-servicemanagement-legacy 0.20.8) sends.
CLASSIC_HEADERS = {"x-ms-version": "2014-10-01"}
DATA = Path(__file__).resolve().parent / "data"


def classic_path(op_id: str = "op1", sub: str = SUB_A) -> str:
    return f"/{sub}/operations/{op_id}"


@functools.cache
def classic_schema() -> xmlschema.XMLSchema11:
    """The classic Operation and Error bodies, written from MSDN's element lists (XSD 1.1)."""
    return xmlschema.XMLSchema11(str(DATA / "classic_operation.xsd"))


def token(
    home: Path,
    role: str = "Owner",
    scope: str = "/",
    subject: str = "alice",
    expires_in: int = 3600,
) -> str:
    return mint_token(load_or_create_key(home), subject, [(role, scope)], expires_in)


def bearer(home: Path, role: str = "Owner", scope: str = "/", subject: str = "alice") -> dict:
    return {"Authorization": f"Bearer {token(home, role, scope, subject)}"}


class FakeClock:
    """A clock that only moves when told to: ``clock()`` is now, ``advance()`` moves it."""

    def __init__(self, start: str = "2030-01-01T00:00:00.000Z") -> None:
        self.now = datetime.fromisoformat(start.replace("Z", "+00:00"))

    def __call__(self) -> str:
        return format_time(self.now)

    def advance(
        self, seconds: float = 0, *, minutes: float = 0, hours: float = 0, days: float = 0
    ) -> str:
        self.now += timedelta(seconds=seconds, minutes=minutes, hours=hours, days=days)
        return self()

    def set(self, moment: str) -> None:
        self.now = datetime.fromisoformat(moment.replace("Z", "+00:00")).astimezone(UTC)


@contextlib.asynccontextmanager
async def app_client(
    home: Path, store: Store | None = None, clock: Clock = now_text, **settings: object
) -> AsyncIterator[httpx.AsyncClient]:
    """The real app in-process (its lifespan run), reached through httpx.ASGITransport."""
    app = build_app(
        Settings(home=home, **settings),  # type: ignore[arg-type]
        store=store,
        clock=clock,
    )
    inner = app.app
    async with inner.router.lifespan_context(inner):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``opstatus serve`` as a user runs it, on a free loopback port."""

    def __init__(self, home: Path, *extra: str, ca: Path | None = None) -> None:
        """``ca``: the server speaks HTTPS (``extra`` has --tls-*) with a cert from this CA."""
        self.home = home
        self.extra = extra
        self.port = free_port()
        self.verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca) if ca else True
        self.url = f"{'https' if ca else 'http'}://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = home.parent / f"server-{self.port}.log"

    def start(self) -> ServerProcess:
        # Tests drive servers harder than one principal's default rate limit allows; the limit
        # has tests of its own (tests/http/test_limits.py). A --rate-limit flag still wins.
        env = {"OPSTATUS_RATE_LIMIT": "0", **os.environ, "OPSTATUS_HOME": str(self.home)}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "opstatus",
                    "serve",
                    "--port",
                    str(self.port),
                    "--log-level",
                    "warning",
                    *self.extra,
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()}")
            try:
                health = httpx.get(f"{self.url}/healthz", timeout=1, verify=self.verify)
                if health.status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not start: {self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flushing: what a crash looks like."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def token(self, role: str = "Owner", scope: str = "/", subject: str = "alice") -> str:
        return token(self.home, role, scope, subject)


def read_responses(sock: socket.socket, count: int) -> list[tuple[int, dict[str, str], bytes]]:
    """``count`` responses, each framed by its Content-Length."""
    buffer = b""
    responses = []
    while len(responses) < count:
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed after {len(responses)} responses"
            buffer += chunk
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v for k, _, v in (line.partition(": ") for line in lines)}
        length = int(headers.get("content-length", "0"))
        while len(buffer) < length:
            chunk = sock.recv(65536)
            assert chunk
            buffer += chunk
        responses.append((int(status_line.split()[1]), headers, buffer[:length]))
        buffer = buffer[length:]
    return responses

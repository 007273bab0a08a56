"""Real server processes: HTTPS with the real Azure SDK client, role changes seen by every
instance on the next request, and the protocol's limits on request heads.

The TLS material is made here: a throwaway CA and a server certificate for 127.0.0.1
(trustme); the identity provider is ``tests.idp`` (an RS256 key and its JWKS file).
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError, ServiceRequestError
from azure.mgmt.redisenterprise import RedisEnterpriseManagementClient
from click.testing import CliRunner

from opstatus.cli import main
from tests.idp import AUDIENCE, ISSUER, IdentityProvider
from tests.support import SUB_A, ServerProcess, read_responses, status_path

pytestmark = pytest.mark.e2e


class JwksCredential:
    """A TokenCredential whose tokens the identity provider signed (RS256, kid from JWKS)."""

    def __init__(self, idp: IdentityProvider, principal: str) -> None:
        self.idp = idp
        self.principal = principal
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.idp.token(self.principal), int(time.time()) + 3600)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    paths = {"ca": folder / "ca.pem", "cert": folder / "cert.pem", "key": folder / "key.pem"}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    cert.private_key_pem.write_to_path(str(paths["key"]))
    paths["key"].chmod(0o600)
    with open(paths["cert"], "wb") as f:
        for blob in cert.cert_chain_pems:
            f.write(blob.bytes())
    return paths


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> IdentityProvider:
    return IdentityProvider(tmp_path_factory.mktemp("idp"))


def https_server(home: Path, tls: dict[str, Path], idp: IdentityProvider) -> ServerProcess:
    return ServerProcess(
        home,
        "--retry-after",
        "0",
        "--tls-cert",
        str(tls["cert"]),
        "--tls-key",
        str(tls["key"]),
        "--jwks",
        str(idp.jwks_path),
        "--issuer",
        ISSUER,
        "--audience",
        AUDIENCE,
        ca=tls["ca"],
    )


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("shared") / "home"


@pytest.fixture(scope="module")
def servers(
    shared_home: Path, tls: dict[str, Path], idp: IdentityProvider
) -> Iterator[list[ServerProcess]]:
    """Two HTTPS instances sharing one home (one SQLite store), as behind a balancer."""
    home = shared_home
    home.mkdir(parents=True, exist_ok=True)
    started = [https_server(home, tls, idp).start()]
    started.append(https_server(home, tls, idp).start())
    yield started
    for server in started:
        server.stop()


def role(command: str, home: Path, principal: str, name: str, scope: str) -> None:
    result = CliRunner().invoke(
        main,
        ["role", command, "--principal", principal, "--issuer", ISSUER, "--role", name,
         "--scope", scope, "--home", str(home), "--audit-log", str(home.parent / "audit.log")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def sdk(server: ServerProcess, credential: Any, ca: Path) -> RedisEnterpriseManagementClient:
    return RedisEnterpriseManagementClient(
        credential=credential,
        subscription_id=SUB_A,
        base_url=server.url,
        connection_verify=str(ca),
        retry_total=0,
    )


def test_azure_sdk_over_https_with_a_jwks_signed_token(
    servers: list[ServerProcess], tls: dict[str, Path], idp: IdentityProvider, shared_home: Path
) -> None:
    home = shared_home
    first, second = servers
    producer = {"Authorization": f"Bearer {first.token('Contributor', f'/subscriptions/{SUB_A}')}"}
    with httpx.Client(base_url=first.url, verify=first.verify, headers=producer) as http:
        created = http.put(
            status_path(op_id="tls-op", location="West%20US"),
            json={"status": "Failed", "error": {"code": "DiskFull", "message": "No space."}},
        )
        assert created.status_code == 201, created.text
    # The server wrote its audit line (to standard error, here its log file).
    audit_lines = [x for x in first.log.read_text().splitlines() if '"action":"create"' in x]
    assert len(audit_lines) == 1 and '"operationId":"tls-op"' in audit_lines[0]
    assert created.headers["x-ms-request-id"] in audit_lines[0]

    credential = JwksCredential(idp, "reader-1")
    clients = [sdk(server, credential, tls["ca"]) for server in servers]
    try:
        # No role yet: ARM's 403, on both instances.
        for client in clients:
            with pytest.raises(HttpResponseError) as denied:
                client.operations_status.get("West US", "tls-op")
            assert denied.value.status_code == 403
            assert denied.value.error is not None
            assert denied.value.error.code == "AuthorizationFailed"

        role("assign", home, "reader-1", "Reader", f"/subscriptions/{SUB_A}")
        for client in clients:  # the next request, on every instance, without a restart
            status = client.operations_status.get("West US", "tls-op")
            assert status.status == "Failed"
            assert status.error is not None and status.error.error is not None
            assert status.error.error.code == "DiskFull"
            assert status.id.endswith("/locations/westus/operationsStatus/tls-op")
        assert credential.scopes and credential.scopes[0] == (
            "https://management.azure.com/.default",
        )

        role("remove", home, "reader-1", "Reader", f"/subscriptions/{SUB_A}")
        for client in clients:
            with pytest.raises(HttpResponseError) as again:
                client.operations_status.get("West US", "tls-op")
            assert again.value.status_code == 403
    finally:
        for client in clients:
            client.close()


def test_certificate_verification_is_on(
    servers: list[ServerProcess], tls: dict[str, Path], idp: IdentityProvider
) -> None:
    """Without the test CA the SDK refuses the server: verification is really on."""
    context = ssl.create_default_context(cafile=str(tls["ca"]))
    with (
        socket.create_connection(("127.0.0.1", servers[0].port)) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
    ):
        assert sock.version() in ("TLSv1.2", "TLSv1.3")
    client = RedisEnterpriseManagementClient(
        credential=JwksCredential(idp, "reader-1"),
        subscription_id=SUB_A,
        base_url=servers[0].url,
        retry_total=0,
    )
    with client, pytest.raises(ServiceRequestError, match="CERTIFICATE_VERIFY_FAILED"):
        client.operations_status.get("West US", "tls-op")
    plain = servers[0].url.replace("https://", "http://")
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{plain}/healthz", timeout=5)


# -- the protocol's limits -------------------------------------------------------------------


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    home = tmp_path_factory.mktemp("strict") / "home"
    home.mkdir()
    proc = ServerProcess(home, "--max-header-bytes", "4096", "--header-timeout", "1").start()
    yield proc
    proc.stop()


def exchange(server: ServerProcess, data: bytes, wait: float = 5.0) -> bytes:
    """Send raw bytes, then read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=wait) as sock:
        if data:
            sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_oversized_request_head_is_431_and_closed(strict_server: ServerProcess) -> None:
    big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Filler: " + b"a" * 8000 + b"\r\n\r\n"
    answer = exchange(strict_server, big)
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert b'"code":"RequestHeaderFieldsTooLarge"' in answer
    # A header still arriving: refused as soon as it passes the limit, not when it ends.
    endless = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Filler: " + b"a" * 20000
    assert exchange(strict_server, endless).startswith(b"HTTP/1.1 431 ")
    assert httpx.get(f"{strict_server.url}/healthz").status_code == 200


def test_a_request_head_sent_too_slowly_is_408_and_closed(strict_server: ServerProcess) -> None:
    started = time.monotonic()
    answer = exchange(strict_server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    assert 0.8 < time.monotonic() - started < 4
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b'"code":"RequestTimeout"' in answer


def test_a_head_the_server_stops_reading_is_not_timed_out(strict_server: ServerProcess) -> None:
    """A head pipelined behind a request the server holds (Prefer: wait) is not read on
    while that request is answered: its time limit runs from when the server reads again,
    since the wait is the server's, not the client's."""
    token = strict_server.token()
    owner = {"Authorization": f"Bearer {token}"}
    path = status_path(op_id="held")
    put = httpx.put(strict_server.url + path, json={"status": "InProgress"}, headers=owner)
    assert put.is_success
    host = f"Host: 127.0.0.1:{strict_server.port}\r\n"
    held = f"GET {path} HTTP/1.1\r\n{host}Authorization: Bearer {token}\r\n"
    held += "Prefer: wait=2\r\n\r\n"
    queued = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    partial = "GET /healthz HTTP/1.1\r\nHost: x\r\n"
    with socket.create_connection(("127.0.0.1", strict_server.port), timeout=10) as sock:
        sock.sendall((held + queued + partial).encode())
        time.sleep(2.5)  # the held GET answers after 2 s; the limit on a head is 1 s
        sock.sendall(b"\r\n")
        answers = read_responses(sock, 3)
    assert [status for status, _, _ in answers] == [200, 200, 200]
    assert answers[0][1]["preference-applied"] == "wait=2"


def test_a_connection_that_never_sends_is_closed(strict_server: ServerProcess) -> None:
    started = time.monotonic()
    assert exchange(strict_server, b"") == b""
    assert 0.8 < time.monotonic() - started < 4


def active_waiters(server: ServerProcess) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    [line] = [line for line in text.splitlines() if line.startswith("opstatus_active_waiters ")]
    return float(line.split()[1])


def until_waiters(server: ServerProcess, count: int) -> None:
    deadline = time.monotonic() + 5
    while (seen := active_waiters(server)) != count:
        assert time.monotonic() < deadline, f"{seen} waiters, not {count}"
        time.sleep(0.02)


def test_a_client_that_leaves_a_held_request_frees_its_waiter_slot(home: Path) -> None:
    """One waiter slot: a held GET whose client disconnects gives it back at once, not when
    its wait would have run out."""
    server = ServerProcess(home, "--max-waiters", "1").start()
    try:
        token = server.token()
        path = status_path(op_id="held")
        owner = {"Authorization": f"Bearer {token}"}
        assert httpx.put(server.url + path, json={}, headers=owner).status_code == 201
        held = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        held += f"Authorization: Bearer {token}\r\n"
        held += "Prefer: wait=60\r\n\r\n"
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(held.encode())
            until_waiters(server, 1)
            refused = httpx.get(server.url + path, headers={**owner, "Prefer": "wait=60"})
            assert refused.status_code == 200
            assert "preference-applied" not in refused.headers  # no slot: answered at once
        until_waiters(server, 0)
        again = httpx.get(server.url + path, headers={**owner, "Prefer": "wait=1"})
        assert again.headers["preference-applied"] == "wait=1"
    finally:
        server.stop()

"""The Host a request names never makes the server's links lead elsewhere (http/hosts.py).

Every answer with an absolute link (POST's 201 and cancel's 202 with Azure-AsyncOperation
and Location, operationResults' 202 with Location, a list page's nextLink, the trailing-slash
redirect) is asked for with a foreign Host: without --public-url it is refused with 400 in
the form the path speaks; with --public-url it is answered with links to the public URL.
"""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from opstatus.cli import main
from opstatus.http.hosts import AllowedHosts, split_host
from opstatus.stores import MemoryStore
from tests.support import CLASSIC_HEADERS, CLASSIC_NS, app_client, classic_path, status_path

from .conftest import assert_arm_error, collection_path

pytestmark = pytest.mark.anyio

FOREIGN = "evil.example"
PUBLIC = "https://ops.example.net/base"
RUNNING = {"status": "InProgress"}


@contextlib.asynccontextmanager
async def seeded(
    home: Path, owner: dict[str, str], seed_host: str = "testserver", **settings: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with these settings and three running operations."""
    async with app_client(home, store=MemoryStore(), **settings) as client:
        client.headers.update(owner)
        for op_id in ("op1", "op2", "op3"):
            headers = {"Host": seed_host}
            response = await client.put(status_path(op_id=op_id), json=RUNNING, headers=headers)
            assert response.status_code == 201, response.text
        yield client


@pytest.fixture
async def client(home: Path, owner: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """Defaults: no --public-url, no --allowed-hosts."""
    async with seeded(home, owner) as c:
        yield c


@pytest.fixture
async def public(home: Path, owner: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with seeded(home, owner, public_url=PUBLIC) as c:
        yield c


@pytest.fixture
async def listed(home: Path, owner: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    hosts = ("*.example.com", "api.other.net:8443", "[::1]")
    async with seeded(home, owner, "a.example.com", allowed_hosts=hosts) as c:
        yield c


def results_path(op_id: str) -> str:
    return status_path(op_id=op_id).replace("operationsStatus", "operationResults")


async def ask(client: httpx.AsyncClient, case: str, host: str) -> httpx.Response:
    """One link-bearing request, naming ``host``."""
    headers = {"Host": host}
    if case == "post":
        return await client.post(collection_path(), json=RUNNING, headers=headers)
    if case == "cancel":
        cancel = status_path(op_id="op2").replace("op2?", "op2/cancel?")
        return await client.post(cancel, headers=headers)
    if case == "result":
        return await client.get(results_path("op3"), headers=headers)
    if case == "list":
        return await client.get(f"{collection_path()}&maxpagesize=1", headers=headers)
    assert case == "redirect"
    return await client.get(status_path().replace("op1?", "op1/?"), headers=headers)


#: The answer and the links each case must carry when the Host is allowed.
LINKED = {
    "post": (201, ("azure-asyncoperation",)),
    "cancel": (202, ("azure-asyncoperation", "location")),
    "result": (202, ("location",)),
    "list": (200, ("nextLink",)),
    "redirect": (307, ("location",)),
}


def links_of(response: httpx.Response, names: tuple[str, ...]) -> list[str]:
    return [
        response.json()[name] if name == "nextLink" else response.headers[name] for name in names
    ]


def mentions(response: httpx.Response, text: str) -> bool:
    everything = response.text + "".join(f"{k}:{v}" for k, v in response.headers.items())
    return text in everything


@pytest.mark.parametrize("case", list(LINKED))
async def test_a_foreign_host_is_refused_before_any_link_is_made(
    client: httpx.AsyncClient, case: str
) -> None:
    response = await ask(client, case, FOREIGN)
    assert_arm_error(response, 400, "HostNotAllowed")
    assert not mentions(response, FOREIGN)
    # The address the request reached (httpx's "testserver", port 80), and the loopback
    # names on its port.
    for allowed in ("testserver", "TestServer:80", "localhost", "127.0.0.1:80", "[::1]"):
        response = await ask(client, case, allowed)
        status, names = LINKED[case]
        assert response.status_code == status, (allowed, response.text)
        for link in links_of(response, names):
            assert link.lower().startswith(f"http://{allowed.lower()}/"), (allowed, link)
    for refused in ("localhost:8080", "testserver:81", "testserver.evil.example", "a b", ""):
        assert_arm_error(await ask(client, case, refused), 400, "HostNotAllowed")


async def test_the_classic_form_refuses_a_foreign_host_in_xml(client: httpx.AsyncClient) -> None:
    headers = {**CLASSIC_HEADERS, "Host": FOREIGN}
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        response = await client.request(method, classic_path(), headers=headers, json=RUNNING)
        assert response.status_code == 400, response.text
        assert response.headers["content-type"] == "application/xml; charset=utf-8"
        root = ET.fromstring(response.content)
        assert root.tag == f"{{{CLASSIC_NS}}}Error"
        assert root.findtext(f"{{{CLASSIC_NS}}}Code") == "HostNotAllowed"
    ok = await client.get(classic_path(), headers=CLASSIC_HEADERS)
    assert ok.status_code == 200, ok.text


async def test_status_reads_with_a_foreign_host_are_refused(client: httpx.AsyncClient) -> None:
    assert_arm_error(
        await client.get(status_path(), headers={"Host": FOREIGN}), 400, "HostNotAllowed"
    )
    assert (await client.get(status_path())).status_code == 200


async def test_probes_and_the_document_answer_whatever_the_host(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        response = await client.get(path, headers={"Host": FOREIGN})
        assert response.status_code == 200, path


@pytest.mark.parametrize("case", list(LINKED))
async def test_with_a_public_url_links_never_name_the_host(
    public: httpx.AsyncClient, case: str
) -> None:
    response = await ask(public, case, FOREIGN)
    status, names = LINKED[case]
    assert response.status_code == status, response.text
    for link in links_of(response, names):
        assert link.startswith(f"{PUBLIC}/subscriptions/"), link
    assert not mentions(response, FOREIGN)


@pytest.mark.parametrize("case", list(LINKED))
async def test_allowed_hosts_with_wildcards(listed: httpx.AsyncClient, case: str) -> None:
    status, names = LINKED[case]
    for host in ("a.example.com", "b.c.Example.COM:9000", "api.other.net:8443", "[::1]:1"):
        response = await ask(listed, case, host)
        assert response.status_code == status, (host, response.text)
        for link in links_of(response, names):
            assert link.lower().startswith(f"http://{host.lower()}/"), (host, link)
    # The list replaces the defaults: the server's own name is not on it.
    refused = ("example.com", "a.example.com.evil.net", "xexample.com", "api.other.net:443")
    for host in (*refused, "testserver", "*.example.com", FOREIGN):
        assert_arm_error(await ask(listed, case, host), 400, "HostNotAllowed")


def scope(host: bytes | None, scheme: str = "http", server: Any = ("10.0.0.5", 8080)) -> Any:
    headers = [] if host is None else [(b"host", host)]
    return {"path": "/x", "headers": headers, "scheme": scheme, "server": server}


def test_the_defaults_follow_the_connection() -> None:
    hosts = AllowedHosts(None, None)
    assert hosts.allows(scope(b"10.0.0.5:8080"))
    assert hosts.allows(scope(b"localhost:8080"))
    assert hosts.allows(scope(b"[::1]:8080"))
    assert hosts.allows(scope(None))  # HTTP/1.0: the links name the server's address
    assert not hosts.allows(scope(b"localhost"))  # port 80, another server's
    assert not hosts.allows(scope(b"10.0.0.6:8080"))
    assert hosts.allows(scope(b"localhost", "https", ("::1", 443)))
    assert hosts.allows(scope(b"[::1]", "https", ("::1", 443)))
    assert not hosts.allows(scope(b"localhost", "http", ("::1", 443)))
    assert hosts.allows(scope(b"evil.example", server=None)) is False
    assert AllowedHosts(None, PUBLIC).allows(scope(b"evil.example"))
    assert AllowedHosts(["*"], None).allows(scope(b"evil.example"))
    assert not AllowedHosts(["a.example"], PUBLIC).allows(scope(b"evil.example"))


@pytest.mark.parametrize("pattern", ["a b", "http://x", "x:port", "x:99999", "*", "**.x", ""])
def test_bad_patterns_are_refused_by_name(pattern: str) -> None:
    if pattern == "*":
        AllowedHosts([pattern], None)
        return
    with pytest.raises(ValueError, match="--allowed-hosts"):
        AllowedHosts([pattern], None)
    assert split_host(pattern, wildcard=True) is None


def test_serve_refuses_a_bad_allowed_hosts(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["serve", "--home", str(tmp_path), "--allowed-hosts", "ok.example, bad host"]
    )
    assert result.exit_code == 2, result.output
    assert "--allowed-hosts: 'bad host'" in result.output

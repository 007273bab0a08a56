"""ARM's common response headers, on every kind of response, errors and healthz included.

x-ms-request-id (unique per request), x-ms-correlation-request-id (echoed or generated),
Date (RFC 1123), Content-Type application/json whenever there is a body, x-ms-client-request-id
only when asked for; Retry-After (integer seconds) only while an operation runs; ETag on reads
and writes.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx
import pytest

from opstatus.stores import MemoryStore
from tests.support import SUB_B, app_client, bearer, status_path

from .conftest import JSON, collection_path

pytestmark = pytest.mark.anyio

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
RFC1123 = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"\d{4} \d{2}:\d{2}:\d{2} GMT\Z"
)
ETAG = re.compile(r'"[^"\s]+"\Z')

Call = Callable[[httpx.AsyncClient, Path, dict[str, str]], Awaitable[httpx.Response]]


async def seeded(
    c: httpx.AsyncClient, home: Path, body: dict[str, object] | None = None, op_id: str = "op1"
) -> httpx.Response:
    response = await c.put(
        status_path(op_id=op_id),
        headers=bearer(home),
        json=body if body is not None else {"status": "InProgress"},
    )
    assert response.status_code == 201, response.text
    return response


def own(home: Path, extra: dict[str, str]) -> dict[str, str]:
    return {**bearer(home), **extra}


async def get_200(c: httpx.AsyncClient, home: Path, extra: dict[str, str]) -> httpx.Response:
    await seeded(c, home)
    return await c.get(status_path(), headers=own(home, extra))


async def put_201(c: httpx.AsyncClient, home: Path, extra: dict[str, str]) -> httpx.Response:
    return await c.put(status_path(), headers=own(home, extra), json={})


async def put_200(c: httpx.AsyncClient, home: Path, extra: dict[str, str]) -> httpx.Response:
    await seeded(c, home, {})
    return await c.put(status_path(), headers=own(home, extra), json={})


async def patch_200(c: httpx.AsyncClient, home: Path, extra: dict[str, str]) -> httpx.Response:
    await seeded(c, home)
    return await c.patch(status_path(), headers=own(home, extra), json={"percentComplete": 5})


async def post_201(c: httpx.AsyncClient, home: Path, extra: dict[str, str]) -> httpx.Response:
    return await c.post(collection_path(), headers=own(home, extra), json={})


async def delete_200(c: httpx.AsyncClient, home: Path, extra: dict[str, str]) -> httpx.Response:
    await seeded(c, home)
    return await c.delete(status_path(), headers=own(home, extra))


async def delete_204(c: httpx.AsyncClient, home: Path, extra: dict[str, str]) -> httpx.Response:
    return await c.delete(status_path(), headers=own(home, extra))


async def bad_400(c: httpx.AsyncClient, home: Path, extra: dict[str, str]) -> httpx.Response:
    return await c.get(status_path(sub="not-a-guid"), headers=own(home, extra))


async def no_auth_401(c: httpx.AsyncClient, home: Path, extra: dict[str, str]) -> httpx.Response:
    return await c.get(status_path(), headers=extra)


async def forbidden_403(c: httpx.AsyncClient, home: Path, extra: dict[str, str]) -> httpx.Response:
    reader_of_b = bearer(home, "Reader", f"/subscriptions/{SUB_B}")
    return await c.get(status_path(), headers={**reader_of_b, **extra})


async def missing_404(c: httpx.AsyncClient, home: Path, extra: dict[str, str]) -> httpx.Response:
    return await c.get(status_path(op_id="nope"), headers=own(home, extra))


async def path_404(c: httpx.AsyncClient, home: Path, extra: dict[str, str]) -> httpx.Response:
    return await c.get("/no/such/path", headers=own(home, extra))


async def method_405(c: httpx.AsyncClient, home: Path, extra: dict[str, str]) -> httpx.Response:
    return await c.post(status_path(), headers=own(home, extra), json={})


async def conflict_409(c: httpx.AsyncClient, home: Path, extra: dict[str, str]) -> httpx.Response:
    await seeded(c, home)
    return await c.put(status_path(), headers=own(home, extra), json={"status": "Succeeded"})


async def precondition_412(
    c: httpx.AsyncClient, home: Path, extra: dict[str, str]
) -> httpx.Response:
    await seeded(c, home)
    return await c.patch(
        status_path(),
        headers=own(home, {**extra, "If-Match": '"stale"'}),
        json={"percentComplete": 5},
    )


async def too_large_413(c: httpx.AsyncClient, home: Path, extra: dict[str, str]) -> httpx.Response:
    body = b'{"properties": {"x": "' + b"x" * (1 << 20) + b'"}}'
    return await c.put(status_path(), headers=own(home, {**extra, **JSON}), content=body)


async def media_415(c: httpx.AsyncClient, home: Path, extra: dict[str, str]) -> httpx.Response:
    return await c.put(
        status_path(), headers=own(home, {**extra, "Content-Type": "text/plain"}), content=b"{}"
    )


async def healthz(c: httpx.AsyncClient, home: Path, extra: dict[str, str]) -> httpx.Response:
    return await c.get("/healthz", headers=extra)


CALLS: dict[str, tuple[Call, int]] = {
    "GET-200": (get_200, 200),
    "PUT-201": (put_201, 201),
    "PUT-replay-200": (put_200, 200),
    "PATCH-200": (patch_200, 200),
    "POST-201": (post_201, 201),
    "DELETE-200": (delete_200, 200),
    "DELETE-204": (delete_204, 204),
    "400": (bad_400, 400),
    "401": (no_auth_401, 401),
    "403": (forbidden_403, 403),
    "404-operation": (missing_404, 404),
    "404-path": (path_404, 404),
    "405": (method_405, 405),
    "409": (conflict_409, 409),
    "412": (precondition_412, 412),
    "413": (too_large_413, 413),
    "415": (media_415, 415),
    "healthz": (healthz, 200),
}
EMPTY_BODY = {"DELETE-200", "DELETE-204"}


def assert_date(response: httpx.Response) -> None:
    dates = response.headers.get_list("date")
    assert len(dates) == 1, dates
    assert RFC1123.match(dates[0]), dates[0]
    age = abs((datetime.now(UTC) - parsedate_to_datetime(dates[0])).total_seconds())
    assert age < 60, dates[0]


@pytest.mark.parametrize("name", CALLS)
async def test_every_response_carries_arms_headers(
    bare_client: httpx.AsyncClient, home: Path, name: str
) -> None:
    call, status = CALLS[name]
    response = await call(bare_client, home, {})
    assert response.status_code == status, response.text
    request_id = response.headers.get("x-ms-request-id", "")
    assert UUID.match(request_id), response.headers
    assert len(response.headers.get_list("x-ms-request-id")) == 1
    correlation = response.headers.get("x-ms-correlation-request-id", "")
    assert UUID.match(correlation), response.headers
    assert_date(response)
    assert "x-ms-client-request-id" not in response.headers
    if name in EMPTY_BODY:
        assert response.content == b""
        assert "content-type" not in response.headers, response.headers
    else:
        assert response.headers.get("content-type") == "application/json", response.headers
        assert isinstance(response.json(), dict)


@pytest.mark.parametrize("name", CALLS)
async def test_correlation_id_is_echoed_and_client_request_id_returned_when_asked(
    bare_client: httpx.AsyncClient, home: Path, name: str
) -> None:
    call, status = CALLS[name]
    client_request_id = str(uuid.uuid4())
    response = await call(
        bare_client,
        home,
        {
            "x-ms-correlation-request-id": "corr-0123456789",
            "x-ms-client-request-id": client_request_id,
            "x-ms-return-client-request-id": "true",
        },
    )
    assert response.status_code == status, response.text
    assert response.headers.get_list("x-ms-correlation-request-id") == ["corr-0123456789"]
    assert response.headers.get_list("x-ms-client-request-id") == [client_request_id]
    assert UUID.match(response.headers["x-ms-request-id"])


@pytest.mark.parametrize("flag", [None, "false", "False", "0", "no"])
async def test_client_request_id_is_not_returned_unless_asked(
    bare_client: httpx.AsyncClient, home: Path, flag: str | None
) -> None:
    headers = {**bearer(home), "x-ms-client-request-id": str(uuid.uuid4())}
    if flag is not None:
        headers["x-ms-return-client-request-id"] = flag
    for url in (status_path(), "/healthz"):
        response = await bare_client.get(url, headers=headers)
        assert "x-ms-client-request-id" not in response.headers, response.headers


@pytest.mark.parametrize("flag", ["true", "True", "TRUE"])
async def test_return_client_request_id_flag_ignores_case(
    bare_client: httpx.AsyncClient, home: Path, flag: str
) -> None:
    response = await bare_client.get(
        status_path(),
        headers={
            **bearer(home),
            "x-ms-client-request-id": "abc-123",
            "x-ms-return-client-request-id": flag,
        },
    )
    assert response.status_code == 404
    assert response.headers.get("x-ms-client-request-id") == "abc-123"


async def test_request_ids_are_unique_and_correlation_ids_generated_per_request(
    bare_client: httpx.AsyncClient, home: Path
) -> None:
    await seeded(bare_client, home)
    responses = []
    for i in range(10):
        responses.append(await bare_client.get(status_path(), headers=bearer(home)))
        responses.append(await bare_client.get(status_path(op_id=f"x{i}"), headers=bearer(home)))
        responses.append(await bare_client.get(status_path()))
        responses.append(await bare_client.get("/healthz"))
    request_ids = [r.headers["x-ms-request-id"] for r in responses]
    correlation_ids = [r.headers["x-ms-correlation-request-id"] for r in responses]
    assert len(set(request_ids)) == len(responses) == 40
    assert len(set(correlation_ids)) == len(responses)


async def test_correlation_id_is_echoed_without_a_client_request_id(
    bare_client: httpx.AsyncClient, home: Path
) -> None:
    first = await bare_client.get("/healthz", headers={"x-ms-correlation-request-id": "job-7"})
    second = await bare_client.get(status_path(), headers={"x-ms-correlation-request-id": "job-7"})
    assert first.headers["x-ms-correlation-request-id"] == "job-7"
    assert second.headers["x-ms-correlation-request-id"] == "job-7"
    assert first.headers["x-ms-request-id"] != second.headers["x-ms-request-id"]


# -- Retry-After -----------------------------------------------------------------------------


@pytest.fixture
async def polled(home: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The app told to advise 7 seconds between polls."""
    async with app_client(home, store=MemoryStore(), retry_after=7) as c:
        c.headers.update(bearer(home))
        yield c


@pytest.mark.parametrize("status", ["InProgress", "Provisioning", "Accepted", "inprogress"])
async def test_retry_after_on_200_while_running(polled: httpx.AsyncClient, status: str) -> None:
    assert (await polled.put(status_path(), json={"status": status})).status_code == 201
    read = await polled.get(status_path())
    assert read.status_code == 200
    assert read.headers.get_list("retry-after") == ["7"]
    patched = await polled.patch(status_path(), json={"percentComplete": 50})
    assert patched.status_code == 200
    assert patched.headers.get_list("retry-after") == ["7"]


@pytest.mark.parametrize("status", ["Succeeded", "Failed", "Canceled", "succeeded"])
async def test_no_retry_after_once_terminal(polled: httpx.AsyncClient, status: str) -> None:
    assert (await polled.put(status_path(op_id="a"), json={"status": status})).status_code == 201
    read = await polled.get(status_path(op_id="a"))
    assert read.status_code == 200
    assert "retry-after" not in read.headers
    # The PATCH that ends an operation answers without it, and so does every read after.
    assert (await polled.put(status_path(op_id="b"), json={})).status_code == 201
    patched = await polled.patch(status_path(op_id="b"), json={"status": status})
    assert patched.status_code == 200
    assert "retry-after" not in patched.headers
    assert "retry-after" not in (await polled.get(status_path(op_id="b"))).headers


async def test_default_retry_after_is_an_integer(client: httpx.AsyncClient) -> None:
    assert (await client.put(status_path(), json={})).status_code == 201
    value = (await client.get(status_path())).headers["retry-after"]
    assert re.fullmatch(r"[0-9]+", value), value
    assert value == "10"


# -- ETag ------------------------------------------------------------------------------------


async def test_etag_on_reads_and_writes(client: httpx.AsyncClient) -> None:
    created = await client.put(status_path(), json={"status": "InProgress"})
    etag = created.headers.get("etag", "")
    assert ETAG.match(etag), created.headers
    read = await client.get(status_path())
    assert read.headers.get_list("etag") == [etag]
    replay = await client.put(status_path(), json={"status": "InProgress"})
    assert replay.status_code == 200
    assert replay.headers.get_list("etag") == [etag]
    patched = await client.patch(status_path(), json={"percentComplete": 30})
    new_etag = patched.headers.get("etag", "")
    assert ETAG.match(new_etag) and new_etag != etag
    assert (await client.get(status_path())).headers["etag"] == new_etag
    nothing = await client.patch(status_path(), json={"percentComplete": 30})
    assert nothing.headers["etag"] == new_etag
    posted = await client.post(collection_path(), json={})
    assert posted.status_code == 201
    assert ETAG.match(posted.headers.get("etag", ""))
    fetched = await client.get(posted.headers["azure-asyncoperation"])
    assert fetched.headers["etag"] == posted.headers["etag"]


async def test_no_etag_on_errors(client: httpx.AsyncClient) -> None:
    missing = await client.get(status_path(op_id="nope"))
    assert missing.status_code == 404
    assert "etag" not in missing.headers

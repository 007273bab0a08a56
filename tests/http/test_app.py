"""App-level behaviour: method dispatch and what an unexpected failure looks like."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from opstatus.server import build_app
from opstatus.service import OperationService
from opstatus.settings import Settings
from opstatus.stores import MemoryStore
from tests.http.conftest import assert_arm_error
from tests.support import bearer, status_path

pytestmark = pytest.mark.anyio


async def test_405_lists_every_method_the_path_allows(home: Path) -> None:
    app = build_app(Settings(home=home), store=MemoryStore())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post(status_path(), headers=bearer(home))
    assert_arm_error(response, 405, "MethodNotAllowed")
    assert response.headers["allow"] == "DELETE, GET, HEAD, PATCH, PUT"


async def test_head_answers_like_get_without_a_body(home: Path) -> None:
    app = build_app(Settings(home=home), store=MemoryStore())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        await client.put(status_path(), json={}, headers=bearer(home))
        response = await client.head(status_path(), headers=bearer(home))
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["etag"]


async def test_an_unexpected_failure_is_a_500_envelope_without_internals(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def explode(self: OperationService, ref: object) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(OperationService, "get", explode)
    app = build_app(Settings(home=home), store=MemoryStore())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get(status_path(), headers=bearer(home))
    assert_arm_error(response, 500, "InternalServerError")
    assert "secret" not in response.text and "Traceback" not in response.text
    assert response.headers["x-ms-request-id"]

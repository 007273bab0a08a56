"""Shared pieces of the HTTP tests: in-process clients and assertions on ARM's error envelope.

Every client here runs the real app in-process (``tests.support.app_client``: lifespan run,
httpx.ASGITransport). ``client`` uses the in-memory store for speed; ``sqlite_client`` the
default SQLite store in the home folder, for the checks that nothing was written.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from opstatus.stores import MemoryStore
from tests.support import SUB_A, app_client, bearer, status_path

JSON = {"Content-Type": "application/json"}

#: The keys ARM's ErrorDetail may carry in an error response of ours.
ERROR_KEYS = frozenset({"code", "message", "target"})


def collection_path(
    sub: str = SUB_A,
    location: str = "westus",
    namespace: str = "Microsoft.Cache",
    api_version: str | None = "2025-07-01",
) -> str:
    """The collection a POST creates in (the server chooses the id)."""
    path = f"/subscriptions/{sub}/providers/{namespace}/locations/{location}/operationsStatus"
    return path + (f"?api-version={api_version}" if api_version is not None else "")


_NO_TARGET = object()


def assert_arm_error(
    response: httpx.Response,
    status: int,
    code: str,
    target: object = _NO_TARGET,
    message: str | None = None,
) -> dict[str, Any]:
    """``response`` is ARM's error envelope with exactly this status, code and target.

    ``target`` left out means the body must carry none. No 4xx may carry Retry-After
    (azure-core retries any error answer that has one).
    """
    assert response.status_code == status, response.text
    assert response.headers.get("content-type") == "application/json", response.headers
    if 400 <= status < 500:
        assert "retry-after" not in response.headers, response.headers
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert set(error) <= ERROR_KEYS, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"].strip(), error
    if target is _NO_TARGET:
        assert "target" not in error, error
    else:
        assert error.get("target") == target, error
    if message is not None:
        assert error["message"] == message, error
    return error


def db_rows(home: Path) -> list[tuple[Any, ...]]:
    """Every row of the SQLite store, read-only (the app keeps its own connections open)."""
    path = home / "opstatus.db"
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return conn.execute("SELECT * FROM operations ORDER BY operation_key").fetchall()


@pytest.fixture
def owner(home: Path) -> dict[str, str]:
    """Authorization header of an Owner over '/' (every subscription)."""
    return bearer(home)


@pytest.fixture
async def client(home: Path, owner: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """The app on an in-memory store; requests carry an Owner-of-'/' token by default."""
    async with app_client(home, store=MemoryStore()) as c:
        c.headers.update(owner)
        yield c


@pytest.fixture
async def sqlite_client(home: Path, owner: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """The app on its default store (SQLite in the home folder), as an Owner of '/'."""
    async with app_client(home) as c:
        c.headers.update(owner)
        yield c


@pytest.fixture
def providers_file(tmp_path: Path) -> Path:
    """A TOML file registering Contoso.Widgets with the flat (RPC) operation shape."""
    path = tmp_path / "providers.toml"
    path.write_text(
        '[[provider]]\nnamespace = "Contoso.Widgets"\napi_versions = ["2024-01-01"]\n'
        'error_shape = "flat"\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture
async def flat_client(
    home: Path, owner: dict[str, str], providers_file: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with Contoso.Widgets registered from ``providers_file`` (in-memory store)."""
    async with app_client(home, store=MemoryStore(), providers_file=providers_file) as c:
        c.headers.update(owner)
        yield c


def widget_path(op_id: str = "w1", sub: str = SUB_A, api_version: str = "2024-01-01") -> str:
    return status_path(sub=sub, op_id=op_id, namespace="Contoso.Widgets", api_version=api_version)


@pytest.fixture
async def bare_client(home: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The app on an in-memory store; requests carry no Authorization unless given one."""
    async with app_client(home, store=MemoryStore()) as c:
        yield c

"""Shared pieces of the end-to-end tests: the repo's own contract data and HTTP clients.

Everything these tests know about the published contract comes from ``tests/data``
(transcribed from the Redis Enterprise 2025-07-01 swagger, its OperationsStatusGet example and
common-types v2), never from files outside the repository.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from tests.support import SUB_A, ServerProcess, status_path

DATA = Path(__file__).resolve().parent.parent / "data"

#: The keys OperationStatus defines (swagger 2025-07-01); a 200 body has no others.
OPERATION_STATUS_KEYS = frozenset({"id", "name", "startTime", "endTime", "status", "error"})


def load_json(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def example() -> dict[str, Any]:
    """The OperationsStatusGet example: ``parameters`` and ``responses['200']['body']``."""
    data: dict[str, Any] = load_json("OperationsStatusGet.json")
    return data


@pytest.fixture(scope="session")
def status_validator() -> Draft202012Validator:
    schema = load_json("operation_status.schema.json")
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@pytest.fixture
def check_status_body(status_validator: Draft202012Validator) -> Callable[[Any], None]:
    """Assert that a 200 body is a valid OperationStatus (schema, known keys, status present)."""

    def check(body: Any) -> None:
        errors = sorted(status_validator.iter_errors(body), key=lambda e: list(e.path))
        assert not errors, "; ".join(f"{list(e.path)}: {e.message}" for e in errors)
        assert isinstance(body, dict)
        assert set(body) <= OPERATION_STATUS_KEYS, body
        assert "status" in body, body

    return check


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def producer(server: ServerProcess) -> Iterator[httpx.Client]:
    """A producer (Contributor on subscription A) talking HTTP to the real server."""
    headers = bearer(server.token("Contributor", f"/subscriptions/{SUB_A}"))
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
        yield client


@pytest.fixture
def reader(server: ServerProcess) -> Iterator[httpx.Client]:
    """A reader (Reader on subscription A) talking HTTP to the real server."""
    headers = bearer(server.token("Reader", f"/subscriptions/{SUB_A}"))
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
        yield client


@pytest.fixture
def seed(producer: httpx.Client) -> Callable[..., httpx.Response]:
    """PUT an operation into subscription A (location westus); asserts it was created."""

    def create(op_id: str, body: dict[str, Any], location: str = "westus") -> httpx.Response:
        response = producer.put(status_path(op_id=op_id, location=location), json=body)
        assert response.status_code == 201, response.text
        return response

    return create

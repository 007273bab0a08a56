"""The published OperationsStatusGet example (2025-07-01), replayed against a real server.

Contract point: the example's request reproduces the example's 200 body exactly, for an
operation seeded with the example's values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.support import ServerProcess

from .conftest import bearer

pytestmark = pytest.mark.e2e


def example_path(params: dict[str, Any]) -> str:
    """The swagger's path template filled as a client fills it (segments percent-encoded)."""
    return (
        f"/subscriptions/{quote(params['subscriptionId'], safe='')}/providers/Microsoft.Cache"
        f"/locations/{quote(params['location'], safe='')}"
        f"/operationsStatus/{quote(params['operationId'], safe='')}"
        f"?api-version={quote(params['api-version'], safe='')}"
    )


def seed_example(server: ServerProcess, params: dict[str, Any], body: dict[str, Any]) -> None:
    subscription = params["subscriptionId"]
    token = server.token("Contributor", f"/subscriptions/{subscription}")
    url = (
        f"{server.url}/subscriptions/{subscription}/providers/Microsoft.Cache/locations/westus"
        f"/operationsStatus/{params['operationId']}?api-version={params['api-version']}"
    )
    seed_body = {"status": "Succeeded", "startTime": body["startTime"], "endTime": body["endTime"]}
    response = httpx.put(url, json=seed_body, headers=bearer(token), timeout=10)
    assert response.status_code == 201, response.text


def test_example_request_reproduces_example_body(
    server: ServerProcess, example: dict[str, Any], check_status_body: Callable[[Any], None]
) -> None:
    params = example["parameters"]
    expected = example["responses"]["200"]["body"]
    assert params["location"] == "West US"
    assert params["operationId"] == "testoperationid"
    assert params["api-version"] == "2025-07-01"
    seed_example(server, params, expected)

    path = example_path(params)
    assert "/locations/West%20US/" in path
    token = server.token("Reader", f"/subscriptions/{params['subscriptionId']}")
    with httpx.Client(base_url=server.url, headers=bearer(token), timeout=10) as client:
        response = client.get(path)

    assert response.request.url.raw_path.decode() == path
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].split(";")[0].strip() == "application/json"
    body = response.json()
    assert body == expected
    check_status_body(body)


@pytest.mark.parametrize("location", ["West US", "westus", "WestUS", "west us"])
def test_example_location_spellings_resolve_to_the_same_operation(
    server: ServerProcess, example: dict[str, Any], location: str
) -> None:
    params = example["parameters"]
    expected = example["responses"]["200"]["body"]
    seed_example(server, params, expected)

    token = server.token("Reader", f"/subscriptions/{params['subscriptionId']}")
    with httpx.Client(base_url=server.url, headers=bearer(token), timeout=10) as client:
        response = client.get(example_path({**params, "location": location}))

    assert response.status_code == 200, response.text
    assert response.json() == expected


def test_example_body_is_valid_against_the_transcribed_schema(
    example: dict[str, Any], check_status_body: Callable[[Any], None]
) -> None:
    """Guards the test data itself: the published example must satisfy the schema."""
    check_status_body(example["responses"]["200"]["body"])

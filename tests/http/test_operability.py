"""Liveness, readiness, Prometheus metrics, JSON logs with the request id, the API document."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from prometheus_client.parser import text_string_to_metric_families

from opstatus.errors import StoreError
from opstatus.http.openapi import openapi_document
from opstatus.logs import JsonFormatter, RequestIdFilter, log_config
from opstatus.providers import ProviderRegistry
from opstatus.stores import MemoryStore
from tests.support import app_client, bearer, status_path

pytestmark = pytest.mark.anyio

DATA = Path(__file__).resolve().parent.parent / "data"
ITEM_ROUTE = (
    "/subscriptions/{subscription_id}/providers/{namespace}/locations/{location}"
    "/operationsStatus/{operation_id}"
)


class FailingStore(MemoryStore):
    """Reads fail as a dead database's would."""

    async def ping(self) -> None:
        raise StoreError("The store could not be read: disk I/O error")

    async def get(self, subscription_id: str, operation_key: str) -> Any:
        raise StoreError("The store could not be read: disk I/O error")


class SwitchableStore(MemoryStore):
    """Writes fail while ``full`` is set, as on a full disk; reads keep working."""

    full = False

    async def update(self, *args: Any) -> Any:
        if self.full:
            raise StoreError("The store could not be written: database or disk is full")
        return await super().update(*args)


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


# -- liveness and readiness -----------------------------------------------------------------


async def test_liveness_does_not_depend_on_the_store(home: Path) -> None:
    async with app_client(home, store=FailingStore()) as client:
        live = await client.get("/healthz")
        ready = await client.get("/readyz")
    assert live.status_code == 200 and live.json() == {"status": "ok"}
    assert ready.status_code == 503
    assert ready.json() == {
        "status": "unavailable",
        "store": "The store could not be read: disk I/O error",
    }
    assert ready.headers["retry-after"] == "1"


async def test_ready_when_the_store_answers_and_its_schema_is_known(home: Path) -> None:
    async with app_client(home) as client:  # SQLite in the home folder
        ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "store": "ok"}


async def test_readiness_fails_on_a_schema_it_does_not_know(home: Path) -> None:
    import sqlite3

    async with app_client(home) as client:
        with sqlite3.connect(home / "opstatus.db") as conn:
            conn.execute("PRAGMA user_version=99")
        ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert "schema version 99" in ready.json()["store"]


# -- metrics ----------------------------------------------------------------------------------


async def scraped_once_counted(client: httpx.AsyncClient) -> httpx.Response:
    """A scrape that shows ``opstatus_operations``, once the background count has finished."""
    deadline = time.monotonic() + 10
    while True:
        response = await client.get("/metrics")
        if "opstatus_operations{" in response.text or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.01)


async def test_metrics_count_requests_by_route_template_status_and_time_them(home: Path) -> None:
    async with app_client(home, store=MemoryStore()) as client:
        client.headers.update(bearer(home))
        await client.put(status_path(op_id="m1"), json={})
        await client.put(status_path(op_id="m2"), json={"status": "Succeeded"})
        for op_id in ("m1", "m2", "missing"):
            await client.get(status_path(op_id=op_id))
        await client.get("/no/such/path/for/a/scanner")
        await client.get("/metrics")  # starts counting the operations, in the background
        response = await scraped_once_counted(client)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    requests = samples(text, "opstatus_http_requests_total")
    get = (("method", "GET"), ("route", ITEM_ROUTE))
    assert requests[(*get, ("status", "200"))] == 2
    assert requests[(*get, ("status", "404"))] == 1
    assert requests[(("method", "PUT"), ("route", ITEM_ROUTE), ("status", "201"))] == 2
    assert requests[(("method", "GET"), ("route", "unmatched"), ("status", "404"))] == 1
    assert not any("m1" in label for key in requests for _, label in key)  # no raw paths
    latency = samples(text, "opstatus_http_request_duration_seconds_count")
    assert latency[(("method", "GET"), ("route", ITEM_ROUTE))] == 3
    store = samples(text, "opstatus_store_call_duration_seconds_count")
    assert store[(("call", "get"), ("outcome", "ok"))] == 3
    assert store[(("call", "create"), ("outcome", "ok"))] == 2
    operations = samples(text, "opstatus_operations")
    assert operations == {(("status", "InProgress"),): 1, (("status", "Succeeded"),): 1}
    assert samples(text, "opstatus_active_waiters") == {(): 0}
    assert samples(text, "opstatus_http_requests_in_flight") == {(): 1}  # this scrape


async def test_metrics_count_store_errors_and_readiness_reports_failing_writes(home: Path) -> None:
    store = SwitchableStore()
    async with app_client(home, store=store) as client:
        client.headers.update(bearer(home))
        await client.put(status_path(op_id="w1"), json={})
        store.full = True
        patched = await client.patch(status_path(op_id="w1"), json={"percentComplete": 5})
        ready = await client.get("/readyz")
        read = await client.get(status_path(op_id="w1"))
        store.full = False
        recovered = await client.patch(status_path(op_id="w1"), json={"percentComplete": 6})
        ready_again = await client.get("/readyz")
        text = (await client.get("/metrics")).text
    assert read.status_code == 200
    assert patched.status_code == 503 and patched.headers["retry-after"] == "1"
    assert ready.status_code == 200
    assert ready.json()["writes"] == "failing"
    assert "disk is full" in ready.json()["lastWriteError"]
    assert recovered.status_code == 200
    assert "writes" not in ready_again.json()
    assert samples(text, "opstatus_store_errors_total") == {(("call", "update"),): 1}


# -- logs -------------------------------------------------------------------------------------


async def test_json_log_lines_carry_the_request_id(home: Path) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("opstatus")
    logger.addHandler(handler)
    try:
        async with app_client(home, store=FailingStore()) as client:
            response = await client.get(status_path(), headers=bearer(home))
    finally:
        logger.removeHandler(handler)
    assert response.status_code == 503
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    [line] = [x for x in lines if x["logger"] == "opstatus.http"]
    assert line["request_id"] == response.headers["x-ms-request-id"]
    assert line["level"] == "ERROR"
    assert "disk I/O error" in line["message"]
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00\Z", line["time"])


def test_log_config_covers_opstatus_and_uvicorn() -> None:
    config = log_config("json", "warning")
    assert set(config["loggers"]) == {"opstatus", "uvicorn", "uvicorn.error", "uvicorn.access"}
    assert config["formatters"]["default"] == {"()": JsonFormatter}
    assert log_config("text")["loggers"]["opstatus"]["level"] == "INFO"


# -- the API document ------------------------------------------------------------------------


def _normalise_refs(schema: Any) -> Any:
    """Swagger refs (``...types.json#/definitions/X``) and ours point at the same names."""
    if isinstance(schema, dict):
        return {
            k: (v.rsplit("/", 1)[-1] if k == "$ref" else _normalise_refs(v))
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_normalise_refs(v) for v in schema]
    return schema


def test_the_arm_schemas_are_the_swaggers() -> None:
    swagger = json.loads((DATA / "swagger_definitions.json").read_text())
    expected = {**swagger["redisenterprise"], **swagger["common-types-v2"]}
    schemas = openapi_document()["components"]["schemas"]
    for name, definition in expected.items():
        assert _normalise_refs(schemas[name]) == _normalise_refs(definition), name


async def test_the_served_document_is_openapi_3_1_and_names_every_route(home: Path) -> None:
    async with app_client(home, store=MemoryStore()) as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"] == "3.1.0"
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    item = (
        "/subscriptions/{subscriptionId}/providers/Microsoft.Cache/locations/{location}"
        "/operationsStatus"
    )
    assert set(doc["paths"][f"{item}/{{operationId}}"]) == {
        "parameters",
        "get",
        "put",
        "patch",
        "delete",
    }
    assert "post" in doc["paths"][item]
    assert {"/healthz", "/readyz", "/metrics", "/openapi.json"} <= set(doc["paths"])
    get = doc["paths"][f"{item}/{{operationId}}"]["get"]
    assert get["operationId"] == "OperationsStatus_Get"  # the swagger's
    for schema in doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


def test_every_registered_provider_gets_its_paths_and_shape(providers_file: Path) -> None:
    doc = openapi_document(ProviderRegistry.from_file(providers_file))
    path = (
        "/subscriptions/{subscriptionId}/providers/Contoso.Widgets/locations/{location}"
        "/operationsStatus/{operationId}"
    )
    get = doc["paths"][path]["get"]
    schema = get["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/OperationResource"}
    versions = doc["paths"][path]["parameters"][2]["schema"]["enum"]
    assert versions == ["2024-01-01"]


async def test_served_bodies_conform_to_the_document(
    client: httpx.AsyncClient, flat_client: httpx.AsyncClient
) -> None:
    """A Failed operation's body in each shape validates against the document's schema."""
    doc = openapi_document()
    validator_doc = {"$defs": doc["components"]["schemas"]}

    def validate(body: Any, name: str) -> None:
        text = json.dumps({**validator_doc, "$ref": f"#/$defs/{name}"})
        text = text.replace("#/components/schemas/", "#/$defs/")
        Draft202012Validator(json.loads(text)).validate(body)

    failed = {"status": "Failed", "error": {"code": "Boom", "message": "m", "details": []}}
    nested = await client.put(status_path(op_id="f1"), json=failed)
    validate(nested.json(), "OperationStatus")
    flat_path = status_path(op_id="f1", namespace="Contoso.Widgets", api_version="2024-01-01")
    flat = await flat_client.put(flat_path, json=failed)
    validate(flat.json(), "OperationResource")
    missing = await client.get(status_path(op_id="nope"))
    validate(missing.json(), "ErrorResponse")

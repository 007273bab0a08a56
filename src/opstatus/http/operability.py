"""What an operator's tooling talks to: liveness, readiness, metrics and the API document.

- ``GET /healthz``: liveness. The process is up and its event loop answers; nothing else is
  checked, so that a store outage never makes an orchestrator restart a healthy process.
- ``GET /readyz``: readiness. The store answers reads and has the schema this opstatus
  knows; 503 otherwise. Writes failing (disk full, read-only file) is reported in the body
  but is not unreadiness: reads, most of the traffic, still work.
- ``GET /metrics``: Prometheus text format (see :mod:`opstatus.metrics`).
- ``GET /openapi.json``: the OpenAPI 3.1 document of this server's API.

None of them needs a token, but ``/metrics`` when the server is started with
``--metrics-token``: then only ``Authorization: Bearer <that token>`` reads it (401 otherwise).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import StoreError
from ..metrics import Metrics
from .context import AppContext
from .errors import error_response
from .openapi import openapi_document

log = logging.getLogger("opstatus.http")


def _json(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(body), status, headers=headers, media_type="application/json")


async def healthz(request: Request) -> Response:
    return _json({"status": "ok"})


async def readyz(request: Request) -> Response:
    ctx: AppContext = request.app.state.ctx
    try:
        await ctx.store.ping()
    except StoreError as exc:
        log.warning("not ready: %s", exc.message)
        body = {"status": "unavailable", "store": exc.message}
        return _json(body, 503, {"Retry-After": "1"})
    body = {"status": "ready", "store": "ok"}
    failure = getattr(ctx.store, "write_failure", None)
    if failure:
        body["writes"] = "failing"
        body["lastWriteError"] = failure
    return _json(body)


async def metrics(request: Request) -> Response:
    ctx: AppContext = request.app.state.ctx
    token = ctx.settings.security.metrics_token
    if token is not None and not _presents(request.headers.get("authorization"), token):
        return error_response(
            401,
            "AuthenticationFailed",
            "The metrics need the bearer token the server was started with (--metrics-token).",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    registry: Metrics = request.app.state.metrics
    registry.counts.scraped(ctx.store)
    return Response(generate_latest(registry.registry), media_type=CONTENT_TYPE_LATEST)


def _presents(authorization: str | None, token: str) -> bool:
    """Whether ``authorization`` is ``Bearer <token>``. Compared as digests in constant time,
    so that neither the token's characters nor its length can be learnt from timings."""
    scheme, _, presented = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    digest = hashlib.sha256
    return hmac.compare_digest(
        digest(presented.strip().encode("latin-1", "replace")).digest(),
        digest(token.encode()).digest(),
    )


async def openapi(request: Request) -> Response:
    ctx: AppContext = request.app.state.ctx
    cached: bytes | None = getattr(request.app.state, "openapi", None)
    if cached is None:
        cached = orjson.dumps(openapi_document(ctx.providers))
        request.app.state.openapi = cached
    return Response(cached, media_type="application/json")


def operability_routes() -> list[Route]:
    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]


class MetricsMiddleware:
    """Counts and times every request by route template. Plain ASGI: a few microseconds."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the client gets if the app raises

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        metrics = self.metrics
        metrics.requests_in_flight += 1
        try:
            await self.app(scope, receive, send_with_status)
        finally:
            metrics.requests_in_flight -= 1
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe_request(
                template, scope["method"], status, time.perf_counter() - start
            )

"""The ASGI app factory: routes, error mapping, ARM headers, and a lifespan for the store."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, cast

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import errors
from ..auth import TokenVerifier, load_or_create_key
from ..metrics import InstrumentedStore, Metrics
from ..providers import ProviderRegistry
from ..service import OperationService
from ..settings import Settings
from ..stores import open_store
from ..stores.base import Store
from . import arm
from .context import AppContext
from .errors import handle_http_exception, handle_opstatus_error, handle_unexpected
from .headers import ArmHeadersMiddleware
from .operability import MetricsMiddleware, operability_routes

Endpoint = Callable[[Request], Awaitable[Response]]
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]
ARM_BASE = "/subscriptions/{subscription_id}/providers/{namespace}/locations/{location}"


class CaselessRoute(Route):
    """ARM compares the literal segments of a URL case-insensitively, too."""

    def __init__(self, path: str, endpoint: Any) -> None:
        # Every method reaches the endpoint, which answers 405 itself (see by_method).
        super().__init__(path, endpoint, methods=ALL_METHODS)
        self.path_regex = re.compile(self.path_regex.pattern, re.IGNORECASE)


def by_method(handlers: Mapping[str, Endpoint]) -> Endpoint:
    """One route per path, so a 405 can list every method the path allows in ``Allow``."""
    if "GET" in handlers:
        handlers = {**handlers, "HEAD": handlers["GET"]}
    allow = ", ".join(sorted(handlers))

    async def endpoint(request: Request) -> Response:
        handler = handlers.get(request.method)
        if handler is None:
            raise HTTPException(405, headers={"Allow": allow})
        return await handler(request)

    return endpoint


def create_app(settings: Settings, store: Store | None = None) -> ArmHeadersMiddleware:
    store = store if store is not None else open_store(settings.resolved_store_url())
    metrics = Metrics()
    # Store calls this wrapper does not spell out (a backend's newer ones) are passed through
    # and timed by its __getattr__, hence the cast.
    store = cast(Store, InstrumentedStore(store, metrics))
    providers = (
        ProviderRegistry.from_file(settings.providers_file)
        if settings.providers_file
        else ProviderRegistry()
    )
    ctx = AppContext(
        settings=settings,
        store=store,
        service=OperationService(store),
        verifier=TokenVerifier(load_or_create_key(settings.home)),
        providers=providers,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await store.open()
        try:
            yield
        finally:
            await store.close()

    status_item = {
        "GET": arm.get_operation,
        "PUT": arm.put_operation,
        "PATCH": arm.patch_operation,
        "DELETE": arm.delete_operation,
    }
    routes = [
        *operability_routes(),
        CaselessRoute(f"{ARM_BASE}/operationsStatus/{{operation_id}}", by_method(status_item)),
        CaselessRoute(f"{ARM_BASE}/operationsStatus", by_method({"POST": arm.post_operation})),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(MetricsMiddleware, metrics=metrics)],
        exception_handlers={
            errors.OpstatusError: handle_opstatus_error,
            HTTPException: handle_http_exception,
            Exception: handle_unexpected,
        },
    )
    app.state.ctx = ctx
    app.state.metrics = metrics
    return ArmHeadersMiddleware(app)

"""The ASGI app factory: routes, middlewares, error mapping and ARM headers, over an
:class:`.context.AppContext` that ``opstatus.server.wiring`` builds.

Two forms share one store: ARM's ``operationsStatus`` resource (JSON, :mod:`.arm`) and the
classic Service Management ``operations`` resource (XML, :mod:`.classic`).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import URL
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Match, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from .. import errors
from . import arm, classic, lists, overview, results, streams, ui, webhook_api
from .access import AccessLogMiddleware
from .classic_errors import speaks_classic
from .context import AppContext
from .errors import handle_http_exception, handle_opstatus_error, handle_unexpected
from .fast_reads import FastReads
from .guard import GuardMiddleware
from .headers import ArmHeadersMiddleware
from .operability import MetricsMiddleware, operability_routes
from .status_read import StatusRead

Endpoint = Callable[[Request], Awaitable[Response]]
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]
ARM_PROVIDER = "/subscriptions/{subscription_id}/providers/{namespace}"
ARM_BASE = ARM_PROVIDER + "/locations/{location}"


class CaselessRoute(Route):
    """ARM compares the literal segments of a URL case-insensitively, too."""

    def __init__(self, path: str, endpoint: Any) -> None:
        # Every method reaches the endpoint, which answers 405 itself (see by_method).
        super().__init__(path, endpoint, methods=ALL_METHODS)
        self.path_regex = re.compile(self.path_regex.pattern, re.IGNORECASE)


class CaselessPostRoute(Route):
    """A POST-only action beside an item route (``operationsStatus/purge``): other methods
    fall through to the item route, so an operation may still be called "purge"."""

    def __init__(self, path: str, endpoint: Any) -> None:
        super().__init__(path, endpoint, methods=["POST"])
        self.path_regex = re.compile(self.path_regex.pattern, re.IGNORECASE)


def redirect_slashes(router: Router, public_url: str | None) -> ASGIApp:
    """The router's answer when no route matches: Starlette's redirect to the same path
    with or without a trailing slash, where that path has a route, with its Location made
    as the other links are (from --public-url when set, not the Host); else 404."""

    async def default(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if scope["type"] == "http" and path != "/":
            other = {**scope, "path": path.rstrip("/") if path.endswith("/") else path + "/"}
            if any(route.matches(other)[0] is not Match.NONE for route in router.routes):
                url = URL(scope=other)
                if public_url:
                    url = URL(public_url.rstrip("/") + url.path).replace(query=url.query)
                await RedirectResponse(str(url))(scope, receive, send)
                return
        await router.not_found(scope, receive, send)

    return default


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


class OpstatusApp(ArmHeadersMiddleware):
    """The ASGI app: Starlette's, behind the ARM headers. With fast reads on, a status GET
    by a known caller is answered first, without the middlewares and the router (see
    :mod:`.fast_reads`); the server's protocol may answer such reads before they reach the
    app at all, through :attr:`fast_reads`."""

    def __init__(self, app: Starlette, fast_reads: FastReads | None) -> None:
        super().__init__(app)
        self.fast_reads = fast_reads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        reads = self.fast_reads
        if (
            reads is not None
            and scope["type"] == "http"
            and scope["method"] == "GET"
            and await reads.serve(scope, send)
        ):
            return
        if scope["type"] == "http" and scope["method"] == "GET":
            # An event stream leaves its long rest to this frame (see streams.run_handoff).
            await streams.run_handoff(super().__call__, scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def negotiated(json: Endpoint, stream: Endpoint) -> Endpoint:
    """A GET answered as JSON, or as an event stream when the caller accepts
    ``text/event-stream`` (see :mod:`.streams`)."""

    async def endpoint(request: Request) -> Response:
        if streams.wants_stream(request):  # GET, or HEAD (which streams nothing)
            return await stream(request)
        return await json(request)

    return endpoint


def webhook_routes() -> list[Route]:
    """Webhook subscriptions (see :mod:`.webhook_api`)."""
    base = "/subscriptions/{subscription_id}/webhookSubscriptions"
    item = base + "/{webhook_id}"
    return [
        CaselessRoute(
            base, by_method({"GET": webhook_api.list_webhooks, "POST": webhook_api.create_webhook})
        ),
        CaselessRoute(
            item, by_method({"GET": webhook_api.get_webhook, "DELETE": webhook_api.delete_webhook})
        ),
        CaselessRoute(item + "/rotateSecret", by_method({"POST": webhook_api.rotate_secret})),
        CaselessRoute(item + "/deliveries", by_method({"GET": webhook_api.list_deliveries})),
        CaselessRoute(
            item + "/deliveries/{delivery_id}/redeliver",
            by_method({"POST": webhook_api.redeliver}),
        ),
    ]


Lifespan = Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]]


def create_app(ctx: AppContext, lifespan: Lifespan | None = None) -> OpstatusApp:
    """The routes and the middlewares over ``ctx``; ``lifespan`` opens and closes what the
    app uses (``opstatus.server.wiring`` gives the store's and the background sweeps')."""
    status_item = {
        "GET": negotiated(arm.get_operation, streams.operation_events),
        "PUT": arm.put_operation,
        "PATCH": arm.patch_operation,
        "DELETE": arm.delete_operation,
    }
    classic_item = {
        "GET": classic.get_operation,
        "PUT": classic.put_operation,
        "PATCH": classic.patch_operation,
        "DELETE": classic.delete_operation,
    }
    collection = {
        "GET": negotiated(lists.list_operations, streams.scope_events),
        "POST": arm.post_operation,
    }
    # Routes are tried in order: the status read, polled thousands of times per operation,
    # comes first (after the POST-only purge action, which its path would otherwise swallow).
    status_route = CaselessRoute(
        f"{ARM_BASE}/operationsStatus/{{operation_id}}", by_method(status_item)
    )
    status_read = StatusRead(ctx, status_route)
    routes = [
        CaselessPostRoute(f"{ARM_BASE}/operationsStatus/purge", lists.purge_operations),
        status_route,
        CaselessRoute(
            f"{ARM_BASE}/operationsStatus/{{operation_id}}/cancel",
            by_method({"POST": arm.cancel_operation}),
        ),
        CaselessRoute(
            f"{ARM_BASE}/operationsStatus/{{operation_id}}/notifications",
            by_method({"GET": webhook_api.operation_notifications}),
        ),
        *webhook_routes(),
        CaselessRoute(f"{ARM_BASE}/operationsStatus", by_method(collection)),
        CaselessRoute(
            f"{ARM_BASE}/operationsStatusCounts", by_method({"GET": lists.count_operations})
        ),
        CaselessRoute(
            f"{ARM_BASE}/operationResults/{{operation_id}}",
            by_method({"GET": results.get_operation_result}),
        ),
        CaselessPostRoute(f"{ARM_PROVIDER}/operationsStatus/purge", lists.purge_operations),
        CaselessRoute(
            f"{ARM_PROVIDER}/operationsStatus",
            by_method({"GET": negotiated(lists.list_operations, streams.scope_events)}),
        ),
        CaselessRoute(
            "/subscriptions/{subscription_id}/operationsStatusEvents",
            by_method({"GET": streams.subscription_events}),
        ),
        CaselessRoute(
            f"{ARM_PROVIDER}/operationsStatusCounts", by_method({"GET": lists.count_operations})
        ),
        CaselessRoute(
            "/subscriptions/{subscription_id}/operationsStatus",
            by_method({"GET": lists.list_subscription_operations}),
        ),
        CaselessRoute(
            "/subscriptions/{subscription_id}/operationsStatusCounts",
            by_method({"GET": overview.subscription_counts}),
        ),
        CaselessRoute("/operationsStatusCounts", by_method({"GET": overview.all_counts})),
        CaselessRoute("/principal", by_method({"GET": overview.who_am_i})),
        CaselessRoute(classic.CLASSIC_PATH, speaks_classic(by_method(classic_item))),
        *operability_routes(),
        *(ui.ui_routes(ui.load()) if ctx.settings.ui else []),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            *([Middleware(AccessLogMiddleware)] if ctx.settings.access_log is not None else []),
            Middleware(MetricsMiddleware, metrics=ctx.metrics),
            Middleware(GuardMiddleware, ctx=ctx),
        ],
        exception_handlers={
            errors.OpstatusError: handle_opstatus_error,
            HTTPException: handle_http_exception,
            Exception: handle_unexpected,
        },
    )
    app.router.redirect_slashes = False  # answered by the router's default instead:
    app.router.default = redirect_slashes(app.router, ctx.settings.public_url)
    app.state.ctx = ctx
    app.state.metrics = ctx.metrics
    # The access log sees what the app answers: with it on, the app answers every read.
    fast = ctx.settings.fast_reads and ctx.settings.access_log is None
    fast_reads = FastReads(ctx, status_read, ctx.metrics) if fast else None
    return OpstatusApp(app, fast_reads)

"""The ASGI app factory: routes, error mapping, ARM headers, and a lifespan for the store
and the background sweeps.

Two forms share one store: ARM's ``operationsStatus`` resource (JSON, :mod:`.arm`) and the
classic Service Management ``operations`` resource (XML, :mod:`.classic`).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .. import errors
from ..auth import load_or_create_key
from ..lifecycle import Clock
from ..maintenance import run_maintenance
from ..metrics import Metrics, instrument
from ..models import now_text
from ..providers import ProviderRegistry
from ..security import build_verifier
from ..service import OperationService
from ..settings import Settings
from ..stores import open_store
from ..stores.base import Store
from ..webhook_dispatch import Dispatcher, callback_secret
from ..webhook_sender import Sender
from ..webhooks import RetryPolicy, parse_networks
from . import arm, classic, continuation, lists, results, webhook_api
from .classic_errors import speaks_classic
from .context import AppContext
from .errors import handle_http_exception, handle_opstatus_error, handle_unexpected
from .guard import GuardMiddleware
from .headers import ArmHeadersMiddleware
from .inline import InlineStatusReads
from .limits import RateLimiter, WaiterSlots
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
    """The ASGI app. A status GET by a known caller is answered first, without the
    middlewares and the router (see :mod:`.inline`): by the HTTP protocol itself (``serve``
    hands :attr:`protocol_reads` to :mod:`.protocol`), else here."""

    def __init__(self, app: Starlette, reads: InlineStatusReads) -> None:
        super().__init__(app)
        self.reads = reads
        #: The status reads the protocol answers at the end of each turn of the event loop;
        #: None on a store that can read them neither at once nor in batches.
        self.protocol_reads = reads if reads.immediate or reads.batched else None

    @property
    def immediate(self) -> bool:
        """Whether the protocol reads each status at once (SQLite, memory), rather than
        many in one query (PostgreSQL)."""
        return self.reads.immediate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        is_get = scope["type"] == "http" and scope["method"] == "GET"
        if is_get and await self.reads.serve(scope, send):
            return
        await super().__call__(scope, receive, send)


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


def create_app(
    settings: Settings, store: Store | None = None, clock: Clock = now_text
) -> OpstatusApp:
    """The app; ``clock`` is the service's and the sweeps' notion of now (tests pass a
    controllable one)."""
    store = store if store is not None else open_store(settings.resolved_store_url())
    store.progress_events_kept = settings.progress_events_kept
    metrics = Metrics()
    store = instrument(store, metrics)
    providers = (
        ProviderRegistry.from_file(settings.providers_file)
        if settings.providers_file
        else ProviderRegistry()
    )
    key = load_or_create_key(settings.home)
    service = OperationService(store, clock, settings.lifecycle_policy())
    sender = Sender(
        parse_networks(settings.webhook_allow_networks),
        settings.webhook_allow_http,
        settings.webhook_timeout,
        max(settings.webhook_concurrency, 1),
    )
    secret = callback_secret(settings.home, settings.webhook_secret)  # made once, at start
    dispatcher = None
    if settings.webhook_concurrency > 0:
        dispatcher = Dispatcher(
            store,
            sender,
            secret,
            RetryPolicy(
                settings.webhook_retry_base,
                settings.webhook_retry_max,
                settings.webhook_max_attempts,
            ),
            settings.webhook_concurrency,
            history_seconds=settings.webhook_history_seconds,
        )
    ctx = AppContext(
        settings=settings,
        store=store,
        service=service,
        verifier=build_verifier(settings.security, settings.home),
        providers=providers,
        paging_key=continuation.paging_key(key),
        waiters=WaiterSlots(
            settings.security.max_waiters, settings.security.max_waiters_per_principal
        ),
        limiter=RateLimiter.from_settings(settings.security),
        sender=sender,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await store.open()
        sweeps = None
        if settings.maintenance_interval > 0:
            sweeps = asyncio.create_task(
                run_maintenance(service, settings.maintenance_interval, settings.maintenance_batch)
            )
        background = [sweeps] if sweeps is not None else []
        if dispatcher is not None:
            background.append(asyncio.create_task(dispatcher.run()))
        try:
            yield
        finally:
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await sender.close()
            await store.close()

    status_item = {
        "GET": arm.get_operation,
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
    collection = {"GET": lists.list_operations, "POST": arm.post_operation}
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
            f"{ARM_PROVIDER}/operationsStatus", by_method({"GET": lists.list_operations})
        ),
        CaselessRoute(
            f"{ARM_PROVIDER}/operationsStatusCounts", by_method({"GET": lists.count_operations})
        ),
        CaselessRoute(classic.CLASSIC_PATH, speaks_classic(by_method(classic_item))),
        *operability_routes(),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            Middleware(MetricsMiddleware, metrics=metrics),
            Middleware(GuardMiddleware, ctx=ctx),
        ],
        exception_handlers={
            errors.OpstatusError: handle_opstatus_error,
            HTTPException: handle_http_exception,
            Exception: handle_unexpected,
        },
    )
    app.state.ctx = ctx
    app.state.metrics = metrics
    return OpstatusApp(app, InlineStatusReads(ctx, status_read, metrics))

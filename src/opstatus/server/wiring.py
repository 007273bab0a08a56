"""Wiring: the signing key, the token verifier, the store, the providers, the service and the
webhook sender put together into the app's context, and the lifespan that opens the store
and runs the background sweeps and the webhook dispatcher. The HTTP layer receives all of it
ready-made (:func:`..http.app.create_app`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette

from ..auth import load_or_create_key
from ..http import continuation
from ..http.app import Lifespan, OpstatusApp, create_app
from ..http.context import AppContext
from ..http.hosts import AllowedHosts
from ..http.limits import RateLimiter, WaiterSlots
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
from ..stores.roles import bind_unbound
from ..webhook_dispatch import Dispatcher, callback_secret
from ..webhook_sender import Sender
from ..webhooks import RetryPolicy, parse_networks


def build_context(
    settings: Settings, store: Store | None = None, clock: Clock = now_text
) -> AppContext:
    """Everything the app shares, the store not opened yet. ``clock`` is the service's and
    the sweeps' notion of now (tests pass a controllable one). Raises ValueError or OSError
    for settings it cannot use (a providers file, a key, a store URL)."""
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
    security = settings.security
    waiters = WaiterSlots(security.max_waiters, security.max_waiters_per_principal)
    metrics.count_waiters(lambda: waiters.waiting)
    streams = WaiterSlots(settings.max_streams, settings.max_streams_per_principal)
    metrics.count_streams(lambda: streams.waiting)
    return AppContext(
        settings=settings,
        store=store,
        service=OperationService(store, clock, settings.lifecycle_policy()),
        verifier=build_verifier(security, settings.home),
        providers=providers,
        paging_key=continuation.paging_key(key),
        waiters=waiters,
        streams=streams,
        limiter=RateLimiter.from_settings(security),
        metrics=metrics,
        hosts=AllowedHosts(settings.allowed_hosts, settings.public_url),
        sender=Sender(
            parse_networks(settings.webhook_allow_networks),
            settings.webhook_allow_http,
            settings.webhook_timeout,
            max(settings.webhook_concurrency, 1),
        ),
    )


def dispatcher(ctx: AppContext) -> Dispatcher | None:
    """What delivers the event log's webhooks from this process; None when it sends none.
    The callback secret is made at start either way, for ``opstatus webhook callback-secret``
    to show before anything is sent."""
    settings = ctx.settings
    secret = callback_secret(settings.home, settings.webhook_secret)
    if settings.webhook_concurrency <= 0 or ctx.sender is None:
        return None
    return Dispatcher(
        ctx.store,
        ctx.sender,
        secret,
        RetryPolicy(
            settings.webhook_retry_base, settings.webhook_retry_max, settings.webhook_max_attempts
        ),
        settings.webhook_concurrency,
        history_seconds=settings.webhook_history_seconds,
    )


def lifespan(ctx: AppContext) -> Lifespan:
    """Open the store for the app's life, and sweep and deliver webhooks in the background
    meanwhile."""
    settings = ctx.settings
    delivery = dispatcher(ctx)

    @contextlib.asynccontextmanager
    async def run(app: Starlette) -> AsyncIterator[None]:
        await ctx.store.open()
        if ctx.verifier.issuers:  # role assignments from before issuers were recorded
            await bind_unbound(ctx.store, ctx.verifier.issuers)
        background = []
        if settings.maintenance_interval > 0:
            background.append(
                asyncio.create_task(
                    run_maintenance(
                        ctx.service, settings.maintenance_interval, settings.maintenance_batch
                    )
                )
            )
        if delivery is not None:
            background.append(asyncio.create_task(delivery.run()))
        try:
            yield
        finally:
            await ctx.tail.stop()
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if ctx.sender is not None:
                await ctx.sender.close()
            await ctx.metrics.counts.close()
            await ctx.store.close()

    return run


def build_app(
    settings: Settings, store: Store | None = None, clock: Clock = now_text
) -> OpstatusApp:
    """The app over a context of its own, with its lifespan: what ``serve`` runs, and what
    tests drive in-process."""
    ctx = build_context(settings, store, clock)
    return create_app(ctx, lifespan(ctx))

"""Webhook subscriptions and delivery state over HTTP.

``/subscriptions/{sub}/webhookSubscriptions``: create (POST; the secret is shown in this
answer only) and list; ``.../{id}``: get and delete; ``.../{id}/rotateSecret`` (POST: a new
secret, the old one still signing for ``overlapSeconds``); ``.../{id}/deliveries``: the
newest deliveries; ``.../{id}/deliveries/{n}/redeliver`` (POST). Managing webhooks needs
Contributor or above on the subscription (ARM's ``write``).

``.../operationsStatus/{id}/notifications``: an operation's deliveries (its callback's and
every subscription's): attempts, last HTTP status, last error, next retry. Read access.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ..auth import authorize
from ..errors import InvalidInput, OperationNotFound
from ..events import parse_types
from ..lifecycle import add_seconds
from ..models import normalize_location, now_text, validate_subscription_id
from ..webhook_sender import Refused
from ..webhooks import Webhook, check_secret, check_url, new_secret, new_webhook_id
from .arm import resolve
from .context import AppContext
from .guard import principal_of
from .payloads import read_json_object

CREATE_FIELDS = ("url", "provider", "location", "events", "secret")
MAX_OVERLAP_SECONDS = 30 * 86400.0
DEFAULT_OVERLAP_SECONDS = 86400.0


def _json(body: object, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


def _subscription(request: Request) -> str:
    """The path's subscription, once the caller may manage webhooks in it."""
    principal = principal_of(request)
    sub = validate_subscription_id(request.path_params["subscription_id"])
    authorize(
        principal,
        "write",
        sub,
        f"/subscriptions/{sub}/webhookSubscriptions",
        "Opstatus/webhookSubscriptions/write",
    )
    return sub


async def _webhook(request: Request, ctx: AppContext, sub: str) -> Webhook:
    found = await ctx.store.get_webhook(sub, request.path_params["webhook_id"])
    if found is None:
        raise OperationNotFound(
            f"The webhook subscription '{request.path_params['webhook_id'][:100]}' was not found.",
            target="webhookId",
        )
    return found


async def create_webhook(request: Request) -> Response:
    ctx: AppContext = request.app.state.ctx
    sub = _subscription(request)
    data = await read_json_object(request, ctx.settings.max_body_bytes)
    for key in data:
        if key not in CREATE_FIELDS:
            shown = "".join(c if c.isprintable() else "?" for c in key[:80])
            raise InvalidInput(
                f"Unknown property '{shown}'. Known properties are: {', '.join(CREATE_FIELDS)}.",
                target=shown,
            )
    url = check_url(data.get("url"), ctx.settings.webhook_allow_http)
    await _check_target(ctx, url)
    namespace = data.get("provider")
    if namespace is not None:
        if not isinstance(namespace, str):
            raise InvalidInput("'provider' must be a provider namespace.", target="provider")
        namespace = ctx.providers.lookup(namespace).namespace
    location = data.get("location")
    if location is not None:
        if not isinstance(location, str):
            raise InvalidInput("'location' must be a location name.", target="location")
        location = normalize_location(location)
    secret = data.get("secret")
    secret = new_secret() if secret is None else check_secret(str(secret))
    webhook = Webhook(
        id=new_webhook_id(),
        subscription_id=sub,
        url=url,
        secret=secret,
        created_at=now_text(),
        namespace=namespace,
        location=location,
        event_types=parse_types(data.get("events"), "events"),
    )
    await ctx.store.create_webhook(webhook)
    return _json(webhook.shown(with_secret=True), 201)


async def _check_target(ctx: AppContext, url: str) -> None:
    if ctx.sender is None:
        return
    try:
        await ctx.sender.check_target(url)
    except Refused as exc:
        raise InvalidInput(f"The webhook URL is refused: {exc}.", target="url") from None


async def list_webhooks(request: Request) -> Response:
    ctx: AppContext = request.app.state.ctx
    sub = _subscription(request)
    return _json({"value": [w.shown() for w in await ctx.store.list_webhooks(sub)]})


async def get_webhook(request: Request) -> Response:
    ctx: AppContext = request.app.state.ctx
    return _json((await _webhook(request, ctx, _subscription(request))).shown())


async def delete_webhook(request: Request) -> Response:
    ctx: AppContext = request.app.state.ctx
    sub = _subscription(request)
    deleted = await ctx.store.delete_webhook(sub, request.path_params["webhook_id"])
    return Response(status_code=200 if deleted else 204)


async def rotate_secret(request: Request) -> Response:
    """A new secret; the old one keeps signing (beside it) for ``overlapSeconds``."""
    ctx: AppContext = request.app.state.ctx
    sub = _subscription(request)
    webhook = await _webhook(request, ctx, sub)
    data = await read_json_object(request, ctx.settings.max_body_bytes)
    overlap = data.get("overlapSeconds", DEFAULT_OVERLAP_SECONDS)
    if (
        set(data) - {"overlapSeconds"}
        or isinstance(overlap, bool)
        or not isinstance(overlap, int | float)
        or not 0 <= overlap <= MAX_OVERLAP_SECONDS
    ):
        raise InvalidInput(
            f"The body may carry only 'overlapSeconds', from 0 to {MAX_OVERLAP_SECONDS:.0f}.",
            target="overlapSeconds",
        )
    rotated = dataclasses.replace(
        webhook,
        secret=new_secret(),
        previous_secret=webhook.secret if overlap else None,
        previous_until=add_seconds(now_text(), overlap) if overlap else None,
    )
    if not await ctx.store.replace_webhook(rotated):
        raise OperationNotFound("The webhook subscription was deleted meanwhile.")
    return _json(rotated.shown(with_secret=True))


def _limit(request: Request) -> int:
    text = request.query_params.get("top", "100")
    if not text.isdigit() or not 1 <= int(text) <= 1000:
        raise InvalidInput("'top' must be a number from 1 to 1000.", target="top")
    return int(text)


async def list_deliveries(request: Request) -> Response:
    ctx: AppContext = request.app.state.ctx
    sub = _subscription(request)
    webhook = await _webhook(request, ctx, sub)
    found = await ctx.store.list_deliveries(sub, webhook_id=webhook.id, limit=_limit(request))
    return _json({"value": [d.shown() for d in found]})


async def redeliver(request: Request) -> Response:
    ctx: AppContext = request.app.state.ctx
    sub = _subscription(request)
    webhook = await _webhook(request, ctx, sub)
    number = request.path_params["delivery_id"]
    if not number.isdigit() or not await ctx.store.redeliver(
        sub, webhook.id, int(number), now_text()
    ):
        raise OperationNotFound(f"The delivery '{number[:40]}' was not found.", target="deliveryId")
    return Response(status_code=202)


async def operation_notifications(request: Request) -> Response:
    """The deliveries of an operation's events, newest first."""
    target = resolve(request, "read", "read")
    ctx: AppContext = request.app.state.ctx
    op = await ctx.service.get(target.ref)
    found = await ctx.store.list_deliveries(op.subscription_id, op.key, limit=_limit(request))
    body: dict[str, Any] = {"value": [d.shown() for d in found]}
    return _json(body)

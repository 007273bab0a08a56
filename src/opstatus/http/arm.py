"""The ARM operationsStatus resource: read by any client, written by producers.

Each handler parses, calls the service, serialises. Checks run in ARM's order: who is
calling (401), is the subscription well-formed (400), may they act on it (403), then the
provider, api-version and the rest of the path (400), then the store (404, 409, ...). The
403 comes before any lookup, so it cannot reveal whether an operation exists.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ..auth import authorize
from ..models import (
    Operation,
    new_operation_id,
    normalize_location,
    validate_operation_id,
    validate_subscription_id,
)
from ..providers import Provider
from ..service import IfMatch, OperationRef
from .context import AppContext
from .payloads import parse_create, parse_update, read_json_object
from .prefer import FULL_DETAIL, preferences, wait_seconds, wants_full_detail
from .representation import arm_body, resource_id


@dataclass(frozen=True, slots=True)
class Target:
    ref: OperationRef
    provider: Provider
    api_version: str


def _printable(value: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in value[:300])


def resolve(request: Request, action: str, verb: str, with_id: bool = True) -> Target:
    ctx: AppContext = request.app.state.ctx
    principal = ctx.verifier.authenticate(request.headers.get("authorization"))
    params = request.path_params
    subscription_id = validate_subscription_id(params["subscription_id"])
    namespace, location = params["namespace"], params["location"]
    operation_id = params.get("operation_id", "")
    scope = (
        f"/subscriptions/{subscription_id}/providers/{_printable(namespace)}/locations/"
        f"{_printable(location)}/operationsStatus"
        + (f"/{_printable(operation_id)}" if with_id else "")
    )
    arm_action = f"{_printable(namespace)}/locations/operationsStatus/{verb}"
    authorize(principal, action, subscription_id, scope, arm_action)
    provider = ctx.providers.lookup(namespace)
    location = normalize_location(location)
    api_version = request.query_params.get("api-version", "")
    provider.check_api_version(api_version, location)
    if with_id:
        operation_id = validate_operation_id(operation_id)
    ref = OperationRef(subscription_id, provider.namespace, location, operation_id)
    return Target(ref, provider, api_version)


def if_match(request: Request, header_name: str = "if-match") -> IfMatch:
    header = request.headers.get(header_name)
    if header is None:
        return None
    tags = {tag.strip().removeprefix("W/").strip('"') for tag in header.split(",")}
    return frozenset(tags)


def operation_response(
    request: Request,
    op: Operation,
    provider: Provider,
    status: int = 200,
    headers: dict[str, str] | None = None,
    applied: tuple[str, ...] = (),
    prefer: dict[str, str] | None = None,
) -> Response:
    ctx: AppContext = request.app.state.ctx
    all_headers = {"ETag": f'"{op.etag}"'}
    full = wants_full_detail(preferences(request) if prefer is None else prefer)
    if full:
        applied = (FULL_DETAIL, *applied)
    if applied:
        all_headers["Preference-Applied"] = ", ".join(applied)
    if not op.terminal:
        all_headers["Retry-After"] = str(ctx.settings.retry_after)
    if headers:
        all_headers.update(headers)
    return Response(
        orjson.dumps(arm_body(op, provider.error_shape, full)),
        status_code=status,
        media_type="application/json",
        headers=all_headers,
    )


async def get_operation(request: Request) -> Response:
    """Operations Status - Get; with ``Prefer: wait=N``, held until the operation changes."""
    target = resolve(request, "read", "read")
    ctx: AppContext = request.app.state.ctx
    prefer = preferences(request)
    wait = wait_seconds(prefer, ctx.settings.max_wait)
    if wait:
        # If-None-Match names the versions the caller has: wait only while it is one of them.
        # (It never makes a 304: a GET answers as it would without it.)
        op = await ctx.service.wait(target.ref, wait, if_match(request, "if-none-match"))
        applied = (f"wait={wait}",)
        return operation_response(request, op, target.provider, applied=applied, prefer=prefer)
    op = await ctx.service.get(target.ref)
    return operation_response(request, op, target.provider, prefer=prefer)


async def put_operation(request: Request) -> Response:
    target = resolve(request, "write", "write")
    ctx: AppContext = request.app.state.ctx
    data = await read_json_object(request, ctx.settings.max_body_bytes)
    ref = target.ref
    draft = parse_create(data, ref.subscription_id, ref.namespace, ref.location, ref.operation_id)
    op, created = await ctx.service.create(draft)
    return operation_response(request, op, target.provider, 201 if created else 200)


async def post_operation(request: Request) -> Response:
    """Create with a server-chosen, time-ordered id; Azure-AsyncOperation points at it."""
    target = resolve(request, "write", "write", with_id=False)
    ctx: AppContext = request.app.state.ctx
    data = await read_json_object(request, ctx.settings.max_body_bytes)
    ref = target.ref
    draft = parse_create(data, ref.subscription_id, ref.namespace, ref.location, new_operation_id())
    op, _ = await ctx.service.create(draft)
    link = status_url(request, op, target.api_version)
    return operation_response(request, op, target.provider, 201, {"Azure-AsyncOperation": link})


async def patch_operation(request: Request) -> Response:
    target = resolve(request, "write", "write")
    ctx: AppContext = request.app.state.ctx
    data = await read_json_object(request, ctx.settings.max_body_bytes)
    op = await ctx.service.update(target.ref, parse_update(data), if_match(request))
    return operation_response(request, op, target.provider)


async def delete_operation(request: Request) -> Response:
    target = resolve(request, "write", "delete")
    ctx: AppContext = request.app.state.ctx
    deleted = await ctx.service.delete(target.ref, if_match(request))
    return Response(status_code=200 if deleted else 204)


def status_url(request: Request, op: Operation, api_version: str) -> str:
    """Absolute, as ARM requires of Azure-AsyncOperation; --public-url wins over Host."""
    ctx: AppContext = request.app.state.ctx
    base = ctx.settings.public_url or str(request.base_url)
    return f"{base.rstrip('/')}{resource_id(op)}?api-version={api_version}"

"""The ARM operationsStatus resource: read by any client, written by producers.

Each handler parses, calls the service, serialises. Checks run in ARM's order: who is
calling (401), is the subscription well-formed (400), may they act on it (403), then the
provider, api-version and the rest of the path (400), then the store (404, 409, ...). The
403 comes before any lookup, so it cannot reveal whether an operation exists.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, NamedTuple
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from ..auth import Principal, authorize
from ..models import (
    Operation,
    OperationDraft,
    new_operation_id,
    normalize_location,
    validate_operation_id,
    validate_subscription_id,
)
from ..providers import Provider, ProviderRegistry
from ..queries import OperationQuery
from ..service import ANY_VERSION, IfMatch, OperationRef
from .context import AppContext
from .guard import principal_of
from .held import ClientGone, unless_client_leaves
from .payloads import parse_create, parse_update, read_json_object
from .prefer import FULL_DETAIL, preferences, wait_seconds, wants_full_detail
from .representation import arm_body, clipped, encode, resource_id, result_path

#: nginx's "client closed request": the status of a request whose client left first.
CLIENT_CLOSED_REQUEST = 499

# Target and Scope are made for every request, the status read's included: NamedTuples,
# immutable like frozen dataclasses, are built in a third of the time (no __setattr__ per
# field).


class Target(NamedTuple):
    ref: OperationRef
    provider: Provider
    location: str
    api_version: str

    def draft(
        self, data: dict[str, Any], operation_id: str, allow_http: bool = False
    ) -> OperationDraft:
        """A create under this provider and location, from a producer's body."""
        sub = self.ref.subscription_id
        namespace = self.provider.namespace
        return parse_create(data, sub, namespace, self.location, operation_id, allow_http)


class Scope(NamedTuple):
    """A collection: a provider's operations in a subscription, maybe in one location."""

    subscription_id: str
    provider: Provider
    location: str | None
    api_version: str

    def query(self) -> OperationQuery:
        return OperationQuery(
            subscription_id=self.subscription_id,
            namespace=self.provider.namespace,
            location=self.location,
        )

    def path(self) -> str:
        base = f"/subscriptions/{self.subscription_id}/providers/{self.provider.namespace}"
        return base + (f"/locations/{self.location}" if self.location else "")


def _printable(value: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in value[:300])


def resolve_scope(request: Request, action: str, verb: str, resource: str) -> Scope:
    """Authenticate, check the path in ARM's order (see the module docstring), authorize.

    ``resource`` is the path below the location (or below the provider when the path has no
    location), for the 403 message; ``verb`` completes the ARM action name.
    """
    ctx: AppContext = request.app.state.ctx
    api_version = request.query_params.get("api-version", "")
    return scope_of(
        ctx, principal_of(request), request.path_params, api_version, action, verb, resource
    )


def scope_of(
    ctx: AppContext,
    principal: Principal,
    params: Mapping[str, str],
    api_version: str,
    action: str,
    verb: str,
    resource: str,
) -> Scope:
    """:func:`resolve_scope` on what was already taken from the request (the fast status
    read, :mod:`.status_read`, calls it without a Starlette Request)."""
    subscription_id = _subscription(params["subscription_id"])
    namespace, location = params["namespace"], params.get("location")
    if not principal.can(action, subscription_id):
        # The 403's text is built only when it is needed: the read path never pays for it.
        scope = f"/subscriptions/{subscription_id}/providers/{_printable(namespace)}"
        if location is not None:
            scope += f"/locations/{_printable(location)}"
        resource_type = resource.split("/", 1)[0]
        arm_action = f"{_printable(namespace)}/locations/{resource_type}/{verb}"
        authorize(principal, action, subscription_id, f"{scope}/{_printable(resource)}", arm_action)
    provider, location = _placed(ctx.providers, namespace, location, api_version)
    return Scope(subscription_id, provider, location, api_version)


# The checks of a path's parts depend on nothing else, and pollers send the same parts over
# and over: remembered (a failed check is not, so it raises every time).


@functools.lru_cache(maxsize=4096)
def _subscription(value: str) -> str:
    return validate_subscription_id(value)


@functools.lru_cache(maxsize=4096)
def _placed(
    providers: ProviderRegistry, namespace: str, location: str | None, api_version: str
) -> tuple[Provider, str | None]:
    """The provider and normalised location, once the api-version is checked."""
    provider = providers.lookup(namespace)
    if location is not None:
        location = normalize_location(location)
    provider.check_api_version(api_version, location or "all")
    return provider, location


def resolve(
    request: Request,
    action: str,
    verb: str,
    with_id: bool = True,
    resource_type: str = "operationsStatus",
) -> Target:
    ctx: AppContext = request.app.state.ctx
    api_version = request.query_params.get("api-version", "")
    return target_of(
        ctx,
        principal_of(request),
        request.path_params,
        api_version,
        action,
        verb,
        with_id,
        resource_type,
    )


def target_of(
    ctx: AppContext,
    principal: Principal,
    params: Mapping[str, str],
    api_version: str,
    action: str,
    verb: str,
    with_id: bool = True,
    resource_type: str = "operationsStatus",
) -> Target:
    operation_id = params.get("operation_id", "")
    resource = resource_type + (f"/{operation_id}" if with_id else "")
    scope = scope_of(ctx, principal, params, api_version, action, verb, resource)
    if with_id:
        operation_id = validate_operation_id(operation_id)
    assert scope.location is not None
    ref = OperationRef(
        scope.subscription_id, scope.provider.namespace, scope.location, operation_id
    )
    return Target(ref, scope.provider, scope.location, scope.api_version)


def if_match(request: Request, header_name: str = "if-match") -> IfMatch:
    """The ETags an If-Match (or If-None-Match) names, weak or strong, quoted or not; only a
    bare ``*`` means any version (a quoted ``"*"`` is the ETag ``*``)."""
    header = request.headers.get(header_name)
    if header is None:
        return None
    tags = [tag.strip() for tag in header.split(",")]
    if "*" in tags:
        return ANY_VERSION
    return frozenset(tag.removeprefix("W/").strip('"') for tag in tags)


def body_of(ctx: AppContext, op: Operation, provider: Provider, full: bool) -> dict[str, Any]:
    """The operation in the provider's shape (``full``: every field opstatus keeps)."""
    service = ctx.service
    lease_state = service.policy.lease_state(op, service.clock()) if full else None
    return arm_body(op, provider.error_shape, full, lease_state)


def document(ctx: AppContext, op: Operation, provider: Provider, full: bool) -> bytes:
    return encode(
        body_of(ctx, op, provider, full), lambda: body_of(ctx, clipped(op), provider, full)
    )


def operation_headers(ctx: AppContext, op: Operation) -> dict[str, str]:
    """ETag always; Retry-After while the operation runs, so pollers know when to come back."""
    headers = {"ETag": f'"{op.etag}"'}
    if not op.terminal:
        headers["Retry-After"] = str(ctx.settings.retry_after)
    return headers


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
    all_headers = operation_headers(ctx, op)
    full = wants_full_detail(preferences(request) if prefer is None else prefer)
    if full:
        applied = (FULL_DETAIL, *applied)
    if applied:
        all_headers["Preference-Applied"] = ", ".join(applied)
    if headers:
        all_headers.update(headers)
    return Response(
        document(ctx, op, provider, full),
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
        # A held request takes a waiter slot; with none free it is answered at once, as a
        # GET without the preference (RFC 7240 lets a server ignore it).
        with ctx.waiters.slot(principal_of(request).key) as granted:
            if granted:
                return await _held(request, target, wait, prefer)
    op = await ctx.service.get(target.ref)
    return operation_response(request, op, target.provider, prefer=prefer)


async def _held(request: Request, target: Target, wait: int, prefer: dict[str, str]) -> Response:
    """The status GET held until the operation changes, ends, or ``wait`` seconds pass."""
    ctx: AppContext = request.app.state.ctx
    # If-None-Match names the versions the caller has: wait only while it is one of them.
    # (It never makes a 304: a GET answers as it would without it.)
    waiting = ctx.service.wait(target.ref, wait, if_match(request, "if-none-match"))
    try:
        op = await unless_client_leaves(request.receive, waiting)
    except ClientGone:
        # Nothing reaches the client; the metrics count it as the audit would.
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    applied = (f"wait={wait}",)
    return operation_response(request, op, target.provider, applied=applied, prefer=prefer)


async def put_operation(request: Request) -> Response:
    target = resolve(request, "write", "write")
    ctx: AppContext = request.app.state.ctx
    data = await read_json_object(request, ctx.settings.max_body_bytes)
    allow_http = ctx.settings.webhook_allow_http
    op, created = await ctx.service.create(target.draft(data, target.ref.operation_id, allow_http))
    return operation_response(request, op, target.provider, 201 if created else 200)


async def post_operation(request: Request) -> Response:
    """Create with a server-chosen, time-ordered id; Azure-AsyncOperation points at it."""
    target = resolve(request, "write", "write", with_id=False)
    ctx: AppContext = request.app.state.ctx
    data = await read_json_object(request, ctx.settings.max_body_bytes)
    allow_http = ctx.settings.webhook_allow_http
    op, _ = await ctx.service.create(target.draft(data, new_operation_id(), allow_http))
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


async def cancel_operation(request: Request) -> Response:
    """Record a cancel request: 202 while the producer has yet to act on it."""
    target = resolve(request, "write", "cancel/action")
    ctx: AppContext = request.app.state.ctx
    op = await ctx.service.cancel(target.ref)
    links = {
        "Azure-AsyncOperation": status_url(request, op, target.api_version),
        "Location": absolute_url(request, result_path(op), target.api_version),
    }
    return operation_response(request, op, target.provider, 200 if op.terminal else 202, links)


def absolute_url(request: Request, path: str, api_version: str) -> str:
    """Absolute, as ARM requires of its links; --public-url wins over Host."""
    ctx: AppContext = request.app.state.ctx
    base = ctx.settings.public_url or str(request.base_url)
    link = quote(path, safe="/:=+@")
    return f"{base.rstrip('/')}{link}?api-version={quote(api_version, safe='')}"


def status_url(request: Request, op: Operation, api_version: str) -> str:
    return absolute_url(request, resource_id(op), api_version)

"""Collections of operations: list (ARM's list shape, keyset paging), counts, purge.

``GET .../operationsStatus`` answers ``{"value": [...], "nextLink": "..."}`` (nextLink only
when there is more); ``GET /subscriptions/{sub}/operationsStatus`` lists every provider's
operations of the subscription the same way. The same filters serve all of them:

- ``status`` and ``kind``: comma-separated, or repeated; any of them matches.
- ``startedAfter``/``startedBefore``, ``endedAfter``/``endedBefore``: ISO 8601 date-times;
  "after" is inclusive, "before" is not.
- ``cancelRequested``: ``true`` (only operations someone asked to cancel) or ``false``.
- ``idPrefix``: operations whose id starts with it (ids compare case-insensitively).
- ``stalled``: ``true``, only running operations whose producer's lease has lapsed: not
  renewed in time, and not yet failed as lost (which happens once the grace period after
  the lease is over, ``lifecycle.py``); ``false`` is the same as leaving it out.
- ``orderby``: ``startTime desc``, ``startTime asc``, ``endTime desc`` or ``endTime asc``;
  without it, newest created first. An order by a time lists only the operations that have
  it: ``endTime`` leaves out those still running.
- ``maxpagesize`` (Azure guidelines' name): the page size, capped at the server's maximum.
- ``$skipToken``: from a nextLink; it carries the filters and the order, so a request that
  also gives filters or an order must give the same ones.

Counts (``operationsStatusCounts``) without a time, kind or cancelRequested filter are read
from the counts the store keeps on write (``Store.tallies``): their cost is the number of
groups, not of operations. With one of those filters, the matching operations are counted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ..auth import authorize
from ..errors import InvalidInput
from ..lifecycle import validate_kind
from ..models import (
    Operation,
    normalize_status,
    operation_key,
    parse_time,
    validate_operation_id,
    validate_subscription_id,
)
from ..providers import CLASSIC_NAMESPACE, Provider
from ..queries import NEWEST_FIRST, OperationFilter, OperationQuery, Order
from . import continuation
from .arm import Scope, absolute_url, body_of, resolve_scope
from .context import AppContext
from .guard import principal_of
from .prefer import preferences, wants_full_detail
from .representation import clipped, encode

_TIME_PARAMS = {
    "startedafter": ("startedAfter", "started_after"),
    "startedbefore": ("startedBefore", "started_before"),
    "endedafter": ("endedAfter", "ended_after"),
    "endedbefore": ("endedBefore", "ended_before"),
}
FILTER_PARAMS = frozenset({"status", "kind", "cancelrequested", "idprefix", *_TIME_PARAMS})
#: What ``orderby`` takes, and the order each names.
ORDERS = {
    "startTime desc": Order("start_time", descending=True),
    "startTime asc": Order("start_time", descending=False),
    "endTime desc": Order("end_time", descending=True),
    "endTime asc": Order("end_time", descending=False),
}
#: The filters a count read from the tallies cannot apply.
_COUNTED_FILTERS = frozenset({"kind", "cancelrequested", *_TIME_PARAMS})


def _params(request: Request) -> dict[str, list[str]]:
    """Query parameters by lower-cased name (ARM compares names case-insensitively)."""
    params: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        params.setdefault(name.lower(), []).append(value)
    return params


def _listed(values: list[str]) -> list[str]:
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def _flag(params: dict[str, list[str]], name: str, wire: str) -> bool | None:
    """A boolean query parameter: exactly ``true`` or ``false`` (the last one given)."""
    if name not in params:
        return None
    value = params[name][-1]
    if value not in ("true", "false"):
        raise InvalidInput(f"'{wire}' must be 'true' or 'false'.", target=wire)
    return value == "true"


def _id_prefix(params: dict[str, list[str]]) -> str | None:
    if "idprefix" not in params:
        return None
    try:
        return operation_key(validate_operation_id(params["idprefix"][-1]))
    except InvalidInput:
        raise InvalidInput(
            "'idPrefix' must be the start of an operation id: 1 to 256 characters, letters, "
            "digits and . _ ~ : = + @ -, starting with a letter or digit.",
            target="idPrefix",
        ) from None


def parse_order(params: dict[str, list[str]]) -> Order:
    if "orderby" not in params:
        return NEWEST_FIRST
    order = ORDERS.get(params["orderby"][-1])
    if order is None:
        raise InvalidInput(f"'orderby' must be one of: {', '.join(ORDERS)}.", target="orderby")
    return order


def parse_filter(params: dict[str, list[str]]) -> OperationFilter:
    times = {
        field: parse_time(params[name][-1], wire)
        for name, (wire, field) in _TIME_PARAMS.items()
        if name in params
    }
    return OperationFilter(
        statuses=frozenset(normalize_status(s) for s in _listed(params.get("status", []))),
        kinds=frozenset(validate_kind(k) for k in _listed(params.get("kind", []))),
        cancel_requested=_flag(params, "cancelrequested", "cancelRequested"),
        id_prefix=_id_prefix(params),
        **times,
    )


def _page_size(params: dict[str, list[str]], ctx: AppContext, default: int) -> int:
    if "maxpagesize" not in params:
        return min(default, ctx.settings.max_page_size)
    value = params["maxpagesize"][-1]
    if not value.isdigit() or int(value) < 1:
        raise InvalidInput(
            "'maxpagesize' must be a whole number of at least 1.", target="maxpagesize"
        )
    return min(int(value), ctx.settings.max_page_size)


def _scope_key(scope: Scope) -> tuple[str, str, str]:
    return (scope.subscription_id, scope.provider.namespace.lower(), scope.location or "")


async def list_operations(request: Request) -> Response:
    scope = resolve_scope(request, "read", "read", "operationsStatus")
    ctx: AppContext = request.app.state.ctx
    provider = scope.provider
    return await _page(
        request,
        ctx,
        scope.query(),
        _scope_key(scope),
        f"{scope.path()}/operationsStatus",
        scope.api_version,
        lambda op: provider,
    )


async def list_subscription_operations(request: Request) -> Response:
    """``GET /subscriptions/{sub}/operationsStatus``: every provider's operations in the
    subscription, newest first, each in its own provider's shape (its ``id`` is its status
    path). The api-versions are opstatus's own (those of ``Opstatus.Classic``)."""
    ctx: AppContext = request.app.state.ctx
    principal = principal_of(request)
    subscription_id = validate_subscription_id(request.path_params["subscription_id"])
    path = f"/subscriptions/{subscription_id}/operationsStatus"
    authorize(principal, "read", subscription_id, path, "Opstatus/operationsStatus/read")
    api_version = request.query_params.get("api-version", "")
    ctx.providers.lookup(CLASSIC_NAMESPACE).check_api_version(api_version, "all")
    providers = ctx.providers
    fallback = providers.lookup(CLASSIC_NAMESPACE)

    def provider_of(op: Operation) -> Provider:
        try:
            return providers.lookup(op.namespace)
        except InvalidInput:  # a provider no longer registered: the RPC shape
            return fallback

    query = OperationQuery(subscription_id=subscription_id)
    return await _page(
        request, ctx, query, (subscription_id, "", ""), path, api_version, provider_of
    )


async def _page(
    request: Request,
    ctx: AppContext,
    query: OperationQuery,
    key: tuple[str, str, str],
    path: str,
    api_version: str,
    provider_of: Callable[[Operation], Provider],
) -> Response:
    """One page of ``query`` as ARM's list: filters, size and ``$skipToken`` from the
    request, a nextLink to ``path`` while more follow."""
    params = _params(request)
    page_size = _page_size(params, ctx, ctx.settings.default_page_size)
    token_text = params["$skiptoken"][-1] if "$skiptoken" in params else None
    stalled = bool(_flag(params, "stalled", "stalled"))
    if token_text is None:
        query = dataclasses.replace(query, filter=parse_filter(params), order=parse_order(params))
    else:
        token = continuation.decode(ctx.paging_key, token_text)
        if token.scope != key:
            raise continuation.invalid("it was issued for another list")
        if FILTER_PARAMS & set(params) and parse_filter(params) != token.filter:
            raise continuation.invalid("it was issued for other filters")
        if ("orderby" in params and parse_order(params) != token.order) or (
            "stalled" in params and stalled != token.stalled
        ):
            raise continuation.invalid("it was issued for another order or selection")
        page_size = _page_size(params, ctx, token.page_size)
        stalled = token.stalled
        query = dataclasses.replace(
            query, filter=token.filter, order=token.order, after=token.after
        )
    if stalled:  # lapsed at the service's clock, and (settled first) not yet past grace
        query = dataclasses.replace(query, lapsed_at=ctx.service.clock())
    page = await ctx.service.list(dataclasses.replace(query, limit=page_size))
    full = wants_full_detail(preferences(request))
    body: dict[str, object] = {
        "value": [body_of(ctx, op, provider_of(op), full) for op in page.operations]
    }
    if page.next is not None:
        next_token = continuation.encode(
            ctx.paging_key,
            continuation.Continuation(
                key, query.filter, page_size, page.next, query.order, stalled
            ),
        )
        link = absolute_url(request, path, api_version)
        body["nextLink"] = f"{link}&$skipToken={next_token}"
    headers = {"Preference-Applied": "opstatus-detail=full"} if full else None

    def clipped_body() -> dict[str, object]:
        ops = page.operations
        return {
            **body,
            "value": [body_of(ctx, clipped(op), provider_of(op), full) for op in ops],
        }

    content = encode(body, clipped_body)
    return Response(content, media_type="application/json", headers=headers)


async def count_operations(request: Request) -> Response:
    """How many live operations there are per status: ``{"counts": {...}, "total": n}``."""
    scope = resolve_scope(request, "read", "read", "operationsStatusCounts")
    ctx: AppContext = request.app.state.ctx
    params = _params(request)
    query = dataclasses.replace(scope.query(), filter=parse_filter(params))
    if _COUNTED_FILTERS & set(params) or query.filter.id_prefix is not None:
        counts = await ctx.service.counts(query)
    else:
        counts = await ctx.service.tallied_counts(query)
    body = {"counts": dict(sorted(counts.items())), "total": sum(counts.values())}
    return Response(orjson.dumps(body), media_type="application/json")


async def purge_operations(request: Request) -> Response:
    """Owners only: remove the terminal operations matching the filters now, leaving
    tombstones (reads then say OperationExpired). Running operations are never purged."""
    scope = resolve_scope(request, "admin", "purge/action", "operationsStatus/purge")
    ctx: AppContext = request.app.state.ctx
    query = dataclasses.replace(scope.query(), filter=parse_filter(_params(request)))
    purged = await ctx.service.purge(query, ctx.settings.maintenance_batch)
    return Response(orjson.dumps({"purged": purged}), media_type="application/json")

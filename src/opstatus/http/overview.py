"""The dashboard's overview: operation counts of a subscription and of every subscription the
caller may read, and who the caller is.

- ``GET /subscriptions/{sub}/operationsStatusCounts``: ``{"counts", "total", "groups"}``, the
  groups by provider and location (sorted by namespace, then location), each with its own
  counts and total.
- ``GET /operationsStatusCounts``: ``{"subscriptions": [...]}``, one such entry (with its
  ``subscriptionId``) per subscription that has operations and that the caller may read:
  every one for a role over ``/``, else those its roles name.
- ``GET /principal``: the caller's name, issuer, id and the claim it came from, and its roles.

Counts are read from the tallies the store keeps on write (``Store.tallies``), so they cost
the number of groups, whatever the number of operations; they count live operations, as
``operationsStatusCounts`` of a provider does. A provider's spellings of its namespace are
one group, named as the registered provider spells it. The api-versions are opstatus's own
(those of ``Opstatus.Classic``), as for the subscription-wide list.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import groupby

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ..auth import ROLE_ACTIONS, Principal, authorize
from ..errors import InvalidInput
from ..models import validate_subscription_id
from ..providers import CLASSIC_NAMESPACE, ProviderRegistry
from ..queries import Tally
from .context import AppContext
from .guard import principal_of


def _check_api_version(request: Request, ctx: AppContext) -> None:
    api_version = request.query_params.get("api-version", "")
    ctx.providers.lookup(CLASSIC_NAMESPACE).check_api_version(api_version, "all")


def _json(body: object) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


def _namespace(providers: ProviderRegistry, namespace: str) -> str:
    try:
        return providers.lookup(namespace).namespace
    except InvalidInput:  # a provider no longer registered: as its producers spelled it
        return namespace


def summary(providers: ProviderRegistry, tallies: Iterable[Tally]) -> dict[str, object]:
    """One subscription's tallies as ``{"counts", "total", "groups"}``."""
    counts: dict[str, int] = {}
    groups: dict[tuple[str, str], dict[str, int]] = {}
    names: dict[str, str] = {}
    for t in tallies:
        counts[t.status] = counts.get(t.status, 0) + t.operations
        name = names.setdefault(t.namespace.lower(), _namespace(providers, t.namespace))
        group = groups.setdefault((name, t.location), {})
        group[t.status] = group.get(t.status, 0) + t.operations
    return {
        "counts": dict(sorted(counts.items())),
        "total": sum(counts.values()),
        "groups": [
            {
                "namespace": namespace,
                "location": location,
                "counts": dict(sorted(group.items())),
                "total": sum(group.values()),
            }
            for (namespace, location), group in sorted(groups.items())
        ],
    }


async def subscription_counts(request: Request) -> Response:
    """``GET /subscriptions/{sub}/operationsStatusCounts``."""
    ctx: AppContext = request.app.state.ctx
    principal = principal_of(request)
    subscription_id = validate_subscription_id(request.path_params["subscription_id"])
    path = f"/subscriptions/{subscription_id}/operationsStatusCounts"
    authorize(principal, "read", subscription_id, path, "Opstatus/operationsStatusCounts/read")
    _check_api_version(request, ctx)
    tallies = await ctx.service.tallies([subscription_id])
    return _json(summary(ctx.providers, tallies))


def readable_subscriptions(principal: Principal) -> frozenset[str] | None:
    """The subscriptions ``principal`` may read; None: every one."""
    readable = [r for r in principal.roles if "read" in ROLE_ACTIONS.get(r.role, frozenset())]
    if any(r.scope == "/" for r in readable):
        return None
    prefix = "/subscriptions/"
    named = {r.scope[len(prefix) :].lower() for r in readable if r.scope.lower().startswith(prefix)}
    # What authorization itself says, so that a scope of another shape never widens a list.
    return frozenset(s for s in named if principal.can("read", s))


async def all_counts(request: Request) -> Response:
    """``GET /operationsStatusCounts``: a Reader role over any scope suffices; a principal
    with none gets an empty list."""
    ctx: AppContext = request.app.state.ctx
    principal = principal_of(request)
    _check_api_version(request, ctx)
    subscriptions = readable_subscriptions(principal)
    tallies: Sequence[Tally] = []
    if subscriptions is None or subscriptions:
        tallies = await ctx.service.tallies(subscriptions)
    body = [
        {"subscriptionId": subscription_id, **summary(ctx.providers, of_subscription)}
        for subscription_id, of_subscription in groupby(tallies, key=lambda t: t.subscription_id)
    ]
    return _json({"subscriptions": body})


async def who_am_i(request: Request) -> Response:
    """``GET /principal``: any valid token may ask, whatever its roles."""
    ctx: AppContext = request.app.state.ctx
    principal = principal_of(request)
    _check_api_version(request, ctx)
    return _json(
        {
            "name": principal.subject or principal.object_id,
            "issuer": principal.issuer,
            "claim": principal.claim,
            "id": principal.object_id,
            "local": not principal.external,
            "roles": [{"role": r.role, "scope": r.scope} for r in principal.roles],
        }
    )

"""The classic Service Management form: ``/{subscriptionId}/operations/{requestId}``.

System Center Orchestrator's "Get Operation Status" activity and the legacy Python SDK read
an operation here by request id, which is the operation id: one operation is readable in
both forms. Producers that know no provider or location create and update operations here
too (the ARM producer's JSON bodies); they are stored under ``Opstatus.Classic``/``global``
so ARM clients can read them as well.

Checks run in this order: the x-ms-version header (400), who is calling (403), is the
subscription well-formed (400), may they act on it (403), the request id (400), then the
store. As on the ARM side, the 403 comes before any lookup. Errors are answered in the
classic XML form by :mod:`.classic_errors`.
"""

from __future__ import annotations

import re
from datetime import date

from starlette.requests import Request
from starlette.responses import Response

from ..auth import authorize
from ..models import Operation, validate_operation_id, validate_subscription_id
from ..providers import CLASSIC_LOCATION, CLASSIC_NAMESPACE
from ..service import OperationRef
from .classic_errors import VERSION_MESSAGE, VersionHeaderInvalid
from .classic_xml import MEDIA_TYPE, classic_status, operation_xml
from .context import AppContext
from .guard import principal_of
from .payloads import parse_create, parse_update, read_json_object

CLASSIC_PATH = "/{subscription_id}/operations/{operation_id}"
#: "This header should be set to 2009-10-01 or higher." (Get Operation Status, ee460783)
EARLIEST_VERSION = date(2009, 10, 1)
_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}\Z")


def check_version(request: Request) -> None:
    value = request.headers.get("x-ms-version", "").strip()
    try:
        valid = bool(_VERSION.match(value)) and date.fromisoformat(value) >= EARLIEST_VERSION
    except ValueError:
        valid = False
    if not valid:
        raise VersionHeaderInvalid(VERSION_MESSAGE, target="x-ms-version")


def resolve(request: Request, action: str, verb: str = "") -> OperationRef:
    check_version(request)
    principal = principal_of(request)
    subscription_id = validate_subscription_id(request.path_params["subscription_id"])
    scope = f"/subscriptions/{subscription_id}/operations"
    arm_action = f"{CLASSIC_NAMESPACE}/operations/{verb or action}"
    authorize(principal, action, subscription_id, scope, arm_action)
    request_id = validate_operation_id(request.path_params["operation_id"])
    return OperationRef.by_request_id(subscription_id, request_id)


def operation_response(request: Request, op: Operation, status: int = 200) -> Response:
    ctx: AppContext = request.app.state.ctx
    headers = None if op.terminal else {"Retry-After": str(ctx.settings.retry_after)}
    body = operation_xml(classic_status(op))
    return Response(body, status, headers=headers, media_type=MEDIA_TYPE)


async def get_operation(request: Request) -> Response:
    ref = resolve(request, "read")
    ctx: AppContext = request.app.state.ctx
    return operation_response(request, await ctx.service.get(ref))


async def put_operation(request: Request) -> Response:
    """Create by request id: the producer's JSON body, stored under the classic defaults."""
    ref = resolve(request, "write")
    ctx: AppContext = request.app.state.ctx
    data = await read_json_object(request, ctx.settings.max_body_bytes)
    sub, request_id = ref.subscription_id, ref.operation_id
    allow_http = ctx.settings.webhook_allow_http
    draft = parse_create(data, sub, CLASSIC_NAMESPACE, CLASSIC_LOCATION, request_id, allow_http)
    op, created = await ctx.service.create(draft)
    return operation_response(request, op, 201 if created else 200)


async def patch_operation(request: Request) -> Response:
    """Update by request id, wherever the operation was created."""
    ref = resolve(request, "write")
    ctx: AppContext = request.app.state.ctx
    data = await read_json_object(request, ctx.settings.max_body_bytes)
    return operation_response(request, await ctx.service.update(ref, parse_update(data)))


async def delete_operation(request: Request) -> Response:
    ref = resolve(request, "write", "delete")
    ctx: AppContext = request.app.state.ctx
    deleted = await ctx.service.delete(ref)
    return Response(status_code=200 if deleted else 204)

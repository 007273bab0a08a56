"""The Location half of ARM's asynchronous pattern: ``.../operationResults/{id}``.

ARM RPC: "Location URI should return 202 Accepted with no response body while operation is
in progress", then "the exact same response that would have been returned had the operation
been executed synchronously". opstatus knows that response from what the producer stored:

- running: 202, no body, ``Location`` (this URL again) and ``Retry-After``;
- Succeeded: 200 with the operation's ``properties`` as the body, or 204 when there are none;
- Failed or Canceled: the operation's error in ARM's envelope, with the HTTP status the
  producer reported (``httpStatusCode``, 4xx or 5xx) or 500.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..models import SUCCEEDED, clip_json, default_error
from .arm import absolute_url, resolve
from .context import AppContext
from .representation import encode, result_path


async def get_operation_result(request: Request) -> Response:
    target = resolve(request, "read", "read", resource_type="operationResults")
    ctx: AppContext = request.app.state.ctx
    op = await ctx.service.get(target.ref)
    if not op.terminal:
        headers = {
            "Location": absolute_url(request, result_path(op), target.api_version),
            "Retry-After": str(ctx.settings.retry_after),
        }
        return Response(status_code=202, headers=headers)
    if op.status == SUCCEEDED:
        if op.properties is None:
            return Response(status_code=204)
        content = encode(op.properties, lambda: clip_json(op.properties))
        return Response(content, media_type="application/json")
    reported = op.http_status_code
    status = reported if reported is not None and 400 <= reported <= 599 else 500
    error = op.error or default_error(op.status)
    content = encode({"error": error}, lambda: {"error": clip_json(error)})
    return Response(content, status, media_type="application/json")

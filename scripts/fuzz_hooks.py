"""schemathesis hooks for scripts/fuzz.py: the rules of the API that a JSON Schema cannot
state, kept by the generated requests so that the checks judge everything else.

- The server refuses an ``endTime`` before the operation's ``startTime`` (400, the classic
  XML error on the classic path); the document says so in words. A body that states both in
  the wrong order has them swapped; a PATCH, whose ``endTime`` is compared with a start the
  server already holds, gets one that no start can follow. tests/http/test_times.py holds
  the refusals.
- A webhook URL must name a host that resolves, to an address the server may send to: the
  generated ones name ``localhost``, which the fuzzed server allows (and never sends to).
  tests/http/test_webhook_api.py holds the refusals.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import schemathesis

#: Later than any start a producer can give (the server refuses years past 9999).
LAST = "9999-12-31T23:59:59.999Z"


def _moment(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


#: Where generated webhooks point: a name that resolves, to loopback (allowed by fuzz.py).
RECEIVER = "https://localhost/hook"


@schemathesis.hook
def map_body(context: schemathesis.HookContext, body: Any) -> Any:
    if not isinstance(body, dict):
        return body
    if isinstance(body.get("url"), str):
        body = {**body, "url": RECEIVER}
    if isinstance(body.get("callbackUrl"), str):
        body = {**body, "callbackUrl": RECEIVER}
    if "endTime" not in body:
        return body
    operation = context.operation
    if operation is not None and operation.method.upper() == "PATCH":
        return {**body, "endTime": LAST}
    start, end = _moment(body.get("startTime")), _moment(body.get("endTime"))
    try:
        wrong_order = start is not None and end is not None and end < start
    except TypeError:  # one with an offset and one without: the server refuses it anyway
        wrong_order = False
    if wrong_order:
        return {**body, "startTime": body["endTime"], "endTime": body["startTime"]}
    return body

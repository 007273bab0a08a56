"""The audit trail: one JSON line per write, on logger ``opstatus.audit``.

Every write (create, update, delete, and any later write verb such as cancel) is recorded
with who made it, where, what was asked, how it ended and the request id that the caller
saw in ``x-ms-request-id``; attempts that were refused (401, 403, 413, 429) are recorded
too. Role changes made with ``opstatus role`` are recorded the same way. Lines never hold
a token, a header value or a request body.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

audit_log = logging.getLogger("opstatus.audit")

WRITE_METHODS = frozenset({"PUT", "PATCH", "POST", "DELETE"})
#: ARM's operations (with or without a location: purge has both), and the classic form's.
_OPERATION_PATH = re.compile(
    r"/subscriptions/(?P<sub>[^/]*)/providers/[^/]*(?:/locations/[^/]*)?/operationsStatus"
    r"(?:/(?P<op>[^/]+))?(?:/(?P<verb>[^/]+))?/?\Z",
    re.IGNORECASE,
)
_CLASSIC_PATH = re.compile(r"/(?P<sub>[^/]+)/operations/(?P<op>[^/]+)\Z", re.IGNORECASE)
_LINK_OPERATION = re.compile(rb"/operationsStatus/([^/?]+)", re.IGNORECASE)
_ACTIONS = {"PUT": "create", "POST": "create", "PATCH": "update", "DELETE": "delete"}


def _bounded(value: str | None) -> str | None:
    return None if value is None else value[:300]


def write_target(method: str, path: str) -> tuple[str, str | None, str | None]:
    """``(action, subscription, operation id)`` of a write, from its method and path.

    Both forms name the same writes the same way: the classic ``PUT``, ``PATCH`` and
    ``DELETE /{sub}/operations/{id}`` are ``create``, ``update`` and ``delete`` of ``id``,
    as on the ARM path; a ``POST .../operationsStatus/purge`` is ``purge`` of no operation.
    """
    match = _OPERATION_PATH.match(path) or _CLASSIC_PATH.match(path)
    if match is None:
        return method.lower(), None, None
    operation_id, verb = match["op"], match.groupdict().get("verb")
    if verb is None and method == "POST" and (operation_id or "").lower() == "purge":
        operation_id, verb = None, "purge"
    action = verb.lower() if verb else _ACTIONS.get(method, method.lower())
    return action, _bounded(match["sub"].lower()), _bounded(operation_id)


def operation_from_link(link: bytes) -> str | None:
    """The id a POST created, from its Azure-AsyncOperation header."""
    match = _LINK_OPERATION.search(link)
    return _bounded(match[1].decode("latin-1")) if match else None


def record(
    *,
    action: str,
    principal: str | None,
    subscription: str | None,
    operation_id: str | None,
    result: int,
    request_id: str | None,
    **extra: Any,
) -> None:
    """Write one audit line (a JSON object) at INFO."""
    if not audit_log.isEnabledFor(logging.INFO):
        return
    line = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "action": action,
        "principal": principal,
        "subscription": subscription,
        "operationId": operation_id,
        "result": result,
        "requestId": request_id,
        **extra,
    }
    audit_log.info(orjson.dumps(line).decode())


def file_handler(path: Path | None) -> logging.Handler:
    """Lines as they are, appended to ``path`` (created 0600) or to standard error."""
    if path is None:
        handler: logging.Handler = logging.StreamHandler()
    else:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler


def configure_audit(path: Path | None) -> None:
    """For the server's life, audit lines go to ``path`` (created 0600) or standard error."""
    logger = audit_log
    logger.addHandler(file_handler(path))
    logger.setLevel(logging.INFO)
    logger.propagate = False


@contextlib.contextmanager
def audit_to(path: Path | None) -> Iterator[None]:
    """For one command: audit lines also go to ``path`` or standard error, then it is undone."""
    logger = audit_log
    handler = file_handler(path)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        handler.close()

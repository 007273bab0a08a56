"""Recognising a status read and writing its answer, for the fast reads of :mod:`.fast_reads`.

Clients poll one operation's status thousands of times for every write, so that GET is the
request the server answers most. What is a status read is the router's own pattern for the
route (case-insensitive), with a single plain api-version; the answer is the document and
headers of :func:`.arm.document` and :func:`.arm.operation_headers`, as the framework's
handler writes them, so every path answers alike.
"""

from __future__ import annotations

import re

import orjson
from starlette.routing import Route

from ..providers import Provider
from .context import AppContext
from .representation import Shown, arm_body, clipped

_PLAIN_API_VERSION = re.compile(rb"api-version=([A-Za-z0-9.\-]{1,64})\Z")

#: What a status read needs from its request: the path's parameters and the api-version.
Request = tuple[dict[str, str], str]


class StatusRead:
    """Recognising a status read and writing its answer, for both lanes of :mod:`.fast_reads`."""

    def __init__(self, ctx: AppContext, route: Route) -> None:
        self.ctx = ctx
        #: The status item's route: its pattern decides what is a status read, and it is
        #: left in the scope so that the metrics label the request as the router would.
        self.route = route
        self._match = route.path_regex.match
        self._retry_after = (b"retry-after", str(ctx.settings.retry_after).encode())

    def parse(self, path: str, query: bytes) -> Request | None:
        """None unless ``path`` is an operation's status and the query a plain api-version."""
        match = self._match(path)
        version = _PLAIN_API_VERSION.match(query)
        if match is None or version is None:
            return None
        return match.groupdict(), version.group(1).decode()

    def respond(self, op: Shown, provider: Provider) -> tuple[list[tuple[bytes, bytes]], bytes]:
        """The 200's headers (before the ARM ones) and body: :func:`.arm.operation_headers`
        and :func:`.arm.document` written straight as bytes (tests/http/test_fast_reads.py holds
        them to the same)."""
        try:
            body = orjson.dumps(arm_body(op, provider.error_shape))
        except orjson.JSONEncodeError:  # a value stored too deep to write: see clipped
            body = orjson.dumps(arm_body(clipped(op), provider.error_shape))
        headers = [
            (b"content-length", b"%d" % len(body)),
            (b"content-type", b"application/json"),
            (b"etag", b'"%s"' % op.etag.encode()),
        ]
        if not op.terminal:
            headers.append(self._retry_after)
        return headers, body

"""What the server needs of uvicorn beyond its public API, checked before it serves.

:mod:`.protocol` subclasses uvicorn's httptools protocol through its parser callbacks and
the asyncio protocol methods; :mod:`.fast_lane` also overrides where uvicorn starts the app
on a request, writes through its request cycle, and ends an answer as uvicorn does but for
its keep-alive timer. Both are proved by the test suite on the uvicorn versions of
:data:`SUPPORTED` (pyproject pins the same range, and CI runs the end-to-end suite on its
lowest and highest release). On another uvicorn, or one whose internals moved, the fast lane
is off, said in one warning, and the app answers every read with the same answers. Without
what the timed protocol needs, the server does not start: serving without its timers would
let any client hold connections for ever.
"""

from __future__ import annotations

import importlib.metadata
import inspect

#: The uvicorn releases the suite proves: lowest included, highest excluded.
SUPPORTED = ((0, 45), (0, 56))

#: The callbacks the timed protocol overrides and calls on (httptools' parser, asyncio's).
_PROTOCOL_HOOKS = (
    "connection_made",
    "connection_lost",
    "data_received",
    "pause_writing",
    "resume_writing",
    "on_message_begin",
    "on_url",
    "on_header",
    "on_headers_complete",
    "on_message_complete",
    "on_response_complete",
    "send_400_response",
)
#: What the timed protocol reads of the request cycle: is the body still coming.
_PROTOCOL_CYCLE_FIELDS = ("more_body",)
#: What the fast lane overrides and reads.
_LANE_HOOKS = ("_start_asgi_task",)
#: What it reads of the protocol, ending an answer as uvicorn's ``on_response_complete`` does.
_LANE_PROTOCOL_FIELDS = ("server_state", "flow", "pipeline")
_CYCLE_FIELDS = (
    "response_started",
    "response_complete",
    "message_event",
    "keep_alive",
    "on_response",
    "disconnected",
    "scope",
)


def version() -> tuple[int, ...]:
    text = importlib.metadata.version("uvicorn")
    parts = []
    for part in text.split("."):
        digits = "".join(c for c in part if c.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def missing_for_protocol() -> list[str]:
    """What the timed protocol needs and this uvicorn lacks; empty when all is there."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError as exc:
        return [f"uvicorn's httptools protocol ({exc})"]
    missing = [
        f"HttpToolsProtocol.{n}" for n in _PROTOCOL_HOOKS if not hasattr(HttpToolsProtocol, n)
    ]
    return missing + _missing_fields(_cycle_class(), _PROTOCOL_CYCLE_FIELDS)


def _cycle_class() -> type:
    from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

    return RequestResponseCycle


def _missing_fields(cls: type, names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` ``cls``'s own ``__init__`` neither takes nor sets on ``self``."""
    constructor = vars(cls)["__init__"]
    init = inspect.signature(constructor).parameters
    source = inspect.getsource(constructor)
    return [
        f"{cls.__name__}.{name}"
        for name in names
        if name not in init and f"self.{name}" not in source
    ]


def fast_lane_unavailable() -> str | None:
    """Why the fast lane cannot run on this uvicorn, or None when it can."""
    found = version()
    low, high = SUPPORTED
    if not low <= found[:2] < high:
        return (
            f"uvicorn {'.'.join(map(str, found))} is outside the range opstatus supports "
            f"(>={low[0]}.{low[1]},<{high[0]}.{high[1]})"
        )
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    missing = [f"HttpToolsProtocol.{n}" for n in _LANE_HOOKS if not hasattr(HttpToolsProtocol, n)]
    start = getattr(HttpToolsProtocol, "_start_asgi_task", None)
    if start is not None and list(inspect.signature(start).parameters) != ["self", "cycle", "app"]:
        missing.append("HttpToolsProtocol._start_asgi_task(cycle, app)")
    missing += _missing_fields(HttpToolsProtocol, _LANE_PROTOCOL_FIELDS)
    missing += _missing_fields(_cycle_class(), _CYCLE_FIELDS)
    if missing:
        return f"uvicorn {'.'.join(map(str, found))} lacks {', '.join(missing)}"
    return None


def pin() -> str:
    """The supported range as a pip requirement's version part."""
    (a, b), (c, d) = SUPPORTED
    return f">={a}.{b},<{c}.{d}"

"""RFC 7240 ``Prefer``: which preferences a request states.

Two are understood: ``wait=N`` (hold a status GET until the operation changes or N seconds
pass) and ``opstatus-detail=full`` (show every field whatever the provider's public shape).
Anything else, or a malformed value, is ignored, as RFC 7240 asks; what was honoured is
echoed in ``Preference-Applied``.
"""

from __future__ import annotations

from starlette.requests import Request

FULL_DETAIL = "opstatus-detail=full"


def preferences(request: Request) -> dict[str, str]:
    """Lower-cased preference names to their values ('' when none); the first of a name wins."""
    if "prefer" not in request.headers:
        return {}
    found: dict[str, str] = {}
    for header in request.headers.getlist("prefer"):
        for item in header.split(","):
            name, _, value = item.split(";", 1)[0].partition("=")
            name = name.strip().lower()
            if name:
                found.setdefault(name, value.strip().strip('"'))
    return found


def wait_seconds(prefer: dict[str, str], max_wait: int) -> int:
    """Seconds to hold the request: ``wait`` (delta-seconds) capped by ``max_wait``; 0: none."""
    value = prefer.get("wait", "")
    if not value.isascii() or not value.isdigit():
        return 0
    return min(int(value), max_wait)


def wants_full_detail(prefer: dict[str, str]) -> bool:
    return prefer.get("opstatus-detail") == "full"

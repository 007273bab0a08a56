"""Continuation tokens: where a list stopped, and what it lists, in an opaque signed string.

A token carries the keyset position of the last operation returned, the list's scope
(subscription, namespace, location), its filter, order, whether it lists stalled operations
only, and its page size. It is JSON, then an HMAC-SHA256
tag (with a key derived from the server's signing key, so no other secret is needed), in
base64url. Anything that does not verify is refused with 400 ``InvalidContinuationToken``:
a client can neither forge a position nor widen the list it was given.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import orjson

from ..errors import InvalidInput
from ..queries import NEWEST_FIRST, OperationFilter, Order, Position

VERSION = 1
_TAG_BYTES = 16
MAX_TOKEN_CHARS = 8192


def paging_key(signing_key: bytes) -> bytes:
    """A key for tokens only, so that a token can never be passed off as anything else."""
    return hmac.new(signing_key, b"opstatus continuation token v1", hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class Continuation:
    scope: tuple[str, str, str]  # subscription, namespace (lower-case), location or ""
    filter: OperationFilter
    page_size: int
    after: Position
    order: Order = NEWEST_FIRST
    #: Only running operations whose lease has lapsed (``stalled=true``).
    stalled: bool = False


def invalid(reason: str) -> InvalidInput:
    return InvalidInput(
        f"The continuation token is not valid: {reason}. Start the list again without it.",
        code="InvalidContinuationToken",
        target="$skipToken",
    )


def encode(key: bytes, token: Continuation) -> str:
    f = token.filter
    payload = orjson.dumps(
        [
            VERSION,
            list(token.scope),
            [
                sorted(f.statuses),
                sorted(f.kinds),
                f.started_after,
                f.started_before,
                f.ended_after,
                f.ended_before,
                f.cancel_requested,
                f.id_prefix,
            ],
            token.page_size,
            [token.after.sort_key, token.after.subscription_id, token.after.operation_key],
            [token.order.field, token.order.descending],
            token.stalled,
        ]
    )
    tag = hmac.new(key, payload, hashlib.sha256).digest()[:_TAG_BYTES]
    return base64.urlsafe_b64encode(payload + tag).rstrip(b"=").decode()


def decode(key: bytes, text: str) -> Continuation:
    if not text or len(text) > MAX_TOKEN_CHARS:
        raise invalid("it is empty or too long")
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise invalid("it is not base64url") from None
    payload, tag = raw[:-_TAG_BYTES], raw[-_TAG_BYTES:]
    expected = hmac.new(key, payload, hashlib.sha256).digest()[:_TAG_BYTES]
    if len(raw) <= _TAG_BYTES or not hmac.compare_digest(tag, expected):
        raise invalid("it was not issued by this server or was changed")
    try:
        return _parse(orjson.loads(payload))
    except (orjson.JSONDecodeError, TypeError, ValueError, KeyError, IndexError):
        raise invalid("its content is malformed") from None


def _parse(data: Any) -> Continuation:
    version, scope, filters, page_size, after, *ordering = data
    if version != VERSION:
        raise ValueError("unknown version")
    statuses, kinds, started_after, started_before, ended_after, ended_before, *more = filters
    # Tokens issued before the cancelRequested and idPrefix filters existed carry six or
    # seven filters, and before orders and stalled, no more than five parts.
    cancel_requested, id_prefix = (*more, None, None)[:2]
    if len(more) > 2 or not (cancel_requested is None or isinstance(cancel_requested, bool)):
        raise ValueError("unknown filters")
    if not (id_prefix is None or isinstance(id_prefix, str)):
        raise ValueError("unknown filters")
    order, stalled = NEWEST_FIRST, False
    if ordering:
        (field, descending), stalled = ordering
        if not isinstance(descending, bool) or not isinstance(stalled, bool):
            raise ValueError("unknown order")
        order = Order(str(field), descending)
    return Continuation(
        scope=(str(scope[0]), str(scope[1]), str(scope[2])),
        filter=OperationFilter(
            statuses=frozenset(map(str, statuses)),
            kinds=frozenset(map(str, kinds)),
            started_after=started_after,
            started_before=started_before,
            ended_after=ended_after,
            ended_before=ended_before,
            cancel_requested=cancel_requested,
            id_prefix=id_prefix,
        ),
        page_size=int(page_size),
        after=Position(str(after[0]), str(after[1]), str(after[2])),
        order=order,
        stalled=stalled,
    )

"""Server-Sent Events: an operation's changes, or every change in a scope, as they commit.

- ``GET .../operationsStatus/{id}`` with ``Accept: text/event-stream``: the operation's
  events, from its first (or after ``Last-Event-ID``), ending after its terminal one;
- ``GET .../locations/{loc}/operationsStatus`` and ``GET .../providers/{ns}/operationsStatus``
  with ``Accept: text/event-stream``: every change in that collection, optionally only of
  some statuses (``status``, as the list takes it);
- ``GET /subscriptions/{sub}/operationsStatusEvents``: every change in the subscription,
  optionally of one ``provider``, one ``location``, some ``status`` values.

Every event is ``id: <position>``, ``event: operation.<type>`` and ``data: <JSON>``, the
JSON being the document webhooks send (:meth:`opstatus.events.Event.body`). A client that
reconnects with ``Last-Event-ID`` gets every event after it in scope from the event log
first, then the live ones; a scope stream opened without one starts with an ``id`` alone,
the position it starts after, so that even a reconnect before any event misses nothing.

Reads are authorized as the status read and the list are; each stream takes a slot of
``--max-streams`` (429 beyond the caller's share, 503 beyond the server's). Live events
come from the process's one :class:`~opstatus.event_tail.EventTail`; an idle stream gets a
comment every ``--stream-heartbeat``; a stream too far behind, or open when the server
shuts down, ends (after a comment saying why) and its client resumes with ``Last-Event-ID``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..auth import authorize
from ..errors import InvalidInput
from ..event_tail import EventTail, Frame, Subscriber
from ..events import EventScope, Position, parse_position
from ..models import normalize_location, normalize_status, validate_subscription_id
from .arm import resolve, resolve_scope
from .context import AppContext
from .errors import NotAcceptable, ServerBusy, TooManyRequests
from .guard import principal_of
from .limits import WaiterSlots
from .sse import MEDIA_TYPE, encode

#: Events read from the log per query while a stream catches up.
PAGE = 500
log = logging.getLogger("opstatus.http")

#: The scope's state key under which a stream leaves the rest of its answer to the
#: outermost app (see :func:`run_handoff`).
HANDOFF = "opstatus.stream_handoff"
HEARTBEAT = b": heartbeat\n\n"
#: Seconds an operation's stream waits for a terminal event the log did not have yet.
ENDED_GRACE = 5.0
BEHIND = b": too far behind; reconnect with Last-Event-ID\n\n"
SHUTDOWN = b": server shutting down; reconnect with Last-Event-ID\n\n"
SUBSCRIPTION_PARAMS = frozenset({"api-version", "provider", "location", "status"})
SCOPE_PARAMS = frozenset({"api-version", "status"})
JSON_RANGES = frozenset({"*/*", "application/json", "application/*"})


def wants_stream(request: Request) -> bool:
    """The request asks for ``text/event-stream`` and names no range JSON answers."""
    ranges = {
        part.split(";", 1)[0].strip().lower()
        for part in request.headers.get("accept", "").split(",")
    }
    # A JSON-compatible range makes it a JSON read, as the fast lanes see it (fast_reads.py).
    return MEDIA_TYPE in ranges and not ranges & JSON_RANGES


def _last_event_id(request: Request) -> Position | None:
    value = request.headers.get("last-event-id")
    return None if value is None or not value.strip() else parse_position(value)


def _known_params(request: Request, known: frozenset[str]) -> dict[str, str]:
    """The query's parameters by lower-cased name (the first of each); 400 for another."""
    params: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        key = name.lower()
        if key not in known:
            shown = "".join(c if c.isprintable() else "?" for c in name[:80])
            names = ", ".join(sorted(known - {"api-version"}))
            raise InvalidInput(
                f"Unknown query parameter '{shown}' for an event stream. Known parameters "
                f"are: api-version, {names}.",
                target=shown,
            )
        params.setdefault(key, value)
    return params


def _statuses(request: Request) -> frozenset[str] | None:
    values = [
        item.strip()
        for name, value in request.query_params.multi_items()
        if name.lower() == "status"
        for item in value.split(",")
        if item.strip()
    ]
    return frozenset(normalize_status(v) for v in values) if values else None


async def operation_events(request: Request) -> Response:
    """One operation's events until it is terminal."""
    target = resolve(request, "read", "read")
    ctx: AppContext = request.app.state.ctx
    after = _last_event_id(request)
    op = await ctx.service.get(target.ref)  # 404 (or expired) before anything streams
    ref = target.ref
    scope = EventScope(
        subscription_id=ref.subscription_id,
        namespace=ref.namespace,
        location=ref.location,
        operation_key=ref.key,
    )
    start = after or Position(0, 0)
    return await _stream(request, ctx, scope, start, until_terminal=True, ended=op.terminal)


async def scope_events(request: Request) -> Response:
    """Every change in a list's scope (a provider's operations, maybe in one location)."""
    scope = resolve_scope(request, "read", "read", "operationsStatus")
    ctx: AppContext = request.app.state.ctx
    _known_params(request, SCOPE_PARAMS)
    after = _last_event_id(request)
    events_scope = EventScope(
        subscription_id=scope.subscription_id,
        namespace=scope.provider.namespace,
        location=scope.location,
        statuses=_statuses(request),
    )
    return await _stream(request, ctx, events_scope, after)


async def subscription_events(request: Request) -> Response:
    """Every change in a subscription, maybe of one provider or location, some statuses."""
    ctx: AppContext = request.app.state.ctx
    principal = principal_of(request)
    sub = validate_subscription_id(request.path_params["subscription_id"])
    authorize(
        principal,
        "read",
        sub,
        f"/subscriptions/{sub}/operationsStatusEvents",
        "Opstatus/operationsStatusEvents/read",
    )
    params = _known_params(request, SUBSCRIPTION_PARAMS)
    namespace = params.get("provider") or None
    if namespace is not None:
        namespace = ctx.providers.lookup(namespace).namespace
    location = params.get("location") or None
    scope = EventScope(
        subscription_id=sub,
        namespace=namespace,
        location=normalize_location(location) if location is not None else None,
        statuses=_statuses(request),
    )
    after = _last_event_id(request)
    if not wants_stream(request):
        raise NotAcceptable("This resource is an event stream: send 'Accept: text/event-stream'.")
    return await _stream(request, ctx, scope, after)


async def _stream(
    request: Request,
    ctx: AppContext,
    scope: EventScope,
    after: Position | None,
    until_terminal: bool = False,
    ended: bool = False,
) -> Response:
    if request.method == "HEAD":  # what a GET's answer would start with, and no stream
        return Response(media_type=MEDIA_TYPE, headers={"Cache-Control": "no-store"})
    slots = ctx.streams
    key = principal_of(request).key
    _take_slot(slots, key)
    try:
        await ctx.tail.start()
    except BaseException:
        slots.release(key)
        raise
    return EventStream(ctx, scope, after, key, until_terminal, ended)


def _take_slot(slots: WaiterSlots, principal_key: str) -> None:
    if slots.acquire(principal_key):
        return
    if slots.waiting >= slots.limit:
        raise ServerBusy(
            f"The server has {slots.limit} event streams open, its limit. Retry later."
        )
    raise TooManyRequests(
        f"The caller has {slots.per_principal} event streams open, its limit; close one "
        "before opening another."
    )


class EventStream(Response):
    """The streaming answer (its own ASGI call, so that a stream costs its coroutine, its
    subscriber, and the task that notices its client leaving). Holds its slot until it ends.
    """

    def __init__(
        self,
        ctx: AppContext,
        scope: EventScope,
        after: Position | None,
        principal_key: str,
        until_terminal: bool,
        ended: bool,
    ) -> None:
        # Response's own fields are not used: __call__ writes the answer itself.
        self.ctx = ctx
        self.scope = scope
        self.after = after
        self.principal_key = principal_key
        self.until_terminal = until_terminal
        #: The operation was terminal before the log was read: the stream ends after it.
        self.ended = ended

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tail: EventTail = self.ctx.tail
        subscriber = tail.subscribe(self.scope, self.ctx.settings.stream_queue)
        handed_off = False
        try:
            start = tail.position if self.after is None else self.after
            assert start is not None
            # The first page before the answer starts: a store that fails answers 503.
            page = await self._page(start) if self.after is not None else []
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream; charset=utf-8"),
                        (b"cache-control", b"no-store"),
                        (b"x-accel-buffering", b"no"),
                    ],
                }
            )
            state = scope.get("state") or {}
            rest = functools.partial(self._rest, subscriber, start, page)
            if HANDOFF in state:
                state[HANDOFF] = rest  # the outermost app runs it (see run_handoff)
                handed_off = True
            else:
                await rest(receive, send)
        finally:
            if not handed_off:
                self._end(subscriber)

    async def _rest(
        self,
        subscriber: Subscriber,
        start: Position,
        page: list[Frame],
        receive: Receive,
        send: Send,
    ) -> None:
        """Everything after the head: the catch-up and the live events, until the end."""
        watcher = asyncio.ensure_future(_client_leaves(receive, subscriber))
        try:
            await self._serve(send, subscriber, start, page)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except Exception:  # noqa: BLE001 - the head is sent: the stream can only end
            log.exception("event stream failed")
        finally:
            watcher.cancel()
            self._end(subscriber)

    def _end(self, subscriber: Subscriber) -> None:
        self.ctx.tail.unsubscribe(subscriber)
        self.ctx.streams.release(self.principal_key)

    async def _page(self, after: Position) -> list[Frame]:
        return [encode(e) for e in await self.ctx.store.events(after, PAGE, self.scope)]

    async def _serve(
        self, send: Send, subscriber: Subscriber, last: Position, page: list[Frame]
    ) -> None:
        if self.after is None and not self.until_terminal:
            await _body(send, b"id: %s\n\n" % str(last).encode())
        caught_up = await self._catch_up(send, subscriber, last, page)
        if caught_up is None:
            return
        # An operation that was terminal before the log was read, and whose terminal event
        # the read did not return: on PostgreSQL it may not be readable yet (an older
        # transaction still open); wait for it a little, not forever (an operation older
        # than the event log has none).
        until = asyncio.get_running_loop().time() + ENDED_GRACE if self.ended else None
        await self._live(send, subscriber, caught_up, until)

    async def _catch_up(
        self, send: Send, subscriber: Subscriber, last: Position, page: list[Frame]
    ) -> Position | None:
        """Send the log's events after ``last``, page by page (live events meanwhile wait in
        the subscriber's queue); the last position sent, or None when the stream is over."""
        while page:
            last = page[-1].position
            done = self.until_terminal and any(f.terminal for f in page)
            await _body(send, b"".join(f.data for f in page))
            if done or subscriber.closed:
                return None
            page = await self._page(last) if len(page) == PAGE else []
        return last

    async def _live(
        self, send: Send, subscriber: Subscriber, last: Position, until: float | None
    ) -> None:
        """Send what the tail hands the subscriber, a heartbeat when idle, until the stream
        is over (or the loop's time ``until``)."""
        heartbeat = self.ctx.settings.stream_heartbeat
        loop = asyncio.get_running_loop()
        while True:
            if subscriber.queue:
                frames = [f for f in subscriber.queue if f.position > last]
                subscriber.queue.clear()
                if frames:
                    if self.until_terminal and (end := _terminal_index(frames)) is not None:
                        await _body(send, b"".join(f.data for f in frames[: end + 1]))
                        return
                    last = frames[-1].position
                    await _body(send, b"".join(f.data for f in frames))
                continue
            if subscriber.overflowed or subscriber.closed:
                if subscriber.overflowed:
                    await _body(send, BEHIND)
                elif self.ctx.store.notifier.closed:
                    await _body(send, SHUTDOWN)
                return
            timeout = heartbeat if until is None else min(heartbeat, until - loop.time())
            if timeout <= 0:
                return
            if not await subscriber.wait(timeout) and (until is None or loop.time() < until):
                await _body(send, HEARTBEAT)


def _terminal_index(frames: list[Frame]) -> int | None:
    return next((n for n, frame in enumerate(frames) if frame.terminal), None)


async def _body(send: Send, data: bytes) -> None:
    # uvicorn's send waits while the client is not reading (its write buffer is full), and
    # the connection's timer closes it after --body-timeout of that: nothing piles up here.
    await send({"type": "http.response.body", "body": data, "more_body": True})


async def _client_leaves(receive: Receive, subscriber: Subscriber) -> None:
    """Close the subscriber when the client disconnects (the app is told on ``receive``)."""
    with contextlib.suppress(Exception):
        while (await receive())["type"] != "http.disconnect":
            pass
    subscriber.close()


Rest = Callable[[Receive, Send], Awaitable[None]]


async def run_handoff(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Run ``app``; when it answered with a stream, run the stream's rest after it returns.

    A stream's head goes out through every middleware (headers, metrics, audit), but the
    rest of a stream that lasts hours needs none of them: handed off, it waits in the
    outermost app alone, holding one coroutine rather than the whole stack's (an idle
    stream's memory is mostly those frames)."""
    state: dict[str, Any] = scope.setdefault("state", {})
    state[HANDOFF] = None
    await app(scope, receive, send)
    rest: Rest | None = state.pop(HANDOFF, None)
    if rest is not None:
        await rest(receive, send)

"""One reader of the event log per process, fanning new events out to live streams.

A Server-Sent Events stream (``http/streams.py``) must hear of every event in its scope as
soon as it commits. A query per stream per change would cost the store as much as every
stream polling; instead one :class:`EventTail` per process reads the log after its position
whenever the store's notifier says something changed (and on the notifier's poll timer,
where pushes cannot be trusted), and hands each event to the streams whose scope matches.

A stream is a :class:`Subscriber`: a bounded queue of encoded frames and an event that wakes
its response. Nothing else runs per stream, so ten thousand streams cost their queues and
their responses. A stream whose queue is full is marked ``overflowed``: it is too far
behind to be fed live, and its response ends so that the client resumes from the event log
with ``Last-Event-ID``. When the notifier closes (the server is shutting down) every
subscriber is closed, and its response ends.

On PostgreSQL an event of a transaction that committed while an older one is still open is
not readable yet (``stores/postgresql_events.py``); after a wake-up the tail therefore reads
again a few times within a second, and then every second while any stream listens, rather
than leaving such an event to the next change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import NamedTuple

from .errors import StoreError
from .events import Event, EventScope, Position
from .stores.base import Store

log = logging.getLogger("opstatus.events")

#: Events read from the log in one query.
BATCH = 500
#: Seconds between the re-reads after a wake-up or a read that found events (see the
#: docstring); after them, every POLL seconds while any stream listens.
RETRIES = (0.005, 0.02, 0.05, 0.1, 0.25, 0.5)
POLL = 1.0
#: Seconds before reading again after the store failed.
FAILURE_DELAY = 1.0

Key = tuple[str, str]


class Frame(NamedTuple):
    """An event as a stream sends it, encoded once for every stream that wants it."""

    position: Position
    data: bytes
    #: The operation changes no more after it (an operation's stream ends there).
    terminal: bool


class Subscriber:
    """One stream's place in the tail: what it wants and what it has yet to send."""

    __slots__ = ("scope", "capacity", "queue", "closed", "overflowed", "_waiter")

    def __init__(self, scope: EventScope, capacity: int) -> None:
        self.scope = scope
        self.capacity = capacity
        #: Taken whole by the stream, so a list: an empty deque takes ten times its memory.
        self.queue: list[Frame] = []
        #: The stream must end: the server is shutting down, or its client left.
        self.closed = False
        #: Frames were dropped: the stream must end and its client resume from the log.
        self.overflowed = False
        #: What :meth:`wait` waits on, made only while it waits (an asyncio.Event per
        #: stream would cost more than the rest of the subscriber).
        self._waiter: asyncio.Future[None] | None = None

    @property
    def pending(self) -> bool:
        """There is something to do: frames to send, or the stream must end."""
        return bool(self.queue) or self.closed or self.overflowed

    async def wait(self, timeout: float) -> bool:
        """Until something is :attr:`pending` or ``timeout`` seconds pass; whether it is."""
        if not self.pending:
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            timer = loop.call_later(timeout, _release, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        return self.pending

    def offer(self, frame: Frame) -> None:
        if self.overflowed or self.closed:
            return
        if len(self.queue) >= self.capacity:
            self.overflowed = True
        else:
            self.queue.append(frame)
        if self._waiter is not None:
            _release(self._waiter)

    def close(self) -> None:
        self.closed = True
        if self._waiter is not None:
            _release(self._waiter)


def _release(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class EventTail:
    """The process's reader of the event log (see the module docstring). Started by the
    first stream, stopped by :meth:`stop` (the app's lifespan) or the notifier's close."""

    def __init__(self, store: Store, encode: Callable[[Event], Frame]) -> None:
        self.store = store
        self.encode = encode
        #: The newest event handed out; events after it reach every subscriber registered now.
        self.position: Position | None = None
        self._by_operation: dict[Key, set[Subscriber]] = {}
        self._by_subscription: dict[str | None, set[Subscriber]] = {}
        self._task: asyncio.Task[None] | None = None
        self._starting: asyncio.Lock | None = None

    @property
    def subscribers(self) -> int:
        return sum(len(s) for s in self._by_operation.values()) + sum(
            len(s) for s in self._by_subscription.values()
        )

    async def start(self) -> None:
        """Read the log's newest position and start reading after it (once)."""
        if self._task is not None:
            return
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._task is None:
                self.position = await self.store.last_position()
                self._task = asyncio.create_task(self._run(), name="opstatus-event-tail")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._close_all()

    def subscribe(self, scope: EventScope, capacity: int) -> Subscriber:
        """A subscriber that gets every event after :attr:`position` in ``scope``; call
        :meth:`unsubscribe` when its stream ends. Closed at once when the server stops."""
        subscriber = Subscriber(scope, capacity)
        if scope.operation_key is not None and scope.subscription_id is not None:
            key: Key = (scope.subscription_id, scope.operation_key)
            self._by_operation.setdefault(key, set()).add(subscriber)
        else:
            self._by_subscription.setdefault(scope.subscription_id, set()).add(subscriber)
        if self.store.notifier.closed or self._task is None:
            subscriber.close()
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        scope = subscriber.scope
        if scope.operation_key is not None and scope.subscription_id is not None:
            index: dict[Key, set[Subscriber]] | dict[str | None, set[Subscriber]]
            key: Key | str | None = (scope.subscription_id, scope.operation_key)
            index = self._by_operation
        else:
            key, index = scope.subscription_id, self._by_subscription
        found = index.get(key)  # type: ignore[arg-type]
        if found is not None:
            found.discard(subscriber)
            if not found:
                del index[key]  # type: ignore[arg-type]

    async def _run(self) -> None:
        notifier = self.store.notifier
        with notifier.watch_all() as changed:
            retries = 0
            while not notifier.closed:
                changed.clear()
                try:
                    found = await self._drain()
                except StoreError as exc:
                    log.warning("event streams: reading the event log failed: %s", exc.message)
                    await asyncio.sleep(FAILURE_DELAY)
                    continue
                # Woken, or just found events: more may become readable soon (see the
                # module docstring), so look again on a short timer before the poll's.
                if found:
                    retries = 0
                delay = RETRIES[retries] if retries < len(RETRIES) else self._poll()
                retries += 1
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await changed.wait()
                    retries = 0
        self._close_all()

    def _poll(self) -> float | None:
        """How long to wait for a wake-up before reading anyway: the notifier's poll
        interval, and at most :data:`POLL` while streams listen (on PostgreSQL an event
        that was not readable when its NOTIFY came is found by the next read, and no
        further NOTIFY may come)."""
        interval = self.store.notifier.poll_interval
        if self._by_operation or self._by_subscription:
            return POLL if interval is None else min(interval, POLL)
        return interval

    async def _drain(self) -> bool:
        """Hand out every readable event after the position; whether there was any."""
        found = False
        while True:
            assert self.position is not None
            events = await self.store.events(self.position, BATCH)
            for event in events:
                self.position = event.position
                self._fan_out(event)
            found = found or bool(events)
            if len(events) < BATCH:
                return found

    def _fan_out(self, event: Event) -> None:
        frame: Frame | None = None
        for group in (
            self._by_operation.get((event.subscription_id, event.operation_key)),
            self._by_subscription.get(event.subscription_id),
        ):
            if not group:
                continue
            for subscriber in tuple(group):
                if subscriber.scope.matches(event):
                    if frame is None:
                        frame = self.encode(event)
                    subscriber.offer(frame)

    def _close_all(self) -> None:
        for index in (self._by_operation, self._by_subscription):
            for group in list(index.values()):
                for subscriber in tuple(group):
                    subscriber.close()

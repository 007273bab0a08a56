"""Wake-ups for waiting readers: read now, wait later.

A GET with ``Prefer: wait=N`` reads the operation and, while it runs unchanged, waits on the
store's notifier for a hint that it may have changed, then reads it again. The notifier only
ever says "look again"; the store stays the one source of truth, so a lost or spurious wake-up
costs one read at most. Where pushes cannot be trusted (another process writing the same
SQLite file; PostgreSQL's listening connection being down), ``poll_interval`` makes waiters
look again on a timer: polling always works, a push only makes it early.

Every store has one. Memory and SQLite call :meth:`Notifier.notify` after their own writes;
the PostgreSQL store's listener calls it for every NOTIFY from any instance, its own included.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Iterator

Key = tuple[str, str]


class Notifier:
    """asyncio events keyed by operation; cheap when nobody waits (one dict lookup)."""

    def __init__(self, poll_interval: float | None = None) -> None:
        #: Seconds after which a waiter reads again even without a wake-up; None: never.
        self.poll_interval = poll_interval
        #: Set by :meth:`close`: waiters answer at once (the server is shutting down).
        self.closed = False
        self._events: dict[Key, set[asyncio.Event]] = {}
        #: Set on every change of any operation (the event log's readers, see watch_all).
        self._all: set[asyncio.Event] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    @contextlib.contextmanager
    def watch(self, subscription_id: str, operation_key: str) -> Iterator[asyncio.Event]:
        """An event that is set whenever the operation may have changed.

        Enter it *before* reading, so that a change between the read and the wait still wakes.
        """
        self._loop = asyncio.get_running_loop()
        key = (subscription_id, operation_key)
        event = asyncio.Event()
        events = self._events.setdefault(key, set())
        events.add(event)
        if self.closed:
            event.set()
        try:
            yield event
        finally:
            events.discard(event)
            if not events and self._events.get(key) is events:
                del self._events[key]

    @contextlib.contextmanager
    def watch_all(self) -> Iterator[asyncio.Event]:
        """An event that is set whenever any operation may have changed (or on close)."""
        self._loop = asyncio.get_running_loop()
        event = asyncio.Event()
        self._all.add(event)
        if self.closed:
            event.set()
        try:
            yield event
        finally:
            self._all.discard(event)

    def notify(self, subscription_id: str, operation_key: str) -> None:
        """The operation changed (or may have): wake whoever watches it."""
        events = self._events.get((subscription_id, operation_key))
        if events:
            self._wake(tuple(events))
        if self._all:
            self._wake(tuple(self._all))

    def notify_all(self) -> None:
        """Anything may have changed (for example, pushes were lost): every waiter reads again."""
        self._wake([event for events in list(self._events.values()) for event in tuple(events)])
        self._wake(tuple(self._all))

    def close(self) -> None:
        self.closed = True
        self.notify_all()

    def _wake(self, events: Iterable[asyncio.Event]) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            same_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            same_loop = False
        for event in events:
            if same_loop:
                event.set()
            elif not loop.is_closed():  # a writer on another thread (tests share a memory
                loop.call_soon_threadsafe(event.set)  # store between threads)

"""Operation updates sent from side threads, so that a worker's tasks never wait on opstatus.

A task's state changes (started, progress, the outcome) are handed to :meth:`Sender.submit`,
which only merges them into a table of pending updates, one entry per operation, and returns.
Sender threads take entries in order and PATCH them; whatever arrives for an operation while
its update is in flight is merged into the next one, so a burst of progress costs one request
and a short task's "started" and outcome travel together (``linger``).

Nothing terminal is lost while opstatus is briefly unreachable: a failed send goes back into
the table (newer fields win, a terminal status stays), the threads back off (up to
``max_backoff``) and try again, for up to ``give_up_after`` seconds, after which the update
is dropped with an ERROR log line naming the operation. The table is bounded: past
``max_pending`` operations a progress update is dropped, and an outcome waits for room up to
``block_for`` seconds before it is dropped with an ERROR log line.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..client import Client, ClientError, OperationStatus

log = logging.getLogger("opstatus.celery")

TERMINAL = frozenset({"Succeeded", "Failed", "Canceled"})
#: What a publisher's deferred create carries; nothing of the task's own progress.
CREATE_ONLY = frozenset({"status", "percent_complete", "kind", "lease_seconds", "cancelable"})


@dataclass
class Target:
    """Where an operation lives, so that it can be created when an update finds none."""

    subscription_id: str
    location: str
    operation_id: str
    kind: str | None = None


@dataclass
class Pending:
    """One operation's merged, not yet sent update (client field names, e.g. ``end_time``)."""

    url: str
    target: Target
    fields: dict[str, Any]
    #: Create the operation (PUT) instead of updating it.
    create: bool = False
    due: float = 0.0
    first_at: float = field(default_factory=time.monotonic)
    last_error: str = ""

    @property
    def terminal(self) -> bool:
        return self.fields.get("status") in TERMINAL

    def merge(self, newer: Pending) -> None:
        """Fold ``newer`` in: its fields win, except that nothing undoes an outcome."""
        if self.terminal and not newer.terminal:
            return
        self.fields.update(newer.fields)
        self.create = self.create and newer.create
        self.due = min(self.due, newer.due)


@dataclass
class Stats:
    sent: int = 0
    failed_attempts: int = 0
    dropped: int = 0
    gave_up: int = 0


class Sender:
    """Sends operation updates from ``threads`` daemon threads (see the module's docstring)."""

    def __init__(
        self,
        client_factory: Callable[[], Client],
        *,
        threads: int = 2,
        linger: float = 0.05,
        max_pending: int = 10_000,
        give_up_after: float = 600.0,
        block_for: float = 5.0,
        max_backoff: float = 5.0,
    ) -> None:
        self._client_factory = client_factory
        self.linger = linger
        self.max_pending = max_pending
        self.give_up_after = give_up_after
        self.block_for = block_for
        self.max_backoff = max_backoff
        self.stats = Stats()
        self._cond = threading.Condition()
        self._pending: dict[str, Pending] = {}
        self._ready: deque[str] = deque()
        self._delayed: list[tuple[float, str]] = []
        self._in_flight: set[str] = set()
        self._paused_until = 0.0
        self._backoff = 0.0
        self._closed = False
        #: The last status opstatus answered for an operation that someone asked to cancel.
        self._cancel_requested: dict[str, OperationStatus] = {}
        self._held: dict[str, tuple[Target, float]] = {}  # url -> what, how often
        self._threads = [
            threading.Thread(target=self._run, name=f"opstatus-sender-{n}", daemon=True)
            for n in range(threads)
        ]
        self._threads.append(
            threading.Thread(target=self._beat, name="opstatus-heartbeat", daemon=True)
        )
        for thread in self._threads:
            thread.start()

    # --- what tasks call (never blocks on the network) ----------------------------------------

    def submit(
        self,
        url: str,
        target: Target,
        *,
        create: bool = False,
        lingering: bool = False,
        **fields: Any,
    ) -> None:
        """Queue ``fields`` for the operation at ``url``; ``lingering`` waits ``linger``
        seconds for more (a short task's outcome) before sending."""
        now = time.monotonic()
        item = Pending(url, target, fields, create, now + (self.linger if lingering else 0.0))
        with self._cond:
            current = self._pending.get(url)
            if current is not None:
                current.merge(item)
                if current.due <= now and url not in self._in_flight:
                    self._ready.append(url)  # a stale duplicate is skipped when taken
                self._cond.notify()
                return
            if not self._room_for(item):
                return
            self._pending[url] = item
            if url in self._in_flight:
                pass  # queued again when the update in flight is done
            elif item.due <= now:
                self._ready.append(url)
            else:
                heapq.heappush(self._delayed, (item.due, url))
            self._cond.notify()

    def _room_for(self, item: Pending) -> bool:
        """Whether the table may take another operation; called holding the lock."""
        if len(self._pending) < self.max_pending:
            return True
        if not item.terminal:
            self.stats.dropped += 1
            log.warning(
                "opstatus: %d updates already waiting; progress of %s dropped",
                len(self._pending),
                item.target.operation_id,
            )
            return False
        deadline = time.monotonic() + self.block_for
        while len(self._pending) >= self.max_pending:
            left = deadline - time.monotonic()
            if left <= 0:
                self.stats.dropped += 1
                log.error(
                    "opstatus: %d updates already waiting; gave up on recording %s of "
                    "operation %s (%s)",
                    len(self._pending),
                    item.fields.get("status"),
                    item.target.operation_id,
                    item.url,
                )
                return False
            self._cond.wait(left)
        return True

    def hold(self, url: str, target: Target, every: float) -> None:
        """Renew the lease of the operation at ``url`` every ``every`` seconds until released."""
        with self._cond:
            self._held[url] = (target, every)

    def release(self, url: str) -> None:
        with self._cond:
            self._held.pop(url, None)
            self._cancel_requested.pop(url, None)

    def cancel_requested(self, url: str) -> OperationStatus | None:
        """The status that said someone asked to cancel the operation, if one did."""
        return self._cancel_requested.get(url)

    def flush(self, timeout: float) -> bool:
        """Wait until nothing is pending or in flight; False if ``timeout`` came first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            for item in self._pending.values():  # nothing lingers at shutdown
                item.due = 0.0
            self._ready.extend(u for u in self._pending if u not in self._in_flight)
            self._cond.notify_all()
            while self._pending or self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def close(self, timeout: float = 10.0) -> None:
        if not self.flush(timeout):
            with self._cond:
                waiting = [p.target.operation_id for p in self._pending.values()]
            log.error(
                "opstatus: %d operation updates not sent at shutdown: %s",
                len(waiting),
                ", ".join(waiting[:20]),
            )
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._pending) + len(self._in_flight)

    # --- the sender threads ---------------------------------------------------------------------

    def _take(self) -> Pending | None:
        """The next update due, marked in flight; None once closed. Holds the lock."""
        while not self._closed:
            now = time.monotonic()
            while self._delayed and self._delayed[0][0] <= now:
                _, url = heapq.heappop(self._delayed)
                self._ready.append(url)
            wait = 1.0 if not self._delayed else self._delayed[0][0] - now
            if self._paused_until > now:
                self._cond.wait(self._paused_until - now)
                continue
            while self._ready:
                url = self._ready.popleft()
                item = self._pending.get(url)
                if item is None or url in self._in_flight:
                    continue
                if item.due > now:
                    heapq.heappush(self._delayed, (item.due, url))
                    continue
                del self._pending[url]
                self._in_flight.add(url)
                self._cond.notify_all()  # room in the table
                return item
            self._cond.wait(max(wait, 0.001))
        return None

    def _run(self) -> None:
        client = self._client_factory()
        try:
            while True:
                with self._cond:
                    item = self._take()
                if item is None:
                    return
                ok = self._send(client, item)
                with self._cond:
                    self._in_flight.discard(item.url)
                    if not ok:
                        self._put_back(item)
                    elif item.url in self._pending:
                        self._ready.append(item.url)
                    self._cond.notify_all()
        finally:
            client.close()

    def _put_back(self, item: Pending) -> None:
        """Re-queue a failed update ahead of newer ones; holds the lock."""
        newer = self._pending.pop(item.url, None)
        if newer is not None:
            item.merge(newer)
        if time.monotonic() - item.first_at > self.give_up_after:
            self.stats.gave_up += 1
            log.error(
                "opstatus: gave up on recording %s of operation %s after %.0f s: %s",
                item.fields.get("status") or "progress",
                item.target.operation_id,
                self.give_up_after,
                item.last_error,
            )
            return
        self._pending[item.url] = item
        self._ready.appendleft(item.url)

    def _send(self, client: Client, item: Pending) -> bool:
        """One attempt; True when the update is done with (sent, or pointless to retry)."""
        try:
            status = self._request(client, item)
        except (httpx.HTTPError, OSError) as exc:
            return self._failed(item, f"{type(exc).__name__}: {exc}")
        except ClientError as exc:
            if exc.status_code >= 500 or exc.status_code in (408, 429):
                return self._failed(item, str(exc), exc.retry_after)
            if _end_time_refused(item, exc):
                # The worker's clock behind the server's: an end before the start it stamped.
                log.warning(
                    "opstatus: the endTime of operation %s was refused (%s); it is recorded "
                    "with the server's time instead",
                    item.target.operation_id,
                    exc.message,
                )
                del item.fields["end_time"]
                return self._send(client, item)
            if exc.code == "OperationAlreadyTerminal":
                log.debug("opstatus: %s had already ended: %s", item.target.operation_id, exc)
                self.release(item.url)
            else:
                log.error(
                    "opstatus: update of operation %s refused: %s", item.target.operation_id, exc
                )
            return True
        with self._cond:
            self.stats.sent += 1
            self._backoff = 0.0
            if status.terminal:
                self._held.pop(item.url, None)
                self._cancel_requested.pop(item.url, None)
            elif status.cancel_requested:
                self._cancel_requested[item.url] = status
        return True

    def _request(self, client: Client, item: Pending) -> OperationStatus:
        """PATCH the update; where no operation exists yet (published while opstatus was
        unreachable, or by a process without tracking), PUT it as it stands now."""
        if not item.create:
            try:
                return client.update(item.url, **item.fields)
            except ClientError as exc:
                if exc.status_code != 404 or exc.code != "ResourceNotFound":
                    raise
        target = item.target
        fields = {k: v for k, v in item.fields.items() if k != "resetProgress"}
        fields.setdefault("status", "InProgress")
        if target.kind:
            fields.setdefault("kind", target.kind)
        try:
            return client.create(
                target.subscription_id, target.location, target.operation_id, **fields
            )
        except ClientError as exc:
            if exc.status_code != 409 or exc.code == "OperationAlreadyTerminal":
                raise
            if item.create and not item.fields.keys() - CREATE_ONLY:
                return client.get(item.url)  # a plain create met the one made meanwhile
            item.create = False  # created meanwhile by someone else: update it instead
            return client.update(item.url, **item.fields)

    def _failed(self, item: Pending, error: str, retry_after: float | None = None) -> bool:
        item.last_error = error
        with self._cond:
            self.stats.failed_attempts += 1
            self._backoff = min(self.max_backoff, max(0.05, self._backoff * 2))
            delay = self._backoff if retry_after is None else max(retry_after, 0.05)
            if self._paused_until < time.monotonic() + delay:
                self._paused_until = time.monotonic() + delay
                log.warning(
                    "opstatus unreachable (%s); %d updates wait, retrying in %.2f s",
                    error,
                    len(self._pending) + len(self._in_flight),
                    delay,
                )
        return False

    def _beat(self) -> None:
        """Renew the leases of held operations: an empty update, merged with anything queued."""
        last: dict[str, float] = {}
        while True:
            with self._cond:
                if self._closed:
                    return
                held = dict(self._held)
            now = time.monotonic()
            for url in list(last):
                if url not in held:
                    del last[url]
            for url, (target, every) in held.items():
                if url not in last:
                    last[url] = now
                elif now - last[url] >= every:
                    last[url] = now
                    self._heartbeat(url, target)
            shortest = min((every for _, every in held.values()), default=1.0)
            time.sleep(min(max(shortest / 4, 0.05), 1.0))

    def _heartbeat(self, url: str, target: Target) -> None:
        with self._cond:
            if url in self._pending or url in self._in_flight:
                return  # an update under way renews the lease anyway
            self._pending[url] = Pending(url, target, {})
            self._ready.append(url)
            self._cond.notify()


def _end_time_refused(item: Pending, exc: ClientError) -> bool:
    return exc.status_code == 400 and "end_time" in item.fields and "'endTime'" in exc.message

"""Prometheus metrics: what an operator graphs and alerts on.

Each app has its own registry (so that tests can build many apps in one process). Metrics:

- ``opstatus_http_requests_total{route, method, status}`` and
  ``opstatus_http_request_duration_seconds{route, method}``: labelled by route *template*,
  never the raw path, so that a fuzzer or a scanner cannot blow up the label space;
- ``opstatus_http_requests_in_flight``;
- ``opstatus_fast_reads_total{lane}``: status reads answered without the middleware stack,
  by the server's protocol (``protocol``) or before the middlewares in ASGI (``asgi``);
- ``opstatus_store_call_duration_seconds{call, outcome}``: every store call, timed;
- ``opstatus_store_errors_total{call}``: store calls that failed (503 to the client);
- ``opstatus_active_waiters``: requests held waiting for an operation to change
  (``Prefer: wait``), each in a waiter slot;
- ``opstatus_open_streams``: Server-Sent Events streams open, each in a stream slot;
- ``opstatus_operations{status}``: stored operations by status, counted in the background
  (:class:`OperationCounts`), so that a scrape costs the same however many are stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

from prometheus_client import CollectorRegistry, Counter, Gauge

from .errors import CorruptRecord, StoreError
from .models import Operation, OperationStatus
from .queries import OperationQuery
from .stores.base import Change, DeleteCheck, ImmediateReads, Key, Store
from .tallies import CounterTally, HistogramTally
from .webhooks import Callback

log = logging.getLogger("opstatus.metrics")

#: Seconds between counts of the stored operations (``opstatus_operations``) at least.
COUNTS_INTERVAL = 5.0
#: And after a count, at least this many times its duration: counting then takes at most a
#: tenth of a core however large the store (on SQLite, a count of a million operations
#: takes about half a second, of ten million about five).
COUNTS_PAUSE_FACTOR = 9.0
#: Seconds; the read path answers in well under a millisecond, a fsync'd write in a few.
LATENCY_BUCKETS = (
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # The three families every request touches are tallies (see tallies.py): no locks.
        self.requests = CounterTally(
            "opstatus_http_requests",
            "HTTP requests answered, by route template, method and status code.",
            ["route", "method", "status"],
        )
        self.latency = HistogramTally(
            "opstatus_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method.",
            ["route", "method"],
            LATENCY_BUCKETS,
        )
        self.store_latency = HistogramTally(
            "opstatus_store_call_duration_seconds",
            "Time spent in the store, by call and outcome (ok, error).",
            ["call", "outcome"],
            LATENCY_BUCKETS,
        )
        self.fast_reads = CounterTally(
            "opstatus_fast_reads",
            "Status reads answered without the middleware stack, by lane (protocol, asgi).",
            ["lane"],
        )
        for tally in (self.requests, self.latency, self.store_latency, self.fast_reads):
            r.register(tally)
        #: Requests being answered: through the app, and the protocol's status reads while
        #: their batch is read from a store whose reads wait (SQLite's are read at once).
        self.requests_in_flight = 0
        Gauge(
            "opstatus_http_requests_in_flight", "HTTP requests being answered.", registry=r
        ).set_function(lambda: self.requests_in_flight)
        self.store_errors = Counter(
            "opstatus_store_errors",
            "Store calls that failed with a store error (answered 503).",
            ["call"],
            registry=r,
        )
        self.waiters = Gauge(
            "opstatus_active_waiters",
            "Requests held waiting for an operation to change (Prefer: wait).",
            registry=r,
        )
        self.streams = Gauge(
            "opstatus_open_streams", "Server-Sent Events streams open.", registry=r
        )
        self.operations = Gauge(
            "opstatus_operations",
            f"Stored operations by status, counted at most every {COUNTS_INTERVAL:g} seconds.",
            ["status"],
            registry=r,
        )
        self.counts = OperationCounts(self.operations)
        self._method_label = {method: method for method in KNOWN_METHODS}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        method = self._method_label.get(method, "OTHER")
        self.requests.inc((route, method, str(status)))
        self.latency.observe((route, method), seconds)

    def count_waiters(self, waiting: Callable[[], int]) -> None:
        """``opstatus_active_waiters`` reads ``waiting()``: the waiter slots held, so that
        the gauge and the limit count the same thing."""
        self.waiters.set_function(waiting)

    def count_streams(self, open_streams: Callable[[], int]) -> None:
        """``opstatus_open_streams`` reads ``open_streams()``: the stream slots held."""
        self.streams.set_function(open_streams)


class OperationCounts:
    """``opstatus_operations``, counted in the background: a scrape never waits for it.

    Counting reads every stored operation (about half a second at a million on SQLite), so a
    scrape that counted would cost more the larger the store, and scrapers together would
    keep the store busy. A scrape starts a count when none is running, the last one began at
    least ``interval`` seconds ago and ended at least COUNTS_PAUSE_FACTOR times its duration
    ago; it shows the last count that finished. So there is at most one counting query per
    interval however many scrape, and counting never takes more than a tenth of the time.
    Nothing is counted while nobody scrapes; the first scrape shows no counts yet.
    """

    def __init__(self, gauge: Gauge, clock: Callable[[], float] = time.monotonic) -> None:
        self.gauge = gauge
        self.interval = COUNTS_INTERVAL
        self._clock = clock
        #: When the next count may start.
        self._due = -math.inf
        self._task: asyncio.Task[None] | None = None

    def scraped(self, store: Store) -> None:
        """A scrape is being answered: count ``store``'s operations if a count is due."""
        if self._task is not None and not self._task.done():
            return
        now = self._clock()
        if now < self._due:
            return
        self._due = now + self.interval
        self._task = asyncio.get_running_loop().create_task(self._count(store, now))

    async def _count(self, store: Store, started: float) -> None:
        try:
            counts = await store.counts(OperationQuery())  # every operation, per status
        except StoreError as exc:  # the last counts stay; a later scrape tries again
            log.warning("could not count operations: %s", exc.message)
            return
        except Exception:  # noqa: BLE001 - a background task: nobody else would see it
            log.exception("could not count operations")
            return
        finally:
            ended = self._clock()
            self._due = max(self._due, ended + (ended - started) * COUNTS_PAUSE_FACTOR)
        self.gauge.clear()
        for status, count in counts.items():
            self.gauge.labels(status).set(count)

    async def close(self) -> None:
        """Stop a count in progress (the app is stopping and its store closing)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def instrument(store: Store, metrics: Metrics) -> Store:
    """``store`` with every call timed; it keeps ``statuses_now`` if it has it (ImmediateReads)."""
    cls = InstrumentedStore if isinstance(store, ImmediateReads) else _InstrumentedAsyncStore
    return cast(Store, cls(store, metrics))


class InstrumentedStore:
    """A store wrapper that times every call and remembers whether writes are failing.

    Calls the wrapped store knows but this class does not list (a newer backend's ``list``,
    say) are passed through and timed too.
    """

    def __init__(self, store: Store, metrics: Metrics) -> None:
        self.inner = store
        self.metrics = metrics
        #: The message of the last failed write, cleared by the next write that succeeds.
        self.write_failure: str | None = None

    def _observe(self, call: str, outcome: str, seconds: float) -> None:
        self.metrics.store_latency.observe((call, outcome), seconds)

    async def _timed(self, call: str, write: bool, func: Callable[..., Any], *args: Any) -> Any:
        start = time.perf_counter()
        try:
            result = await func(*args)
        except StoreError as exc:
            self._observe(call, "error", time.perf_counter() - start)
            self.metrics.store_errors.labels(call).inc()
            if write and not isinstance(exc, CorruptRecord):
                self.write_failure = exc.message
            raise
        except BaseException:  # a domain error (not found, conflict): the store answered
            self._observe(call, "ok", time.perf_counter() - start)
            raise
        self._observe(call, "ok", time.perf_counter() - start)
        if write:
            self.write_failure = None
        return result

    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    async def ping(self) -> None:
        await self._timed("ping", False, self.inner.ping)

    async def create(
        self, operation: Operation, callback: Callback | None = None
    ) -> tuple[Operation, bool]:
        result: tuple[Operation, bool] = await self._timed(
            "create", True, self.inner.create, operation, callback
        )
        return result

    async def get(self, subscription_id: str, operation_key: str) -> Operation | None:
        result: Operation | None = await self._timed(
            "get", False, self.inner.get, subscription_id, operation_key
        )
        return result

    async def update(self, subscription_id: str, operation_key: str, change: Change) -> Operation:
        result: Operation = await self._timed(
            "update", True, self.inner.update, subscription_id, operation_key, change
        )
        return result

    async def delete(self, subscription_id: str, operation_key: str, check: DeleteCheck) -> bool:
        result: bool = await self._timed(
            "delete", True, self.inner.delete, subscription_id, operation_key, check
        )
        return result

    def statuses_now(self, keys: Sequence[Key]) -> dict[Key, OperationStatus]:
        """Present only on the wrapper of a store that has it: see :func:`instrument`.
        Timed as one ``statuses`` call, as a store that reads in batches has its timed."""
        inner: ImmediateReads = self.inner  # type: ignore[assignment]
        start = time.perf_counter()
        try:
            result = inner.statuses_now(keys)
        except StoreError:
            self._observe("statuses", "error", time.perf_counter() - start)
            self.metrics.store_errors.labels("statuses").inc()
            raise
        self._observe("statuses", "ok", time.perf_counter() - start)
        return result

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        async def timed(*args: Any, **kwargs: Any) -> Any:
            return await self._timed(name, False, lambda: attr(*args, **kwargs))

        return timed


class _InstrumentedAsyncStore(InstrumentedStore):
    """For a store without immediate reads (PostgreSQL): ``statuses_now`` is absent, as there."""

    statuses_now = None  # type: ignore[assignment]

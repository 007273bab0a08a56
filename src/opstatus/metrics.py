"""Prometheus metrics: what an operator graphs and alerts on.

Each app has its own registry (so that tests can build many apps in one process). Metrics:

- ``opstatus_http_requests_total{route, method, status}`` and
  ``opstatus_http_request_duration_seconds{route, method}``: labelled by route *template*,
  never the raw path, so that a fuzzer or a scanner cannot blow up the label space;
- ``opstatus_http_requests_in_flight``;
- ``opstatus_store_call_duration_seconds{call, outcome}``: every store call, timed;
- ``opstatus_store_errors_total{call}``: store calls that failed (503 to the client);
- ``opstatus_active_waiters``: requests waiting for an operation to change (long-polls);
- ``opstatus_operations{status}``: stored operations by status, counted at scrape time.
"""

from __future__ import annotations

import contextlib
import inspect
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

from prometheus_client import CollectorRegistry, Counter, Gauge

from .errors import CorruptRecord, StoreError
from .models import Operation, OperationStatus
from .queries import OperationQuery
from .stores.base import Change, DeleteCheck, ImmediateReads, Store
from .tallies import CounterTally, HistogramTally
from .webhooks import Callback

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
        for tally in (self.requests, self.latency, self.store_latency):
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
            "Requests waiting for an operation to change (long-polls).",
            registry=r,
        )
        self.operations = Gauge(
            "opstatus_operations",
            "Stored operations by status, counted when scraped.",
            ["status"],
            registry=r,
        )
        self._method_label = {method: method for method in KNOWN_METHODS}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        method = self._method_label.get(method, "OTHER")
        self.requests.inc((route, method, str(status)))
        self.latency.observe((route, method), seconds)

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        """Wrap a long-poll's wait in this so ``opstatus_active_waiters`` counts it."""
        self.waiters.inc()
        try:
            yield
        finally:
            self.waiters.dec()

    async def refresh_operations(self, store: Store) -> None:
        counts = await store.counts(OperationQuery())  # every operation, per status
        self.operations.clear()
        for status, count in counts.items():
            self.operations.labels(status).set(count)


def instrument(store: Store, metrics: Metrics) -> Store:
    """``store`` with every call timed; it keeps ``status_now`` if it has it (ImmediateReads)."""
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

    def status_now(self, subscription_id: str, operation_key: str) -> OperationStatus | None:
        """Present only on the wrapper of a store that has it: see :func:`instrument`.
        Timed as the ``get`` it stands for."""
        inner: ImmediateReads = self.inner  # type: ignore[assignment]
        start = time.perf_counter()
        try:
            result = inner.status_now(subscription_id, operation_key)
        except StoreError:
            self._observe("get", "error", time.perf_counter() - start)
            self.metrics.store_errors.labels("get").inc()
            raise
        self._observe("get", "ok", time.perf_counter() - start)
        return result

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        async def timed(*args: Any, **kwargs: Any) -> Any:
            return await self._timed(name, False, lambda: attr(*args, **kwargs))

        return timed


class _InstrumentedAsyncStore(InstrumentedStore):
    """For a store without immediate reads (PostgreSQL): ``status_now`` is absent, as there."""

    status_now = None  # type: ignore[assignment]

"""The synchronous client, its poller and its producer (the async twins are in _async.py)."""

from __future__ import annotations

import builtins
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx

from ._base import (
    DEFAULT_API_VERSION,
    DEFAULT_ENDPOINT,
    DEFAULT_NAMESPACE,
    Accepted,
    Backoff,
    BaseClient,
    CancelRequested,
    ClientError,
    OperationFailed,
    OperationStatus,
    RetryHook,
    TokenSource,
    WaitTimeout,
    accepted_response,
    action_url,
    failure_body,
    parse_status,
    raise_for_error,
    with_params,
)
from ._classic import CLASSIC_HEADERS, parse_classic_status
from ._events import EventParser, OperationEvent, Reconnects, is_operation_stream, stream_headers


class Client(BaseClient):
    """Synchronous client. ``transport`` lets tests and embedders pass an httpx transport;
    ``token`` may be a callable returning a current token (asked before each request)."""

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        token: TokenSource = None,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        api_version: str = DEFAULT_API_VERSION,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(endpoint, token, namespace=namespace, api_version=api_version)
        self._http = httpx.Client(
            headers=self.headers, timeout=timeout, transport=transport, auth=self.auth
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(
        self,
        method: str,
        url: str,
        json: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        response = self._http.request(method, url, json=json, headers=headers, **extra)
        raise_for_error(response)
        return response

    def get(self, url: str) -> OperationStatus:
        return parse_status(self._send("GET", url))

    def get_classic(self, url: str) -> OperationStatus:
        """Read a classic URL (see :meth:`classic_url`): the form Orchestrator reads."""
        return parse_classic_status(self._send("GET", url, headers=CLASSIC_HEADERS))

    def create(
        self, subscription_id: str, location: str, operation_id: str | None = None, **fields: Any
    ) -> OperationStatus:
        """PUT with the given id, or POST for a server-chosen one."""
        body = self.create_body(**fields)
        if operation_id:
            response = self._send(
                "PUT", self.status_url(subscription_id, location, operation_id), json=body
            )
        else:
            response = self._send("POST", self.status_url(subscription_id, location), json=body)
        return parse_status(response)

    def update(self, url: str, if_match: str | None = None, **fields: Any) -> OperationStatus:
        headers = {"If-Match": f'"{if_match}"'} if if_match else None
        return parse_status(
            self._send("PATCH", url, json=self.create_body(**fields), headers=headers)
        )

    def delete(self, url: str) -> bool:
        return self._send("DELETE", url).status_code == 200

    def cancel(self, url: str) -> OperationStatus:
        """Ask the producer to cancel; it may still finish. Returns the status at once."""
        return parse_status(self._send("POST", action_url(url, "cancel")))

    def list(
        self, subscription_id: str, location: str | None = None, **filters: Any
    ) -> Iterator[OperationStatus]:
        """Every operation matching ``filters`` (see ``filter_params``), newest first, page
        by page as the iteration goes; ``page_size`` sets the pages' size. The client's
        namespace's, or with ``every_provider=True`` (and no location) every provider's."""
        for page in self.list_pages(subscription_id, location, **filters):
            yield from page

    def list_pages(
        self,
        subscription_id: str,
        location: str | None = None,
        page_size: int | None = None,
        every_provider: bool = False,
        **filters: Any,
    ) -> Iterator[builtins.list[OperationStatus]]:
        params = self.filter_params(**filters)
        if page_size is not None:
            params["maxpagesize"] = str(page_size)
        url: str | None = self.list_url(subscription_id, location, every_provider)
        while url:
            items, url = self._page(self._send("GET", with_params(url, params)))
            params = {}  # a nextLink carries everything
            yield items

    def counts(
        self,
        subscription_id: str,
        location: str | None = None,
        every_provider: bool = False,
        **filters: Any,
    ) -> dict[str, int]:
        """How many operations there are per status: the client's namespace's (in
        ``location``, or every one), or with ``every_provider=True`` (no location, no
        filters) every provider's in the subscription."""
        params = self.filter_params(**filters)
        if every_provider and params:
            raise ValueError("the counts of every provider take no filters")
        url = self.counts_url(subscription_id, location, every_provider)
        response = self._send("GET", with_params(url, params))
        counts: dict[str, int] = response.json()["counts"]
        return counts

    def purge(self, subscription_id: str, location: str | None = None, **filters: Any) -> int:
        """Owners: remove the terminal operations matching ``filters`` now."""
        url = self.collection_url(subscription_id, location, "operationsStatus/purge")
        response = self._send("POST", with_params(url, self.filter_params(**filters)))
        purged: int = response.json()["purged"]
        return purged

    def events(
        self,
        url: str,
        last_event_id: str | None = None,
        *,
        max_reconnects: int | None = None,
        idle_timeout: float = 60.0,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> Iterator[OperationEvent]:
        """The events of an operation's status URL (until it is terminal), of a collection
        URL (:meth:`collection_url`: its provider, maybe one location) or of
        :meth:`events_url`, as they happen, parsed.

        A dropped connection, a stream the server ended (too far behind, shutting down), a
        429 or 503 are followed by a reconnect after ``backoff`` seconds (doubling up to
        ``max_backoff``; the server's Retry-After when it gave one) with ``Last-Event-ID``,
        so nothing is missed; at most ``max_reconnects`` in a row without an event (None:
        no limit), then the last error is raised. ``last_event_id`` resumes a stream read
        before. No event for ``idle_timeout`` seconds (the server sends heartbeats more
        often) counts as a dropped connection. Other errors raise :class:`ClientError`.
        """
        parser = EventParser(self.endpoint, self._query())
        parser.last_id = last_event_id
        reconnects = Reconnects(backoff, max_backoff, max_reconnects)
        operation = is_operation_stream(url)
        timeout = httpx.Timeout(10.0, read=idle_timeout)
        while True:
            seen = False
            try:
                headers = stream_headers(parser.last_id)
                with self._http.stream("GET", url, headers=headers, timeout=timeout) as response:
                    if response.status_code >= 300:
                        response.read()
                        raise_for_error(response)
                    for line in response.iter_lines():
                        event = parser.line(line)
                        if event is None:
                            continue
                        seen = True
                        reconnects.reset()
                        yield event
                        if operation and event.terminal:
                            return
            except (ClientError, httpx.TransportError) as exc:
                delay = reconnects.after_failure(exc)
            else:
                # Ended without its terminal event (the log no longer has it): read it.
                if operation and not seen and self.get(url).terminal:
                    return
                again = reconnects.after_end(parser.retry)
                if again is None:
                    return
                delay = again
            time.sleep(delay)

    def wait(
        self,
        url: str,
        timeout: float | None = None,
        on_update: Callable[[OperationStatus], None] | None = None,
        interval: float | None = None,
        classic: bool = False,
        on_retry: RetryHook | None = None,
    ) -> OperationStatus:
        """Read until terminal. Between reads: a long-poll (``Prefer: wait``) when the server
        offers it, else its Retry-After (or ``interval``, which turns long-polls off).

        No hidden default timeout: ``None`` waits as long as it takes. ``classic`` polls a
        classic URL (Orchestrator's "Wait for Completion"), which offers no long-poll.
        A read the service could not answer for now (unreachable, connection dropped, 502,
        503, 504, 429) is tried again with backoff until the timeout; then its error is raised.
        ``on_retry`` is told of each such try.
        """
        if classic:
            return self._wait_classic(url, timeout, on_update, interval, on_retry)
        deadline = None if timeout is None else time.monotonic() + timeout
        long_poll = None
        status: OperationStatus | None = None
        backoff = Backoff(on_retry)
        while True:
            previous, started = status, time.monotonic()
            try:
                if long_poll is None:
                    response = self._send("GET", url)
                else:
                    headers, seconds = long_poll
                    response = self._send("GET", url, headers=headers, timeout=seconds)
            except (ClientError, httpx.HTTPError) as exc:
                time.sleep(backoff.delay(exc, deadline, time.monotonic()))
                long_poll = self._retried(long_poll, status, deadline)
                continue
            backoff.reset()
            status = parse_status(response)
            if on_update is not None:
                on_update(status)
            if status.terminal:
                return status
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise WaitTimeout(status)
            held = long_poll is not None and self._held(
                response, previous, time.monotonic() - started
            )
            long_poll = None if interval is not None else self._wait_request(remaining, status.etag)
            if long_poll is not None and (held or previous is None):
                continue  # a long-poll next: at once after the first read or a held one
            delay = self._delay(status, interval)
            time.sleep(delay if remaining is None else min(delay, remaining))

    def _wait_classic(
        self,
        url: str,
        timeout: float | None,
        on_update: Callable[[OperationStatus], None] | None,
        interval: float | None,
        on_retry: RetryHook | None = None,
    ) -> OperationStatus:
        deadline = None if timeout is None else time.monotonic() + timeout
        backoff = Backoff(on_retry)
        while True:
            try:
                status = self.get_classic(url)
            except (ClientError, httpx.HTTPError) as exc:
                time.sleep(backoff.delay(exc, deadline, time.monotonic()))
                continue
            backoff.reset()
            if on_update is not None:
                on_update(status)
            if status.terminal:
                return status
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise WaitTimeout(status)
            delay = self._delay(status, interval)
            time.sleep(delay if remaining is None else min(delay, remaining))

    def poller(self, url: str) -> OperationPoller:
        """Track an operation from its status URL (or its Location URL) alone."""
        return OperationPoller(self, url)

    def producer(self, url: str, heartbeat: float | None = None) -> Producer:
        return Producer(self, url, heartbeat)

    def accept(
        self,
        method: str,
        subscription_id: str,
        location: str,
        *,
        resource: dict[str, Any] | None = None,
        operation_id: str | None = None,
        status_code: int | None = None,
        retry_after: int | None = None,
        public_url: str | None = None,
        **fields: Any,
    ) -> Accepted:
        """For a provider's own API: create the operation for a request that starts work and
        build ARM's 201/202 answer to it (see :func:`accepted_response`)."""
        operation = self.create(subscription_id, location, operation_id, **fields)
        return accepted_response(
            method,
            operation,
            body=resource,
            status_code=status_code,
            retry_after=retry_after,
            public_url=public_url,
        )


class OperationPoller:
    """Tracks one operation. Everything it needs is its URL, so a process that restarts
    rebuilds it with ``client.poller(url)`` or ``OperationPoller.from_url(url, token)``."""

    def __init__(self, client: Client, url: str, owns_client: bool = False) -> None:
        self.client = client
        self.url = client.resolve(url)
        self._owns_client = owns_client
        self._last: OperationStatus | None = None

    @classmethod
    def from_url(
        cls, url: str, token: TokenSource = None, **client_options: Any
    ) -> OperationPoller:
        """A poller with its own client for the URL's server; close it when done."""
        parts = urlsplit(url)
        client = Client(f"{parts.scheme}://{parts.netloc}", token, **client_options)
        return cls(client, url, owns_client=True)

    def __enter__(self) -> OperationPoller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    def continuation_token(self) -> str:
        """What to keep to resume tracking later: the status URL."""
        return self.url

    def status(self) -> OperationStatus:
        """The operation now (one read)."""
        self._last = self.client.get(self.url)
        return self._last

    def done(self) -> bool:
        if self._last is None or not self._last.terminal:
            self.status()
        assert self._last is not None
        return self._last.terminal

    def wait(
        self,
        timeout: float | None = None,
        on_update: Callable[[OperationStatus], None] | None = None,
    ) -> OperationStatus:
        self._last = self.client.wait(self.url, timeout, on_update)
        return self._last

    def result(self, timeout: float | None = None) -> dict[str, Any] | None:
        """Wait, then the operation's properties if it Succeeded; OperationFailed if not."""
        final = self.wait(timeout)
        if not final.succeeded:
            raise OperationFailed(final)
        return final.properties


class Producer:
    """Work on an operation inside ``with``: report progress, then leaving marks the outcome.

    Leaving normally marks Succeeded (with ``result`` as the properties); an exception marks
    Failed with the exception's type as the error code and its message; a cancel request
    (``report`` raises :class:`CancelRequested`, which the block may let through) or Ctrl-C
    marks Canceled. While the block runs, a heartbeat thread renews the operation's lease
    every ``heartbeat`` seconds (default: a third of the lease; 0: none).
    """

    def __init__(self, client: Client, url: str, heartbeat: float | None = None) -> None:
        self.client = client
        self.url = client.resolve(url)
        self.heartbeat_every = heartbeat
        self.status: OperationStatus | None = None
        #: The properties to publish on success.
        self.result: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _patch(self, body: dict[str, Any]) -> OperationStatus:
        with self._lock:  # the heartbeat thread shares the client
            self.status = parse_status(self.client._send("PATCH", self.url, json=body))
        return self.status

    def __enter__(self) -> Producer:
        self.status = self.client.get(self.url)
        every = self.heartbeat_every
        if every is None and self.status.lease_seconds:
            every = self.status.lease_seconds / 3
        if every:
            self._thread = threading.Thread(
                target=self._beat, args=(every,), name="opstatus-heartbeat", daemon=True
            )
            self._thread.start()
        return self

    def _beat(self, every: float) -> None:
        while not self._stop.wait(every):
            # A failed beat is retried by the next beat or report; the lease has slack.
            with contextlib.suppress(ClientError, httpx.HTTPError):
                self.heartbeat()

    @property
    def cancel_requested(self) -> bool:
        return self.status is not None and self.status.cancel_requested

    def raise_if_cancel_requested(self) -> None:
        if self.status is not None and self.status.cancel_requested:
            raise CancelRequested(self.status)

    def heartbeat(self) -> OperationStatus:
        """Renew the lease without changing anything else."""
        return self._patch({})

    def report(
        self,
        percent_complete: float | None = None,
        *,
        status: str | None = None,
        properties: dict[str, Any] | None = None,
    ) -> OperationStatus:
        """Publish progress; raises CancelRequested when someone asked to cancel."""
        body = BaseClient.create_body(
            status=status, percent_complete=percent_complete, properties=properties
        )
        current = self._patch(body)
        self.raise_if_cancel_requested()
        return current

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if exc is None:
            final = BaseClient.create_body(status="Succeeded", properties=self.result)
        else:
            canceled = isinstance(exc, CancelRequested | KeyboardInterrupt)
            final = failure_body(exc, canceled)
        try:
            self._patch(final)
        except ClientError as error:
            if error.code != "OperationAlreadyTerminal":
                raise
            self.status = self.client.get(self.url)  # e.g. ProducerLost: that outcome stands
        return isinstance(exc, CancelRequested)

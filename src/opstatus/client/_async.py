"""The asynchronous client, its poller and its producer: the twins of _sync.py."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import time
from collections.abc import AsyncIterator, Callable
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
from ._events import EventParser, OperationEvent, Reconnects, is_operation_stream, stream_headers


class AsyncClient(BaseClient):
    """Asynchronous client; the same methods as :class:`~opstatus.client.Client`, awaited."""

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        token: TokenSource = None,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        api_version: str = DEFAULT_API_VERSION,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(endpoint, token, namespace=namespace, api_version=api_version)
        self._http = httpx.AsyncClient(
            headers=self.headers, timeout=timeout, transport=transport, auth=self.auth
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(
        self,
        method: str,
        url: str,
        json: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        response = await self._http.request(method, url, json=json, headers=headers, **extra)
        raise_for_error(response)
        return response

    async def get(self, url: str) -> OperationStatus:
        return parse_status(await self._send("GET", url))

    async def create(
        self, subscription_id: str, location: str, operation_id: str | None = None, **fields: Any
    ) -> OperationStatus:
        """PUT with the given id, or POST for a server-chosen one."""
        body = self.create_body(**fields)
        if operation_id:
            url = self.status_url(subscription_id, location, operation_id)
            return parse_status(await self._send("PUT", url, json=body))
        url = self.status_url(subscription_id, location)
        return parse_status(await self._send("POST", url, json=body))

    async def update(self, url: str, if_match: str | None = None, **fields: Any) -> OperationStatus:
        headers = {"If-Match": f'"{if_match}"'} if if_match else None
        body = self.create_body(**fields)
        return parse_status(await self._send("PATCH", url, json=body, headers=headers))

    async def delete(self, url: str) -> bool:
        return (await self._send("DELETE", url)).status_code == 200

    async def cancel(self, url: str) -> OperationStatus:
        """Ask the producer to cancel; it may still finish. Returns the status at once."""
        return parse_status(await self._send("POST", action_url(url, "cancel")))

    async def list(
        self, subscription_id: str, location: str | None = None, **filters: Any
    ) -> AsyncIterator[OperationStatus]:
        """Every operation matching ``filters``, newest first, page by page as it goes."""
        async for page in self.list_pages(subscription_id, location, **filters):
            for item in page:
                yield item

    async def list_pages(
        self,
        subscription_id: str,
        location: str | None = None,
        page_size: int | None = None,
        every_provider: bool = False,
        **filters: Any,
    ) -> AsyncIterator[builtins.list[OperationStatus]]:
        params = self.filter_params(**filters)
        if page_size is not None:
            params["maxpagesize"] = str(page_size)
        url: str | None = self.list_url(subscription_id, location, every_provider)
        while url:
            items, url = self._page(await self._send("GET", with_params(url, params)))
            params = {}
            yield items

    async def counts(
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
        response = await self._send("GET", with_params(url, params))
        counts: dict[str, int] = response.json()["counts"]
        return counts

    async def purge(self, subscription_id: str, location: str | None = None, **filters: Any) -> int:
        url = self.collection_url(subscription_id, location, "operationsStatus/purge")
        response = await self._send("POST", with_params(url, self.filter_params(**filters)))
        purged: int = response.json()["purged"]
        return purged

    async def events(
        self,
        url: str,
        last_event_id: str | None = None,
        *,
        max_reconnects: int | None = None,
        idle_timeout: float = 60.0,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> AsyncIterator[OperationEvent]:
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
                async with self._http.stream(
                    "GET", url, headers=headers, timeout=timeout
                ) as response:
                    if response.status_code >= 300:
                        await response.aread()
                        raise_for_error(response)
                    async for line in response.aiter_lines():
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
                if operation and not seen and (await self.get(url)).terminal:
                    return
                again = reconnects.after_end(parser.retry)
                if again is None:
                    return
                delay = again
            await asyncio.sleep(delay)

    async def wait(
        self,
        url: str,
        timeout: float | None = None,
        on_update: Callable[[OperationStatus], None] | None = None,
        interval: float | None = None,
        on_retry: RetryHook | None = None,
    ) -> OperationStatus:
        """See :meth:`Client.wait`: long-polls when offered, else Retry-After; reads the
        service could not answer for now tried again with backoff; no timeout unless given."""
        deadline = None if timeout is None else time.monotonic() + timeout
        long_poll = None
        status: OperationStatus | None = None
        backoff = Backoff(on_retry)
        while True:
            previous, started = status, time.monotonic()
            try:
                if long_poll is None:
                    response = await self._send("GET", url)
                else:
                    headers, seconds = long_poll
                    response = await self._send("GET", url, headers=headers, timeout=seconds)
            except (ClientError, httpx.HTTPError) as exc:
                await asyncio.sleep(backoff.delay(exc, deadline, time.monotonic()))
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
            await asyncio.sleep(delay if remaining is None else min(delay, remaining))

    def poller(self, url: str) -> AsyncOperationPoller:
        return AsyncOperationPoller(self, url)

    def producer(self, url: str, heartbeat: float | None = None) -> AsyncProducer:
        return AsyncProducer(self, url, heartbeat)

    async def accept(
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
        """See :meth:`Client.accept`."""
        operation = await self.create(subscription_id, location, operation_id, **fields)
        return accepted_response(
            method,
            operation,
            body=resource,
            status_code=status_code,
            retry_after=retry_after,
            public_url=public_url,
        )


class AsyncOperationPoller:
    """See :class:`~opstatus.client.OperationPoller`."""

    def __init__(self, client: AsyncClient, url: str, owns_client: bool = False) -> None:
        self.client = client
        self.url = client.resolve(url)
        self._owns_client = owns_client
        self._last: OperationStatus | None = None

    @classmethod
    def from_url(
        cls, url: str, token: TokenSource = None, **client_options: Any
    ) -> AsyncOperationPoller:
        parts = urlsplit(url)
        client = AsyncClient(f"{parts.scheme}://{parts.netloc}", token, **client_options)
        return cls(client, url, owns_client=True)

    async def __aenter__(self) -> AsyncOperationPoller:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_client:
            await self.client.aclose()

    def continuation_token(self) -> str:
        return self.url

    async def status(self) -> OperationStatus:
        self._last = await self.client.get(self.url)
        return self._last

    async def done(self) -> bool:
        if self._last is None or not self._last.terminal:
            await self.status()
        assert self._last is not None
        return self._last.terminal

    async def wait(
        self,
        timeout: float | None = None,
        on_update: Callable[[OperationStatus], None] | None = None,
    ) -> OperationStatus:
        self._last = await self.client.wait(self.url, timeout, on_update)
        return self._last

    async def result(self, timeout: float | None = None) -> dict[str, Any] | None:
        final = await self.wait(timeout)
        if not final.succeeded:
            raise OperationFailed(final)
        return final.properties


class AsyncProducer:
    """See :class:`~opstatus.client.Producer`; task cancellation also marks Canceled (and
    still propagates)."""

    def __init__(self, client: AsyncClient, url: str, heartbeat: float | None = None) -> None:
        self.client = client
        self.url = client.resolve(url)
        self.heartbeat_every = heartbeat
        self.status: OperationStatus | None = None
        self.result: dict[str, Any] | None = None
        self._beating: asyncio.Task[None] | None = None

    async def _patch(self, body: dict[str, Any]) -> OperationStatus:
        self.status = parse_status(await self.client._send("PATCH", self.url, json=body))
        return self.status

    async def __aenter__(self) -> AsyncProducer:
        self.status = await self.client.get(self.url)
        every = self.heartbeat_every
        if every is None and self.status.lease_seconds:
            every = self.status.lease_seconds / 3
        if every:
            self._beating = asyncio.create_task(self._beat(every))
        return self

    async def _beat(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            with contextlib.suppress(ClientError, httpx.HTTPError):
                await self.heartbeat()

    @property
    def cancel_requested(self) -> bool:
        return self.status is not None and self.status.cancel_requested

    def raise_if_cancel_requested(self) -> None:
        if self.status is not None and self.status.cancel_requested:
            raise CancelRequested(self.status)

    async def heartbeat(self) -> OperationStatus:
        return await self._patch({})

    async def report(
        self,
        percent_complete: float | None = None,
        *,
        status: str | None = None,
        properties: dict[str, Any] | None = None,
    ) -> OperationStatus:
        body = BaseClient.create_body(
            status=status, percent_complete=percent_complete, properties=properties
        )
        current = await self._patch(body)
        self.raise_if_cancel_requested()
        return current

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        if self._beating is not None:
            self._beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beating
        if exc is None:
            final = BaseClient.create_body(status="Succeeded", properties=self.result)
        else:
            canceled = isinstance(exc, CancelRequested | asyncio.CancelledError | KeyboardInterrupt)
            final = failure_body(exc, canceled)
        try:
            await self._patch(final)
        except ClientError as error:
            if error.code != "OperationAlreadyTerminal":
                raise
            self.status = await self.client.get(self.url)
        return isinstance(exc, CancelRequested)

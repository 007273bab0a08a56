"""A Python client for opstatus: read, create, update, delete and wait on operations.

Requests are built and responses parsed in :class:`BaseClient`, so that a sync and an async
face can share them (httpx's own layout). Waiting asks the server to hold each GET until the
operation changes (RFC 7240 ``Prefer: wait``); a server that does not is polled, honouring
``Retry-After``, so waiting works whatever the server offers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from .models import TERMINAL_STATUSES

DEFAULT_ENDPOINT = "http://127.0.0.1:8080"
DEFAULT_NAMESPACE = "Microsoft.Cache"
DEFAULT_API_VERSION = "2025-07-01"
#: Ask the server for percentComplete and properties even where the provider's public shape
#: leaves them out (an opstatus extension; other clients never send it).
PREFER_FULL = "opstatus-detail=full"
#: How long one GET of a wait asks the server to hold it; servers cap it (--max-wait). Kept
#: below the idle timeouts common in load balancers (60 s).
HOLD_SECONDS = 30


class ClientError(Exception):
    """The service answered with an error (``status_code``, ARM ``code`` and ``message``)."""

    def __init__(
        self, status_code: int, code: str, message: str, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{status_code} {code}: {message}")
        self.status_code = status_code
        self.code = code
        self.message = message
        #: Seconds the service asked to wait before retrying, when it said so.
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        """The service is briefly unable to answer (503, 429) and said when to come back."""
        return self.status_code in (429, 503) and self.retry_after is not None


class WaitTimeout(Exception):
    """The operation was still running when the wait's timeout ran out."""

    def __init__(self, status: OperationStatus) -> None:
        super().__init__(f"operation {status.name} still {status.status}")
        self.status = status


@dataclass(frozen=True)
class OperationStatus:
    """An operation as read over the wire, whatever the provider's error shape."""

    id: str
    name: str
    status: str
    start_time: str | None = None
    end_time: str | None = None
    percent_complete: float | None = None
    error_code: str | None = None
    error_message: str | None = None
    properties: dict[str, Any] | None = None
    etag: str | None = None
    retry_after: float | None = None
    url: str = ""
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        return self.status.lower() in {s.lower() for s in TERMINAL_STATUSES}

    @property
    def succeeded(self) -> bool:
        return self.status.lower() == "succeeded"


def parse_status(response: httpx.Response) -> OperationStatus:
    body = response.json()
    error = body.get("error") or {}
    if isinstance(error.get("error"), dict):  # the nested (swagger) shape
        error = error["error"]
    return OperationStatus(
        id=body.get("id", ""),
        name=body.get("name", ""),
        status=body.get("status", ""),
        start_time=body.get("startTime"),
        end_time=body.get("endTime"),
        percent_complete=body.get("percentComplete"),
        error_code=error.get("code"),
        error_message=error.get("message"),
        properties=body.get("properties"),
        etag=(response.headers.get("etag") or "").strip('"') or None,
        retry_after=_retry_after(response),
        url=response.headers.get("azure-asyncoperation") or str(response.request.url),
        body=body,
    )


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    return float(value) if value and value.isdigit() else None


def held(response: httpx.Response) -> bool:
    """The server held the GET until a change or its wait ran out (it applied ``wait``)."""
    return "wait=" in response.headers.get("preference-applied", "")


def raise_for_error(response: httpx.Response) -> None:
    if response.status_code < 300:
        return
    try:
        error = response.json()["error"]
        code, message = str(error["code"]), str(error.get("message", ""))
    except (ValueError, KeyError, TypeError):
        code, message = "HttpError", response.text[:500] or response.reason_phrase
    raise ClientError(response.status_code, code, message, _retry_after(response))


class BaseClient:
    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        token: str | None = None,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        api_version: str = DEFAULT_API_VERSION,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.namespace = namespace
        self.api_version = api_version
        self.headers = {"Accept": "application/json", "Prefer": PREFER_FULL}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def status_url(self, subscription_id: str, location: str, operation_id: str = "") -> str:
        """The operation's URL; without an id, the collection a POST creates in."""
        path = (
            f"/subscriptions/{quote(subscription_id, safe='')}/providers/"
            f"{quote(self.namespace, safe='')}/locations/{quote(location, safe='')}"
            "/operationsStatus"
        )
        if operation_id:
            path += f"/{quote(operation_id, safe='')}"
        return f"{self.endpoint}{path}?api-version={quote(self.api_version, safe='')}"

    def resolve(
        self, target: str, subscription_id: str | None = None, location: str | None = None
    ) -> str:
        """A status URL as given, or one built from an id with its subscription and location."""
        if urlsplit(target).scheme in ("http", "https"):
            return target
        if not subscription_id or not location:
            raise ValueError("an operation id needs a subscription and a location")
        return self.status_url(subscription_id, location, target)

    @staticmethod
    def create_body(
        status: str | None = None,
        percent_complete: float | None = None,
        start_time: str | None = None,
        end_time: str | None = None,
        properties: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        fields = {
            "status": status,
            "percentComplete": percent_complete,
            "startTime": start_time,
            "endTime": end_time,
            "properties": properties,
            "error": error,
            **extra,
        }
        return {key: value for key, value in fields.items() if value is not None}


class Client(BaseClient):
    """Synchronous client. ``transport`` lets tests and embedders pass an httpx transport."""

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        token: str | None = None,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        api_version: str = DEFAULT_API_VERSION,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(endpoint, token, namespace=namespace, api_version=api_version)
        self._timeout = timeout
        self._http = httpx.Client(headers=self.headers, timeout=timeout, transport=transport)

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
        hold: int = 0,
    ) -> httpx.Response:
        if hold > 0:
            headers = {**(headers or {}), "Prefer": f"{PREFER_FULL}, wait={hold}"}
            timeout = httpx.Timeout(self._timeout + hold)
            response = self._http.request(method, url, json=json, headers=headers, timeout=timeout)
        else:
            response = self._http.request(method, url, json=json, headers=headers)
        raise_for_error(response)
        return response

    def get(self, url: str) -> OperationStatus:
        return parse_status(self._send("GET", url))

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

    def wait(
        self,
        url: str,
        timeout: float | None = None,
        on_update: Callable[[OperationStatus], None] | None = None,
        interval: float | None = None,
    ) -> OperationStatus:
        """Until terminal. After a first read, each GET asks the server to hold it until the
        operation changes, so ``on_update`` sees every state as it comes.

        A server that answers at once instead is polled every ``interval``, else its
        Retry-After, else 1 s; a 503 (or 429) with Retry-After is retried after that many
        seconds. No hidden default timeout: ``None`` waits as long as it takes.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        status: OperationStatus | None = None
        etag: str | None = None
        first = True
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            # The first GET answers at once (the state now); later ones wait for a change.
            hold = HOLD_SECONDS if remaining is None else min(HOLD_SECONDS, int(remaining))
            if first:
                hold = 0
            # Held: until the version differs from the one last seen (If-None-Match), so a
            # change between two GETs is not missed.
            seen = {"If-None-Match": f'"{etag}"'} if etag and hold > 0 else None
            try:
                response = self._send("GET", url, headers=seen, hold=hold)
            except ClientError as exc:
                if not exc.retryable or (remaining is not None and remaining <= 0):
                    raise
                delay = exc.retry_after or 1.0
                status = None
            else:
                status = parse_status(response)
                etag = status.etag
                if on_update is not None:
                    on_update(status)
                if status.terminal:
                    return status
                if first or held(response):
                    delay = 0.0  # next: a held GET; or the server did the waiting
                elif interval is not None:
                    delay = interval
                else:
                    delay = 1.0 if status.retry_after is None else max(status.retry_after, 0.1)
            first = False
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 and status is not None:
                    raise WaitTimeout(status)
                delay = min(delay, max(remaining, 0.0))
            time.sleep(delay)

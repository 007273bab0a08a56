"""A Python client for opstatus: read, create, update, delete and wait on operations.

Requests are built and responses parsed in :class:`BaseClient`, so that a sync and an async
face can share them (httpx's own layout). Waiting is plain polling that honours
``Retry-After``: it always works, whatever the server offers.

Operations read in two forms: ARM's JSON (:meth:`Client.get`, by status URL) and the classic
Service Management XML (:meth:`Client.get_classic`, by subscription and request id, which
needs no location). Both give an :class:`OperationStatus`.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import httpx

from .models import TERMINAL_STATUSES

DEFAULT_ENDPOINT = "http://127.0.0.1:8080"
DEFAULT_NAMESPACE = "Microsoft.Cache"
DEFAULT_API_VERSION = "2025-07-01"
#: Ask the server for percentComplete and properties even where the provider's public shape
#: leaves them out (an opstatus extension; other clients never send it).
PREFER_FULL = "opstatus-detail=full"
#: The x-ms-version sent to the classic endpoint (the legacy Azure SDK's; any from 2009-10-01).
CLASSIC_VERSION = "2014-10-01"
CLASSIC_HEADERS = {"x-ms-version": CLASSIC_VERSION, "Accept": "application/xml"}


class ClientError(Exception):
    """The service answered with an error (``status_code``, ARM ``code`` and ``message``)."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(f"{status_code} {code}: {message}")
        self.status_code = status_code
        self.code = code
        self.message = message


class WaitTimeout(Exception):
    """The operation was still running when the wait's timeout ran out."""

    def __init__(self, status: OperationStatus) -> None:
        super().__init__(f"operation {status.name} still {status.status}")
        self.status = status


@dataclass(frozen=True)
class OperationStatus:
    """An operation as read over the wire, whatever the provider's error shape or the form.

    ``form`` says which endpoint answered: ``"arm"`` (``body`` is ARM's JSON) or
    ``"classic"`` (``body`` holds the XML's elements; ``status`` is InProgress, Succeeded or
    Failed, and ``http_status_code`` is set once the operation has ended).
    """

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
    http_status_code: int | None = None
    form: Literal["arm", "classic"] = "arm"

    @property
    def terminal(self) -> bool:
        return self.status.lower() in {s.lower() for s in TERMINAL_STATUSES}

    @property
    def succeeded(self) -> bool:
        return self.status.lower() == "succeeded"


def parse_status(response: httpx.Response) -> OperationStatus:
    try:
        body = response.json()
    except ValueError:
        raise _unexpected(response, "ARM's JSON") from None
    if not isinstance(body, dict):
        raise _unexpected(response, "ARM's JSON")
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
        http_status_code=body.get("httpStatusCode"),
    )


def parse_classic_status(response: httpx.Response) -> OperationStatus:
    """The classic ``<Operation>``; ``body`` keeps its element names (``ID``, ``Error``...)."""
    try:
        body = _xml_fields(ET.fromstring(response.content))
    except ET.ParseError:
        raise _unexpected(response, "the classic XML") from None
    error = body.get("Error") or {}
    code = body.get("HttpStatusCode")
    if isinstance(code, str) and code.isdigit():
        body["HttpStatusCode"] = int(code)
    return OperationStatus(
        id=body.get("ID", ""),
        name=body.get("ID", ""),
        status=body.get("Status", ""),
        error_code=error.get("Code"),
        error_message=error.get("Message"),
        retry_after=_retry_after(response),
        url=str(response.request.url),
        body=body,
        http_status_code=body.get("HttpStatusCode"),
        form="classic",
    )


def _unexpected(response: httpx.Response, expected: str) -> ClientError:
    """A 2xx whose body is not the form asked for (say, a classic URL read as ARM)."""
    kind = response.headers.get("content-type", "no content type")
    return ClientError(
        response.status_code, "UnexpectedResponse", f"expected {expected}, got {kind[:100]}"
    )


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    return float(value) if value and value.isdigit() else None


def _xml_fields(element: ET.Element) -> dict[str, Any]:
    """Child elements by local name (the classic namespace aside); nested ones as dicts."""
    fields: dict[str, Any] = {}
    for child in element:
        name = child.tag.rpartition("}")[2]
        fields[name] = _xml_fields(child) if len(child) else child.text or ""
    return fields


def raise_for_error(response: httpx.Response) -> None:
    """ARM's ``{"error": {...}}`` or the classic ``<Error>``, as a :class:`ClientError`."""
    if response.status_code < 300:
        return
    try:
        if "xml" in response.headers.get("content-type", ""):
            error = _xml_fields(ET.fromstring(response.content))
            code, message = str(error["Code"]), str(error.get("Message", ""))
        else:
            error = response.json()["error"]
            code, message = str(error["code"]), str(error.get("message", ""))
    except (ValueError, KeyError, TypeError, ET.ParseError):
        code, message = "HttpError", response.text[:500] or response.reason_phrase
    raise ClientError(response.status_code, code, message)


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

    def classic_url(self, subscription_id: str, request_id: str) -> str:
        """The classic Service Management URL of an operation: no namespace, no location."""
        return (
            f"{self.endpoint}/{quote(subscription_id, safe='')}/operations/"
            f"{quote(request_id, safe='')}"
        )

    @staticmethod
    def is_classic_url(url: str) -> bool:
        """``.../{subscriptionId}/operations/{requestId}``, as :meth:`classic_url` builds."""
        parts = urlsplit(url).path.strip("/").split("/")
        return len(parts) == 3 and parts[1].lower() == "operations"

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
        http_status_code: int | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        fields = {
            "status": status,
            "percentComplete": percent_complete,
            "startTime": start_time,
            "endTime": end_time,
            "properties": properties,
            "error": error,
            "httpStatusCode": http_status_code,
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
        self._http = httpx.Client(headers=self.headers, timeout=timeout, transport=transport)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(
        self, method: str, url: str, json: Any = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        response = self._http.request(method, url, json=json, headers=headers)
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

    def wait(
        self,
        url: str,
        timeout: float | None = None,
        on_update: Callable[[OperationStatus], None] | None = None,
        interval: float | None = None,
        classic: bool = False,
    ) -> OperationStatus:
        """Poll until terminal. Sleeps for ``interval``, else the server's Retry-After, else 1 s.

        No hidden default timeout: ``None`` waits as long as it takes. ``classic`` polls a
        classic URL (Orchestrator's "Wait for Completion").
        """
        read = self.get_classic if classic else self.get
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = read(url)
            if on_update is not None:
                on_update(status)
            if status.terminal:
                return status
            if interval is not None:
                delay = interval
            elif status.retry_after is not None:
                delay = max(status.retry_after, 0.1)
            else:
                delay = 1.0
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WaitTimeout(status)
                delay = min(delay, remaining)
            time.sleep(delay)

"""What the sync and async clients share: URLs, request bodies, response parsing, errors.

Requests are built and responses parsed here, so that :class:`~opstatus.client.Client` and
:class:`~opstatus.client.AsyncClient` only send them (httpx's own layout).
"""

from __future__ import annotations

import math
import re
import time
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeAlias
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import httpx

from ..models import TERMINAL_STATUSES

DEFAULT_ENDPOINT = "http://127.0.0.1:8080"
DEFAULT_NAMESPACE = "Microsoft.Cache"
DEFAULT_API_VERSION = "2025-07-01"
#: Ask the server for percentComplete, properties and the lifecycle fields even where the
#: provider's public shape leaves them out (an opstatus extension; other clients never send it).
PREFER_FULL = "opstatus-detail=full"
#: The longest a single long-poll (``Prefer: wait``) asks the server to hold a read.
MAX_WAIT_SECONDS = 30
#: A wait's pauses between tries of a read the service could not answer: the first one, and
#: the most they double to.
FIRST_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 5.0
#: Answers a wait tries again after, without a Retry-After: the service is restarting or
#: briefly overloaded.
TRANSIENT_STATUSES = frozenset({502, 503, 504})
#: What a client's ``token`` may be: a bearer token, or a callable that returns a current one
#: before each request (so a token that expires is replaced without a new client).
TokenSource: TypeAlias = str | Callable[[], str] | None
#: Told of each read a wait tries again: the error, the pause before the next try, and how
#: many tries in a row have failed (1 for the first of an outage).
RetryHook: TypeAlias = Callable[[Exception, float, int], None]
_TERMINAL = {s.lower() for s in TERMINAL_STATUSES}
_ERROR_CODE_CHARS = re.compile(r"[^A-Za-z0-9._-]")


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


class TokenAuth(httpx.Auth):
    """Sets ``Authorization: Bearer`` from ``source`` on every request, so a source that
    renews its token (the CLI's local tokens do) never sends an expired one."""

    def __init__(self, source: Callable[[], str]) -> None:
        self.source = source

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.source()}"
        yield request


def is_transient(exc: Exception) -> bool:
    """Whether a read that raised ``exc`` may answer if tried again: the server could not be
    reached or dropped the connection (it may be restarting), or said it is briefly unable to
    answer (502, 503, 504; a 429 that says when to come back)."""
    if isinstance(exc, ClientError):
        return exc.retryable or exc.status_code in TRANSIENT_STATUSES
    return isinstance(exc, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError)


class Backoff:
    """The pauses of a wait between tries of a read that failed for a passing reason: the
    service's Retry-After when it gave one, else 0.5 s doubling up to 5 s; reset by an
    answer. Past the wait's deadline, or for any other error, the error is raised."""

    def __init__(self, on_retry: RetryHook | None = None) -> None:
        self.failures = 0
        self.on_retry = on_retry

    def reset(self) -> None:
        self.failures = 0

    def delay(self, exc: Exception, deadline: float | None, now: float) -> float:
        if not is_transient(exc) or (deadline is not None and now >= deadline):
            raise exc
        asked = exc.retry_after if isinstance(exc, ClientError) else None
        delay = asked or min(FIRST_BACKOFF_SECONDS * 2**self.failures, MAX_BACKOFF_SECONDS)
        self.failures += 1
        delay = delay if deadline is None else min(delay, deadline - now)
        if self.on_retry is not None:
            self.on_retry(exc, delay, self.failures)
        return delay


class WaitTimeout(Exception):
    """The operation was still running when the wait's timeout ran out."""

    def __init__(self, status: OperationStatus) -> None:
        super().__init__(f"operation {status.name} still {status.status}")
        self.status = status


class OperationFailed(Exception):
    """The operation ended Failed or Canceled (raised by a poller's ``result()``)."""

    def __init__(self, status: OperationStatus) -> None:
        detail = f": {status.error_code}: {status.error_message}" if status.error_code else ""
        super().__init__(f"operation {status.name} {status.status}{detail}")
        self.status = status


class CancelRequested(Exception):
    """Someone asked to cancel the operation a producer works on (raised by ``report()``)."""

    def __init__(self, status: OperationStatus) -> None:
        super().__init__(f"cancel requested at {status.cancel_requested_at}")
        self.status = status


@dataclass(frozen=True)
class OperationStatus:
    """An operation as read over the wire, whatever the provider's error shape."""

    id: str
    name: str
    status: str
    #: Times are timezone-aware (UTC) datetimes, as the Azure SDK's models give them;
    #: ``body`` keeps the text as answered.
    start_time: datetime | None = None
    end_time: datetime | None = None
    percent_complete: float | None = None
    error_code: str | None = None
    error_message: str | None = None
    properties: dict[str, Any] | None = None
    etag: str | None = None
    retry_after: float | None = None
    url: str = ""
    body: dict[str, Any] = field(default_factory=dict)
    kind: str | None = None
    cancelable: bool = True
    cancel_requested_at: datetime | None = None
    lease_seconds: float | None = None
    lease_expires_at: datetime | None = None
    #: "Active", or "Lapsed" when the producer's lease ran out (see the README).
    lease_state: str | None = None
    expires_at: datetime | None = None
    #: The HTTP status the operation's own request ended with (the classic form shows it).
    http_status_code: int | None = None
    #: Which endpoint answered: "arm" (``body`` is ARM's JSON) or "classic" (the XML's elements).
    form: Literal["arm", "classic"] = "arm"

    @property
    def terminal(self) -> bool:
        return self.status.lower() in _TERMINAL

    @property
    def succeeded(self) -> bool:
        return self.status.lower() == "succeeded"

    @property
    def cancel_requested(self) -> bool:
        return self.cancel_requested_at is not None and not self.terminal


def status_from_body(
    body: dict[str, Any], url: str, headers: httpx.Headers | None = None
) -> OperationStatus:
    error = body.get("error") or {}
    if isinstance(error.get("error"), dict):  # the nested (swagger) shape
        error = error["error"]
    headers = headers or httpx.Headers()
    return OperationStatus(
        id=body.get("id", ""),
        name=body.get("name", ""),
        status=body.get("status", ""),
        start_time=parse_datetime(body.get("startTime")),
        end_time=parse_datetime(body.get("endTime")),
        percent_complete=body.get("percentComplete"),
        error_code=error.get("code"),
        error_message=error.get("message"),
        properties=body.get("properties"),
        etag=(headers.get("etag") or "").strip('"') or None,
        retry_after=retry_after_of(headers),
        url=url,
        body=body,
        kind=body.get("kind"),
        cancelable=body.get("cancelable", True),
        cancel_requested_at=parse_datetime(body.get("cancelRequestedAt")),
        lease_seconds=body.get("leaseSeconds"),
        lease_expires_at=parse_datetime(body.get("leaseExpiresAt")),
        lease_state=body.get("leaseState"),
        expires_at=parse_datetime(body.get("expiresAt")),
        http_status_code=body.get("httpStatusCode"),
    )


def parse_datetime(value: object) -> datetime | None:
    """An ISO 8601 time as answered (``2026-11-23T15:00:54.872Z``), as an aware datetime;
    None when absent or not a time (a foreign server's oddity is not worth an exception)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def retry_after_of(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after")
    return float(value) if value and value.isdigit() else None


def parse_status(response: httpx.Response) -> OperationStatus:
    url = response.headers.get("azure-asyncoperation") or status_url_of(str(response.request.url))
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        kind = response.headers.get("content-type", "no content type")
        raise ClientError(
            response.status_code, "UnexpectedResponse", f"expected ARM's JSON, got {kind[:100]}"
        )
    return status_from_body(body, url, response.headers)


def raise_for_error(response: httpx.Response) -> None:
    """ARM's ``{"error": {...}}`` or the classic ``<Error>``, as a :class:`ClientError`."""
    if response.status_code < 300:
        return
    try:
        if "xml" in response.headers.get("content-type", ""):
            root = ET.fromstring(response.content)
            fields = {child.tag.rpartition("}")[2]: child.text or "" for child in root}
            code, message = str(fields["Code"]), str(fields.get("Message", ""))
        else:
            error = response.json()["error"]
            code, message = str(error["code"]), str(error.get("message", ""))
    except (ValueError, KeyError, TypeError, ET.ParseError):
        code, message = "HttpError", response.text[:500] or response.reason_phrase
    raise ClientError(response.status_code, code, message, retry_after_of(response.headers))


def _swap_segment(url: str, old: str, new: str) -> str:
    parts = urlsplit(url)
    path = re.sub(f"/{old}/", f"/{new}/", parts.path, count=1, flags=re.IGNORECASE)
    return urlunsplit(parts._replace(path=path))


def status_url_of(url: str) -> str:
    """The operationsStatus URL (Azure-AsyncOperation) of an operationResults URL (Location);
    other URLs are returned as they are."""
    return _swap_segment(url, "operationResults", "operationsStatus")


def results_url_of(url: str) -> str:
    """The operationResults URL (ARM's Location) of an operation's status URL."""
    return _swap_segment(url, "operationsStatus", "operationResults")


def classic_url(endpoint: str, subscription_id: str, request_id: str) -> str:
    """The classic Service Management form's ``{endpoint}/{subscriptionId}/operations/{id}``."""
    return f"{endpoint}/{quote(subscription_id, safe='')}/operations/{quote(request_id, safe='')}"


def is_classic_url(url: str) -> bool:
    """``.../{subscriptionId}/operations/{requestId}``, as :func:`classic_url` builds."""
    parts = urlsplit(url).path.strip("/").split("/")
    return len(parts) == 3 and parts[1].lower() == "operations"


def action_url(url: str, action: str) -> str:
    parts = urlsplit(status_url_of(url))
    return urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}/{action}"))


def with_params(url: str, params: dict[str, str]) -> str:
    """``url`` with ``params`` added to its query (httpx's ``params=`` would replace it)."""
    if not params:
        return url
    return f"{url}{'&' if urlsplit(url).query else '?'}{urlencode(params)}"


def rebase(url: str, public_url: str) -> str:
    """``url`` with its scheme and host replaced by ``public_url``'s."""
    public = urlsplit(public_url)
    parts = urlsplit(url)
    path = public.path.rstrip("/") + parts.path
    return urlunsplit(parts._replace(scheme=public.scheme, netloc=public.netloc, path=path))


@dataclass(frozen=True)
class Accepted:
    """The response a provider's own API sends when it starts long-running work.

    Framework-neutral: send ``status_code``, ``headers`` and ``body`` (JSON, or nothing when
    None) with whatever web framework serves the provider.
    """

    status_code: int
    headers: dict[str, str]
    body: dict[str, Any] | None
    operation: OperationStatus


def accepted_response(
    method: str,
    operation: OperationStatus,
    *,
    body: dict[str, Any] | None = None,
    status_code: int | None = None,
    retry_after: int | None = None,
    public_url: str | None = None,
) -> Accepted:
    """ARM's initial response: 201 for PUT, 202 otherwise, with absolute
    ``Azure-AsyncOperation`` (the status) and ``Location`` (the result) and ``Retry-After``."""
    status_url = operation.url
    if public_url:
        status_url = rebase(status_url, public_url)
    headers = {"Azure-AsyncOperation": status_url, "Location": results_url_of(status_url)}
    delay = retry_after if retry_after is not None else operation.retry_after
    if delay is not None:
        headers["Retry-After"] = str(int(delay))
    code = status_code or (201 if method.upper() == "PUT" else 202)
    return Accepted(code, headers, body, operation)


def failure_body(exc: BaseException, canceled: bool) -> dict[str, Any]:
    """The final update of a producer whose work raised ``exc``."""
    if canceled:
        message = str(exc) if not isinstance(exc, CancelRequested) else ""
        return {
            "status": "Canceled",
            "error": {
                "code": "OperationCanceled",
                "message": _clean(message) or "The operation was canceled.",
            },
        }
    code = _ERROR_CODE_CHARS.sub("", type(exc).__name__).lstrip("0123456789._-") or "Error"
    return {
        "status": "Failed",
        "error": {"code": code[:128], "message": _clean(str(exc)) or type(exc).__name__},
    }


def _clean(text: str) -> str:
    kept = "".join(c for c in text if c in "\t\n\r" or unicodedata.category(c) != "Cc")
    return kept[:8192]


def _time(value: str | datetime | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _words(value: str | Iterable[str] | None) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else ",".join(value)


class BaseClient:
    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        token: TokenSource = None,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        api_version: str = DEFAULT_API_VERSION,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.namespace = namespace
        self.api_version = api_version
        self.headers = {"Accept": "application/json", "Prefer": PREFER_FULL}
        #: Set when ``token`` is a callable: asked for the token before each request.
        self.auth: TokenAuth | None = None
        if callable(token):
            self.auth = TokenAuth(token)
        elif token:
            self.headers["Authorization"] = f"Bearer {token}"

    def _path(self, subscription_id: str, location: str | None, resource: str) -> str:
        path = (
            f"/subscriptions/{quote(subscription_id, safe='')}/providers/"
            f"{quote(self.namespace, safe='')}"
        )
        if location is not None:
            path += f"/locations/{quote(location, safe='')}"
        return f"{self.endpoint}{path}/{resource}"

    def _query(self) -> str:
        return f"?api-version={quote(self.api_version, safe='')}"

    def status_url(self, subscription_id: str, location: str, operation_id: str = "") -> str:
        """The operation's URL; without an id, the collection a POST creates in."""
        url = self._path(subscription_id, location, "operationsStatus")
        if operation_id:
            url += f"/{quote(operation_id, safe='')}"
        return url + self._query()

    def collection_url(
        self, subscription_id: str, location: str | None = None, resource: str = "operationsStatus"
    ) -> str:
        """A list (``operationsStatus``), its counts or its purge; no location: every one."""
        return self._path(subscription_id, location, resource) + self._query()

    def list_url(
        self, subscription_id: str, location: str | None = None, every_provider: bool = False
    ) -> str:
        """The list of the client's namespace (in ``location``, or every one), or with
        ``every_provider`` the subscription's list of every provider's operations."""
        if not every_provider:
            return self.collection_url(subscription_id, location)
        if location is not None:
            raise ValueError("a list of every provider's operations takes no location")
        sub = quote(subscription_id, safe="")
        return f"{self.endpoint}/subscriptions/{sub}/operationsStatus{self._query()}"

    def counts_url(
        self, subscription_id: str, location: str | None = None, every_provider: bool = False
    ) -> str:
        """The counts of the client's namespace (in ``location``, or every one), or with
        ``every_provider`` the subscription's counts of every provider (kept on write, so
        they take no filters)."""
        if not every_provider:
            return self.collection_url(subscription_id, location, "operationsStatusCounts")
        if location is not None:
            raise ValueError("the counts of every provider take no location")
        sub = quote(subscription_id, safe="")
        return f"{self.endpoint}/subscriptions/{sub}/operationsStatusCounts{self._query()}"

    def resolve(
        self, target: str, subscription_id: str | None = None, location: str | None = None
    ) -> str:
        """A status URL as given, or one built from an id with its subscription and location."""
        if urlsplit(target).scheme in ("http", "https"):
            return status_url_of(target)
        if not subscription_id or not location:
            raise ValueError("an operation id needs a subscription and a location")
        return self.status_url(subscription_id, location, target)

    def events_url(
        self,
        subscription_id: str,
        provider: str | None = None,
        location: str | None = None,
        status: str | Iterable[str] | None = None,
    ) -> str:
        """The event stream of a whole subscription, maybe of one provider (a namespace),
        one location, some statuses (for :meth:`Client.events`)."""
        params = {
            "provider": provider,
            "location": location,
            "status": _words(status),
        }
        path = f"/subscriptions/{quote(subscription_id, safe='')}/operationsStatusEvents"
        return with_params(
            f"{self.endpoint}{path}{self._query()}", {k: v for k, v in params.items() if v}
        )

    def classic_url(self, subscription_id: str, request_id: str) -> str:
        """The classic Service Management URL of an operation: no namespace, no location."""
        return classic_url(self.endpoint, subscription_id, request_id)

    @staticmethod
    def is_classic_url(url: str) -> bool:
        return is_classic_url(url)

    def _from_body(self, body: dict[str, Any]) -> OperationStatus:
        return status_from_body(body, f"{self.endpoint}{body.get('id', '')}{self._query()}")

    @staticmethod
    def create_body(
        status: str | None = None,
        percent_complete: float | None = None,
        start_time: str | None = None,
        end_time: str | None = None,
        properties: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        kind: str | None = None,
        cancelable: bool | None = None,
        lease_seconds: float | None = None,
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
            "kind": kind,
            "cancelable": cancelable,
            "leaseSeconds": lease_seconds,
            "httpStatusCode": http_status_code,
            **extra,
        }
        return {key: value for key, value in fields.items() if value is not None}

    @staticmethod
    def filter_params(
        status: str | Iterable[str] | None = None,
        kind: str | Iterable[str] | None = None,
        started_after: str | datetime | None = None,
        started_before: str | datetime | None = None,
        ended_after: str | datetime | None = None,
        ended_before: str | datetime | None = None,
        cancel_requested: bool | None = None,
    ) -> dict[str, str]:
        """Query parameters of a list, a count or a purge (see docs/lifecycle.md)."""
        params = {
            "status": _words(status),
            "kind": _words(kind),
            "startedAfter": _time(started_after),
            "startedBefore": _time(started_before),
            "endedAfter": _time(ended_after),
            "endedBefore": _time(ended_before),
            "cancelRequested": None if cancel_requested is None else _flag(cancel_requested),
        }
        return {key: value for key, value in params.items() if value}

    def _page(self, response: httpx.Response) -> tuple[list[OperationStatus], str | None]:
        body = response.json()
        return [self._from_body(item) for item in body.get("value", [])], body.get("nextLink")

    def _wait_request(
        self, remaining: float | None, etag: str | None = None
    ) -> tuple[dict[str, str], float] | None:
        """Headers and timeout of a long-poll, or None when too little time is left.

        ``If-None-Match`` names the version last seen, so that a change landing between two
        reads answers the next one at once instead of being waited through.
        """
        seconds = MAX_WAIT_SECONDS if remaining is None else min(MAX_WAIT_SECONDS, remaining)
        if seconds < 1:
            return None
        seconds = math.floor(seconds)
        headers = {"Prefer": f"{PREFER_FULL}, wait={seconds}"}
        if etag:
            headers["If-None-Match"] = f'"{etag}"'
        return headers, seconds + 15.0

    def _retried(
        self,
        long_poll: tuple[dict[str, str], float] | None,
        status: OperationStatus | None,
        deadline: float | None,
    ) -> tuple[dict[str, str], float] | None:
        """The long-poll to send again after a failed one, for the time left now."""
        if long_poll is None or status is None:
            return None
        remaining = None if deadline is None else deadline - time.monotonic()
        return self._wait_request(remaining, status.etag)

    @staticmethod
    def _delay(status: OperationStatus, interval: float | None) -> float:
        if interval is not None:
            return interval
        if status.retry_after is not None:
            return max(status.retry_after, 0.1)
        return 1.0

    @staticmethod
    def _held(response: httpx.Response, previous: OperationStatus | None, elapsed: float) -> bool:
        """Whether the server really held the read (``Preference-Applied: wait``), so the
        next one may go at once. A held read that came back at once with nothing changed
        is not trusted: that would turn waiting into a busy loop."""
        applied = response.headers.get("preference-applied", "")
        if not any(part.strip().startswith("wait") for part in applied.split(",")):
            return False
        unchanged = previous is not None and response.headers.get("etag") == (
            f'"{previous.etag}"' if previous.etag else None
        )
        return not unchanged or elapsed >= 0.5

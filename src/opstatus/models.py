"""The operation model: identity, statuses, and the transitions a producer may make.

Everything here is pure: no I/O, no HTTP, no SQL. Stores call :func:`apply_update` inside
their own transaction so that the rules (terminal finality, monotonic progress) are decided
in one place and applied atomically by every backend.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import secrets
import time
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from .errors import InvalidInput, ProgressRegression, TerminalStatusFinal

SUCCEEDED = "Succeeded"
FAILED = "Failed"
CANCELED = "Canceled"
IN_PROGRESS = "InProgress"
TERMINAL_STATUSES = frozenset({SUCCEEDED, FAILED, CANCELED})

_KNOWN_SPELLINGS = {s.lower(): s for s in (SUCCEEDED, FAILED, CANCELED, IN_PROGRESS)}
_PASCAL_WORD = re.compile(r"[A-Z][A-Za-z0-9]{0,63}\Z")
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
# Operation ids travel in URL path segments and XML; keep them to characters that need no
# escaping anywhere and that ARM resource names commonly use.
_OPERATION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~:=+@-]{0,255}\Z")
_LOCATION = re.compile(r"[a-z0-9]{1,64}\Z")
_ERROR_CODE = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,127}\Z")
MAX_MESSAGE_CHARS = 8192
MAX_ERROR_DEPTH = 8
#: How deep a free-form JSON value (``properties``, an ``error`` as a whole) may nest; ``{}``
#: is one level. Every answer wraps such a value in at most four more (a list's ``value``,
#: the operation, the nested error shape), far inside the 254 levels orjson can write.
MAX_JSON_DEPTH = 64
#: How large a free-form JSON value may be, written as JSON.
MAX_JSON_BYTES = 1024 * 1024
#: How deep orjson writes objects and arrays: deeper, it raises this.
ORJSON_MAX_DEPTH = 254
_TOO_DEEP = "Recursion limit reached"
_WRAPPERS = ORJSON_MAX_DEPTH - MAX_JSON_DEPTH


def normalize_status(value: object, target: str = "status") -> str:
    """Terminal words and InProgress match case-insensitively; other words must be PascalCase.

    ``Cancelled`` (two l's) is refused: azure-core treats it as non-terminal and would poll
    forever, so accepting it would silently hang every client.
    """
    if not isinstance(value, str):
        raise InvalidInput(f"'{target}' must be a string.", target=target)
    known = _KNOWN_SPELLINGS.get(value.lower())
    if known:
        return known
    if value.lower() == "cancelled":
        raise InvalidInput(
            "The status 'Cancelled' is not valid; the terminal status is spelled 'Canceled'.",
            target=target,
        )
    if not _PASCAL_WORD.match(value):
        raise InvalidInput(
            f"The status '{_shorten(value)}' is not valid. Use Succeeded, Failed, Canceled, "
            "InProgress or another PascalCase word of at most 64 letters and digits.",
            target=target,
        )
    return value


def is_terminal(status: str) -> bool:
    return status in TERMINAL_STATUSES


def validate_subscription_id(value: str) -> str:
    """Subscriptions are GUIDs; they are stored lower-case so lookups ignore case."""
    if not _GUID.match(value):
        raise InvalidInput(
            f"The provided subscription identifier '{_shorten(value)}' is malformed or invalid.",
            code="InvalidSubscriptionId",
            target="subscriptionId",
        )
    return value.lower()


def validate_operation_id(value: str) -> str:
    if not _OPERATION_ID.match(value):
        raise InvalidInput(
            f"The operation id '{_shorten(value)}' is invalid. It must be 1 to 256 characters: "
            "letters, digits and . _ ~ : = + @ -, starting with a letter or digit.",
            code="InvalidOperationId",
            target="operationId",
        )
    return value


def normalize_location(value: str) -> str:
    """'West US', 'West%20US' (decoded by the router) and 'westus' are one location."""
    normalized = value.replace(" ", "").lower()
    if not _LOCATION.match(normalized):
        raise InvalidInput(
            f"The location '{_shorten(value)}' is invalid. A location is a region name such "
            "as 'westus' or 'West US'.",
            code="InvalidLocation",
            target="location",
        )
    return normalized


def operation_key(operation_id: str) -> str:
    """Operation ids are compared case-insensitively (ARM's rule for names in URLs)."""
    return operation_id.lower()


def format_time(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and 'Z', as ARM's own examples write times.

    Fixed width, the year always four digits (``0999``, where ``strftime`` writes ``999``):
    RFC 3339 asks for it, and times are compared as text, by the domain and by the stores'
    list filters, which only orders them in time when every one has the same width.
    """
    moment = moment.astimezone(UTC)
    return (
        f"{moment.year:04d}"
        + moment.strftime("-%m-%dT%H:%M:%S.")
        + f"{moment.microsecond // 1000:03d}Z"
    )


def parse_time(value: object, target: str) -> str:
    """Accept any ISO 8601 date-time (naive means UTC) and store it in :func:`format_time` form."""
    if not isinstance(value, str) or not 10 <= len(value) <= 40:
        raise InvalidInput(f"'{target}' must be an ISO 8601 date-time string.", target=target)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"'{target}' must be an ISO 8601 date-time string, got '{_shorten(value)}'.",
            target=target,
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return format_time(moment)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
        raise InvalidInput(
            f"'{target}' is out of range, got '{_shorten(value)}'.", target=target
        ) from None


_now_cache: tuple[int, str] = (-1, "")


def now_text() -> str:
    """:func:`format_time` of now. Cached for the millisecond: the read path asks for it on
    every request (expiry and lease checks), and formatting costs more than the rest."""
    global _now_cache
    seconds = time.time()
    millis = int(seconds * 1000)
    cached_millis, text = _now_cache
    if millis != cached_millis:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis % 1000:03d}Z"
        _now_cache = (millis, text)
    return text


def validate_percent(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        raise InvalidInput(
            "'percentComplete' must be a number from 0 to 100.", target="percentComplete"
        )
    return float(value)


def validate_http_status_code(value: object) -> int:
    """The HTTP status the original request ended with, shown by the classic form. ``500.0``
    is 500: JSON has one kind of number, and JSON Schema's integer is any whole one."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        raise InvalidInput(
            "'httpStatusCode' must be an integer from 100 to 599.", target="httpStatusCode"
        )
    return value


def validate_json_object(value: object, target: str) -> dict[str, Any]:
    """A free-form JSON object a producer stores, bounded so that every answer can show it.

    An operation is read far more often than it is written, by callers other than its
    producer: a value the encoder could not write back would fail every read and every list
    it is in, so it is refused here, where it comes in (see :data:`MAX_JSON_DEPTH`).
    """
    if not isinstance(value, dict):
        raise InvalidInput(f"'{target}' must be a JSON object.", target=target)
    _check_json(value, target)
    return value


def _check_json(value: object, target: str) -> None:
    """Depth and size in one pass of the encoder, which stops at :data:`ORJSON_MAX_DEPTH`
    levels: wrapped in enough arrays to leave ``value`` :data:`MAX_JSON_DEPTH` of them, it
    encodes only if it nests no deeper. A walk in Python costs many times what the encoder
    does on a large value (docs/performance.md)."""
    wrapped: object = value
    for _ in range(_WRAPPERS):
        wrapped = [wrapped]
    try:
        size = len(orjson.dumps(wrapped)) - 2 * _WRAPPERS
    except orjson.JSONEncodeError as exc:
        if str(exc) == _TOO_DEEP:
            raise InvalidInput(
                f"'{target}' is nested more than {MAX_JSON_DEPTH} levels deep.", target=target
            ) from None
        # What a library caller may hand in: a set, a non-string key, ...
        raise InvalidInput(f"'{target}' is not a JSON value.", target=target) from None
    if size > MAX_JSON_BYTES:
        raise InvalidInput(
            f"'{target}' is larger than {MAX_JSON_BYTES} bytes as JSON.", target=target
        )


def clip_json(value: Any, limit: int = MAX_JSON_DEPTH) -> Any:
    """``value`` with the objects and arrays below ``limit`` levels replaced by null.

    How a value stored before :func:`validate_json_object` bounded it is still shown: what
    a write may store now is shown whole, and the rest of the operation is not lost to it.
    """
    if isinstance(value, dict):
        return {key: clip_json(item, limit - 1) for key, item in value.items()} if limit else None
    if isinstance(value, list):
        return [clip_json(item, limit - 1) for item in value] if limit else None
    return value


def validate_error(value: object, target: str = "error", depth: int = 0) -> dict[str, Any]:
    """An ARM ErrorDetail: code and message required, target/details/additionalInfo optional.

    ``additionalInfo[].info`` is free-form: the whole error is bounded as one JSON value.
    """
    if depth > MAX_ERROR_DEPTH:
        raise InvalidInput(f"'{target}' is nested too deeply.", target=target)
    if not isinstance(value, dict):
        raise InvalidInput(f"'{target}' must be an object.", target=target)
    allowed = {"code", "message", "target", "details", "additionalInfo"}
    for key in value:
        if key not in allowed:
            where = f"{target}.{_shorten(key)}"
            raise InvalidInput(f"Unknown property '{where}'.", target=where)
    code = value.get("code")
    if not isinstance(code, str) or not _ERROR_CODE.match(code):
        raise InvalidInput(
            f"'{target}.code' must be a string of letters and digits (at most 128).",
            target=f"{target}.code",
        )
    detail: dict[str, Any] = {"code": code}
    detail["message"] = _text(value.get("message", ""), f"{target}.message")
    if "target" in value:
        detail["target"] = _text(value["target"], f"{target}.target", limit=1024)
    if "details" in value:
        details = value["details"]
        if not isinstance(details, list) or len(details) > 100:
            raise InvalidInput(f"'{target}.details' must be a list.", target=f"{target}.details")
        detail["details"] = [
            validate_error(item, f"{target}.details[{i}]", depth + 1)
            for i, item in enumerate(details)
        ]
    if "additionalInfo" in value:
        detail["additionalInfo"] = _additional_info(value["additionalInfo"], target)
    if depth == 0:
        _check_json(detail, target)
    return detail


def _additional_info(value: object, target: str) -> list[dict[str, Any]]:
    where = f"{target}.additionalInfo"
    if not isinstance(value, list) or len(value) > 100:
        raise InvalidInput(f"'{where}' must be a list.", target=where)
    items = []
    for i, item in enumerate(value):
        if (
            not isinstance(item, dict)
            or set(item) - {"type", "info"}
            or not isinstance(item.get("type", ""), str)
            or not isinstance(item.get("info", {}), dict)
        ):
            raise InvalidInput(
                f"'{where}[{i}]' must be an object with a string 'type' and an object 'info'.",
                target=f"{where}[{i}]",
            )
        items.append(dict(item))
    return items


def _text(value: object, target: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidInput(
            f"'{target}' must be a string of at most {limit} characters.", target=target
        )
    if any(unicodedata.category(c) == "Cc" and c not in "\t\n\r" for c in value):
        raise InvalidInput(f"'{target}' must not contain control characters.", target=target)
    return value


def _shorten(value: str, limit: int = 80) -> str:
    """Echo user input in messages safely: bounded, and without control characters."""
    printable = "".join(c if c.isprintable() else "?" for c in value[:limit])
    return printable + ("..." if len(value) > limit else "")


def default_error(status: str) -> dict[str, Any] | None:
    """RPC: error.code is required when Failed or Canceled; fill one in if the producer didn't."""
    if status == FAILED:
        return {"code": "OperationFailed", "message": "The operation failed."}
    if status == CANCELED:
        return {"code": "OperationCanceled", "message": "The operation was canceled."}
    return None


def new_etag() -> str:
    return secrets.token_hex(8)


@dataclass(frozen=True, slots=True)
class Operation:
    """One long-running operation, as stored. Immutable: every change makes a new value."""

    subscription_id: str
    operation_id: str
    namespace: str
    location: str
    status: str
    start_time: str | None
    end_time: str | None = None
    percent_complete: float | None = None
    properties: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    etag: str = field(default_factory=new_etag)
    created_at: str = field(default_factory=now_text)
    updated_at: str = ""
    create_digest: str = ""
    #: The HTTP status of the original request, for the classic form's HttpStatusCode.
    http_status_code: int | None = None
    #: A producer-set label to filter lists by (for example the kind of work).
    kind: str | None = None
    #: Whether the producer accepts cancel requests, and when one was made.
    cancelable: bool = True
    cancel_requested_at: str | None = None
    #: A producer's lease: renewed by every update; when it lapses the producer is presumed lost.
    lease_seconds: float | None = None
    lease_expires_at: str | None = None
    #: When retention removes the operation (set once it is terminal).
    expires_at: str | None = None

    @property
    def key(self) -> str:
        return operation_key(self.operation_id)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def evolve(self, **changes: Any) -> Operation:
        return dataclasses.replace(self, **changes)


class OperationStatus(NamedTuple):
    """What a status read shows of an operation, and what decides whether that still stands
    (its retention and its producer's lease): a read model of :class:`Operation`, with the
    same field names, so that what shows or settles one works on the other.

    Clients poll an operation's status thousands of times for every change, so that read is
    the one served most. Taken straight from a store's row, it spares the read the other
    columns and a whole Operation; under load that was a third of the server's time per
    request (docs/performance.md).
    """

    subscription_id: str
    operation_id: str
    namespace: str
    location: str
    status: str
    start_time: str | None
    end_time: str | None
    percent_complete: float | None
    properties: dict[str, Any] | None
    error: dict[str, Any] | None
    etag: str
    lease_expires_at: str | None
    expires_at: str | None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @classmethod
    def of(cls, op: Operation) -> OperationStatus:
        return cls(*(getattr(op, name) for name in cls._fields))


@dataclass(frozen=True, slots=True)
class OperationDraft:
    """What a producer asks to create; ``digest`` tells a replay from a different request."""

    subscription_id: str
    operation_id: str
    namespace: str
    location: str
    status: str = IN_PROGRESS
    start_time: str | None = None
    end_time: str | None = None
    percent_complete: float | None = None
    properties: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    http_status_code: int | None = None
    kind: str | None = None
    cancelable: bool = True
    #: None: the server's default lease; 0: no lease (see opstatus.lifecycle).
    lease_seconds: float | None = None
    #: Where to send this operation's events (``callbackUrl``), and which (None: all).
    callback_url: str | None = None
    callback_events: frozenset[str] | None = None

    def digest(self) -> str:
        fields = dataclasses.asdict(self)
        fields["operation_id"] = operation_key(self.operation_id)
        if self.callback_events is not None:
            fields["callback_events"] = sorted(self.callback_events)
        # Fields added later stay out while unset, so that digests stored before they
        # existed still recognise a replay.
        for name, unset in _LATER_DRAFT_FIELDS.items():
            if fields[name] == unset:
                del fields[name]
        return hashlib.sha256(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]

    def to_operation(self, now: str) -> Operation:
        """The operation as created at ``now``.

        A time the producer leaves out is ``now``, but never on the wrong side of the one
        it gives: a start not after the end, an end not before the start (the producer's
        clock may run ahead of the server's).
        """
        _check_error_matches_status(self.status, self.error)
        terminal = is_terminal(self.status)
        if self.end_time is not None and not terminal:
            raise InvalidInput(
                "'endTime' may only be set with a terminal status.", target="endTime"
            )
        start = self.start_time or (min(now, self.end_time) if self.end_time else now)
        end = self.end_time or (max(now, start) if terminal else None)
        _check_end_not_before_start(start, end)
        return Operation(
            subscription_id=self.subscription_id,
            operation_id=self.operation_id,
            namespace=self.namespace,
            location=self.location,
            status=self.status,
            start_time=start,
            end_time=end,
            percent_complete=100.0 if self.status == SUCCEEDED else self.percent_complete,
            properties=self.properties,
            error=self.error or default_error(self.status),
            created_at=now,
            updated_at=now,
            create_digest=self.digest(),
            http_status_code=self.http_status_code,
            kind=self.kind,
            cancelable=self.cancelable,
        )


_LATER_DRAFT_FIELDS: dict[str, object] = {
    "http_status_code": None,
    "kind": None,
    "cancelable": True,
    "lease_seconds": None,
    "callback_url": None,
    "callback_events": None,
}


@dataclass(frozen=True, slots=True)
class OperationUpdate:
    """A producer's partial change. ``None`` means 'leave as is'."""

    status: str | None = None
    percent_complete: float | None = None
    reset_progress: bool = False
    end_time: str | None = None
    properties: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    http_status_code: int | None = None
    #: A new lease length (0: drop the lease). Any update renews the lease.
    lease_seconds: float | None = None


def _check_end_not_before_start(start: str | None, end: str | None) -> None:
    """Both are :func:`format_time` text, which compares in time order."""
    if start is not None and end is not None and end < start:
        raise InvalidInput(
            f"'endTime' ({end}) is before the operation's 'startTime' ({start}).",
            target="endTime",
        )


def _check_error_matches_status(status: str, error: dict[str, Any] | None) -> None:
    if error is not None and status not in (FAILED, CANCELED):
        raise InvalidInput(
            "'error' may only be given with status Failed or Canceled.", target="error"
        )


def _changed_fields(current: Operation, update: OperationUpdate, status: str) -> dict[str, Any]:
    """The fields ``update`` really changes; raises if progress would go down."""
    changes: dict[str, Any] = {}
    if status != current.status:
        changes["status"] = status
    percent = update.percent_complete
    if percent is not None and percent != current.percent_complete:
        previous = current.percent_complete
        regression = previous is not None and percent < previous and not update.reset_progress
        if regression and not current.terminal:  # a terminal operation gets the 409 for that
            raise ProgressRegression(
                f"percentComplete cannot go down from {previous:g} to {percent:g} unless "
                "'resetProgress' is true.",
                target="percentComplete",
            )
        changes["percent_complete"] = percent
    if update.properties is not None and update.properties != current.properties:
        changes["properties"] = update.properties
    if update.error is not None:
        _check_error_matches_status(status, update.error)
        if update.error != current.error:
            changes["error"] = update.error
    if update.end_time is not None and update.end_time != current.end_time:
        changes["end_time"] = update.end_time
    code = update.http_status_code
    if code is not None and code != current.http_status_code:
        changes["http_status_code"] = code
    return changes


def apply_update(current: Operation, update: OperationUpdate, now: str) -> Operation | None:
    """The one place that decides whether a change is allowed.

    Returns the new operation, or ``None`` when the update changes nothing (a replay),
    so that retries of an already-applied terminal update answer 200 instead of 409.
    """
    status = update.status or current.status
    changes = _changed_fields(current, update, status)
    if not changes:
        return None
    if current.terminal:
        raise TerminalStatusFinal(
            f"The operation '{current.operation_id}' has already reached the terminal status "
            f"'{current.status}'; a terminal status is final and the operation cannot change.",
        )
    if is_terminal(status):
        changes.setdefault("end_time", max(now, current.start_time or now))
        changes.setdefault("error", default_error(status))
        if status == SUCCEEDED:
            changes["percent_complete"] = 100.0
    elif "end_time" in changes:
        raise InvalidInput("'endTime' may only be set with a terminal status.", target="endTime")
    _check_end_not_before_start(current.start_time, changes.get("end_time"))
    return current.evolve(**changes, etag=new_etag(), updated_at=now)


def new_operation_id() -> str:
    """A UUIDv7 (RFC 9562): time-ordered, so ids sort by creation and index well."""
    millis = time.time_ns() // 1_000_000
    rand = secrets.randbits(74)
    value = (
        (millis & ((1 << 48) - 1)) << 80
        | 0x7 << 76
        | (rand >> 62) << 64
        | 0b10 << 62
        | (rand & ((1 << 62) - 1))
    )
    return str(uuid.UUID(int=value))

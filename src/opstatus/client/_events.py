"""What both clients' ``events()`` share: the Server-Sent Events parser, the parsed event,
and the reconnection policy.

A stream is read line by line (the SSE format: ``field: value`` lines, a blank line ends an
event, a line starting with ``:`` is a comment such as the server's heartbeat). The id of
the last event seen is kept, so that a reconnect asks for what was missed with
``Last-Event-ID``; the server reads it from its event log.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson

from ._base import ClientError, OperationStatus, status_from_body

MEDIA_TYPE = "text/event-stream"
#: Event types after which an operation changes no more (besides a terminal status).
FINAL_TYPES = frozenset({"operation.expired", "operation.deleted"})
#: An operation's status URL: its stream ends once the operation is terminal.
_OPERATION_PATH = re.compile(r"/operationsStatus/(?!purge\Z)[^/]+\Z", re.IGNORECASE)


@dataclass(frozen=True)
class OperationEvent:
    """One change of an operation, as a stream (or a webhook) delivers it."""

    #: The event's id: a stream reconnecting with it as ``Last-Event-ID`` resumes after it.
    id: str
    #: ``operation.created``, ``operation.progress``, ``operation.status``, ...
    type: str
    #: The operation after the change.
    operation: OperationStatus
    #: The event's JSON document as sent.
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def sequence(self) -> int | None:
        value = self.data.get("sequence")
        return value if isinstance(value, int) else None

    @property
    def terminal(self) -> bool:
        """The operation changes no more after this event."""
        return self.type in FINAL_TYPES or self.operation.terminal


class EventParser:
    """Turns a stream's lines into events (the SSE format's rules for the fields used)."""

    def __init__(self, endpoint: str, query: str) -> None:
        self._endpoint = endpoint
        self._query = query
        #: The id of the last event or ``id`` line seen: where a reconnect resumes.
        self.last_id: str | None = None
        #: The delay the server asked for between reconnects (its ``retry`` field), seconds.
        self.retry: float | None = None
        self._type = ""
        self._data: list[str] = []

    def feed(self, lines: Iterable[str]) -> list[OperationEvent]:
        """The events that ``lines`` complete."""
        events = []
        for line in lines:
            event = self.line(line)
            if event is not None:
                events.append(event)
        return events

    def line(self, line: str) -> OperationEvent | None:
        line = line.rstrip("\r\n")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._type = value
        elif name == "id" and "\0" not in value:
            self.last_id = value
        elif name == "retry" and value.isdigit():
            self.retry = int(value) / 1000
        return None

    def _dispatch(self) -> OperationEvent | None:
        data, kind = "\n".join(self._data), self._type or "message"
        self._data, self._type = [], ""
        if not data:
            return None
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(body, dict) or not isinstance(body.get("operation"), dict):
            return None
        document = body["operation"]
        url = f"{self._endpoint}{document.get('id', '')}{self._query}"
        return OperationEvent(
            id=str(body.get("id", self.last_id or "")),
            type=str(body.get("type", kind)),
            operation=status_from_body(document, url),
            data=body,
        )


def is_operation_stream(url: str) -> bool:
    """Whether ``url`` is one operation's status URL (its stream ends when it is terminal)."""
    return bool(_OPERATION_PATH.search(urlsplit(url).path))


def stream_headers(last_id: str | None) -> dict[str, str]:
    headers = {"Accept": MEDIA_TYPE, "Cache-Control": "no-store"}
    if last_id:
        headers["Last-Event-ID"] = last_id
    return headers


class Backoff:
    """Delays between reconnects: doubling from ``first`` to ``longest``, jittered, reset
    once a connection delivers something."""

    def __init__(self, first: float, longest: float) -> None:
        self.first = first
        self.longest = longest
        self._next = first

    def reset(self) -> None:
        self._next = self.first

    def delay(self, asked: float | None = None) -> float:
        """The next delay; ``asked``: what the server said (Retry-After, ``retry``)."""
        base = self._next
        self._next = min(self._next * 2, self.longest)
        if asked is not None:
            return max(asked, 0.0)
        return base * (0.5 + random.random() / 2)


class Reconnects:
    """When ``events()`` reconnects: after a dropped connection, a stream the server ended,
    or a refusal the server says to retry (429, 503 with Retry-After), after a
    :class:`Backoff` delay; at most ``limit`` times in a row without an event (None: no
    limit)."""

    def __init__(self, first: float, longest: float, limit: int | None) -> None:
        self.backoff = Backoff(first, longest)
        self.limit = limit
        self.failures = 0

    def reset(self) -> None:
        """An event came: the connection works."""
        self.failures = 0
        self.backoff.reset()

    def after_failure(self, exc: Exception) -> float:
        """The delay before the next attempt; raises ``exc`` when there is none."""
        retry_after = exc.retry_after if isinstance(exc, ClientError) else None
        if isinstance(exc, ClientError) and not exc.retryable:
            raise exc
        if self.limit is not None and self.failures >= self.limit:
            raise exc
        self.failures += 1
        return self.backoff.delay(retry_after)

    def after_end(self, asked: float | None) -> float | None:
        """The delay before reconnecting to a stream the server ended; None: give up."""
        if self.limit is not None and self.failures >= self.limit:
            return None
        self.failures += 1
        return self.backoff.delay(asked)

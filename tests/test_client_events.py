"""The client's Server-Sent Events parsing (``client/_events.py``): the SSE format's rules
for the fields opstatus sends, and which URLs are one operation's stream. The reconnecting
``events()`` runs against real servers in tests/e2e/test_streams.py."""

from __future__ import annotations

import json

from opstatus.client._events import Backoff, EventParser, is_operation_stream, stream_headers

ENDPOINT = "http://127.0.0.1:8080"
QUERY = "?api-version=2025-07-01"


def document(status: str = "InProgress", sequence: int = 2, type_: str = "progress") -> str:
    return json.dumps(
        {
            "id": "812-42",
            "type": f"operation.{type_}",
            "sequence": sequence,
            "time": "2026-12-06T12:00:00.000Z",
            "subscriptionId": "sub",
            "provider": "Microsoft.Cache",
            "location": "westus",
            "operation": {
                "id": "/subscriptions/sub/providers/Microsoft.Cache/locations/westus/"
                "operationsStatus/job-7",
                "name": "job-7",
                "status": status,
                "percentComplete": 40,
            },
        }
    )


def test_an_event_is_parsed_with_its_id_and_operation() -> None:
    parser = EventParser(ENDPOINT, QUERY)
    lines = [": heartbeat", "", "id: 812-42", "event: operation.progress"]
    lines += [f"data: {document()}", ""]
    [event] = parser.feed(lines)
    assert event.id == "812-42" and parser.last_id == "812-42"
    assert event.type == "operation.progress" and event.sequence == 2
    assert event.operation.name == "job-7" and event.operation.percent_complete == 40
    assert event.operation.url == (
        f"{ENDPOINT}/subscriptions/sub/providers/Microsoft.Cache/locations/westus/"
        f"operationsStatus/job-7{QUERY}"
    )
    assert not event.terminal


def test_terminal_events_and_an_id_alone() -> None:
    parser = EventParser(ENDPOINT, QUERY)
    assert parser.feed(["id: 7", ""]) == []  # where a scope stream starts: no event
    assert parser.last_id == "7"
    [done] = parser.feed([f"data: {document('Succeeded', 3, 'status')}", ""])
    assert done.terminal and done.operation.succeeded
    [gone] = parser.feed([f"data: {document('InProgress', 4, 'deleted')}", ""])
    assert gone.terminal
    assert parser.feed(["data: not json", "", "retry: 2500", "data: [1]", ""]) == []
    assert parser.retry == 2.5


def test_data_split_over_lines_and_crlf() -> None:
    parser = EventParser(ENDPOINT, QUERY)
    text = document()
    half = text.index(",") + 1  # between two members: JSON takes the newline as space
    [event] = parser.feed([f"data:{text[:half]}\r\n", f"data:{text[half:]}\r\n", "\r\n"])
    assert event.operation.name == "job-7"


def test_which_urls_are_an_operations_stream() -> None:
    base = f"{ENDPOINT}/subscriptions/sub/providers/Microsoft.Cache/locations/westus"
    assert is_operation_stream(f"{base}/operationsStatus/job-7{QUERY}")
    assert is_operation_stream(f"{base}/OPERATIONSSTATUS/job-7{QUERY}")
    assert not is_operation_stream(f"{base}/operationsStatus{QUERY}")
    assert not is_operation_stream(f"{ENDPOINT}/subscriptions/sub/operationsStatusEvents")
    assert stream_headers(None) == {"Accept": "text/event-stream", "Cache-Control": "no-store"}
    assert stream_headers("9")["Last-Event-ID"] == "9"


def test_backoff_doubles_up_to_its_longest_and_resets() -> None:
    backoff = Backoff(1.0, 4.0)
    delays = [backoff.delay() for _ in range(5)]
    assert 0.5 <= delays[0] <= 1.0 and 2.0 <= delays[3] <= 4.0 and 2.0 <= delays[4] <= 4.0
    assert backoff.delay(asked=7.0) == 7.0
    backoff.reset()
    assert backoff.delay() <= 1.0

"""The OpenAPI description of Server-Sent Events (:mod:`.streams`): ``text/event-stream``
beside JSON on the status read and the list, and the subscription's own stream. Joined into
the document by :mod:`.openapi`."""

from __future__ import annotations

from typing import Any

from ..models import CANCELED, FAILED, IN_PROGRESS, SUCCEEDED


def _caseless(word: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in word)


_STATUS_ITEM = "|".join(
    ["[A-Z][A-Za-z0-9]{0,63}", *(_caseless(w) for w in (IN_PROGRESS, SUCCEEDED, FAILED, CANCELED))]
)
#: A comma-separated list of statuses as the server reads it: each the four known words in
#: any case or another PascalCase word, blanks around items and empty items ignored, never
#: any spelling of "Cancelled".
STATUS_LIST = {
    "type": "string",
    "pattern": rf"^\s*({_STATUS_ITEM})?\s*(,\s*({_STATUS_ITEM})?\s*)*$",
    "not": {"pattern": rf"(^|,)\s*{_caseless('Cancelled')}\s*(,|$)"},
}

Schema = dict[str, Any]

_JSON = "application/json"
SSE = "text/event-stream"
_ERROR = {
    "description": "ARM's error envelope.",
    "content": {_JSON: {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
}
_FORMAT = (
    "Server-Sent Events, sent when the request's Accept names text/event-stream (and no JSON "
    "range). Each event is 'id: <position>', 'event: operation.<type>' and 'data: <JSON>', "
    "the JSON being the document webhooks send (OperationEvent). A reconnect with the header "
    "Last-Event-ID set to the last id received gets every event after it first, from the "
    "event log. Idle streams get a ': heartbeat' comment; a stream too far behind, or open "
    "when the server stops, ends after a comment, to be resumed with Last-Event-ID. Over "
    "the caller's share of --max-streams: 429; over the server's: 503 with Retry-After."
)


def stream_content(what: str) -> Schema:
    """The ``text/event-stream`` content of a 200 that can also stream."""
    return {SSE: {"schema": {"type": "string", "description": f"{what}. {_FORMAT}"}}}


EVENT_SCHEMA: Schema = {
    "OperationEvent": {
        "description": "One change of an operation: the data of an SSE event, and the body "
        "of a webhook delivery.",
        "type": "object",
        "required": ["id", "type", "sequence", "time", "subscriptionId", "operation"],
        "properties": {
            "id": {"type": "string", "description": "The event's store-wide position."},
            "type": {"type": "string", "pattern": "^operation\\."},
            "sequence": {"type": "integer", "minimum": 1},
            "time": {"type": "string"},
            "subscriptionId": {"type": "string"},
            "provider": {"type": "string"},
            "location": {"type": "string"},
            "operation": {"type": "object"},
        },
    }
}


def subscription_stream_path(namespaces: list[str]) -> dict[str, Schema]:
    """``GET /subscriptions/{subscriptionId}/operationsStatusEvents``."""
    return {
        "/subscriptions/{subscriptionId}/operationsStatusEvents": {
            "parameters": [{"$ref": "#/components/parameters/SubscriptionIdParameter"}],
            "get": {
                "tags": ["OperationsStatus"],
                "operationId": "OperationsStatus_SubscriptionEvents",
                "description": "Every change of the subscription's operations, as they "
                "happen; requires Accept: text/event-stream (406 without it).",
                "parameters": [
                    {
                        "name": "provider",
                        "in": "query",
                        "schema": {"type": "string", "enum": namespaces},
                        "description": "Only this provider's operations.",
                    },
                    {
                        "name": "location",
                        "in": "query",
                        "schema": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 64,
                            "pattern": "^[A-Za-z0-9][A-Za-z0-9 ]*$",
                        },
                        "description": "Only operations in this location.",
                    },
                    {
                        "name": "status",
                        "in": "query",
                        "schema": STATUS_LIST,
                        "description": "Only changes that leave the operation in this status "
                        "(comma-separated for several).",
                    },
                    {
                        "name": "api-version",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": "Accepted and ignored (no provider's version applies).",
                    },
                    {
                        "name": "Last-Event-ID",
                        "in": "header",
                        "schema": {"type": "string", "pattern": "^([0-9]{1,19}-)?[0-9]{1,19}$"},
                        "description": "Resume after this event.",
                    },
                ],  # fmt: skip
                "responses": {
                    "200": {
                        "description": "The stream.",
                        "content": stream_content("Every change in scope"),
                    },
                    "406": {
                        "description": "The request's Accept does not name text/event-stream.",
                        **{k: v for k, v in _ERROR.items() if k != "description"},
                    },
                    "default": _ERROR,
                },
            },
        }
    }

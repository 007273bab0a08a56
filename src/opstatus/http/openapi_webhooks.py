"""The OpenAPI description of webhooks: callbacks at create, webhook subscriptions, and the
delivery state (:mod:`.webhook_api`). Joined into the document by :mod:`.openapi`."""

from __future__ import annotations

from typing import Any

from ..events import EVENT_TYPES

Schema = dict[str, Any]

_JSON = "application/json"
_ERROR = {
    "description": "ARM's error envelope.",
    "content": {_JSON: {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
}
_EVENTS = {
    "type": ["array", "null"],
    "minItems": 1,
    "maxItems": len(EVENT_TYPES),
    "items": {
        "type": "string",
        "enum": [*EVENT_TYPES, *(f"operation.{t}" for t in EVENT_TYPES)],
    },
    "description": "Event types, with or without 'operation.'; all when left out or null.",
}
#: The event types a create's ``callbackEvents`` names (see :data:`SCHEMAS`).
CALLBACK_EVENTS = _EVENTS

SCHEMAS: dict[str, Schema] = {
    "OperationCallback": {
        "description": "Added to OperationCreate: where to send the operation's events "
        "(Standard Webhooks, signed with the server's callback secret).",
        "type": "object",
        "properties": {
            "callbackUrl": {"type": "string", "format": "uri", "maxLength": 2048},
            "callbackEvents": _EVENTS,
        },
    },
    "WebhookSubscriptionCreate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["url"],
        "properties": {
            "url": {"type": "string", "format": "uri", "maxLength": 2048},
            "provider": {"type": "string"},
            "location": {"type": "string"},
            "events": _EVENTS,
            "secret": {"type": "string", "pattern": "^whsec_"},
        },
    },
    "WebhookSubscription": {
        "type": "object",
        "required": ["id", "subscriptionId", "url", "createdAt"],
        "properties": {
            "id": {"type": "string"},
            "subscriptionId": {"type": "string"},
            "url": {"type": "string"},
            "provider": {"type": "string"},
            "location": {"type": "string"},
            "events": {"type": "array", "items": {"type": "string"}},
            "createdAt": {"type": "string"},
            "previousSecretValidUntil": {"type": "string"},
            "secret": {
                "type": "string",
                "description": "Only in the answers to create and rotateSecret.",
            },
        },
    },
    "WebhookDelivery": {
        "type": "object",
        "required": ["id", "webhookId", "endpoint", "state", "attempts"],
        "properties": {
            "id": {"type": "string"},
            "webhookId": {"type": "string", "description": "The webhook-id header."},
            "endpoint": {"type": "string", "description": "'callback' or a subscription id."},
            "url": {"type": "string"},
            "eventId": {"type": "string"},
            "eventType": {"type": "string"},
            "state": {"type": "string", "enum": ["pending", "delivered", "failed"]},
            "attempts": {"type": "integer"},
            "lastAttemptAt": {"type": "string"},
            "lastHttpStatus": {"type": "integer"},
            "lastError": {"type": "string"},
            "nextAttemptAt": {"type": "string"},
            "createdAt": {"type": "string"},
        },
    },
}


def _answer(description: str, schema: Schema | None = None) -> Schema:
    answer: Schema = {"description": description}
    if schema is not None:
        answer["content"] = {_JSON: {"schema": schema}}
    return answer


def _list_of(name: str) -> Schema:
    return {
        "type": "object",
        "properties": {
            "value": {"type": "array", "items": {"$ref": f"#/components/schemas/{name}"}}
        },
    }


def _op(operation_id: str, description: str, responses: Schema, **more: Any) -> Schema:
    return {
        "tags": ["Webhooks"],
        "operationId": operation_id,
        "description": description,
        "responses": {**responses, "default": _ERROR},
        **more,
    }


_SUB = {"$ref": "#/components/parameters/SubscriptionIdParameter"}
_HOOK_ID = {"name": "webhookId", "in": "path", "required": True, "schema": {"type": "string"}}
_ONE = {"$ref": "#/components/schemas/WebhookSubscription"}


def notification_paths(namespace: str, parameters: list[Schema]) -> dict[str, Schema]:
    """An operation's deliveries, under a registered provider's namespace; ``parameters``:
    the provider's path and query parameters (subscription, location, api-version)."""
    path = (
        f"/subscriptions/{{subscriptionId}}/providers/{namespace}/locations/{{location}}"
        "/operationsStatus/{operationId}/notifications"
    )
    return {
        path: {
            "parameters": [
                *parameters,
                {"$ref": "#/components/parameters/OperationIdParameter"},
            ],
            "get": _op(
                f"OperationsStatus_ListNotifications_{namespace.replace('.', '_')}",
                "The deliveries of the operation's events: attempts, last HTTP status, last "
                "error, next retry (Reader or above).",
                {"200": _answer("The list.", _list_of("WebhookDelivery"))},
            ),
        }
    }


def webhook_paths() -> dict[str, Schema]:
    base = "/subscriptions/{subscriptionId}/webhookSubscriptions"
    item = base + "/{webhookId}"
    return {
        base: {
            "parameters": [_SUB],
            "post": _op(
                "WebhookSubscriptions_Create",
                "A webhook subscription (Contributor or above); the secret is shown only here.",
                {"201": _answer("Created.", _ONE)},
                requestBody={
                    "required": True,
                    "content": {
                        _JSON: {
                            "schema": {"$ref": "#/components/schemas/WebhookSubscriptionCreate"}
                        }
                    },
                },
            ),
            "get": _op(
                "WebhookSubscriptions_List",
                "The subscription's webhooks.",
                {"200": _answer("The list.", _list_of("WebhookSubscription"))},
            ),  # fmt: skip
        },
        item: {
            "parameters": [_SUB, _HOOK_ID],
            "get": _op("WebhookSubscriptions_Get", "One webhook.", {"200": _answer("It.", _ONE)}),
            "delete": _op(
                "WebhookSubscriptions_Delete",
                "Delete it and its deliveries.",
                {"200": _answer("Deleted."), "204": _answer("There was none.")},
            ),  # fmt: skip
        },
        item + "/rotateSecret": {
            "parameters": [_SUB, _HOOK_ID],
            "post": _op(
                "WebhookSubscriptions_RotateSecret",
                "A new secret; the old one also signs for overlapSeconds (default a day).",
                {"200": _answer("Rotated; the new secret is shown.", _ONE)},
                requestBody={
                    "content": {
                        _JSON: {
                            "schema": {
                                "type": "object",
                                "properties": {"overlapSeconds": {"type": "number"}},
                            }
                        }
                    }
                },
            ),
        },
        item + "/deliveries": {
            "parameters": [_SUB, _HOOK_ID],
            "get": _op(
                "WebhookSubscriptions_ListDeliveries",
                "Its newest deliveries.",
                {"200": _answer("The list.", _list_of("WebhookDelivery"))},
            ),  # fmt: skip
        },
        item + "/deliveries/{deliveryId}/redeliver": {
            "parameters": [
                _SUB,
                _HOOK_ID,
                {
                    "name": "deliveryId",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                },
            ],
            "post": _op(
                "WebhookSubscriptions_Redeliver",
                "Send a delivery again, with a fresh budget.",
                {"202": _answer("Queued.")},
            ),  # fmt: skip
        },
    }

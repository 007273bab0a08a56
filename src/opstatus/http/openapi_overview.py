"""The OpenAPI paths of the dashboard's overview (``overview.py``): counts of a subscription
and of every readable subscription, and who the caller is."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]
_JSON = "application/json"
_ERROR = {
    "description": "ARM's error envelope.",
    "content": {_JSON: {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
}
_COUNTS: Schema = {
    "type": "object",
    "description": "Operations per status (statuses with none are left out).",
    "additionalProperties": {"type": "integer", "minimum": 1},
}


def _summary(*more: str) -> Schema:
    extra: Schema = {"subscriptionId": {"type": "string"}} if more else {}
    return {
        "type": "object",
        "required": [*more, "counts", "total", "groups"],
        "additionalProperties": False,
        "properties": {
            **extra,
            "counts": _COUNTS,
            "total": {"type": "integer", "minimum": 0},
            "groups": {
                "type": "array",
                "description": "By provider and location, sorted by namespace then location.",
                "items": {
                    "type": "object",
                    "required": ["namespace", "location", "counts", "total"],
                    "additionalProperties": False,
                    "properties": {
                        "namespace": {"type": "string"},
                        "location": {"type": "string"},
                        "counts": _COUNTS,
                        "total": {"type": "integer", "minimum": 1},
                    },
                },
            },
        },
    }


_PRINCIPAL: Schema = {
    "type": "object",
    "required": ["name", "issuer", "claim", "id", "local", "roles"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "description": "The display name, else the id."},
        "issuer": {"type": "string", "description": "'opstatus' for a local token."},
        "claim": {"type": "string", "enum": ["oid", "sub"]},
        "id": {"type": "string"},
        "local": {"type": "boolean", "description": "A token minted by this server."},
        "roles": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["role", "scope"],
                "additionalProperties": False,
                "properties": {"role": {"type": "string"}, "scope": {"type": "string"}},
            },
        },
    },
}


def _get(operation_id: str, description: str, answer: str, schema: Schema) -> Schema:
    return {
        "tags": ["Overview"],
        "operationId": operation_id,
        "description": description,
        "responses": {
            "200": {"description": answer, "content": {_JSON: {"schema": schema}}},
            "default": _ERROR,
        },
    }


def api_version_parameter(api_versions: list[str]) -> Schema:
    """The required ``api-version`` query parameter, taking one of ``api_versions``."""
    return {
        "name": "api-version",
        "in": "query",
        "description": "The API version to use for this operation.",
        "required": True,
        "schema": {"type": "string", "enum": api_versions},
    }


def overview_paths(api_versions: list[str]) -> dict[str, Schema]:
    version = api_version_parameter(api_versions)
    subscription = {"$ref": "#/components/parameters/SubscriptionIdParameter"}
    every = {
        "type": "object",
        "required": ["subscriptions"],
        "additionalProperties": False,
        "properties": {"subscriptions": {"type": "array", "items": _summary("subscriptionId")}},
    }
    return {
        "/subscriptions/{subscriptionId}/operationsStatusCounts": {
            "parameters": [subscription, version],
            "get": _get(
                "Overview_SubscriptionCounts",
                "Live operations of the subscription per status, and per provider and location.",
                "The counts.",
                _summary(),
            ),
        },
        "/operationsStatusCounts": {
            "parameters": [version],
            "get": _get(
                "Overview_Counts",
                "The counts of every subscription the caller may read that has operations.",
                "The counts, by subscription.",
                every,
            ),
        },
        "/principal": {
            "parameters": [version],
            "get": _get(
                "Overview_Principal",
                "Who the caller is: any valid token may ask.",
                "The caller.",
                _PRINCIPAL,
            ),
        },
    }

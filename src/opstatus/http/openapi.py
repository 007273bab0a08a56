"""The OpenAPI 3.1 document of the HTTP API, served at ``/openapi.json``. Maintained by hand.

The ARM part is the published contract: ``OperationStatus`` is transcribed from the
Microsoft.Cache (Redis Enterprise) 2025-07-01 swagger and ``ErrorResponse``, ``ErrorDetail``
and ``ErrorAdditionalInfo`` from ARM's common-types v2, with only the ``$ref`` targets
rewritten (``tests/http/test_openapi.py`` compares them with a copy of the swagger). The
producer request bodies are described as strictly as the server parses them, so that a
generator (schemathesis) produces requests worth sending.

Each registered provider gets its own paths (its namespace is a literal path segment, as in
the swagger) with its api-versions and its registered response shape.
"""

from __future__ import annotations

from typing import Any

from ..lifecycle import MAX_LEASE_SECONDS
from ..models import (
    CANCELED,
    FAILED,
    IN_PROGRESS,
    MAX_ERROR_DEPTH,
    MAX_MESSAGE_CHARS,
    SUCCEEDED,
)
from ..providers import CLASSIC_NAMESPACE, Provider, ProviderRegistry
from .lists import ORDERS
from .openapi_classic import CLASSIC_PARAMETERS, CLASSIC_PATHS, CLASSIC_SCHEMAS
from .openapi_overview import api_version_parameter, overview_paths
from .openapi_streams import EVENT_SCHEMA, stream_content, subscription_stream_path
from .openapi_webhooks import CALLBACK_EVENTS, notification_paths, webhook_paths
from .openapi_webhooks import SCHEMAS as WEBHOOK_SCHEMAS

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


#: Transcribed from the swagger (see the module docstring); keep byte-for-byte in meaning.
ARM_SCHEMAS: dict[str, Schema] = {
    "OperationStatus": {
        "description": "The status of a long-running operation.",
        "type": "object",
        "properties": {
            "id": {"type": "string", "description": "The operation's unique id."},
            "name": {"type": "string", "description": "The operation's name."},
            "startTime": {"type": "string", "description": "The start time of the operation."},
            "endTime": {"type": "string", "description": "The end time of the operation."},
            "status": {"type": "string", "description": "The current status of the operation."},
            "error": {
                "$ref": "#/components/schemas/ErrorResponse",
                "description": "Error response describing why the operation failed.",
            },
        },
    },
    "ErrorResponse": {
        "title": "Error response",
        "description": "Common error response for all Azure Resource Manager APIs to return "
        "error details for failed operations. (This also follows the OData error response "
        "format.).",
        "properties": {
            "error": {
                "description": "The error object.",
                "$ref": "#/components/schemas/ErrorDetail",
            }
        },
    },
    "ErrorDetail": {
        "description": "The error detail.",
        "properties": {
            "code": {"readOnly": True, "type": "string", "description": "The error code."},
            "message": {"readOnly": True, "type": "string", "description": "The error message."},
            "target": {"readOnly": True, "type": "string", "description": "The error target."},
            "details": {
                "readOnly": True,
                "type": "array",
                "items": {"$ref": "#/components/schemas/ErrorDetail"},
                "description": "The error details.",
            },
            "additionalInfo": {
                "readOnly": True,
                "type": "array",
                "items": {"$ref": "#/components/schemas/ErrorAdditionalInfo"},
                "description": "The error additional info.",
            },
        },
    },
    "ErrorAdditionalInfo": {
        "properties": {
            "type": {
                "readOnly": True,
                "type": "string",
                "description": "The additional info type.",
            },
            "info": {"readOnly": True, "type": "object", "description": "The additional info."},
        },
        "description": "The resource management error additional info.",
    },
}


def _caseless(*words: str) -> Schema:
    """A string that is one of ``words`` in any case (ECMA-262 patterns have no flags)."""
    spelled = "|".join("".join(f"[{c.upper()}{c.lower()}]" for c in word) for word in words)
    return {"type": "string", "pattern": f"^(?:{spelled})$"}


_STATUS_WORD = {
    "description": "InProgress (the default), Succeeded, Failed or Canceled (terminal and "
    "final), or another PascalCase word such as Accepted or Running. The four known words "
    "match case-insensitively; 'Cancelled' is refused.",
    "type": "string",
    "anyOf": [
        _caseless(IN_PROGRESS, SUCCEEDED, FAILED, CANCELED),
        {"pattern": "^[A-Z][A-Za-z0-9]{0,63}$", "not": _caseless("Cancelled")},
    ],
    "examples": ["InProgress", "Succeeded", "Failed", "Canceled", "Running"],
}
#: What the server enforces across fields: 'error' only with Failed or Canceled, 'endTime'
#: only with a terminal status, each named in the same body.
_STATUS_RULES: list[Schema] = [
    {
        "anyOf": [
            {"not": {"required": ["error"]}},
            {"required": ["status"], "properties": {"status": _caseless(FAILED, CANCELED)}},
        ]
    },
    {
        "anyOf": [
            {"not": {"required": ["endTime"]}},
            {
                "required": ["status"],
                "properties": {"status": _caseless(SUCCEEDED, FAILED, CANCELED)},
            },
        ]
    },
]
#: Text the server stores: no control characters but tab, newline and carriage return.
_NO_CONTROL = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$"
_ADDITIONAL_INFO: Schema = {
    "type": "array",
    "maxItems": 100,
    "items": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"type": {"type": "string"}, "info": {"type": "object"}},
    },
}


def _error_input(depth: int = 0) -> Schema:
    """ARM's ErrorDetail as a producer may send it: ``details`` nest to the server's limit."""
    details: Schema = {"type": "array", "maxItems": 100}
    details["items"] = _error_input(depth + 1) if depth < MAX_ERROR_DEPTH else False
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["code"],
        "properties": {
            "code": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9._-]{0,127}$"},
            "message": {"type": "string", "maxLength": MAX_MESSAGE_CHARS, "pattern": _NO_CONTROL},
            "target": {"type": "string", "maxLength": 1024, "pattern": _NO_CONTROL},
            "details": details,
            "additionalInfo": _ADDITIONAL_INFO,
        },
    }


#: Fields both producer bodies may carry, as the server parses them.
_PRODUCER_FIELDS: Schema = {
    "status": _STATUS_WORD,
    "percentComplete": {"type": "number", "minimum": 0, "maximum": 100},
    "endTime": {"type": "string", "format": "date-time"},
    "properties": {"type": "object"},
    "error": {
        "description": "ARM's ErrorDetail, or the swagger's ErrorResponse around it.",
        "anyOf": [
            _ref("ErrorDetailInput"),
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["error"],
                "properties": {"error": _ref("ErrorDetailInput")},
            },
        ],
    },
    "httpStatusCode": {
        "description": "The HTTP status the original request ended with (the classic form "
        "shows it).",
        "type": "integer",
        "minimum": 100,
        "maximum": 599,
    },
    "leaseSeconds": {
        "description": "0: no lease; else the producer must write again within this many "
        "seconds, or the operation is Failed with ProducerLost.",
        "anyOf": [
            {"type": "number", "const": 0},
            {"type": "number", "minimum": 1, "maximum": MAX_LEASE_SECONDS},
        ],
    },
}

#: opstatus's own schemas: the producer's bodies and the flat (ARM RPC) operation resource.
OWN_SCHEMAS: dict[str, Schema] = {
    "ErrorDetailInput": {
        "description": f"Why an operation failed or was canceled (ARM's ErrorDetail). Details "
        f"nest up to {MAX_ERROR_DEPTH} levels.",
        **_error_input(),
    },
    "OperationCreate": {
        "description": "A producer's new operation. Replaying the same body answers 200; a "
        "different body for an existing id is 409. 'error' only with Failed or Canceled; "
        "'endTime' only with a terminal status.",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            **_PRODUCER_FIELDS,
            "startTime": {"type": "string", "format": "date-time"},
            "kind": {
                "description": "What sort of operation this is, for filtering lists.",
                "type": "string",
                "pattern": "^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$",
            },
            "cancelable": {"type": "boolean", "default": True},
            "callbackUrl": {"type": "string", "format": "uri", "maxLength": 2048},
            "callbackEvents": CALLBACK_EVENTS,
        },
        "dependentRequired": {"callbackEvents": ["callbackUrl"]},
        "allOf": _STATUS_RULES,
    },
    "OperationUpdate": {
        "description": "A producer's partial change. A terminal status is final (409); "
        "percentComplete never goes down unless resetProgress is true (409).",
        "type": "object",
        "additionalProperties": False,
        "properties": {**_PRODUCER_FIELDS, "resetProgress": {"type": "boolean"}},
        "allOf": _STATUS_RULES,
    },
    "OperationResource": {
        "description": "The ARM RPC operation resource (providers registered with the flat "
        "error shape): error.code directly, progress, and properties once Succeeded.",
        "type": "object",
        "required": ["id", "name", "status"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "status": {"type": "string"},
            "startTime": {"type": "string"},
            "endTime": {"type": "string"},
            "percentComplete": {"type": "number", "minimum": 0, "maximum": 100},
            "properties": {"type": "object"},
            "error": _ref("ErrorDetail"),
        },
    },
    "Health": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string"}},
    },
}

_JSON = "application/json"
_HEADERS = {
    "x-ms-request-id": {
        "description": "Generated for every request; the server's log lines carry it.",
        "schema": {"type": "string"},
    },
    "x-ms-correlation-request-id": {"schema": {"type": "string"}},
}
_OP_HEADERS = {
    **_HEADERS,
    "ETag": {"description": "Changes on every write.", "schema": {"type": "string"}},
    "Retry-After": {
        "description": "Seconds between polls; only while the operation runs.",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
}
_ERROR = {
    "description": "ARM's error envelope. 503 (store unavailable) carries Retry-After.",
    "headers": _HEADERS,
    "content": {_JSON: {"schema": _ref("ErrorResponse")}},
}
_PRECONDITION_FAILED = {
    **_ERROR,
    "description": "If-Match names no ETag the operation has (PreconditionFailed).",
}


def _parameters(provider: Provider) -> list[Schema]:
    return [
        {"$ref": "#/components/parameters/SubscriptionIdParameter"},
        {"$ref": "#/components/parameters/LocationParameter"},
        api_version_parameter(list(provider.api_versions)),
    ]


def _operation_paths(provider: Provider) -> dict[str, Schema]:
    ns = provider.namespace
    prefix = "" if ns == "Microsoft.Cache" else ns.replace(".", "") + "_"
    body = _ref("OperationStatus" if provider.error_shape == "nested" else "OperationResource")
    found = {"headers": _OP_HEADERS, "content": {_JSON: {"schema": body}}}
    prefer = {"$ref": "#/components/parameters/PreferParameter"}
    if_match = {"$ref": "#/components/parameters/IfMatchParameter"}
    op_id = {"$ref": "#/components/parameters/OperationIdParameter"}
    links = {
        name: {
            "operationId": f"{prefix}OperationsStatus_{name.removesuffix('Operation')}",
            "parameters": {
                "subscriptionId": "$request.path.subscriptionId",
                "location": "$request.path.location",
                "operationId": "$request.path.operationId",
                "api-version": "$request.query.api-version",
            },
        }
        for name in ("GetOperation", "UpdateOperation", "DeleteOperation")
    }
    item = (
        f"/subscriptions/{{subscriptionId}}/providers/{ns}/locations/{{location}}/operationsStatus"
    )
    write_body = {"required": False, "content": {_JSON: {"schema": _ref("OperationCreate")}}}
    return {
        f"{item}/{{operationId}}": {
            "parameters": [*_parameters(provider), op_id],
            "get": {
                "tags": ["OperationsStatus"],
                "operationId": f"{prefix}OperationsStatus_Get",
                "description": "Gets the status of operation.",
                "parameters": [prefer],
                "responses": {
                    "200": {
                        "description": "The operation; or its events until it ends.",
                        "headers": _OP_HEADERS,
                        "content": {
                            _JSON: {"schema": body},
                            **stream_content(
                                "The operation's events, its first (or after "
                                "Last-Event-ID) to its terminal one"
                            ),
                        },
                    },
                    "default": _ERROR,
                },
            },
            "put": {
                "tags": ["OperationsStatus"],
                "operationId": f"{prefix}OperationsStatus_Create",
                "description": "A producer creates an operation (idempotent).",
                "parameters": [prefer],
                "requestBody": write_body,
                "responses": {
                    "200": {"description": "A replay of the same create.", **found},
                    "201": {"description": "Created.", **found, "links": links},
                    "default": _ERROR,
                },
            },
            "patch": {
                "tags": ["OperationsStatus"],
                "operationId": f"{prefix}OperationsStatus_Update",
                "description": "A producer reports progress or the outcome.",
                "parameters": [prefer, if_match],
                "requestBody": {
                    "required": False,
                    "content": {_JSON: {"schema": _ref("OperationUpdate")}},
                },
                "responses": {
                    "200": {"description": "Updated.", **found},
                    "412": _PRECONDITION_FAILED,
                    "default": _ERROR,
                },
            },
            "delete": {
                "tags": ["OperationsStatus"],
                "operationId": f"{prefix}OperationsStatus_Delete",
                "description": "Removes an operation.",
                "parameters": [if_match],
                "responses": {
                    "200": {"description": "Deleted.", "headers": _HEADERS},
                    "204": {"description": "There was nothing to delete.", "headers": _HEADERS},
                    "412": _PRECONDITION_FAILED,
                    "default": _ERROR,
                },
            },
        },
        item: {
            "parameters": _parameters(provider),
            "get": {
                "tags": ["OperationsStatus"],
                "operationId": f"{prefix}OperationsStatus_List",
                "description": "Lists the operations of this location, newest first. nextLink "
                "is there while more follow.",
                "parameters": [
                    prefer,
                    {"$ref": "#/components/parameters/MaxPageSizeParameter"},
                    {"$ref": "#/components/parameters/CancelRequestedParameter"},
                    {"$ref": "#/components/parameters/OrderByParameter"},
                    {"$ref": "#/components/parameters/IdPrefixParameter"},
                    {"$ref": "#/components/parameters/StalledParameter"},
                ],
                "responses": {
                    "200": {
                        "description": "One page; or every change in this location as it "
                        "happens (status filters it).",
                        "headers": _HEADERS,
                        "content": {
                            _JSON: {"schema": _list_of(body)},
                            **stream_content("Every change in this location"),
                        },
                    },
                    "default": _ERROR,
                },
            },
            "post": {
                "tags": ["OperationsStatus"],
                "operationId": f"{prefix}OperationsStatus_CreateWithServerId",
                "description": "Creates an operation with a server-chosen, time-ordered id.",
                "parameters": [prefer],
                "requestBody": write_body,
                "responses": {
                    "201": {
                        "description": "Created; Azure-AsyncOperation is its status URL.",
                        "headers": {
                            **_OP_HEADERS,
                            "Azure-AsyncOperation": {"schema": {"type": "string"}},
                        },
                        "content": {_JSON: {"schema": body}},
                    },
                    "default": _ERROR,
                },
            },
        },
    }


def _subscription_list_path(api_versions: list[str]) -> dict[str, Schema]:
    """Every provider's operations in a subscription (``lists.list_subscription_operations``),
    each in its own provider's shape; opstatus's own api-versions."""
    item = {"anyOf": [_ref("OperationStatus"), _ref("OperationResource")]}
    version = api_version_parameter(api_versions)
    return {
        "/subscriptions/{subscriptionId}/operationsStatus": {
            "parameters": [{"$ref": "#/components/parameters/SubscriptionIdParameter"}, version],
            "get": {
                "tags": ["OperationsStatus"],
                "operationId": "OperationsStatus_ListSubscription",
                "description": "Lists every provider's operations in the subscription, newest "
                "first, each in its provider's shape. nextLink is there while more follow.",
                "parameters": [
                    {"$ref": "#/components/parameters/PreferParameter"},
                    {"$ref": "#/components/parameters/MaxPageSizeParameter"},
                    {"$ref": "#/components/parameters/CancelRequestedParameter"},
                    {"$ref": "#/components/parameters/OrderByParameter"},
                    {"$ref": "#/components/parameters/IdPrefixParameter"},
                    {"$ref": "#/components/parameters/StalledParameter"},
                ],
                "responses": {
                    "200": {
                        "description": "One page.",
                        "headers": _HEADERS,
                        "content": {_JSON: {"schema": _list_of(item)}},
                    },
                    "default": _ERROR,
                },
            },
        }
    }


def _list_of(item: Schema) -> Schema:
    return {
        "type": "object",
        "required": ["value"],
        "additionalProperties": False,
        "properties": {
            "value": {"type": "array", "items": item},
            "nextLink": {"type": "string", "description": "The next page's absolute URL."},
        },
    }


def _plain(operation_id: str, description: str, responses: dict[str, Any]) -> Schema:
    return {
        "get": {
            "tags": ["Operability"],
            "operationId": operation_id,
            "description": description,
            "security": [],
            "responses": responses,
        }
    }


def _health(ok: str) -> dict[str, Any]:
    content = {_JSON: {"schema": _ref("Health")}}
    return {
        "200": {"description": ok, "headers": _HEADERS, "content": content},
        "503": {"description": "Not ready.", "headers": _HEADERS, "content": content},
    }


_OPERABILITY: dict[str, Schema] = {
    "/healthz": _plain("Health_Live", "Liveness: the process answers.", _health("Alive.")),
    "/readyz": _plain(
        "Health_Ready", "Readiness: the store answers and its schema is known.", _health("Ready.")
    ),
    "/metrics": _plain(
        "Metrics_Get",
        "Prometheus metrics in the text exposition format.",
        {
            "200": {
                "description": "Metrics.",
                "headers": _HEADERS,
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    ),
    "/openapi.json": _plain(
        "OpenApi_Get",
        "This document.",
        {
            "200": {
                "description": "The OpenAPI 3.1 document.",
                "headers": _HEADERS,
                "content": {_JSON: {"schema": {"type": "object"}}},
            }
        },
    ),
}

_PARAMETERS: dict[str, Schema] = {
    "SubscriptionIdParameter": {
        "name": "subscriptionId",
        "in": "path",
        "description": "The ID of the target subscription. The value must be an UUID.",
        "required": True,
        "schema": {"type": "string", "format": "uuid"},
    },
    "LocationParameter": {
        "name": "location",
        "in": "path",
        "description": "The name of Azure region ('westus' and 'West US' are one location).",
        "required": True,
        "schema": {
            "type": "string",
            "minLength": 1,
            "maxLength": 64,
            "pattern": "^[A-Za-z0-9][A-Za-z0-9 ]*$",
        },
    },
    "OperationIdParameter": {
        "name": "operationId",
        "in": "path",
        "description": "The ID of an ongoing async operation (compared case-insensitively).",
        "required": True,
        "schema": {
            "type": "string",
            "minLength": 1,
            "maxLength": 256,
            "pattern": "^[A-Za-z0-9][A-Za-z0-9._~:=+@-]*$",
        },
    },
    "MaxPageSizeParameter": {
        "name": "maxpagesize",
        "in": "query",
        "required": False,
        "description": "The most operations on one page (the server may cap it).",
        "schema": {"type": "string", "pattern": "^[0-9]*[1-9][0-9]*$"},
    },
    "CancelRequestedParameter": {
        "name": "cancelRequested",
        "in": "query",
        "required": False,
        "description": "'true': only operations someone asked to cancel (what a producer's "
        "cancel watcher polls for); 'false': only the others.",
        "schema": {"type": "string", "enum": ["true", "false"]},
    },
    "OrderByParameter": {
        "name": "orderby",
        "in": "query",
        "required": False,
        "description": "Order by start or end time instead of newest created first; only "
        "operations with that time are listed (endTime: finished ones).",
        "schema": {"type": "string", "enum": list(ORDERS)},
    },
    "IdPrefixParameter": {
        "name": "idPrefix",
        "in": "query",
        "required": False,
        "description": "Only operations whose id starts with this (case-insensitively).",
        "schema": {
            "type": "string",
            "minLength": 1,
            "maxLength": 256,
            "pattern": "^[A-Za-z0-9][A-Za-z0-9._~:=+@-]*$",
        },
    },
    "StalledParameter": {
        "name": "stalled",
        "in": "query",
        "required": False,
        "description": "'true': only running operations whose producer's lease has lapsed "
        "and that are not yet failed as lost; 'false': every operation.",
        "schema": {"type": "string", "enum": ["true", "false"]},
    },
    "PreferParameter": {
        "name": "Prefer",
        "in": "header",
        "required": False,
        "description": "RFC 7240 preferences. 'opstatus-detail=full' adds percentComplete "
        "and properties; on a status GET, 'wait=N' holds the answer until the operation "
        "changes or N seconds pass (at most the server's --max-wait). Others are ignored; "
        "Preference-Applied names those honoured.",
        "schema": {"type": "string"},
        "examples": {"detail": {"value": "opstatus-detail=full"}},
    },
    "IfMatchParameter": {
        "name": "If-Match",
        "in": "header",
        "required": False,
        "description": "Only act if the operation's ETag is one of these (or '*'); else 412.",
        "schema": {"type": "string"},
    },
}


def openapi_document(providers: ProviderRegistry | None = None) -> dict[str, Any]:
    """The whole document, with paths for every registered provider."""
    paths: dict[str, Schema] = {}
    registry = providers if providers is not None else ProviderRegistry()
    for provider in registry:
        paths.update(_operation_paths(provider))
        paths.update(notification_paths(provider.namespace, _parameters(provider)))
    paths.update(CLASSIC_PATHS)
    paths.update(webhook_paths())
    paths.update(subscription_stream_path([provider.namespace for provider in registry]))
    own_versions = list(registry.lookup(CLASSIC_NAMESPACE).api_versions)
    paths.update(_subscription_list_path(own_versions))
    paths.update(overview_paths(own_versions))
    paths.update(_OPERABILITY)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "opstatus",
            "version": "1",
            "description": "Long-running operations, answered in ARM's Get Operation Status "
            "form (Microsoft.Cache operationsStatus, 2025-07-01 swagger) and in the classic "
            "Service Management form (/{subscriptionId}/operations/{requestId}, XML).",
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "A token from 'opstatus token' (Reader, Contributor, Owner).",
                }
            },
            "parameters": {**_PARAMETERS, **CLASSIC_PARAMETERS},
            "schemas": {
                **ARM_SCHEMAS,
                **OWN_SCHEMAS,
                **CLASSIC_SCHEMAS,
                **WEBHOOK_SCHEMAS,
                **EVENT_SCHEMA,
            },
        },
    }

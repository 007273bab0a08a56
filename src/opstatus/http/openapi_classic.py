"""The classic Service Management form in the OpenAPI document (see :mod:`.openapi`).

``/{subscriptionId}/operations/{requestId}``: GET reads an operation as ``<Operation>`` XML
(:mod:`.classic_xml`); PUT, PATCH and DELETE write it with the ARM producer's JSON bodies.
Every request carries ``x-ms-version`` (a date from 2009-10-01 on), and every error is the
classic ``<Error>`` XML, a failed authentication included (403, not ARM's 401).
"""

from __future__ import annotations

from typing import Any

from .classic_xml import NAMESPACE

Schema = dict[str, Any]

_XML = "application/xml"
_JSON = "application/json"
#: A date of 2009-10-01 or later; ``format: date`` rules out days a month does not have.
_VERSION_PATTERN = (
    "^(?:2009-1[0-2]|20[1-9][0-9]-[0-9]{2}|2[1-9][0-9]{2}-[0-9]{2}|[3-9][0-9]{3}-[0-9]{2})"
    "-[0-9]{2}$"
)
_HEADERS = {
    "x-ms-request-id": {"schema": {"type": "string"}},
    "x-ms-correlation-request-id": {"schema": {"type": "string"}},
}


def _schema(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


CLASSIC_SCHEMAS: dict[str, Schema] = {
    "ClassicOperation": {
        "description": "Get Operation Status (MSDN ee460783). Status is InProgress, Succeeded "
        "or Failed (a Canceled operation is Failed with the code OperationCanceled); "
        "HttpStatusCode once ended; Error once Failed.",
        "type": "object",
        "xml": {"name": "Operation", "namespace": NAMESPACE},
        "required": ["ID", "Status"],
        "properties": {
            "ID": {"type": "string"},
            "Status": {"type": "string", "enum": ["InProgress", "Succeeded", "Failed"]},
            "HttpStatusCode": {"type": "integer"},
            "Error": _schema("ClassicErrorDetail"),
        },
    },
    "ClassicErrorDetail": {
        "type": "object",
        "xml": {"name": "Error", "namespace": NAMESPACE},
        "required": ["Code", "Message"],
        "properties": {"Code": {"type": "string"}, "Message": {"type": "string"}},
    },
}

CLASSIC_PARAMETERS: dict[str, Schema] = {
    "ClassicSubscriptionIdParameter": {
        "name": "subscriptionId",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "format": "uuid"},
    },
    "RequestIdParameter": {
        "name": "requestId",
        "in": "path",
        "description": "The operation's id (compared case-insensitively).",
        "required": True,
        "schema": {
            "type": "string",
            "minLength": 1,
            "maxLength": 256,
            "pattern": "^[A-Za-z0-9][A-Za-z0-9._~:=+@-]*$",
        },
    },
    "VersionParameter": {
        "name": "x-ms-version",
        "in": "header",
        "description": "The classic API's version: 2009-10-01 or later (400 "
        "MissingOrIncorrectVersionHeader otherwise).",
        "required": True,
        "schema": {"type": "string", "format": "date", "pattern": _VERSION_PATTERN},
    },
}

_OPERATION = {
    "headers": {
        **_HEADERS,
        "Retry-After": {
            "description": "Seconds between polls; only while the operation runs.",
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        },
    },
    "content": {_XML: {"schema": _schema("ClassicOperation")}},
}
_ERROR = {
    "description": "The classic error (MSDN ee460801): 400 BadRequest or "
    "MissingOrIncorrectVersionHeader, 403 AuthenticationFailed, 404 ResourceNotFound, "
    "409 ConflictError, 503 ServerBusy (with Retry-After), and the guard's 413 and 429.",
    "headers": _HEADERS,
    "content": {_XML: {"schema": _schema("ClassicErrorDetail")}},
}


def _write(operation_id: str, description: str, body: str | None) -> Schema:
    operation: Schema = {
        "tags": ["ClassicOperations"],
        "operationId": operation_id,
        "description": description,
    }
    if body is not None:
        content = {_JSON: {"schema": _schema(body)}}
        operation["requestBody"] = {"required": False, "content": content}
    return operation


CLASSIC_PATHS: dict[str, Schema] = {
    "/{subscriptionId}/operations/{requestId}": {
        "parameters": [
            {"$ref": "#/components/parameters/ClassicSubscriptionIdParameter"},
            {"$ref": "#/components/parameters/RequestIdParameter"},
            {"$ref": "#/components/parameters/VersionParameter"},
        ],
        "get": {
            **_write("ClassicOperations_Get", "Get Operation Status, classic form.", None),
            "responses": {
                "200": {"description": "The operation.", **_OPERATION},
                "default": _ERROR,
            },
        },
        "put": {
            **_write(
                "ClassicOperations_Create",
                "A producer creates an operation by request id (idempotent); it is stored "
                "under Opstatus.Classic/global, so ARM clients can read it too.",
                "OperationCreate",
            ),
            "responses": {
                "200": {"description": "A replay of the same create.", **_OPERATION},
                "201": {"description": "Created.", **_OPERATION},
                "default": _ERROR,
            },
        },
        "patch": {
            **_write(
                "ClassicOperations_Update",
                "A producer reports progress or the outcome, wherever the operation was created.",
                "OperationUpdate",
            ),
            "responses": {"200": {"description": "Updated.", **_OPERATION}, "default": _ERROR},
        },
        "delete": {
            **_write("ClassicOperations_Delete", "Removes an operation.", None),
            "responses": {
                "200": {"description": "Deleted.", "headers": _HEADERS},
                "204": {"description": "There was nothing to delete.", "headers": _HEADERS},
                "default": _ERROR,
            },
        },
    }
}

"""An operation as ARM shows it, in the provider's registered shape (see providers.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, overload

import orjson

from ..models import SUCCEEDED, Operation, OperationStatus, clip_json
from ..providers import ErrorShape

#: What :func:`arm_body` shows without full detail: an operation, or its status read model.
Shown = Operation | OperationStatus


@overload
def clipped(op: Operation) -> Operation: ...
@overload
def clipped(op: OperationStatus) -> OperationStatus: ...
@overload
def clipped(op: Shown) -> Shown: ...


def clipped(op: Shown) -> Shown:
    """``op`` with its free-form values cut to the depth a write may store
    (:func:`~opstatus.models.clip_json`).

    Writes are bounded (:func:`~opstatus.models.validate_json_object`), but a store may hold
    values written before they were: too deep for the encoder once wrapped in an answer,
    they would fail every read and list of the operation. Such an operation is shown with
    the part below :data:`~opstatus.models.MAX_JSON_DEPTH` levels as null instead.
    """
    properties, error = clip_json(op.properties), clip_json(op.error)
    if isinstance(op, Operation):
        return op.evolve(properties=properties, error=error)
    return op._replace(properties=properties, error=error)


def encode(document: object, clipped_document: Callable[[], object]) -> bytes:
    """``document`` as JSON; if the encoder cannot write it (values nested too deep, see
    :func:`clipped`), ``clipped_document()``, the same document of the clipped operations."""
    try:
        return orjson.dumps(document)
    except orjson.JSONEncodeError:
        return orjson.dumps(clipped_document())


def location_path(op: Shown) -> str:
    return f"/subscriptions/{op.subscription_id}/providers/{op.namespace}/locations/{op.location}"


def resource_id(op: Shown) -> str:
    return f"{location_path(op)}/operationsStatus/{op.operation_id}"


def result_path(op: Operation) -> str:
    """The Location half of ARM's pattern: 202 while running, then the outcome."""
    return f"{location_path(op)}/operationResults/{op.operation_id}"


def arm_body(
    op: Shown, shape: ErrorShape, full: bool = False, lease_state: str | None = None
) -> dict[str, Any]:
    """Keys in the order of the published example; absent values are left out, not null.

    The nested (swagger) shape carries only the swagger's keys, unless the caller asked for
    ``full`` detail (opstatus's own clients do, to show progress, and a running operation's
    ``properties`` with it). ``httpStatusCode`` is in
    no published ARM shape (the classic form shows it), so only ``full`` detail carries it.
    """
    body: dict[str, Any] = {"id": resource_id(op), "name": op.operation_id}
    if op.start_time is not None:
        body["startTime"] = op.start_time
    if op.end_time is not None:
        body["endTime"] = op.end_time
    body["status"] = op.status
    if shape == "flat" or full:
        if op.percent_complete is not None:
            body["percentComplete"] = op.percent_complete
        # A result once Succeeded; while running, a producer's progress detail (the
        # Celery integration's messages) for readers that asked for full detail.
        shown = op.status == SUCCEEDED or (full and not op.terminal)
        if op.properties is not None and shown:
            body["properties"] = op.properties
    whole = None
    if full:
        assert isinstance(op, Operation), "full detail is shown of a whole operation"
        whole = op
    if whole is not None and whole.http_status_code is not None:
        body["httpStatusCode"] = whole.http_status_code
    if op.error is not None:
        body["error"] = op.error if shape == "flat" else {"error": op.error}
    if whole is not None:
        body.update(lifecycle_detail(whole, lease_state))
    return body


def whole_number(value: float | None) -> float | int | None:
    """A number of seconds as JSON should show it: ``86400``, not ``86400.0``."""
    if value is not None and value.is_integer():
        return int(value)
    return value


def lifecycle_detail(op: Operation, lease_state: str | None) -> dict[str, Any]:
    """opstatus's own fields: for producers (cancel requests, leases) and for readers who
    want to know how long the status will be kept."""
    values: dict[str, Any] = {
        "kind": op.kind,
        "cancelable": op.cancelable,
        "cancelRequestedAt": op.cancel_requested_at,
        "httpStatusCode": op.http_status_code,
    }
    if not op.terminal:
        values["leaseSeconds"] = whole_number(op.lease_seconds)
        values["leaseExpiresAt"] = op.lease_expires_at
        values["leaseState"] = lease_state
    values["expiresAt"] = op.expires_at
    return {key: value for key, value in values.items() if value is not None}

"""Answering a web request with a Celery task: ARM's ``202`` with the operation's links.

:func:`accept_task` creates the task's operation with the client's ``accept`` (so the answer
carries absolute ``Azure-AsyncOperation`` and ``Location`` URLs and ``Retry-After``), then
publishes the task with the operation's id as its task id. Any ARM client, the Azure SDK's
``LROPoller`` included, then polls opstatus until the worker's outcome lands there.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from ..client import Accepted, AsyncClient, accepted_response
from .tracking import CREATED_HEADER, Tracker, ended


def _publish(
    tracker: Tracker,
    task: Any,
    task_id: str,
    args: tuple[Any, ...] | list[Any],
    kwargs: dict[str, Any] | None,
    options: dict[str, Any],
) -> None:
    headers = {**options.pop("headers", {}), CREATED_HEADER: "1"}
    try:
        task.apply_async(args, kwargs, task_id=task_id, headers=headers, **options)
    except Exception as exc:
        # Nothing will run: say so instead of leaving the caller polling forever.
        error = {"code": "PublishFailed", "message": f"{type(exc).__name__}: {exc}"[:2000]}
        tracker.sender.submit(
            tracker.status_url(task_id),
            tracker.target(task_id, task.name),
            status="Failed",
            error=error,
            end_time=ended(),
        )
        raise


def accept_task(
    tracker: Tracker,
    task: Any,
    args: tuple[Any, ...] | list[Any] = (),
    kwargs: dict[str, Any] | None = None,
    *,
    method: str = "POST",
    resource: dict[str, Any] | None = None,
    retry_after: int | None = None,
    public_url: str | None = None,
    **options: Any,
) -> Accepted:
    """Create the operation, publish ``task`` (``options`` go to ``apply_async``), and return
    ARM's answer: 201 for PUT, 202 otherwise (send it with :func:`starlette_response`,
    :func:`flask_response`, :func:`django_response` or any framework's response)."""
    task_id = str(uuid.uuid4())
    accepted = tracker.client.accept(
        method,
        tracker.subscription_id,
        tracker.location,
        operation_id=task_id,
        resource=resource,
        retry_after=retry_after,
        public_url=public_url,
        **tracker.initial_fields(task.name),
    )
    _publish(tracker, task, task_id, args, kwargs, dict(options))
    return accepted


async def accept_task_async(
    tracker: Tracker,
    client: AsyncClient,
    task: Any,
    args: tuple[Any, ...] | list[Any] = (),
    kwargs: dict[str, Any] | None = None,
    *,
    method: str = "POST",
    resource: dict[str, Any] | None = None,
    retry_after: int | None = None,
    public_url: str | None = None,
    **options: Any,
) -> Accepted:
    """:func:`accept_task` for async views: ``client`` (an :class:`AsyncClient` of the
    view's event loop) creates the operation; the publish runs in a thread."""
    task_id = str(uuid.uuid4())
    operation = await client.create(
        tracker.subscription_id, tracker.location, task_id, **tracker.initial_fields(task.name)
    )
    await asyncio.to_thread(_publish, tracker, task, task_id, args, kwargs, dict(options))
    return accepted_response(
        method, operation, body=resource, retry_after=retry_after, public_url=public_url
    )


def starlette_response(accepted: Accepted) -> Any:
    """The answer as a Starlette (or FastAPI) response."""
    from starlette.responses import JSONResponse, Response

    if accepted.body is None:
        return Response(status_code=accepted.status_code, headers=accepted.headers)
    return JSONResponse(accepted.body, accepted.status_code, accepted.headers)


def django_response(accepted: Accepted) -> Any:
    """The answer as a Django view's response: a ``JsonResponse`` of the resource, or, for
    a ``202`` without one, an empty ``HttpResponse`` (ARM's 202 has no body). Django is
    imported here, so that ``opstatus.celery`` does not need it."""
    from django.http import HttpResponse, JsonResponse

    if accepted.body is None:
        return HttpResponse(status=accepted.status_code, headers=accepted.headers)
    return JsonResponse(accepted.body, status=accepted.status_code, headers=accepted.headers)


def flask_response(accepted: Accepted) -> tuple[Any, int, dict[str, str]]:
    """The answer as a Flask view's return value (body, status, headers)."""
    return (
        accepted.body if accepted.body is not None else "",
        accepted.status_code,
        accepted.headers,
    )

"""Celery integration: every tracked Celery task is an opstatus operation.

``pip install "opstatus[celery]"``, then in the Celery app's module::

    from opstatus.celery import Tracker, report

    tracker = Tracker(app, endpoint=..., token=..., subscription_id=SUB, location="westus")

    @app.task(opstatus=True)           # or Tracker(..., track_all=True)
    def resize(disk_id):
        for step in range(10):
            ...
            report(step * 10, "copying")   # raises CancelRequested once someone cancels

The operation is created when the task is published (its id is the task id), and the
worker's started, progress, retry and outcome reach it from side threads (see
docs/celery.md). :func:`accept_task` answers a web request with ARM's 202.
"""

from __future__ import annotations

from celery import current_task

from ..client import CancelRequested
from .sender import Sender
from .tracking import Tracker, properties_of
from .web import (
    accept_task,
    accept_task_async,
    django_response,
    flask_response,
    starlette_response,
)


def report(percent: float | None = None, message: str | None = None) -> None:
    """Publish the running task's progress (and renew its operation's lease) without
    waiting on opstatus; raises :class:`CancelRequested` once a cancel was asked for.

    Outside a task, or in a task that is not tracked, it does nothing.
    """
    task = current_task
    if task is None or not task.request or task.request.id is None:
        return
    tracker = getattr(task.app, "opstatus_tracker", None)
    if not isinstance(tracker, Tracker) or not tracker.tracks(task.name):
        return
    tracker.report(task.request.id, task.name, percent, message)


__all__ = [
    "CancelRequested",
    "Sender",
    "Tracker",
    "accept_task",
    "accept_task_async",
    "django_response",
    "flask_response",
    "properties_of",
    "report",
    "starlette_response",
]

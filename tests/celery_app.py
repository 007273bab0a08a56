"""The Celery app the Celery tests run in real worker processes.

:func:`create_app` builds it from an environment (broker, queue, opstatus endpoint and
token), so that a test builds the same app to publish with; the worker builds ``app`` from
the environment the test gave it (``celery -A tests.celery_app worker``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from celery import Celery
from kombu import Exchange, Queue

from opstatus.celery import Tracker, report


class DiskFull(Exception):
    pass


def create_app(env: Mapping[str, str]) -> tuple[Celery, Tracker]:
    queue = env.get("OPSTATUS_TEST_QUEUE", "opstatus-test")
    app = Celery(
        "opstatus_tests",
        broker=env.get("OPSTATUS_TEST_BROKER", "redis://127.0.0.1:6379/15"),
        backend=env.get("OPSTATUS_TEST_BACKEND", "redis://127.0.0.1:6379/15"),
        set_as_current=False,
    )
    app.conf.update(
        task_default_queue=queue,
        task_queues=[Queue(queue, Exchange(queue), routing_key=queue)],
        task_default_exchange=queue,
        task_default_routing_key=queue,
        control_exchange=queue,
        event_exchange=f"{queue}.ev",
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        result_expires=600,
    )
    tracker = Tracker(
        app,
        endpoint=env["OPSTATUS_ENDPOINT"],
        token=env["OPSTATUS_TOKEN"],
        subscription_id=env["OPSTATUS_TEST_SUBSCRIPTION"],
        location="westus",
        namespace=env.get("OPSTATUS_TEST_NAMESPACE"),  # None: Microsoft.Cache
        api_version=env.get("OPSTATUS_TEST_API_VERSION"),
        cancel_poll_interval=0.2,
    )

    @app.task(name="tests.add", shared=False, opstatus=True)
    def add(x: int, y: int) -> dict[str, Any]:
        return {"sum": x + y}

    @app.task(name="tests.fail", shared=False, opstatus=True)
    def fail(message: str) -> None:
        raise DiskFull(message)

    @app.task(name="tests.steps", shared=False, opstatus=True)
    def steps(count: int, pause: float) -> dict[str, Any]:
        """Reports progress at each step; a cancel request stops it at the next one."""
        for step in range(count):
            report(100 * step / count, f"step {step} of {count}")
            time.sleep(pause)
        return {"steps": count}

    @app.task(name="tests.flaky", shared=False, opstatus=True, bind=True, max_retries=5)
    def flaky(self: Any, failures: int) -> dict[str, Any]:
        report(10 * (self.request.retries + 1), f"attempt {self.request.retries + 1}")
        if self.request.retries < failures:
            raise self.retry(exc=ConnectionError("the backend blinked"), countdown=0.1)
        return {"attempts": self.request.retries + 1}

    @app.task(name="tests.silent", shared=False, opstatus=True, opstatus_lease=2)
    def silent(seconds: float) -> None:
        """Runs without reporting, under a short lease (the heartbeat keeps it alive)."""
        time.sleep(seconds)

    @app.task(name="tests.stubborn", shared=False, opstatus=True, opstatus_terminate=True)
    def stubborn(seconds: float) -> None:
        """Never reports: only terminating its process stops it."""
        time.sleep(seconds)

    @app.task(name="tests.untracked", shared=False)
    def untracked() -> None:
        return None

    return app, tracker


if "OPSTATUS_ENDPOINT" in os.environ and "OPSTATUS_TEST_SUBSCRIPTION" in os.environ:
    app, tracker = create_app(os.environ)

"""Contoso.Widgets' work on Celery, tracked by opstatus.

Every ``resize`` task is an opstatus operation from the moment it is published; the worker
reports its progress and outcome (see docs/celery.md). Run a worker beside
``opstatus serve --providers docs/examples/providers.toml``::

    export OPSTATUS_ENDPOINT=http://127.0.0.1:8080
    export OPSTATUS_TOKEN=$(opstatus token --subject widgets --role Contributor --scope /)
    export WIDGETS_SUBSCRIPTION=e7b5a9d2-6b6a-4d2f-9143-20d9a10f5b8f
    cd docs/examples && celery -A celery_app worker --pool=threads --concurrency=8

``CELERY_BROKER_URL`` (default ``redis://127.0.0.1:6379/0``) names the broker, and
``CELERY_QUEUE`` (default ``widgets``) the queue.
"""

from __future__ import annotations

import os
import time
from typing import Any

from celery import Celery

from opstatus.celery import Tracker, report

BROKER = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
QUEUE = os.environ.get("CELERY_QUEUE", "widgets")
STEP_SECONDS = float(os.environ.get("WIDGETS_STEP_SECONDS", "0.5"))

app = Celery("widgets", broker=BROKER)
app.conf.update(
    task_default_queue=QUEUE,
    control_exchange=QUEUE,  # revokes reach this app's workers only
    broker_connection_retry_on_startup=True,
)
tracker = Tracker(
    app,
    subscription_id=os.environ.get("WIDGETS_SUBSCRIPTION", "e7b5a9d2-6b6a-4d2f-9143-20d9a10f5b8f"),
    location="westus",
    namespace="Contoso.Widgets",
    api_version="2024-01-01",
)


class UnsupportedSize(Exception):
    pass


@app.task(opstatus=True)
def resize(name: str, size: int) -> dict[str, Any]:
    """One step per unit of size; a cancel in opstatus stops it at the next step."""
    if size > 100:
        raise UnsupportedSize(f"Widgets come in sizes up to 100, not {size}.")
    for step in range(size):
        report(100 * step / size, f"step {step + 1} of {size}")
        time.sleep(STEP_SECONDS)
    return {"name": name, "size": size}

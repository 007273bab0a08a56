"""The Celery app of bench/celery_throughput.py: the same no-op body tracked and untracked.

Configured from the environment the benchmark gives its worker and itself.
"""

from __future__ import annotations

import os

from celery import Celery

from opstatus.celery import Tracker

QUEUE = os.environ.get("BENCH_CELERY_QUEUE", "opstatus-bench")

app = Celery(
    "opstatus_bench",
    broker=os.environ.get("BENCH_CELERY_BROKER", "redis://127.0.0.1:6379/14"),
    backend=os.environ.get("BENCH_CELERY_BROKER", "redis://127.0.0.1:6379/14"),
)
app.conf.update(
    task_default_queue=QUEUE,
    control_exchange=QUEUE,
    broker_connection_retry_on_startup=True,
    result_expires=3600,
    worker_prefetch_multiplier=16,
)
tracker = Tracker(
    app,
    subscription_id=os.environ.get("BENCH_SUBSCRIPTION", "e7b5a9d2-6b6a-4d2f-9143-20d9a10f5b8f"),
    location="westus",
)


@app.task(name="bench.tracked", opstatus=True)
def tracked() -> None:
    return None


@app.task(name="bench.untracked")
def untracked() -> None:
    return None

"""Celery tasks with and without opstatus tracking, on the same worker and broker, in one run.

A real ``opstatus serve`` (SQLite), the machine's Redis as broker and result backend, and one
``celery worker`` (``--pool``, ``--concurrency``). Each round publishes ``--tasks`` no-op
tasks onto a queue the worker does not consume yet (tracked ones: each publish creates its
operation), then tells the worker to consume it and times the drain until every result is in
Celery's backend: the worker's throughput. Rounds alternate untracked and tracked, and the
ratio compares their medians. After every tracked round, each operation's ``endTime`` in
opstatus is compared with the ``date_done`` Celery recorded: the lag of the outcome. The
operation's ``endTime`` is the worker's moment of the outcome, so the arrival is read from
the store itself: the terminal write's ``updated_at`` in the server's SQLite file.

    python -m bench.celery_throughput --tasks 1000 --rounds 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import redis

from bench.common import ROOT, SUB, opstatus_args, record, scratch, started
from opstatus import Client
from opstatus.auth import load_or_create_key, mint_token


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def drain(app: Any, queue: str, ids: list[str], backend: redis.Redis) -> float:
    """Let the worker consume ``queue``; seconds until every task's result is stored."""
    keys = [f"celery-task-meta-{i}" for i in ids]
    start = time.perf_counter()
    app.control.add_consumer(queue, reply=True, timeout=5)
    while True:
        done = sum(backend.exists(*keys[n : n + 500]) for n in range(0, len(keys), 500))
        if done == len(keys):
            elapsed = time.perf_counter() - start
            break
        time.sleep(0.01)
    app.control.cancel_consumer(queue, reply=True, timeout=5)
    return elapsed


def arrivals(database: Path) -> dict[str, str]:
    """When the server wrote each Succeeded bench operation last: its outcome's arrival."""
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as conn:
        rows = conn.execute(
            "SELECT operation_id, updated_at FROM operations "
            "WHERE kind = 'bench.tracked' AND status = 'Succeeded'"
        ).fetchall()
    return dict(rows)


def lags(
    client: Client, ids: list[str], backend: redis.Redis, database: Path, timeout: float = 30
) -> list[float]:
    """Per task: when its outcome reached opstatus minus Celery's date_done, once every one
    is terminal."""
    wanted = set(ids)
    deadline = time.monotonic() + timeout
    done: set[str] = set()
    while time.monotonic() < deadline:
        for op in client.list(SUB, "westus", kind="bench.tracked", status="Succeeded"):
            if op.name in wanted:
                done.add(op.name)
        if len(done) == len(wanted):
            break
        time.sleep(0.2)
    missing = wanted - done
    if missing:
        raise SystemExit(f"{len(missing)} operations not Succeeded within {timeout} s")
    ended = arrivals(database)
    found = []
    for task_id in ids:
        meta = json.loads(backend.get(f"celery-task-meta-{task_id}") or b"{}")
        celery_done = parse_time(meta["date_done"])
        if celery_done.tzinfo is None:
            celery_done = celery_done.replace(tzinfo=parse_time(ended[task_id]).tzinfo)
        found.append((parse_time(ended[task_id]) - celery_done).total_seconds())
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pool", default="threads")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--redis", default=f"redis://127.0.0.1:6379/{1 + os.getpid() % 15}")
    args = parser.parse_args()

    queue = f"opstatus-bench-{os.getpid()}"
    with scratch() as home, started(opstatus_args(home)) as server:
        token = mint_token(load_or_create_key(home), "bench", [("Contributor", "/")], 3600 * 4)
        env = {
            "OPSTATUS_ENDPOINT": server.url,
            "OPSTATUS_TOKEN": token,
            "BENCH_CELERY_BROKER": args.redis,
            "BENCH_CELERY_QUEUE": queue,
            "BENCH_SUBSCRIPTION": SUB,
        }
        os.environ.update(env)
        from bench.celery_tasks import app, tracked, untracked

        backend = redis.Redis.from_url(args.redis)
        log = home / "worker.log"
        with open(log, "ab") as out:
            worker = subprocess.Popen(
                [
                    sys.executable, "-m", "celery", "-A", "bench.celery_tasks", "worker",
                    "-Q", queue, "--pool", args.pool, "--concurrency", str(args.concurrency),
                    "--without-gossip", "--without-mingle", "--without-heartbeat",
                    "--loglevel", "WARNING",
                ],
                cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            time.sleep(1)
            while not app.control.ping(timeout=1):
                if worker.poll() is not None:
                    raise SystemExit(log.read_text())
            rates: dict[str, list[float]] = {"untracked": [], "tracked": []}
            publish: dict[str, list[float]] = {"untracked": [], "tracked": []}
            all_lags: list[float] = []
            with Client(server.url, token) as client:
                for n in range(args.rounds):
                    for kind, task in (("untracked", untracked), ("tracked", tracked)):
                        round_queue = f"{queue}-{kind}-{n}"
                        start = time.perf_counter()
                        ids = [task.apply_async(queue=round_queue).id for _ in range(args.tasks)]
                        publish[kind].append(args.tasks / (time.perf_counter() - start))
                        rate = args.tasks / drain(app, round_queue, ids, backend)
                        rates[kind].append(rate)
                        line = f"round {n} {kind:9}: {rate:7.0f} tasks/s"
                        if kind == "tracked":
                            found = lags(client, ids, backend, home / "opstatus.db")
                            all_lags += found
                            line += f", outcome lag max {max(found):.3f} s"
                        print(line, flush=True)
                        backend.delete(*[f"celery-task-meta-{i}" for i in ids])
        finally:
            worker.terminate()
            worker.wait(30)

    untracked_rate = statistics.median(rates["untracked"])
    tracked_rate = statistics.median(rates["tracked"])
    ordered = sorted(all_lags)
    result = {
        "tasks": args.tasks,
        "pool": args.pool,
        "concurrency": args.concurrency,
        "untracked_per_s": round(untracked_rate),
        "tracked_per_s": round(tracked_rate),
        "ratio": round(tracked_rate / untracked_rate, 3),
        "publish_untracked_per_s": round(statistics.median(publish["untracked"])),
        "publish_tracked_per_s": round(statistics.median(publish["tracked"])),
        "lag_p50_s": round(ordered[len(ordered) // 2], 3),
        "lag_p99_s": round(ordered[int(len(ordered) * 0.99)], 3),
        "lag_max_s": round(ordered[-1], 3),
    }
    print(json.dumps(result, indent=2))
    record("celery_throughput", result)


if __name__ == "__main__":
    main()

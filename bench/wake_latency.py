"""How soon a held GET (``Prefer: wait``) answers after the write that ends its operation.

    python bench/wake_latency.py [--dsn postgresql://postgres@127.0.0.1:5432/test] [--n 200]

Three cases in one command: the waiter on the instance that takes the write, with SQLite and
with PostgreSQL (target: p99 under 10 ms), and across two instances on one PostgreSQL
database, the waiter on B and the write through A (target: p99 under 50 ms; B hears of it
through LISTEN/NOTIFY). PostgreSQL runs in a throwaway database beside --dsn (created,
migrated, dropped at the end). Each round: create an operation, hold a GET with
``Prefer: wait=30`` and the ETag it has in If-None-Match (so that a waiter that reads after
the write answers at once rather than wait for a later one), give it time to start waiting,
PATCH it to Succeeded, and time the held GET's answer from the moment the PATCH was
acknowledged (and from the moment it was sent). Prints p50, p90, p99 and max in
milliseconds; appends to bench/results/wake_latency.jsonl.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import SUB, opstatus_args, record, scratch, server  # noqa: E402
from bench.pg import DEFAULT_DSN, throwaway_database  # noqa: E402
from opstatus.auth import load_or_create_key, mint_token  # noqa: E402

PATH = f"/subscriptions/{SUB}/providers/Microsoft.Cache/locations/westus/operationsStatus"
API = "?api-version=2025-07-01"
#: How long the GET is held before the write: time for the server to read and start waiting.
SETTLE = 0.05
#: p99 targets in milliseconds from the write's acknowledgement.
TARGETS = {
    "sqlite, same instance": 10.0,
    "postgres, same instance": 10.0,
    "postgres, across instances": 50.0,
}


async def answered(request: Awaitable[httpx.Response]) -> tuple[httpx.Response, float]:
    """The response and when it arrived (not when the caller got round to awaiting it)."""
    response = await request
    return response, time.perf_counter()


async def measure(a: str, b: str, token: str, n: int, tag: str) -> tuple[list[float], list[float]]:
    """``n`` rounds of: wait on ``b``, end the operation through ``a``. Seconds from the
    PATCH's acknowledgement and from its sending to the waiter's answer."""
    headers = {"Authorization": f"Bearer {token}"}
    from_ack, from_send = [], []
    async with (
        httpx.AsyncClient(base_url=a, headers=headers, timeout=60) as on_a,
        httpx.AsyncClient(base_url=b, headers=headers, timeout=60) as on_b,
    ):
        for i in range(n):
            op = f"{PATH}/{tag}-{i}{API}"
            created = await on_a.put(op, json={"status": "InProgress"})
            assert created.status_code == 201, created.text
            seen = {"Prefer": "wait=30", "If-None-Match": created.headers["etag"]}
            held = asyncio.create_task(answered(on_b.get(op, headers=seen)))
            await asyncio.sleep(SETTLE)
            sent = time.perf_counter()
            patched = await on_a.patch(op, json={"status": "Succeeded"})
            acked = time.perf_counter()
            answer, woken = await held
            assert patched.status_code == 200 and answer.status_code == 200, answer.text
            assert answer.headers["etag"] == patched.headers["etag"], "woke without the write"
            from_ack.append(max(woken - acked, 0.0))
            from_send.append(woken - sent)
    return from_ack, from_send


def percentiles(seconds: list[float]) -> dict[str, float]:
    """p50, p90, p99 and max, in milliseconds (nearest rank)."""
    ordered = sorted(seconds)

    def pick(q: float) -> float:
        return ordered[min(int(len(ordered) * q), len(ordered) - 1)] * 1000

    return {"p50": pick(0.5), "p90": pick(0.9), "p99": pick(0.99), "max": ordered[-1] * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    parser.add_argument("--n", type=int, default=200, help="rounds per case")
    args = parser.parse_args()
    cases: dict[str, tuple[list[float], list[float]]] = {}
    with scratch() as home:
        scope = f"/subscriptions/{SUB}"
        token = mint_token(load_or_create_key(home), "bench", [("Contributor", scope)])
        with server(opstatus_args(home)) as url:
            cases["sqlite, same instance"] = asyncio.run(measure(url, url, token, args.n, "lite"))
        with (
            throwaway_database(args.dsn, "wake", home) as store,
            server(opstatus_args(home, store)) as a,
            server(opstatus_args(home, store)) as b,
        ):
            cases["postgres, same instance"] = asyncio.run(measure(a, a, token, args.n, "pg"))
            cases["postgres, across instances"] = asyncio.run(measure(a, b, token, args.n, "x"))
    report(cases, args.n)


def report(cases: dict[str, tuple[list[float], list[float]]], n: int) -> None:
    print(
        f"\nheld GET woken by the PATCH to Succeeded, {n} rounds each, ms from its "
        f"acknowledgement; load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'case':<28}{'p50':>7}{'p90':>7}{'p99':>7}{'max':>7}{'target':>8}{'met':>5}"
        f"{'p99 from send':>15}"
    )
    for name, (from_ack, from_send) in cases.items():
        ack, send = percentiles(from_ack), percentiles(from_send)
        met = "yes" if ack["p99"] < TARGETS[name] else "NO"
        print(
            f"{name:<28}{ack['p50']:>7.1f}{ack['p90']:>7.1f}{ack['p99']:>7.1f}{ack['max']:>7.1f}"
            f"{TARGETS[name]:>8.0f}{met:>5}{send['p99']:>15.1f}"
        )
        record(
            "wake_latency",
            {
                "case": name,
                "rounds": n,
                "load_average": os.getloadavg()[0],
                "from_ack_ms": ack,
                "from_send_ms": send,
            },
        )


if __name__ == "__main__":
    main()

"""How soon a waiter on one opstatus instance wakes after a write through another.

    python bench/wake_latency.py [--dsn postgresql://postgres@127.0.0.1:5432/test] [--n 300]

Starts two ``opstatus serve`` processes (A and B) on a throwaway PostgreSQL database (created,
migrated with ``opstatus migrate``, dropped at the end). For each round: create an operation
on A, hold a GET on B with ``Prefer: wait=30`` (and the version it has in If-None-Match, so
that B never waits for a later write if it reads after this one), PATCH it on A, and time
B's answer from the moment A acknowledged the PATCH, and from the moment it was sent.
Prints p50, p90, p99 and max in milliseconds; the target is p99 under 50 ms from the
acknowledgement.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import SUB, free_port  # noqa: E402
from bench.pg import DEFAULT_DSN, throwaway_database  # noqa: E402

PATH = f"/subscriptions/{SUB}/providers/Microsoft.Cache/locations/westus/operationsStatus"
API = "?api-version=2025-07-01"
#: How long B holds the GET before A writes: time for B to have read and started waiting.
SETTLE = 0.05


def opstatus(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "opstatus", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=True)


def serve(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "opstatus", "serve", "--port", str(port), "--log-level",
             "warning", "--rate-limit", "0"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"server did not start: {log.read_text()}")


async def measure(a: str, b: str, token: str, n: int) -> tuple[list[float], list[float]]:
    headers = {"Authorization": f"Bearer {token}"}
    from_ack, from_send = [], []
    async with (
        httpx.AsyncClient(base_url=a, headers=headers, timeout=60) as on_a,
        httpx.AsyncClient(base_url=b, headers=headers, timeout=60) as on_b,
    ):
        for i in range(n):
            op = f"{PATH}/wake-{i}{API}"
            created = await on_a.put(op, json={})
            assert created.status_code == 201
            seen = {"Prefer": "wait=30", "If-None-Match": created.headers["etag"]}
            held = asyncio.create_task(on_b.get(op, headers=seen))
            await asyncio.sleep(SETTLE)
            sent = time.perf_counter()
            patched = await on_a.patch(op, json={"percentComplete": 50})
            acked = time.perf_counter()
            answer = await held
            woken = time.perf_counter()
            assert patched.status_code == 200 and answer.status_code == 200
            assert answer.headers["etag"] == patched.headers["etag"], "woke without the write"
            from_ack.append(max(woken - acked, 0.0))
            from_send.append(woken - sent)
    return from_ack, from_send


def summary(name: str, values: list[float]) -> str:
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(int(len(ordered) * q), len(ordered) - 1)] * 1000

    return (
        f"{name:<22} {statistics.median(ordered) * 1000:7.1f} {pick(0.9):7.1f} "
        f"{pick(0.99):7.1f} {ordered[-1] * 1000:7.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    parser.add_argument("--n", type=int, default=300)
    args = parser.parse_args()
    procs: list[subprocess.Popen[bytes]] = []
    with (
        tempfile.TemporaryDirectory() as home,
        throwaway_database(args.dsn, "wake", Path(home)) as url,
    ):
        try:
            env = dict(os.environ, OPSTATUS_HOME=home, OPSTATUS_STORE=url)
            log = Path(home) / "servers.log"
            (proc_a, a), (proc_b, b) = serve(env, log), serve(env, log)
            procs += [proc_a, proc_b]
            token = opstatus(
                "token", "--subject", "bench", "--role", "Reader", "--role", "Contributor",
                "--scope", f"/subscriptions/{SUB}", "--scope", f"/subscriptions/{SUB}", env=env,
            ).stdout.strip()  # fmt: skip
            from_ack, from_send = asyncio.run(measure(a, b, token, args.n))
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(10)

    print(f"waiter on B woken by a PATCH on A, {args.n} rounds, milliseconds")
    print(f"{'measured from':<22} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7}")
    print(summary("A's acknowledgement", from_ack))
    print(summary("the PATCH being sent", from_send))


if __name__ == "__main__":
    main()

"""Webhook delivery throughput from one server process, against a baseline in the same run.

    python bench/webhooks.py [--n 5000] [--outage 60] [--store postgres [--dsn URL]]

The receiver (bench/webhook_sink.py) is down while ``--n`` operations are created with a
``callbackUrl``: each create commits its event and its delivery (the outbox) and answers.
After ``--outage`` seconds the receiver starts, and the bench times the drain: from the
receiver's start until it has every delivery, signed, each recorded as delivered by the
server. The baseline is the same number of POSTs, signed the same way, sent by a bare
loop with the server's concurrency (64) to the same receiver, over the server's own
transport (``opstatus.webhook_http``): what a sender that keeps no outbox could do on this
machine. The server's store is an SQLite file, or with ``--store postgres`` a throwaway
PostgreSQL database next to ``--dsn``'s, dropped at the end. Prints both rates and their
ratio; appends to bench/results/webhooks.jsonl.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import SUB, free_port, opstatus_args, record, scratch, started  # noqa: E402
from bench.pg import DEFAULT_DSN, throwaway_database  # noqa: E402
from opstatus.auth import load_or_create_key, mint_token  # noqa: E402
from opstatus.webhook_http import Origin, Pool  # noqa: E402
from opstatus.webhooks import new_secret, signature  # noqa: E402

PATH = f"/subscriptions/{SUB}/providers/Microsoft.Cache/locations/westus/operationsStatus"
API = "?api-version=2025-07-01"
ROOT = Path(__file__).resolve().parent.parent


def sink(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "webhook_sink.py"), str(port)])
    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/count", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("the sink did not start")


def count(port: int) -> int:
    return int(httpx.get(f"http://127.0.0.1:{port}/count", timeout=5).text)


async def create_all(url: str, token: str, n: int, callback: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        semaphore = asyncio.Semaphore(32)

        async def one(i: int) -> None:
            async with semaphore:
                answer = await client.put(f"{PATH}/w{i}{API}", json={"callbackUrl": callback})
                assert answer.status_code == 201, answer.text

        await asyncio.gather(*(one(i) for i in range(n)))


async def baseline(port: int, n: int, concurrency: int = 64) -> float:
    """``n`` signed POSTs by a bare loop over the server's own transport
    (``opstatus.webhook_http.Pool``, kept-alive connections), ``concurrency`` at once."""
    secret = new_secret()
    body = b'{"type":"operation.created","timestamp":"2025-01-01T00:00:00.000Z","data":{}}'
    pool = Pool(concurrency, 64 * 1024)
    origin = Origin("http", "127.0.0.1", port, "127.0.0.1")
    queue = list(range(n))
    start = time.perf_counter()

    async def worker() -> None:
        while queue:
            i = queue.pop()
            stamp = int(time.time())
            head = (
                f"POST /b HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nwebhook-id: msg_{i}\r\n"
                f"webhook-timestamp: {stamp}\r\n"
                f"webhook-signature: {signature(secret, f'msg_{i}', stamp, body)}\r\n"
                f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
            )
            answer = await pool.post(origin, head.encode() + body)
            assert answer.status == 200

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    pool.close()
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--outage", type=float, default=60.0)
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--dsn", default=DEFAULT_DSN, help="PostgreSQL to make it beside")
    args = parser.parse_args()
    port = free_port()
    with scratch() as home, contextlib.ExitStack() as stack:
        token = mint_token(load_or_create_key(home), "bench", [("Owner", "/")], 3600)
        store = None
        if args.store == "postgres":
            store = stack.enter_context(throwaway_database(args.dsn, "webhooks", home))
        serve = opstatus_args(home, store) + [
            "--webhook-allow-http", "--webhook-allow-network", "127.0.0.0/8",
            "--webhook-retry-base", "1s", "--webhook-retry-max", "2s",
            "--webhook-max-attempts", "100",
        ]  # fmt: skip
        with started(serve) as running:
            down = time.perf_counter()
            asyncio.run(create_all(running.url, token, args.n, f"http://127.0.0.1:{port}/w"))
            created = time.perf_counter() - down
            time.sleep(max(0.0, args.outage - created))
            receiver = sink(port)
            try:
                start = time.perf_counter()
                while count(port) < args.n:
                    time.sleep(0.02)
                drained = args.n / (time.perf_counter() - start)
                base = asyncio.run(baseline(port, args.n))
            finally:
                receiver.terminate()
                receiver.wait()
    result = {
        "store": args.store,
        "n": args.n,
        "outage_s": args.outage,
        "creates_per_s": round(args.n / created),
        "drain_per_s": round(drained),
        "baseline_per_s": round(base),
        "ratio": round(drained / base, 2),
    }
    print(result)
    record("webhooks", result)


if __name__ == "__main__":
    main()

"""The dashboard's requests at a million operations, and the tallies at 1k against 10M.

    python bench/ui.py [--ops 1000000] [--requests 200] [--tally-sizes 1000,10000000]

Part one seeds an SQLite store with ``--ops`` operations in one subscription (a mix of
statuses, four providers, five locations, finished ones with end times, running ones with
leases, some of those lapsed) and a few thousand in nine others, starts ``opstatus serve`` on
it, and sends each request the dashboard makes ``--requests`` times, one after another, with
a Reader's token over ``/``: the counts of every subscription and of one, a provider's counts,
running now, recent failures, stalled, a filtered list page and the page after it (its
nextLink), an idPrefix list, an order by start time, and a status read, the baseline of the
same run. Prints each one's p50 and p99 against the 100 ms bar and the status read.

Part two bulk-loads SQLite files of each ``--tally-sizes`` size (the rows inserted by SQLite
itself in one transaction, with the tally triggers on, as the store's own writes see them)
and times ``Store.tallies`` on each, with the operations' own count (``Store.counts``) at each
size for contrast; prints the ratio of the largest to the smallest.

Appends one JSON line to bench/results/ui.jsonl.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import SUB, opstatus_args, record, scratch, sqlite_schema, started  # noqa: E402
from opstatus.auth import load_or_create_key, mint_token  # noqa: E402
from opstatus.models import format_time  # noqa: E402
from opstatus.queries import OperationQuery  # noqa: E402
from opstatus.stores.sqlite import SQLiteStore  # noqa: E402

BAR_MS = 100.0
API = "api-version=2025-07-01"
OTHER_SUBS = [f"0000000{i}-0000-4000-8000-000000000000" for i in range(1, 10)]
NAMESPACES = ["Microsoft.Cache", "Microsoft.Compute", "Microsoft.Storage", "Contoso.Widgets"]
LOCATIONS = ["westus", "eastus", "northeurope", "westeurope", "japaneast"]

#: One row per i in [0, count): ids op-%07d; the status by i % 1000: 5 % running (of which
#: one in twenty with a lease that lapsed ten minutes ago), 8 % failed, 2 % canceled, the rest
#: succeeded; created one after another over the 20 days before now; finished ones ended up to
#: ten minutes after they started and are kept 30 days after that.
_SEED = """
WITH RECURSIVE n(i) AS (
    SELECT 0 WHERE :count > 0 UNION ALL SELECT i + 1 FROM n WHERE i < :count - 1
),
shaped AS (
    SELECT i,
        CASE WHEN i % 1000 < 50 THEN 'InProgress' WHEN i % 1000 < 130 THEN 'Failed'
             WHEN i % 1000 < 150 THEN 'Canceled' ELSE 'Succeeded' END AS status,
        :start + i * :step AS created,
        (i * 7919) % 4 AS ns, (i * 104729) % 5 AS loc
    FROM n
)
INSERT INTO operations (subscription_id, operation_key, operation_id, namespace, location,
    status, start_time, end_time, etag, created_at, updated_at, create_digest, kind,
    lease_seconds, lease_expires_at, expires_at)
SELECT :sub, printf('op-%07d', i), printf('op-%07d', i),
    CASE ns WHEN 0 THEN 'Microsoft.Cache' WHEN 1 THEN 'Microsoft.Compute'
        WHEN 2 THEN 'Microsoft.Storage' ELSE 'Contoso.Widgets' END,
    CASE loc WHEN 0 THEN 'westus' WHEN 1 THEN 'eastus' WHEN 2 THEN 'northeurope'
        WHEN 3 THEN 'westeurope' ELSE 'japaneast' END,
    status,
    strftime('%Y-%m-%dT%H:%M:%S.000Z', created, 'unixepoch'),
    CASE WHEN status = 'InProgress' THEN NULL
        ELSE strftime('%Y-%m-%dT%H:%M:%S.000Z', created + i % 600, 'unixepoch') END,
    printf('%016x', i),
    strftime('%Y-%m-%dT%H:%M:%S.000Z', created, 'unixepoch'),
    strftime('%Y-%m-%dT%H:%M:%S.000Z', created, 'unixepoch'),
    'seed',
    CASE i % 3 WHEN 0 THEN 'backup' WHEN 1 THEN 'resize' ELSE NULL END,
    CASE WHEN status = 'InProgress' THEN 3600 END,
    CASE WHEN status != 'InProgress' THEN NULL
        WHEN i % 20000 < 1000 THEN strftime('%Y-%m-%dT%H:%M:%S.000Z', :now - 600, 'unixepoch')
        ELSE strftime('%Y-%m-%dT%H:%M:%S.000Z', :now + 3600, 'unixepoch') END,
    CASE WHEN status = 'InProgress' THEN NULL
        ELSE strftime('%Y-%m-%dT%H:%M:%S.000Z', created + i % 600 + 30 * 86400, 'unixepoch') END
FROM shaped
"""


def seed(path: Path, counts: dict[str, int]) -> float:
    """Bulk-load operations (``counts``: per subscription) with the triggers on, in one
    transaction; returns the seconds it took."""
    sqlite_schema(path)
    now = int(time.time())
    begun = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=OFF")  # a failed seed is thrown away
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-524288")  # 512 MiB
        conn.execute("BEGIN")
        for sub, count in counts.items():
            start = now - 20 * 86400
            step = 20 * 86400 / max(count, 1)
            values = {"count": count, "start": start, "step": step, "sub": sub, "now": now}
            conn.execute(_SEED, values)
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode=WAL")  # as opstatus leaves its files
    finally:
        conn.close()
    return time.perf_counter() - begun


def timed(
    client: httpx.Client,
    url: str | Callable[[], str],
    times: int,
    check: Callable[[dict], None],
) -> list[float]:
    """Milliseconds of each of ``times`` GETs of ``url`` (or of what it returns each
    time), one after another."""
    spent = []
    for _ in range(times):
        target = url() if callable(url) else url
        begun = time.perf_counter()
        response = client.get(target)
        spent.append((time.perf_counter() - begun) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{target}: {response.status_code} {response.text[:300]}")
        check(response.json())
    return spent


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def dashboard(home: Path, ops: int, requests: int) -> dict[str, dict[str, float]]:
    path = home / "opstatus.db"
    spent = seed(path, {SUB: ops, **{sub: 2000 for sub in OTHER_SUBS}})
    print(f"seeded {ops:,} operations (+{2000 * len(OTHER_SUBS):,} elsewhere) in {spent:.0f} s")
    token = mint_token(load_or_create_key(home), "bench", [("Reader", "/")], 24 * 3600)
    providers = home / "providers.toml"  # the seed's other providers, with its api-version
    providers.write_text(
        "".join(
            f'[[provider]]\nnamespace = "{ns}"\napi_versions = ["2025-07-01"]\n'
            for ns in NAMESPACES[1:]
        )
    )
    args = [
        *opstatus_args(home),
        *("--providers", str(providers), "--lease-grace", "1d", "--maintenance-interval", "0"),
    ]
    subscription = f"/subscriptions/{SUB}"
    provider = f"{subscription}/providers/Microsoft.Cache"
    location = f"{provider}/locations/westus"
    rng = random.Random(3)
    results: dict[str, dict[str, float]] = {}
    with started(args) as server:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
            first = client.get(
                f"{location}/operationsStatus?{API}&status=Succeeded&kind=backup"
                "&startedAfter=2000-01-01T00:00:00Z&maxpagesize=50"
            ).json()
            second = first["nextLink"]

            def nonempty(body: dict) -> None:
                assert body.get("value") or body.get("subscriptions") or body.get("total")

            def anything(body: dict) -> None:
                pass

            reads = iter([status_path(rng.randrange(ops)) for _ in range(requests + 3)])

            cases: dict[str, tuple[str | Callable[[], str], Callable[[dict], None]]] = {
                "global counts": (f"/operationsStatusCounts?{API}", nonempty),
                "subscription counts": (f"{subscription}/operationsStatusCounts?{API}", nonempty),
                "location counts": (f"{location}/operationsStatusCounts?{API}", nonempty),
                "running now": (
                    f"{subscription}/operationsStatus?{API}&status=InProgress&maxpagesize=50",
                    nonempty,
                ),
                "recent failures": (
                    f"{subscription}/operationsStatus?{API}&status=Failed"
                    "&orderby=endTime%20desc&maxpagesize=50",
                    nonempty,
                ),
                "stalled": (
                    f"{subscription}/operationsStatus?{API}&stalled=true&maxpagesize=50",
                    nonempty,
                ),
                "filtered page": (
                    f"{location}/operationsStatus?{API}&status=Succeeded&kind=backup"
                    "&startedAfter=2000-01-01T00:00:00Z&maxpagesize=50",
                    nonempty,
                ),
                "next page": (second, nonempty),
                "idPrefix": (
                    f"{subscription}/operationsStatus?{API}&idPrefix=op-00123&maxpagesize=50",
                    nonempty,
                ),
                "by start time": (
                    f"{provider}/operationsStatus?{API}&orderby=startTime%20asc&maxpagesize=50",
                    nonempty,
                ),
                "status read": (lambda: next(reads), anything),  # a random operation each
            }
            for name, (url, check) in cases.items():
                timed(client, url, 3, check)  # warm
                spent_ms = timed(client, url, requests, check)
                results[name] = {"p50_ms": p(spent_ms, 0.5), "p99_ms": p(spent_ms, 0.99)}
    return results


def status_path(i: int) -> str:
    """Where operation ``i`` of the seed is read: its provider and location as _SEED chose."""
    namespace, location = NAMESPACES[(i * 7919) % 4], LOCATIONS[(i * 104729) % 5]
    return (
        f"/subscriptions/{SUB}/providers/{namespace}/locations/{location}/operationsStatus/"
        f"op-{i:07d}?{API}"
    )


def tally_reads(home: Path, sizes: list[int], requests: int) -> dict[int, dict[str, float]]:
    """``Store.tallies`` (and, for contrast, ``Store.counts``) at each size."""
    found: dict[int, dict[str, float]] = {}
    for size in sizes:
        path = home / f"tallies-{size}.db"
        spent = seed(path, {SUB: size})
        print(f"seeded {size:,} operations for the tally read in {spent:.0f} s")

        async def measure(path: Path = path) -> dict[str, float]:
            store = SQLiteStore(path)
            await store.open()
            try:
                now = format_time(datetime.now(UTC))
                tallied = []
                for _ in range(requests):
                    begun = time.perf_counter()
                    await store.tallies(None, live_at=now)
                    tallied.append((time.perf_counter() - begun) * 1000)
                counted = []
                for _ in range(3):
                    begun = time.perf_counter()
                    await store.counts(OperationQuery(subscription_id=SUB, live_at=now))
                    counted.append((time.perf_counter() - begun) * 1000)
                return {
                    "tallies_p50_ms": statistics.median(tallied),
                    "tallies_p99_ms": p(tallied, 0.99),
                    "counts_p50_ms": statistics.median(counted),
                }
            finally:
                await store.close()

        found[size] = asyncio.run(measure())
        path.unlink()
        for extra in ("-wal", "-shm"):
            Path(f"{path}{extra}").unlink(missing_ok=True)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--tally-sizes", default="1000,10000000")
    parser.add_argument("--skip-dashboard", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.tally_sizes.split(",") if s]
    result: dict[str, object] = {"ops": args.ops, "requests": args.requests}
    with scratch() as home:
        if not args.skip_dashboard:
            figures = dashboard(home, args.ops, args.requests)
            base = figures["status read"]["p50_ms"]
            print(
                f"\n{args.ops:,} operations in one subscription, SQLite; "
                f"{args.requests} sequential requests each; bar {BAR_MS:g} ms"
            )
            print(f"{'request':22} {'p50 ms':>8} {'p99 ms':>8} {'p50/read':>9}  bar")
            for name, f in figures.items():
                ok = (
                    "ok"
                    if f["p99_ms"] <= BAR_MS
                    else ("p50 ok" if f["p50_ms"] <= BAR_MS else "OVER")
                )
                print(
                    f"{name:22} {f['p50_ms']:8.2f} {f['p99_ms']:8.2f} "
                    f"{f['p50_ms'] / base:9.1f}  {ok}"
                )
            result["dashboard"] = figures
        if sizes:
            tallies = tally_reads(home, sizes, args.requests)
            print(
                f"\n{'operations':>12} {'tallies p50 ms':>15} {'p99 ms':>8} {'counting p50 ms':>16}"
            )
            for size, f in tallies.items():
                print(
                    f"{size:12,} {f['tallies_p50_ms']:15.3f} {f['tallies_p99_ms']:8.3f} "
                    f"{f['counts_p50_ms']:16.1f}"
                )
            low, high = tallies[min(sizes)], tallies[max(sizes)]
            ratio = high["tallies_p50_ms"] / low["tallies_p50_ms"]
            print(f"tallies p50 at {max(sizes):,} / at {min(sizes):,}: {ratio:.2f}")
            result["tallies"] = {str(k): v for k, v in tallies.items()}
            result["tally_ratio"] = ratio
    record("ui", result)


if __name__ == "__main__":
    main()

"""What the access log costs a status read: sequential reads on one keep-alive connection.

    python bench/access_log.py --reads 5000

Three servers on one SQLite home, each read the same operation --reads times after a
warm-up: the default (fast reads on), ``--access-log FILE`` (which turns the fast reads
off, so that every read is logged), and ``--no-fast-reads`` (the same path without the
log line). Prints the median and p99 of each and appends them to
bench/results/access_log.jsonl. One connection, no wrk: the figure is a read's latency,
not the server's throughput (read_path.py measures that).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import SUB, opstatus_args, record, scratch, server  # noqa: E402

VARIANTS = {
    "fast reads (default)": [],
    "--access-log FILE": ["--access-log", "{log}"],
    "--no-fast-reads": ["--no-fast-reads"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=5000)
    args = parser.parse_args()
    from opstatus.auth import load_or_create_key, mint_token

    results: dict[str, object] = {"reads": args.reads}
    with scratch() as folder:
        home = folder / "home"
        token = mint_token(load_or_create_key(home), "bench", [("Owner", "/")], 3600)
        path = (
            f"/subscriptions/{SUB}/providers/Microsoft.Cache/locations/westus"
            "/operationsStatus/bench?api-version=2025-07-01"
        )
        for label, extra in VARIANTS.items():
            extra = [e.replace("{log}", str(folder / "access.log")) for e in extra]
            with server([*opstatus_args(home), *extra]) as url:
                headers = {"Authorization": f"Bearer {token}"}
                with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
                    client.put(path, json={})
                    for _ in range(300):
                        client.get(path)
                    times = []
                    for _ in range(args.reads):
                        start = time.perf_counter()
                        client.get(path).raise_for_status()
                        times.append(time.perf_counter() - start)
            times.sort()
            median = statistics.median(times) * 1000
            p99 = times[int(len(times) * 0.99)] * 1000
            print(f"{label:22} median {median:.3f} ms  p99 {p99:.3f} ms")
            results[label] = {"median_ms": round(median, 3), "p99_ms": round(p99, 3)}
    record("access_log", results)


if __name__ == "__main__":
    main()

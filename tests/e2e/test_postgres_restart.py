"""PostgreSQL stops and starts again while requests flow; opstatus rides it out.

The test runs a PostgreSQL cluster of its own (initdb into a temporary folder, its own port,
the machine's pg_ctl), so stopping it disturbs no one else. Producers keep creating and
finishing operations and readers keep reading and waiting, through ``pg_ctl stop -m fast``
and a start. While the database is away callers get 503 with Retry-After in ARM's envelope,
never a 500 and never a hung request; producers retry after Retry-After, as clients should.
Afterwards every acknowledged write is there, and the same opstatus process serves again.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import pg
from tests.support import SUB_A, ServerProcess, status_path

from .conftest import bearer

pytestmark = pytest.mark.e2e

PRODUCERS, READERS = 4, 2
TIMEOUT = 15  # no request may take longer: a hung request fails the test


@pytest.fixture
def cluster() -> Iterator[pg.Cluster]:
    own = pg.Cluster().init()  # skips (or under CI=true fails) without initdb and pg_ctl
    try:
        own.start()
        yield own
    finally:
        own.destroy()


@dataclass
class Traffic:
    """Every answer seen, by status; acknowledged states; anything that must not happen."""

    url: str
    headers: dict[str, str]
    statuses: Counter[int] = field(default_factory=Counter)
    acked: dict[str, tuple[dict[str, Any], str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    #: Set once PostgreSQL is back: then each producer must get one full operation through.
    back: threading.Event = field(default_factory=threading.Event)
    resumed: Counter[int] = field(default_factory=Counter)

    def send(self, http: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request; a 503 is checked for ARM's envelope and Retry-After; anything but
        200, 201 and 503 is a problem (nothing is deleted, so not even a 404)."""
        start = time.monotonic()
        try:
            response = http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            with self.lock:
                self.problems.append(f"{method} {path}: {type(exc).__name__} {exc}")
            raise
        elapsed = time.monotonic() - start
        with self.lock:
            self.statuses[response.status_code] += 1
            if response.status_code == 503:
                error = response.json().get("error", {})
                if error.get("code") != "ServiceUnavailable" or not error.get("message"):
                    self.problems.append(f"503 without ARM's envelope: {response.text}")
                if response.headers.get("retry-after") != "1":
                    self.problems.append(f"503 without Retry-After: {response.headers}")
            elif response.status_code not in (200, 201):
                self.problems.append(f"{method} {path}: {response.status_code} {response.text}")
            if elapsed > 12:
                self.problems.append(f"{method} {path} took {elapsed:.1f} s")
        return response

    def write(self, http: httpx.Client, method: str, op_id: str, body: dict[str, Any]) -> None:
        """Until acknowledged: a 503 is retried after its Retry-After (replays are safe)."""
        while True:
            response = self.send(http, method, status_path(op_id=op_id), json=body)
            if response.status_code in (200, 201):
                with self.lock:
                    self.acked[op_id] = (response.json(), response.headers["etag"])
                return
            if response.status_code != 503:
                raise AssertionError(f"{method} {op_id}: {response.status_code}")
            time.sleep(float(response.headers.get("retry-after", "1")))

    def produce(self, p: int) -> None:
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=TIMEOUT) as http:
            for n in range(100_000):
                if self.stop.is_set():
                    return
                after_restart = self.back.is_set()
                op_id = f"p{p}-{n}"
                final = ("Succeeded", "Failed", "Canceled")[n % 3]
                self.write(http, "PUT", op_id, {"status": "InProgress"})
                self.write(http, "PATCH", op_id, {"percentComplete": 50})
                self.write(http, "PATCH", op_id, {"status": final})
                if after_restart:
                    with self.lock:
                        self.resumed[p] += 1

    def read(self, r: int) -> None:
        """Reads and waits (Prefer: wait=1) on the newest acknowledged operations."""
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=TIMEOUT) as http:
            n = 0
            while not self.stop.is_set():
                with self.lock:
                    known = list(self.acked)[-PRODUCERS:]
                if not known:
                    time.sleep(0.01)
                    continue
                prefer = {"Prefer": "wait=1"} if n % 2 else {}
                self.send(http, "GET", status_path(op_id=known[n % len(known)]), headers=prefer)
                n += 1

    def run(self, target: Any, index: int) -> None:
        try:
            target(index)
        except Exception as exc:  # reported by the test
            with self.lock:
                self.problems.append(f"{target.__name__}[{index}]: {type(exc).__name__} {exc}")


def wait_until(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_postgres_restart_mid_load(cluster: pg.Cluster, home: Path) -> None:
    url = cluster.database("opstatus")
    # A flood by design: the per-principal rate limit is not what this test is about.
    server = ServerProcess(home, "--store", url, "--retry-after", "1", "--rate-limit", "0").start()
    try:
        headers = bearer(server.token("Contributor", f"/subscriptions/{SUB_A}"))
        traffic = Traffic(server.url, headers)
        threads = [
            threading.Thread(target=traffic.run, args=(traffic.produce, p))
            for p in range(PRODUCERS)
        ] + [threading.Thread(target=traffic.run, args=(traffic.read, r)) for r in range(READERS)]
        for thread in threads:
            thread.start()

        wait_until(lambda: len(traffic.acked) >= 20, 30, "writes before the stop")
        cluster.stop("fast")
        down_at = traffic.statuses[503]
        wait_until(lambda: traffic.statuses[503] >= down_at + 10, 30, "503s while it is down")
        time.sleep(0.5)
        cluster.start()
        traffic.back.set()
        wait_until(lambda: len(traffic.resumed) == PRODUCERS, 60, "every producer to resume")
        traffic.stop.set()
        for thread in threads:
            thread.join(TIMEOUT + 5)
        assert not any(thread.is_alive() for thread in threads), "a request hung"

        print("answers:", dict(traffic.statuses), "acknowledged:", len(traffic.acked))
        assert traffic.problems == [], traffic.problems[:10]
        assert traffic.statuses[503] >= 10 and traffic.statuses[500] == 0, traffic.statuses
        assert server.proc is not None and server.proc.poll() is None  # never restarted
        assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200

        # No acknowledged write was lost: each operation is exactly as last acknowledged.
        with httpx.Client(base_url=server.url, headers=headers, timeout=TIMEOUT) as http:
            for op_id, (body, etag) in sorted(traffic.acked.items()):
                final = http.get(status_path(op_id=op_id))
                assert final.status_code == 200, (op_id, final.text)
                assert final.headers["etag"] == etag, op_id
                assert final.json() == body, op_id
    finally:
        server.stop()

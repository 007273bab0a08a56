"""Crash trials: concurrent writers, ``kill -9`` at a random moment, restart, verify.

    python scripts/crash_trials.py --trials 20 --store sqlite
    python scripts/crash_trials.py --trials 20 --store postgres [--postgres-url URL]

Each trial starts ``opstatus serve`` on a fresh home, runs ``--writers`` threads that each
drive their own operations through create, progress updates, an outcome (Succeeded, Failed
or Canceled) and sometimes a delete, one request at a time, and records every 2xx answer
(body and ETag) and the one request each writer has in flight. At a random moment it sends
SIGKILL, starts a new server on the same home and reads every operation back:

- an operation with no request in flight must be exactly as last acknowledged (same body,
  same ETag; absent if the delete was acknowledged): an acknowledged write is never lost;
- an operation with a request in flight may show its acknowledged state or that request's
  complete result, nothing else: no unacknowledged partial state is visible.

It also runs SQLite's integrity check on the crashed database and makes one write on the
revived server. Prints a row per trial and the totals; exits 1 on any loss.
The CI test (tests/e2e/test_crash_trials.py) runs 3 trials on each store.

With ``--store postgres`` each trial creates a fresh database on the server that
``--postgres-url`` names (a maintenance database URL; default ``OPSTATUS_TEST_POSTGRES`` or
``postgresql://postgres@127.0.0.1:5432/postgres``), runs ``opstatus migrate --store URL``,
starts both servers with ``--store URL`` and drops the database afterwards. The checks are
the same; the integrity column shows ``-`` (SQLite's check has no PostgreSQL counterpart
here: a crash is PostgreSQL's own WAL recovery's business, not the server process's).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import pg  # noqa: E402
from tests.support import SUB_A, ServerProcess, status_path  # noqa: E402

from opstatus.lifecycle import LifecyclePolicy  # noqa: E402

DEFAULT_POSTGRES = os.environ.get(
    "OPSTATUS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)

FULL = {"Prefer": "opstatus-detail=full"}  # show percentComplete, so every write is visible
TERMINAL = ("Succeeded", "Failed", "Canceled")
#: The lease ``opstatus serve`` gives an operation whose producer names none.
DEFAULT_LEASE = LifecyclePolicy().default_lease_seconds


@dataclass
class Acked:
    body: dict[str, Any] | None  # None: the delete was acknowledged
    etag: str | None


@dataclass
class InFlight:
    method: str
    body: dict[str, Any] | None


@dataclass
class Ledger:
    lock: threading.Lock = field(default_factory=threading.Lock)
    acked: dict[str, Acked] = field(default_factory=dict)
    in_flight: dict[str, InFlight] = field(default_factory=dict)
    writes: int = 0
    unexpected: list[str] = field(default_factory=list)


class Writers:
    def __init__(self, url: str, token: str, count: int, seed: int) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}", **FULL}
        self.ledger = Ledger()
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._run, args=(w, random.Random(seed * 1000 + w)))
            for w in range(count)
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)

    def _run(self, w: int, rng: random.Random) -> None:
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=10) as client:
            for n in itertools.count():
                if self.stop.is_set() or not self._operation(client, f"crash-{w}-{n}", rng):
                    return

    def _operation(self, client: httpx.Client, op_id: str, rng: random.Random) -> bool:
        steps: list[tuple[str, dict[str, Any] | None]] = [("PUT", {"percentComplete": 0})]
        percent = 0
        for _ in range(rng.randint(0, 3)):
            percent += rng.randint(1, 30)
            steps.append(("PATCH", {"percentComplete": percent}))
        outcome = rng.choice(TERMINAL)
        final: dict[str, Any] = {"status": outcome}
        if outcome == "Failed" and rng.random() < 0.5:
            final["error"] = {"code": f"E{rng.randint(1, 999)}", "message": "it broke"}
        steps.append(("PATCH", final))
        if rng.random() < 0.2:
            steps.append(("DELETE", None))
        return all(self._write(client, op_id, method, body) for method, body in steps)

    def _write(
        self, client: httpx.Client, op_id: str, method: str, body: dict[str, Any] | None
    ) -> bool:
        ledger = self.ledger
        with ledger.lock:
            ledger.in_flight[op_id] = InFlight(method, body)
        try:
            response = client.request(method, status_path(op_id=op_id), json=body)
        except httpx.TransportError:
            return False  # the server is gone: this write stays in flight
        with ledger.lock:
            del ledger.in_flight[op_id]
            if response.status_code not in (200, 201):
                ledger.unexpected.append(f"{method} {op_id}: {response.status_code}")
                return False
            ledger.writes += 1
            if method == "DELETE":
                ledger.acked[op_id] = Acked(None, None)
            else:
                ledger.acked[op_id] = Acked(response.json(), response.headers["etag"])
        return True


def result_of(acked: Acked | None, write: InFlight) -> dict[str, Any] | None:
    """The body ``write`` would have produced on top of ``acked`` (endTime left out)."""
    if write.method == "DELETE":
        return None
    if write.method == "PUT":
        created = {"status": "InProgress", "percentComplete": 0.0, "cancelable": True}
        return {**created, "leaseSeconds": DEFAULT_LEASE} if DEFAULT_LEASE else created
    assert acked is not None and acked.body is not None and write.body is not None
    expected = {k: v for k, v in acked.body.items() if k != "endTime"}
    if "percentComplete" in write.body:
        expected["percentComplete"] = float(write.body["percentComplete"])
    status = write.body.get("status")
    if status:
        expected["status"] = status
        expected.pop("leaseSeconds", None)  # a finished operation holds no lease
        if status == "Succeeded":
            expected["percentComplete"] = 100.0
        elif status == "Failed":
            detail = write.body.get("error") or {"code": "OperationFailed"}
            expected["error"] = {"error": {"code": detail["code"]}}
        else:
            expected["error"] = {"error": {"code": "OperationCanceled"}}
    return expected


#: Set by the server's clock when a write lands, so an in-flight write's result can't predict
#: them: times, and the lease and retention deadlines every write moves.
SERVER_TIMED = ("endTime", "id", "name", "startTime", "leaseExpiresAt", "leaseState", "expiresAt")


def _comparable(body: dict[str, Any]) -> dict[str, Any]:
    found = {k: v for k, v in body.items() if k not in SERVER_TIMED}
    if "error" in found:
        found["error"] = {"error": {"code": found["error"]["error"]["code"]}}
    return found


def verify(op_id: str, acked: Acked | None, write: InFlight | None, got: httpx.Response) -> str:
    """'' when ``got`` is an allowed state; otherwise what is wrong."""
    present = got.status_code == 200
    if got.status_code not in (200, 404):
        return f"{op_id}: answered {got.status_code} {got.text[:200]}"
    if acked is not None:
        if acked.body is None and not present:
            return ""
        if present and acked.body is not None and got.headers["etag"] == acked.etag:
            return "" if got.json() == acked.body else f"{op_id}: same ETag, other body"
    if write is None:
        return f"{op_id}: acknowledged state lost: {got.status_code} {got.text[:300]}"
    expected = result_of(acked, write)
    if expected is None:
        return "" if not present else f"{op_id}: in-flight delete half done"
    if not present:
        return "" if acked is None else f"{op_id}: acknowledged operation vanished"
    body = got.json()
    if (
        acked is not None
        and acked.body is not None
        and body.get("startTime") != acked.body.get("startTime")
    ):
        return f"{op_id}: startTime changed"
    if _comparable(body) != _comparable(expected):
        return f"{op_id}: partial state {body} (in flight {write.method} {write.body})"
    if body["status"] in TERMINAL and "endTime" not in body:
        return f"{op_id}: terminal without endTime"
    return ""


@dataclass
class TrialResult:
    acked_writes: int
    operations: int
    in_flight: int
    landed: int
    problems: list[str]
    integrity: str
    seconds: float


def integrity_check(home: Path) -> str:
    path = home / "opstatus.db"
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def migrate(home: Path, store_url: str) -> None:
    """``opstatus migrate --store URL``, as an operator sets up a new database."""
    command = [sys.executable, "-m", "opstatus", "migrate", "--home", str(home)]
    done = subprocess.run(
        [*command, "--store", store_url], capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        raise RuntimeError(f"opstatus migrate failed: {done.stdout}{done.stderr}")


#: Acknowledged writes a trial waits for before it picks its moment to kill the server.
MIN_WRITES_BEFORE_KILL = 40


def trial(home: Path, seed: int, writers: int = 6, store_url: str | None = None) -> TrialResult:
    """One trial on ``home``'s SQLite store, or on the (migrated) database ``store_url``."""
    rng = random.Random(seed)
    started = time.monotonic()
    options = ("--retry-after", "0", "--rate-limit", "0")
    if store_url:
        options += ("--store", store_url)
    server = ServerProcess(home, *options).start()
    load = Writers(
        server.url, server.token("Contributor", f"/subscriptions/{SUB_A}"), writers, seed
    )
    load.start()
    # The random moment: after enough acknowledged writes to be worth checking (counted, not
    # timed, so that a loaded machine still puts writes at risk), then a random delay.
    deadline = time.monotonic() + 60
    while load.ledger.writes < MIN_WRITES_BEFORE_KILL and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(rng.uniform(0.0, 1.5))
    server.kill()
    load.join()
    ledger = load.ledger
    integrity = "-" if store_url else integrity_check(home)
    revived = ServerProcess(home, *options).start()
    problems = list(ledger.unexpected)
    landed = 0
    try:
        headers = {"Authorization": f"Bearer {revived.token('Reader', '/')}", **FULL}
        op_ids = sorted(set(ledger.acked) | set(ledger.in_flight))
        with httpx.Client(base_url=revived.url, headers=headers, timeout=10) as client:
            for op_id in op_ids:
                got = client.get(status_path(op_id=op_id))
                acked, write = ledger.acked.get(op_id), ledger.in_flight.get(op_id)
                problem = verify(op_id, acked, write, got)
                if problem:
                    problems.append(problem)
                elif write is not None and not _is_acked(acked, got):
                    landed += 1
        writer = httpx.Client(
            base_url=revived.url,
            headers={"Authorization": f"Bearer {revived.token('Contributor', '/')}"},
            timeout=10,
        )
        with writer:
            after = writer.put(status_path(op_id=f"after-crash-{seed}"), json={})
            if after.status_code != 201:
                problems.append(f"revived server refused a write: {after.status_code}")
    finally:
        revived.stop()
    if integrity not in ("ok", "-"):
        problems.append(f"integrity_check: {integrity}")
    return TrialResult(
        acked_writes=ledger.writes,
        operations=len(set(ledger.acked) | set(ledger.in_flight)),
        in_flight=len(ledger.in_flight),
        landed=landed,
        problems=problems,
        integrity=integrity,
        seconds=time.monotonic() - started,
    )


def _is_acked(acked: Acked | None, got: httpx.Response) -> bool:
    if acked is None:
        return got.status_code == 404
    if acked.body is None:
        return got.status_code == 404
    return got.status_code == 200 and got.headers["etag"] == acked.etag


def run_trials(
    base: Path, trials: int, seed: int, writers: int = 6, postgres: str | None = None
) -> list[TrialResult]:
    """``postgres``: a PostgreSQL maintenance database's URL; each trial then runs on a fresh
    database created there (and dropped afterwards) instead of on SQLite."""
    results = []
    print(
        f"{'trial':>5} {'acked':>6} {'ops':>5} {'in flight':>9} {'landed':>6} "
        f"{'integrity':>9} {'losses':>6} {'time':>6}",
        flush=True,
    )
    for i in range(trials):
        home = base / f"trial-{i}" / "home"
        home.mkdir(parents=True)
        if postgres:
            name = f"{pg.PREFIX}_crash_{i}"  # tests/pg.py's prefix: leftovers get dropped
            pg.run_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', postgres)
            pg.run_admin(f'CREATE DATABASE "{name}"', postgres)
            store_url = pg.url_for(name, postgres)
            try:
                migrate(home, store_url)
                result = trial(home, seed + i, writers, store_url)
            finally:
                pg.run_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', postgres)
        else:
            result = trial(home, seed + i, writers)
        results.append(result)
        print(
            f"{i + 1:5d} {result.acked_writes:6d} {result.operations:5d} "
            f"{result.in_flight:9d} {result.landed:6d} {result.integrity:>9} "
            f"{len(result.problems):6d} {result.seconds:5.1f}s",
            flush=True,
        )
        for problem in result.problems[:10]:
            print("      ", problem, flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--writers", type=int, default=6)
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100_000)
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES,
        help="with --store postgres: a maintenance database on the server to make trial "
        "databases on [env: OPSTATUS_TEST_POSTGRES; default: %(default)s]",
    )
    args = parser.parse_args()
    postgres = args.postgres_url if args.store == "postgres" else None
    with tempfile.TemporaryDirectory(prefix="opstatus-crash-") as tmp:
        results = run_trials(Path(tmp), args.trials, args.seed, args.writers, postgres)
    losses = sum(len(r.problems) for r in results)
    print()
    print(f"store                     {args.store}")
    print(f"seed                      {args.seed}")
    print(f"trials                    {len(results)}")
    print(f"acknowledged writes       {sum(r.acked_writes for r in results)}")
    print(f"operations checked        {sum(r.operations for r in results)}")
    print(
        f"writes in flight at kill  {sum(r.in_flight for r in results)} "
        f"({sum(r.landed for r in results)} landed whole, the rest absent)"
    )
    print(f"losses or partial states  {losses}")
    sys.exit(1 if losses else 0)


if __name__ == "__main__":
    main()

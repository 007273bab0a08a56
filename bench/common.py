"""Shared pieces of the benchmarks: seeding a store, running servers, driving wrk.

Load always comes from a separate process (wrk) on loopback, bounded in time. Every figure
is reported next to baselines measured in the same run, because the machines are shared.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from opstatus.stores.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parent.parent
SUB = "e7b5a9d2-6b6a-4d2f-9143-20d9a10f5b8f"
RESULTS = ROOT / "bench" / "results"


def op_id(i: int) -> str:
    return f"op-{i:07d}"


def sqlite_schema(path: Path) -> SQLiteStore:
    """An SQLite file with opstatus's schema, made by the store itself (it migrates when
    opened); returns the store, closed, whose connection settings are the server's."""
    store = SQLiteStore(path)
    asyncio.run(store.open())
    asyncio.run(store.close())
    return store


def seed_sqlite(path: Path, count: int) -> None:
    """Bulk-load ``count`` InProgress operations straight into an opstatus SQLite file."""
    sqlite_schema(path)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    now = "2026-01-01T00:00:00.000Z"
    rows = (
        (
            SUB,
            op_id(i).lower(),
            op_id(i),
            "Microsoft.Cache",
            "westus",
            "InProgress",
            now,
            f"{i:016x}",
            now,
            now,
            "seed",
        )
        for i in range(count)
    )
    conn.executemany(
        "INSERT INTO operations (subscription_id, operation_key, operation_id, namespace, "
        "location, status, start_time, etag, created_at, updated_at, create_digest) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        rows,
    )
    conn.commit()
    conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(
    args: list[str], env: dict[str, str] | None = None, health: str = "/healthz"
) -> Iterator[str]:
    """Start a server process on a free port; yields its base URL; stops it after."""
    with server_process(args, env, health) as (url, _):
        yield url


@contextmanager
def server_process(
    args: list[str], env: dict[str, str] | None = None, health: str = "/healthz"
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """:func:`server`, also yielding the process (to read its CPU time, for one).

    Its standard error goes to a file, not a pipe: opstatus writes an audit line there for
    every write, and a pipe nobody reads would fill and stall the server mid-benchmark.
    """
    port = free_port()
    argv = [a.replace("{port}", str(port)) for a in args]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(log.read().decode(errors="replace")[-4000:] or "exited")
                try:
                    httpx.get(url + health, timeout=1)
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            yield url, proc
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux), all its threads included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def opstatus_args(home: Path, *extra: str) -> list[str]:
    """``opstatus serve`` for :func:`server`: quiet, and no per-principal rate limit, since
    one token drives all the load."""
    return [
        sys.executable,
        "-m",
        "opstatus",
        "serve",
        "--home",
        str(home),
        "--port",
        "{port}",
        "--log-level",
        "warning",
        "--rate-limit",
        "0",
        *extra,
    ]


def uvicorn_args(app: str, workers: int = 1) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--port",
        "{port}",
        "--http",
        "httptools",
        "--loop",
        "uvloop",
        "--no-access-log",
        "--log-level",
        "warning",
        "--workers",
        str(workers),
    ]


WRK_SCRIPT = """
local ids = %(count)d
local token = "%(token)s"
local fmt = "%(path_fmt)s"
math.randomseed(os.time())
request = function()
  local path = string.format(fmt, math.random(0, ids - 1))
  return wrk.format("GET", path, {["Authorization"] = "Bearer " .. token})
end
done = function(summary, latency, requests)
  io.write(string.format(
    "WRKJSON {\\"requests\\": %%d, \\"duration_us\\": %%d, \\"errors\\": %%d, \\"non2xx\\": %%d, "
    .. "\\"p50_us\\": %%d, \\"p99_us\\": %%d}\\n",
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    non2xx: int

    @classmethod
    def from_wrk(cls, data: dict[str, Any]) -> Load:
        """From the WRKJSON line of :data:`WRK_SCRIPT`'s done()."""
        return cls(
            rps=data["requests"] / (data["duration_us"] / 1e6),
            p50_ms=data["p50_us"] / 1000,
            p99_ms=data["p99_us"] / 1000,
            errors=data["errors"],
            non2xx=data["non2xx"],
        )


def wrk(
    url: str,
    path_fmt: str,
    count: int,
    token: str,
    seconds: int,
    connections: int,
    threads: int = 2,
) -> Load:
    """Drive GETs of random ids with wrk; ``path_fmt`` has one %07d-style slot for the id."""
    script = WRK_SCRIPT % {"count": count, "token": token, "path_fmt": path_fmt}
    data = run_wrk(url, script, seconds, connections, threads)
    return Load.from_wrk(data)


def run_wrk(
    url: str, script: str, seconds: int, connections: int, threads: int = 2
) -> dict[str, Any]:
    """Run wrk with a Lua ``script`` whose done() prints one line ``WRKJSON {...}``; returns
    that object."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    argv = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s"]
    try:
        out = subprocess.run(
            [*argv, "--timeout", "10s", "-s", f.name, url],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        ).stdout
    finally:
        os.unlink(f.name)
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    data: dict[str, Any] = json.loads(line.removeprefix("WRKJSON "))
    return data


@contextmanager
def pg_database(dsn: str, name: str) -> Iterator[str]:
    """A throwaway database beside ``dsn``'s, migrated by ``opstatus migrate``; yields its
    URL and drops it after, also on error (WITH FORCE: a server left connected is no reason
    to keep it)."""
    db = f"opstatus_bench_{name}_{os.getpid()}"
    url = dsn.rsplit("/", 1)[0] + f"/{db}"
    asyncio.run(_admin(dsn, f'CREATE DATABASE "{db}"'))
    try:
        subprocess.run(
            [sys.executable, "-m", "opstatus", "migrate", "--store", url],
            capture_output=True,
            check=True,
        )
        yield url
    finally:
        asyncio.run(_admin(dsn, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))


async def _admin(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def record(name: str, result: dict[str, object]) -> None:
    """Append one machine-readable line to bench/results/<name>.jsonl."""
    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / f"{name}.jsonl", "a") as f:
        f.write(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S"), **result}) + "\n")

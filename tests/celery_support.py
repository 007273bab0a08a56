"""Celery for the tests: the machine's Redis and RabbitMQ, real worker processes.

Brokers come from ``OPSTATUS_TEST_REDIS`` (default ``redis://127.0.0.1:6379``) and
``OPSTATUS_TEST_AMQP`` (default ``amqp://guest:guest@127.0.0.1:5672//``). A test run uses a
Redis database number of its own (from the process id) and every test its own queue and
control exchange, so parallel runs on the same servers do not see each other's tasks or
revokes. Where a broker does not answer, these tests skip with the reason, except under
``CI=true``, where they fail (as tests/pg.py does for PostgreSQL).
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
REDIS = os.environ.get("OPSTATUS_TEST_REDIS", "redis://127.0.0.1:6379").rstrip("/")
AMQP = os.environ.get("OPSTATUS_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672//")
#: Database 0 is left to whatever else uses the machine's Redis.
REDIS_DB = 1 + os.getpid() % 15
_numbers = itertools.count()


def unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: Celery tests must run)", pytrace=False)
    pytest.skip(reason)


def redis_url() -> str:
    return f"{REDIS}/{REDIS_DB}"


def check_reachable(url: str, default_port: int, what: str, variable: str) -> None:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 2
        ):
            pass
    except OSError as exc:
        unavailable(f"{what} is not reachable at {url} ({exc}); start it or set {variable}")


def check_redis() -> None:
    check_reachable(REDIS, 6379, "Redis", "OPSTATUS_TEST_REDIS")
    import redis

    try:
        redis.Redis.from_url(redis_url(), socket_timeout=2).ping()
    except redis.RedisError as exc:
        unavailable(f"Redis at {REDIS} does not answer ({exc})")


def check_rabbitmq() -> None:
    check_reachable(AMQP, 5672, "RabbitMQ", "OPSTATUS_TEST_AMQP")


def run_name() -> str:
    """A queue and control-exchange name of this test's own."""
    return f"opstatus-test-{os.getpid()}-{next(_numbers)}"


class Worker:
    """``celery -A tests.celery_app worker`` as a user runs it, in a session of its own."""

    def __init__(
        self,
        env: dict[str, str],
        log: Path,
        pool: str = "threads",
        concurrency: int = 4,
        app: str = "tests.celery_app",
        cwd: Path = ROOT,
    ) -> None:
        self.env = env
        self.log = log
        self.pool = pool
        self.concurrency = concurrency
        self.app = app
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> Worker:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable, "-m", "celery", "-A", self.app, "worker",
                    "-Q", self.env["OPSTATUS_TEST_QUEUE"],
                    "-n", f"{self.env['OPSTATUS_TEST_QUEUE']}@%h",
                    "--pool", self.pool, "--concurrency", str(self.concurrency),
                    "--without-gossip", "--without-mingle", "--without-heartbeat",
                    "--loglevel", "INFO",
                ],
                env=self.env,
                cwd=self.cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log.read_text()}")
            with open(self.log, "rb") as log:
                log.seek(offset)
                if b" ready." in log.read():
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"worker did not start: {self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL to the worker and its children: no signal handler, no flush."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # Celery's warm shutdown
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

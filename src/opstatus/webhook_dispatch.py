"""The webhook dispatcher: a background task of every server process that turns the event
log into deliveries and sends them.

Each round it fans new events out into deliveries (the store's outbox), claims what is due
and sends it, at most ``concurrency`` sends at a time: one slow or dead receiver holds only
its own sends (each bounded by the sender's time limit), never status reads or writes, nor
other receivers. Outcomes are recorded in batches: delivered; or retried after a backoff;
or, once the retry budget is spent, failed for good (kept, visible, redeliverable).

A write wakes it at once (the store's notifier, which on PostgreSQL also hears other
instances' writes); otherwise it looks every ``poll_seconds``, which also finds retries that
came due. Several processes may run one each: the store hands each delivery to one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from .errors import StoreError
from .lifecycle import add_seconds
from .models import now_text
from .stores.base import Store
from .stores.webhook_rows import Finished
from .webhook_sender import Sender
from .webhooks import (
    CALLBACK,
    DELIVERED,
    FAILED,
    PENDING,
    Delivery,
    Outcome,
    RetryPolicy,
    Webhook,
    check_secret,
    new_secret,
)

log = logging.getLogger("opstatus.webhooks")

#: Events one fan-out takes, and deliveries one claim takes at most.
BATCH = 500
#: Seconds a webhook subscription's secrets are reused before being read again.
SECRETS_TTL = 1.0
#: Seconds between sweeps of finished deliveries past their history.
SWEEP_SECONDS = 60.0


class Dispatcher:
    def __init__(
        self,
        store: Store,
        sender: Sender,
        callback_secret: str,
        policy: RetryPolicy | None = None,
        concurrency: int = 64,
        poll_seconds: float = 0.5,
        clock: Callable[[], str] = now_text,
        history_seconds: float = 7 * 86400.0,
    ) -> None:
        self.store = store
        self.sender = sender
        self.callback_secret = callback_secret
        self.policy = policy or RetryPolicy()
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self.clock = clock
        self.history_seconds = history_seconds
        self._next_sweep = 0.0
        #: A claimed delivery is leased for longer than its send may take.
        self.lease_seconds = sender.timeout + 5.0
        self._sending: set[asyncio.Task[None]] = set()
        self._finished: list[Finished] = []
        self._done = asyncio.Event()
        self._webhooks: dict[tuple[str, str], tuple[float, Webhook | None]] = {}

    async def run(self) -> None:
        """Until cancelled; store errors are logged and retried on the next round."""
        failing = False
        with self.store.notifier.watch_all() as changed:
            try:
                while True:
                    changed.clear()
                    self._done.clear()
                    try:
                        await self.round()
                        if failing:
                            failing = False
                            log.warning("webhook dispatch: the store answers again")
                    except StoreError as exc:  # an outage: said once, retried every poll
                        if not failing:
                            failing = True
                            log.warning("webhook dispatch: %s; retrying", exc.message)
                        await asyncio.sleep(self.poll_seconds)
                    except Exception:  # noqa: BLE001 - a fault must not end the task
                        log.exception("webhook dispatch failed; retrying")
                        await asyncio.sleep(self.poll_seconds)
                    await self._wait(changed)
            finally:
                for task in self._sending:
                    task.cancel()
                await asyncio.gather(*self._sending, return_exceptions=True)
                with contextlib.suppress(Exception):
                    await self._flush()

    async def _wait(self, changed: asyncio.Event) -> None:
        if self._finished:
            return
        waits = [asyncio.ensure_future(changed.wait()), asyncio.ensure_future(self._done.wait())]
        try:
            await asyncio.wait(
                waits, timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiting in waits:
                waiting.cancel()

    async def round(self) -> None:
        """Record finished sends, fan out new events, start sends of what is due."""
        await self._flush()
        now = self.clock()
        while await self.store.fan_out(BATCH, now) >= BATCH:
            pass
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + SWEEP_SECONDS
            await self.store.forget_deliveries(add_seconds(now, -self.history_seconds), 10_000)
        free = self.concurrency - len(self._sending)
        if free <= 0:
            return
        until = add_seconds(now, self.lease_seconds)
        for delivery in await self.store.claim_deliveries(now, until, min(free, BATCH)):
            task = asyncio.create_task(self._send(delivery))
            self._sending.add(task)
            task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        self._done.set()

    async def _flush(self) -> None:
        if self._finished:
            finished, self._finished = self._finished, []
            try:
                await self.store.finish_deliveries(finished)
            except BaseException:
                self._finished = finished + self._finished
                raise

    async def _send(self, delivery: Delivery) -> None:
        secrets = await self._secrets(delivery)
        if secrets is None:  # its webhook subscription was deleted meanwhile
            outcome = Outcome(error="the webhook subscription was deleted")
            self._finished.append(self._finish(delivery, outcome, final=True))
            return
        outcome = await self.sender.send(
            delivery.url, delivery.message_id, delivery.payload.encode(), secrets
        )
        if not outcome.delivered:
            log.info("webhook %s to %s: %s", delivery.message_id, delivery.url, outcome.error)
        self._finished.append(self._finish(delivery, outcome))

    def _finish(self, delivery: Delivery, outcome: Outcome, final: bool = False) -> Finished:
        now = self.clock()
        attempts = delivery.attempts + 1
        if outcome.delivered:
            state, next_at = DELIVERED, now
        else:
            delay = None if final else self.policy.delay(attempts)
            state, next_at = (FAILED, now) if delay is None else (PENDING, add_seconds(now, delay))
        return Finished(delivery.id, state, attempts, next_at, now, outcome.status, outcome.error)

    async def _secrets(self, delivery: Delivery) -> tuple[str, ...] | None:
        if delivery.webhook_id == CALLBACK:
            return (self.callback_secret,)
        key = (delivery.subscription_id, delivery.webhook_id)
        cached = self._webhooks.get(key)
        if cached is None or cached[0] < time.monotonic():
            webhook = await self.store.get_webhook(*key)
            if len(self._webhooks) > 10_000:
                self._webhooks.clear()
            cached = self._webhooks[key] = (time.monotonic() + SECRETS_TTL, webhook)
        webhook = cached[1]
        return None if webhook is None else webhook.secrets(self.clock())


SECRET_FILE = "webhook-secret"


def callback_secret(home: Path, configured: str = "") -> str:
    """The secret that signs operations' callbacks: ``configured`` (``--webhook-secret``),
    else the one kept in the home folder, made on first use and readable by its owner only
    (``opstatus webhook callback-secret`` shows it to whoever verifies callbacks)."""
    if configured:
        return check_secret(configured, "--webhook-secret")
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = home / SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return check_secret(path.read_text().strip(), str(path))
    with os.fdopen(fd, "w") as f:
        f.write(new_secret() + "\n")
        f.flush()
        os.fsync(f.fileno())
    return check_secret(path.read_text().strip(), str(path))

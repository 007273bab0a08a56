"""Cancel in opstatus revokes the Celery task.

A cancel request only records ``cancelRequestedAt`` on the operation. In each worker's main
process a watcher thread lists the tracked kinds' running operations with a cancel request
(``cancelRequested=true``: the server filters, so a poll carries only those) every
``cancel_poll_interval`` seconds and revokes the task of each one:
a queued task is then discarded by whichever worker receives it (and its operation ends
Canceled); a running one is terminated only if its task says ``opstatus_terminate=True``,
else :func:`~opstatus.celery.report` raises :class:`~opstatus.client.CancelRequested` in it.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any, Protocol

import httpx

from ..client import Client, ClientError

log = logging.getLogger("opstatus.celery")

#: Beyond this many kinds the list asks for every kind (the URL stays short).
MAX_KIND_FILTER = 20
#: How many revoked task ids the watcher remembers, so as to revoke each once.
REMEMBERED = 100_000


class Tracker(Protocol):
    """What the watcher asks of :class:`~opstatus.celery.tracking.Tracker`, which starts it."""

    app: Any
    subscription_id: str
    location: str

    def new_client(self) -> Client: ...

    def tracks(self, name: str | None) -> bool: ...

    def tracked_names(self) -> list[str]: ...


class CancelWatcher(threading.Thread):
    def __init__(self, tracker: Tracker, interval: float) -> None:
        super().__init__(name="opstatus-cancel-watcher", daemon=True)
        self.tracker = tracker
        self.interval = interval
        self.stop = threading.Event()
        self._revoked: OrderedDict[str, None] = OrderedDict()
        self._client = tracker.new_client()

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            try:
                self.poll()
            except (ClientError, httpx.HTTPError, OSError) as exc:
                log.warning("opstatus: looking for cancel requests failed: %s", exc)

    def poll(self) -> int:
        """Revoke the tasks whose operations someone asked to cancel; returns how many."""
        tracker = self.tracker
        names = tracker.tracked_names()
        filters: dict[str, Any] = {"status": "InProgress", "cancel_requested": True}
        if len(names) <= MAX_KIND_FILTER:
            if not names:
                return 0
            filters["kind"] = names
        revoked = 0
        pages = self._client.list_pages(
            tracker.subscription_id, tracker.location, page_size=1000, **filters
        )
        for page in pages:
            for op in page:
                if op.cancel_requested_at and op.name not in self._revoked:
                    self.revoke(op.name, op.kind)
                    revoked += 1
        return revoked

    def revoke(self, task_id: str, name: str | None) -> None:
        task = self.tracker.app.tasks.get(name) if name else None
        if task is None or not self.tracker.tracks(name):
            return
        terminate = bool(getattr(task, "opstatus_terminate", False))
        log.info("opstatus: cancel requested; revoking %s[%s]", name, task_id)
        self.tracker.app.control.revoke(task_id, terminate=terminate, signal="SIGTERM")
        self._revoked[task_id] = None
        while len(self._revoked) > REMEMBERED:
            self._revoked.popitem(last=False)

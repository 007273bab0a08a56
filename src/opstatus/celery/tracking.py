"""Celery's signals turned into operation updates: one operation per tracked task.

The operation is created when the task is published (the operation id is the task id), so a
caller has its status URL before any worker runs it. From then on everything a worker tells
opstatus goes through a :class:`~opstatus.celery.sender.Sender` of its process: the task's
own thread only queues the change.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
from billiard.einfo import ExceptionWithTraceback
from celery import Celery, signals
from celery.exceptions import Reject, Retry
from celery.utils.serialization import UnpickleableExceptionWrapper
from celery.worker import state as worker_state

from ..client import (
    DEFAULT_API_VERSION,
    DEFAULT_NAMESPACE,
    BaseClient,
    CancelRequested,
    Client,
    ClientError,
    OperationStatus,
)
from ..client._base import failure_body
from .sender import Sender, Target

log = logging.getLogger("opstatus.celery")

#: The header a publisher that created the operation itself (the web helper) sets.
CREATED_HEADER = "opstatus_created"
#: Task attributes (``@app.task(opstatus=True, opstatus_terminate=True)``).
TRACK_ATTRIBUTE = "opstatus"
TERMINATE_ATTRIBUTE = "opstatus_terminate"
LEASE_ATTRIBUTE = "opstatus_lease"


def _setting(app: Celery, name: str, given: Any, env: str | None = None) -> Any:
    if given is not None:
        return given
    value = app.conf.get(f"opstatus_{name}")
    if value is None and env:
        value = os.environ.get(env)
    return value


class Tracker:
    """Makes an app's tracked tasks operations in opstatus (see docs/celery.md).

    Settings come from the arguments, else from the app's configuration (``opstatus_endpoint``,
    ``opstatus_token``, ``opstatus_subscription_id``, ``opstatus_location``...), else, for
    the endpoint and the token, from ``OPSTATUS_ENDPOINT`` and ``OPSTATUS_TOKEN``.
    """

    def __init__(
        self,
        app: Celery,
        *,
        endpoint: str | None = None,
        token: str | None = None,
        subscription_id: str | None = None,
        location: str | None = None,
        namespace: str | None = None,
        api_version: str | None = None,
        track_all: bool | None = None,
        lease_seconds: float | None = None,
        include_traceback: bool | None = None,
        cancel_poll_interval: float | None = None,
        sender_threads: int = 2,
        linger: float = 0.05,
        max_pending: int = 10_000,
        give_up_after: float = 600.0,
    ) -> None:
        self.app = app
        self.endpoint = str(_setting(app, "endpoint", endpoint, "OPSTATUS_ENDPOINT") or "")
        self.token = _setting(app, "token", token, "OPSTATUS_TOKEN")
        self.subscription_id = str(_setting(app, "subscription_id", subscription_id) or "")
        self.location = str(_setting(app, "location", location) or "")
        if not (self.endpoint and self.subscription_id and self.location):
            raise ValueError(
                "opstatus tracking needs an endpoint, a subscription id and a location"
            )
        self.namespace = str(_setting(app, "namespace", namespace) or DEFAULT_NAMESPACE)
        self.api_version = str(_setting(app, "api_version", api_version) or DEFAULT_API_VERSION)
        self.track_all = bool(_setting(app, "track_all", track_all))
        self.lease_seconds = float(_setting(app, "lease_seconds", lease_seconds) or 60.0)
        self.include_traceback = bool(_setting(app, "include_traceback", include_traceback))
        interval = _setting(app, "cancel_poll_interval", cancel_poll_interval)
        self.cancel_poll_interval = 1.0 if interval is None else float(interval)
        self._sender_options: dict[str, Any] = {
            "threads": sender_threads,
            "linger": linger,
            "max_pending": max_pending,
            "give_up_after": give_up_after,
        }
        self._lock = threading.Lock()
        self._pid = 0
        self._sender: Sender | None = None
        self._client: Client | None = None
        self._urls = _UrlBuilder(self)
        app.opstatus_tracker = self
        self._connect()

    # --- per process ---------------------------------------------------------------------------

    def new_client(self) -> Client:
        return Client(
            self.endpoint,
            self.token,
            namespace=self.namespace,
            api_version=self.api_version,
            timeout=10.0,
        )

    def _fresh(self) -> None:
        """Forked children start their own threads and connections (none survive a fork)."""
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    self._sender = None
                    self._client = None
                    self._pid = os.getpid()

    @property
    def sender(self) -> Sender:
        self._fresh()
        if self._sender is None:
            with self._lock:
                if self._sender is None:
                    self._sender = Sender(self.new_client, **self._sender_options)
        return self._sender

    @property
    def client(self) -> Client:
        """This process's client for requests that must be answered before going on."""
        self._fresh()
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self.new_client()
        return self._client

    # --- which tasks, which operation -----------------------------------------------------------

    def tracks(self, name: str | None) -> bool:
        if not name:
            return False
        task = self.app.tasks.get(name)
        flag = getattr(task, TRACK_ATTRIBUTE, None) if task is not None else None
        if flag is not None:
            return bool(flag)
        return self.track_all and not name.startswith("celery.")

    def tracks_task(self, task: Any) -> bool:
        """Whether ``task`` (a signal's sender) is one of this app's tracked tasks."""
        return task is not None and task.app is self.app and self.tracks(task.name)

    def tracked_names(self) -> list[str]:
        return sorted(name for name in list(self.app.tasks) if self.tracks(name))

    def status_url(self, task_id: str) -> str:
        """The operation's status URL (Azure-AsyncOperation) of a task id."""
        return self._urls.status_url(task_id)

    def target(self, task_id: str, name: str | None) -> Target:
        return Target(self.subscription_id, self.location, task_id, name)

    def lease_of(self, task: Any) -> float:
        return float(getattr(task, LEASE_ATTRIBUTE, None) or self.lease_seconds)

    def initial_fields(self, name: str) -> dict[str, Any]:
        """What a published task's operation starts as: queued, no producer lease yet."""
        return {"status": "InProgress", "percent_complete": 0, "kind": name, "lease_seconds": 0}

    # --- publishing ----------------------------------------------------------------------------

    def create(self, task_id: str, name: str) -> OperationStatus | None:
        """Create the operation of a task being published; when opstatus cannot be reached,
        the sender creates it later (and the worker's first update would too)."""
        try:
            return self.client.create(
                self.subscription_id, self.location, task_id, **self.initial_fields(name)
            )
        except ClientError as exc:
            if exc.status_code == 409:
                return None  # published again with the same id (a replay); it stands
            if exc.status_code < 500 and exc.status_code not in (408, 429):
                raise
            error: Exception = exc
        except (httpx.HTTPError, OSError) as exc:
            error = exc
        log.warning("opstatus: creating operation %s deferred: %s", task_id, error)
        self.sender.submit(
            self.status_url(task_id),
            self.target(task_id, name),
            create=True,
            **self.initial_fields(name),
        )
        return None

    def _on_publish(
        self, sender: str | None = None, headers: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        headers = headers or {}
        body = kwargs.get("body")
        task_id = headers.get("id") or (body.get("id") if isinstance(body, dict) else None)
        name = sender or headers.get("task")
        if not task_id or not self.tracks(name) or headers.get(CREATED_HEADER):
            return
        if headers.get("retries"):
            return  # a retry: the operation exists and stays the same one
        self.create(str(task_id), str(name))

    # --- the worker ----------------------------------------------------------------------------

    def _submit(
        self, task_id: str, name: str | None, lingering: bool = False, **fields: Any
    ) -> None:
        self.sender.submit(
            self.status_url(task_id), self.target(task_id, name), lingering=lingering, **fields
        )

    def _on_prerun(self, task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
        if task_id is None or not self.tracks_task(task):
            return
        lease = self.lease_of(task)
        properties = {"state": "STARTED", "worker": getattr(task.request, "hostname", None)}
        # Lingering: a short task's outcome catches up with this, and one request says both.
        self._submit(task_id, task.name, lingering=True, lease_seconds=lease, properties=properties)
        self.sender.hold(self.status_url(task_id), self.target(task_id, task.name), lease / 3)

    def _on_success(self, sender: Any = None, result: Any = None, **kwargs: Any) -> None:
        if not self.tracks_task(sender):
            return
        task_id = sender.request.id
        self.sender.release(self.status_url(task_id))
        fields: dict[str, Any] = {"status": "Succeeded", "end_time": ended()}
        properties = properties_of(result)
        if properties is not None:
            fields["properties"] = properties
        self._submit(task_id, sender.name, **fields)

    def _on_failure(
        self,
        sender: Any = None,
        task_id: str | None = None,
        exception: BaseException | None = None,
        einfo: Any = None,
        **kwargs: Any,
    ) -> None:
        if task_id is None or not self.tracks_task(sender):
            return
        self.sender.release(self.status_url(task_id))
        exc = _original(exception, einfo)
        fields: dict[str, Any]
        if isinstance(exc, Reject):
            reason = exc.reason if exc.reason is not None else "the task rejected its message"
            fields = {"status": "Failed", "error": {"code": "TaskRejected", "message": str(reason)}}
        else:
            canceled = isinstance(exc, CancelRequested) or type(exc).__name__ == "CancelRequested"
            fields = dict(failure_body(exc, canceled))
        if self.include_traceback and einfo is not None and fields["status"] == "Failed":
            fields["properties"] = {"traceback": str(einfo.traceback)[-8000:]}
        self._submit(task_id, sender.name, end_time=ended(), **fields)

    def _on_retry(
        self, sender: Any = None, request: Any = None, reason: Any = None, **kwargs: Any
    ) -> None:
        if request is None or not self.tracks_task(sender):
            return
        self.sender.release(self.status_url(request.id))
        # Queued again: the lease covers the wait before the next run, which renews it.
        lease = self.lease_of(sender) + _seconds_until(getattr(reason, "when", None))
        cause = reason.exc if isinstance(reason, Retry) and reason.exc is not None else reason
        properties = {
            "state": "RETRY",
            "retries": (request.retries or 0) + 1,
            "message": str(cause)[:2000],
        }
        self._submit(
            request.id,
            sender.name,
            lease_seconds=lease,
            percent_complete=0,
            resetProgress=True,
            properties=properties,
        )

    def _on_revoked(
        self,
        sender: Any = None,
        request: Any = None,
        terminated: bool = False,
        signum: Any = None,
        expired: bool = False,
        **kwargs: Any,
    ) -> None:
        if request is None or not self.tracks_task(sender):
            return
        self.sender.release(self.status_url(request.id))
        if expired:
            message = "The task expired before a worker ran it."
        elif terminated:
            message = f"The task was revoked and terminated ({signum})."
        else:
            message = "The task was revoked."
        error = {"code": "OperationCanceled", "message": message}
        self._submit(request.id, sender.name, status="Canceled", error=error, end_time=ended())

    def _on_rejected(self, message: Any = None, exc: Any = None, **kwargs: Any) -> None:
        headers = getattr(message, "headers", None) or {}
        task_id, name = headers.get("id"), headers.get("task")
        if not task_id or not self.tracks(name):
            return
        text = str(exc) if exc is not None else "The worker could not read the task's message."
        error = {"code": "TaskRejected", "message": text[:2000]}
        self._submit(task_id, name, status="Failed", error=error, end_time=ended())

    def _on_unknown(self, name: str | None = None, id: str | None = None, **kwargs: Any) -> None:
        if not id or not name or not self.track_all or name.startswith("celery."):
            return
        error = {"code": "NotRegistered", "message": f"No worker knows the task {name!r}."}
        self._submit(id, name, status="Failed", error=error, end_time=ended())

    def _on_worker_ready(self, **kwargs: Any) -> None:
        from .cancel import CancelWatcher

        if self.cancel_poll_interval > 0:
            CancelWatcher(self, self.cancel_poll_interval).start()

    def _on_shutdown(self, **kwargs: Any) -> None:
        sender = self._sender
        if sender is not None and self._pid == os.getpid():
            self._sender = None
            sender.close(timeout=10.0)

    def close(self, timeout: float = 10.0) -> None:
        """Stop tracking: disconnect from Celery's signals and send what is pending."""
        for signal, handler in self._handlers():
            signal.disconnect(handler, dispatch_uid=self._uid(handler))
        self._on_shutdown()
        if self._client is not None and self._pid == os.getpid():
            self._client.close()

    def _uid(self, handler: Callable[..., None]) -> str:
        return f"opstatus-{id(self)}-{handler.__name__}"

    def _connect(self) -> None:
        for signal, handler in self._handlers():
            signal.connect(handler, weak=False, dispatch_uid=self._uid(handler))

    def _handlers(self) -> list[tuple[Any, Callable[..., None]]]:
        return [
            (signals.before_task_publish, self._on_publish),
            (signals.task_prerun, self._on_prerun),
            (signals.task_success, self._on_success),
            (signals.task_failure, self._on_failure),
            (signals.task_retry, self._on_retry),
            (signals.task_revoked, self._on_revoked),
            (signals.task_rejected, self._on_rejected),
            (signals.task_unknown, self._on_unknown),
            (signals.worker_ready, self._on_worker_ready),
            (signals.worker_process_shutdown, self._on_shutdown),
            (signals.worker_shutdown, self._on_shutdown),
        ]

    # --- inside a task -------------------------------------------------------------------------

    def report(
        self, task_id: str, name: str, percent: float | None = None, message: str | None = None
    ) -> None:
        """Queue progress for the task's operation (renewing its lease); raise
        :class:`CancelRequested` if someone asked opstatus to cancel it."""
        url = self.status_url(task_id)
        fields: dict[str, Any] = {}
        if percent is not None:
            fields["percent_complete"] = percent
        if message is not None:
            fields["properties"] = {"state": "STARTED", "message": message}
        self._submit(task_id, name, **fields)
        seen = self.sender.cancel_requested(url)
        if seen is None and task_id in worker_state.revoked:
            seen = OperationStatus(id="", name=task_id, status="InProgress", url=url)
        if seen is not None:
            raise CancelRequested(seen)


class _UrlBuilder:
    """Status URLs without a client's connections (the tracker builds one per task)."""

    def __init__(self, tracker: Tracker) -> None:
        urls = BaseClient(
            tracker.endpoint, namespace=tracker.namespace, api_version=tracker.api_version
        )
        marker = "00000000-marker"
        template = urls.status_url(tracker.subscription_id, tracker.location, marker)
        self._head, _, self._tail = template.partition(marker)

    def status_url(self, task_id: str) -> str:
        return f"{self._head}{quote(task_id, safe='')}{self._tail}"


def properties_of(result: Any) -> dict[str, Any] | None:
    """A task's return value as the operation's properties: a JSON object as it is, another
    JSON value as ``{"result": value}``, nothing for None or what JSON cannot carry."""
    if result is None:
        return None
    value = result if isinstance(result, dict) else {"result": result}
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        log.warning("opstatus: a task's result of type %s is not JSON", type(result).__name__)
        return None
    return value


def _original(exception: BaseException | None, einfo: Any) -> BaseException:
    """The exception the task raised: Celery hands the signal a stand-in for one its result
    serializer cannot carry, and keeps the original in ``einfo``."""
    original = getattr(einfo, "exception", None)
    if isinstance(original, ExceptionWithTraceback):
        original = original.exc
    if isinstance(original, BaseException) and not isinstance(
        original, UnpickleableExceptionWrapper
    ):
        return original
    if isinstance(exception, UnpickleableExceptionWrapper):
        rebuilt: type[Exception] = type(str(exception.exc_cls_name), (Exception,), {})
        return rebuilt(*exception.exc_args)
    return exception if exception is not None else Exception("unknown failure")


def ended() -> str:
    """Now, as an outcome's ``endTime``: the moment Celery recorded the outcome, however
    long the update then waits for opstatus (the sender falls back to the server's clock if
    the server finds it before the operation's start)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _seconds_until(when: Any) -> float:
    if isinstance(when, int | float):
        return max(float(when), 0.0)
    if isinstance(when, datetime):
        moment = when if when.tzinfo else when.replace(tzinfo=UTC)
        return max((moment - datetime.now(UTC)).total_seconds(), 0.0)
    return 0.0

"""A Python client for opstatus: read, create, update, cancel, list, wait on and produce
operations, in a sync (:class:`Client`) and an async (:class:`AsyncClient`) face.

Requests are built and responses parsed in :class:`BaseClient`, which both faces share
(httpx's own layout). Waiting always works by polling with ``Retry-After``; a long-poll
(``Prefer: wait``) only makes it answer sooner where the server offers one. A poller needs
only an operation's URL, so tracking survives the process that started it. A producer
context manager turns a block of work into an operation's progress and outcome, and
:meth:`Client.accept` builds a provider's ARM 201/202 answer for work it starts.
"""

from ._async import AsyncClient, AsyncOperationPoller, AsyncProducer
from ._base import (
    DEFAULT_API_VERSION,
    DEFAULT_ENDPOINT,
    DEFAULT_NAMESPACE,
    PREFER_FULL,
    Accepted,
    BaseClient,
    CancelRequested,
    ClientError,
    OperationFailed,
    OperationStatus,
    RetryHook,
    TokenSource,
    WaitTimeout,
    accepted_response,
    is_transient,
    parse_status,
    raise_for_error,
    results_url_of,
    status_url_of,
)
from ._classic import CLASSIC_HEADERS, CLASSIC_VERSION, parse_classic_status
from ._credential import BearerTokenCredential
from ._events import OperationEvent
from ._sync import Client, OperationPoller, Producer

__all__ = [
    "DEFAULT_API_VERSION",
    "DEFAULT_ENDPOINT",
    "DEFAULT_NAMESPACE",
    "PREFER_FULL",
    "CLASSIC_HEADERS",
    "CLASSIC_VERSION",
    "Accepted",
    "AsyncClient",
    "AsyncOperationPoller",
    "AsyncProducer",
    "BaseClient",
    "BearerTokenCredential",
    "CancelRequested",
    "Client",
    "ClientError",
    "OperationEvent",
    "OperationFailed",
    "OperationPoller",
    "OperationStatus",
    "Producer",
    "RetryHook",
    "TokenSource",
    "WaitTimeout",
    "accepted_response",
    "is_transient",
    "parse_classic_status",
    "parse_status",
    "raise_for_error",
    "results_url_of",
    "status_url_of",
]

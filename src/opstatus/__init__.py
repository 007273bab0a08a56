"""opstatus: track long-running operations and answer Get Operation Status."""

from .client import (
    AsyncClient,
    AsyncOperationPoller,
    AsyncProducer,
    CancelRequested,
    Client,
    ClientError,
    OperationFailed,
    OperationPoller,
    OperationStatus,
    Producer,
    WaitTimeout,
)
from .models import CANCELED, FAILED, IN_PROGRESS, SUCCEEDED, Operation

__all__ = [
    "CANCELED",
    "FAILED",
    "IN_PROGRESS",
    "SUCCEEDED",
    "AsyncClient",
    "AsyncOperationPoller",
    "AsyncProducer",
    "CancelRequested",
    "Client",
    "ClientError",
    "Operation",
    "OperationFailed",
    "OperationPoller",
    "OperationStatus",
    "Producer",
    "WaitTimeout",
]

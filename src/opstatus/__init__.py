"""opstatus: track long-running operations and answer Get Operation Status."""

from .client import Client, ClientError, OperationStatus, WaitTimeout
from .models import CANCELED, FAILED, IN_PROGRESS, SUCCEEDED, Operation

__all__ = [
    "CANCELED",
    "FAILED",
    "IN_PROGRESS",
    "SUCCEEDED",
    "Client",
    "ClientError",
    "Operation",
    "OperationStatus",
    "WaitTimeout",
]

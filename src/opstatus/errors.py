"""Domain errors: what can go wrong with an operation, independent of any wire format.

The tree, drawn once::

    OpstatusError
    ├── InvalidInput            the caller's data is malformed        (HTTP 400)
    ├── NotAuthenticated        no valid credentials                  (HTTP 401)
    ├── NotAuthorized           valid caller, no fitting role         (HTTP 403)
    ├── OperationNotFound       no such operation for this tenant     (HTTP 404)
    │   └── OperationExpired    it existed; its retention is over
    ├── Conflict                the request contradicts stored state  (HTTP 409)
    │   ├── OperationExists     create with a different body
    │   ├── TerminalStatusFinal change to a terminal operation
    │   ├── ProgressRegression  percentComplete going down
    │   └── NotCancelable       cancel of an operation declared not cancelable
    ├── PreconditionFailed      If-Match did not match                (HTTP 412)
    └── StoreError              the store failed; retryable           (HTTP 503)
        ├── SchemaMismatch      no schema, or not this version's
        └── CorruptRecord       a stored row cannot be read back

Each error carries an ARM-style ``code`` (PascalCase, unlocalized) and a human message;
``target`` names the field at fault where there is one. The HTTP layer maps the classes to
status codes in one place; nothing here knows about HTTP.
"""

from __future__ import annotations


class OpstatusError(Exception):
    """Base of every error opstatus raises on purpose."""

    code = "InternalServerError"

    def __init__(self, message: str, *, code: str | None = None, target: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.target = target


class InvalidInput(OpstatusError):
    """The request's data is malformed or out of range."""

    code = "InvalidRequestContent"


class NotAuthenticated(OpstatusError):
    """The request carries no valid credentials."""

    code = "InvalidAuthenticationToken"

    def __init__(self, message: str, *, code: str | None = None, challenge: str = ""):
        super().__init__(message, code=code)
        #: What the WWW-Authenticate challenge's error_description says.
        self.challenge = challenge or message


class NotAuthorized(OpstatusError):
    """The caller is authenticated but holds no role that allows the action on the scope."""

    code = "AuthorizationFailed"


class OperationNotFound(OpstatusError):
    """The operation does not exist, or belongs to another subscription (indistinguishable)."""

    code = "ResourceNotFound"


class OperationExpired(OperationNotFound):
    """The operation existed but its retention period is over; its status is gone."""

    code = "OperationExpired"


class Conflict(OpstatusError):
    """The request contradicts the operation's stored state."""

    code = "Conflict"


class OperationExists(Conflict):
    """A create named an existing operation with a different body."""

    code = "OperationAlreadyExists"


class TerminalStatusFinal(Conflict):
    """The operation is Succeeded, Failed or Canceled; a terminal status never changes."""

    code = "OperationAlreadyTerminal"


class ProgressRegression(Conflict):
    """percentComplete may only grow unless the producer resets it explicitly."""

    code = "PercentCompleteRegression"


class NotCancelable(Conflict):
    """The producer declared the operation not cancelable."""

    code = "OperationNotCancelable"


class PreconditionFailed(OpstatusError):
    """The caller's If-Match ETag is not the operation's current one."""

    code = "PreconditionFailed"


class StoreError(OpstatusError):
    """The store could not answer; the request may be retried."""

    code = "ServiceUnavailable"


class StoreMissing(StoreError):
    """The database server answers but the database the store URL names does not exist;
    ``create`` is the command that creates it."""

    def __init__(self, message: str, *, create: str) -> None:
        super().__init__(message)
        self.create = create


class SchemaMismatch(StoreError):
    """The store's schema is missing, older or newer than this opstatus; the message says what
    to run (``opstatus migrate``, or an upgrade of opstatus)."""


class CorruptRecord(StoreError):
    """A stored operation cannot be read back (hand-edited or damaged); the row is kept."""

    def __init__(self, message: str, *, operation_id: str):
        super().__init__(message)
        #: The id of the operation whose record is damaged, safe to show to the caller.
        self.operation_id = operation_id

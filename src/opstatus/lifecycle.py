"""The lifecycle rules: retention and tombstones, producer leases, cancel requests. Pure.

An operation's life after it is created, decided here and nowhere else:

- **Leases.** A producer may hold a lease of ``lease_seconds``; every update renews it
  (``lease_expires_at = now + lease_seconds``). Once it passes, the lease is *lapsed* and reads
  show it. ``grace_seconds`` later the producer is presumed lost: the operation is Failed with
  code ``ProducerLost``, with ``endTime`` at that deadline whatever moment the server notices,
  so the outcome does not depend on when a read or the background sweep comes along.
- **Retention.** Once terminal, an operation is kept ``retention(status)`` seconds (at least a
  day: the Azure guidelines ask for 24 hours) and ``expires_at`` says until when. After that it
  reads as expired even before the sweep removes it; removal leaves a :class:`Tombstone` for
  ``tombstone_seconds`` more, so that a read says "expired" rather than "never existed".
- **Cancel.** A cancel request is recorded (``cancel_requested_at``); the producer sees it and
  moves the operation to Canceled, or finishes anyway. A producer may declare an operation not
  cancelable.

Times are the text of :func:`opstatus.models.format_time`: fixed width, so they compare in
time order as plain strings, which is also how the stores compare them.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from .errors import InvalidInput, NotCancelable, OperationExpired, TerminalStatusFinal
from .models import (
    CANCELED,
    FAILED,
    SUCCEEDED,
    Operation,
    OperationStatus,
    OperationUpdate,
    format_time,
    new_etag,
    operation_key,
)

#: A source of "now" as ``format_time`` text; tests pass a controllable one.
Clock = Callable[[], str]

DAY = 86400.0
MIN_RETENTION_SECONDS = DAY
MAX_LEASE_SECONDS = 30 * DAY
PRODUCER_LOST = "ProducerLost"
LATEST_TIME = "9999-12-31T23:59:59.999Z"
_KIND = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}\Z")

LeaseState = Literal["Active", "Lapsed"]
RemovalReason = Literal["Expired", "Purged"]


def parse_moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def add_seconds(moment: str, seconds: float) -> str:
    try:
        return format_time(parse_moment(moment) + timedelta(seconds=seconds))
    except OverflowError:
        return LATEST_TIME if seconds > 0 else format_time(datetime.min.replace(tzinfo=UTC))


def validate_kind(value: object) -> str:
    if not isinstance(value, str) or not _KIND.match(value):
        raise InvalidInput(
            "'kind' must be 1 to 128 characters: letters, digits and . _ : / -, starting "
            "with a letter or digit.",
            target="kind",
        )
    return value


def validate_lease_seconds(value: object) -> float:
    """Seconds from 1 to 30 days; 0 means no lease (the operation may run indefinitely)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not (value == 0 or 1 <= value <= MAX_LEASE_SECONDS)
    ):
        raise InvalidInput(
            "'leaseSeconds' must be 0 (no lease) or a number of seconds from 1 to "
            f"{MAX_LEASE_SECONDS:.0f}.",
            target="leaseSeconds",
        )
    return float(value)


@dataclass(frozen=True, slots=True)
class Tombstone:
    """What is left of a removed operation, so that reads can say it expired."""

    subscription_id: str
    operation_id: str
    namespace: str
    location: str
    status: str
    end_time: str | None
    #: When its status stopped being available: its retention's end, or the purge.
    expired_at: str
    reason: RemovalReason
    #: When the tombstone itself goes; after that the id reads as never existing.
    forget_at: str

    @property
    def key(self) -> str:
        return operation_key(self.operation_id)


@dataclass(frozen=True)
class LifecyclePolicy:
    """How long things last. Every value is in seconds."""

    retain_succeeded: float = 7 * DAY
    retain_failed: float = 30 * DAY
    retain_canceled: float = 7 * DAY
    tombstone_seconds: float = 30 * DAY
    #: The lease an operation gets when its producer names none; None: no lease.
    default_lease_seconds: float | None = DAY
    lease_grace_seconds: float = 300.0

    def __post_init__(self) -> None:
        for name in ("retain_succeeded", "retain_failed", "retain_canceled"):
            value = getattr(self, name)
            if not value >= MIN_RETENTION_SECONDS:
                raise ValueError(
                    f"{name} must be at least 24 hours ({MIN_RETENTION_SECONDS:.0f} s), got "
                    f"{value!r} s"
                )
        if not self.tombstone_seconds >= 0:
            raise ValueError(f"tombstone_seconds must be 0 or more, got {self.tombstone_seconds!r}")
        if not self.lease_grace_seconds >= 0:
            raise ValueError(
                f"lease_grace_seconds must be 0 or more, got {self.lease_grace_seconds!r}"
            )
        lease = self.default_lease_seconds
        if lease is not None and not 1 <= lease <= MAX_LEASE_SECONDS:
            raise ValueError(
                f"default_lease_seconds must be from 1 to {MAX_LEASE_SECONDS:.0f}, got {lease!r}"
            )

    def retention(self, status: str) -> float:
        return {
            SUCCEEDED: self.retain_succeeded,
            FAILED: self.retain_failed,
            CANCELED: self.retain_canceled,
        }[status]

    # --- creation and updates ----------------------------------------------------------

    def on_create(self, op: Operation, lease_seconds: float | None, now: str) -> Operation:
        """Start the lease (``lease_seconds`` None: the default; 0: none) or the retention."""
        if op.terminal:
            return op.evolve(expires_at=add_seconds(now, self.retention(op.status)))
        seconds = self.default_lease_seconds if lease_seconds is None else lease_seconds or None
        if seconds is None:
            return op
        return op.evolve(lease_seconds=seconds, lease_expires_at=add_seconds(now, seconds))

    def settle(self, op: Operation, now: str) -> Operation:
        """The operation as it stands at ``now``: lost producers are Failed, expiry is final.

        Raises OperationExpired when its retention is over; returns ``op`` itself when
        nothing is due.
        """
        if self.is_expired(op, now):
            raise expired_error(op.operation_id, op.status, op.expires_at or now)
        return self.lapse(op, now) or op

    def due(self, op: Operation | OperationStatus, now: str) -> bool:
        """Whether reading ``op`` at ``now`` is more than a read: it has expired, or its
        producer's lease ran out past the grace period (:meth:`settle` raises or fails it)."""
        return self.is_expired(op, now) or self._lapsed(op, now)

    def on_update(
        self,
        stored: Operation,
        settled: Operation,
        updated: Operation | None,
        update: OperationUpdate,
        now: str,
    ) -> Operation | None:
        """After :func:`~opstatus.models.apply_update`: renew the lease, start the retention.

        ``stored`` is what the store holds, ``settled`` the same at ``now`` (see
        :meth:`settle`), ``updated`` the result of the update or None if it changed nothing.
        Returns what to store, or None when nothing changes. Renewing a lease changes neither
        the ETag nor ``updated_at``: it is bookkeeping, not a change of the status.
        """
        result = updated or settled
        if result.terminal:
            if result.expires_at is None:  # it has just ended
                result = result.evolve(
                    expires_at=add_seconds(now, self.retention(result.status)),
                    lease_expires_at=None,
                )
        else:
            seconds = result.lease_seconds
            if update.lease_seconds is not None:
                seconds = update.lease_seconds or None
            expires = add_seconds(now, seconds) if seconds else None
            result = result.evolve(lease_seconds=seconds, lease_expires_at=expires)
        return None if result == stored else result

    # --- leases ------------------------------------------------------------------------

    def lease_state(self, op: Operation, now: str) -> LeaseState | None:
        if op.terminal or op.lease_expires_at is None:
            return None
        return "Active" if now < op.lease_expires_at else "Lapsed"

    def lapse_cutoff(self, now: str) -> str:
        """Leases that expired at or before this moment have run out of grace at ``now``."""
        return _earlier(now, self.lease_grace_seconds)

    def _lapsed(self, op: Operation | OperationStatus, now: str) -> bool:
        return (
            not op.terminal
            and op.lease_expires_at is not None
            and op.lease_expires_at <= self.lapse_cutoff(now)
        )

    def lapse(self, op: Operation, now: str) -> Operation | None:
        """Failed with ProducerLost if the lease ran out more than the grace period ago."""
        if not self._lapsed(op, now) or op.lease_expires_at is None:
            return None
        deadline = add_seconds(op.lease_expires_at, self.lease_grace_seconds)
        return op.evolve(
            status=FAILED,
            end_time=deadline,
            error={
                "code": PRODUCER_LOST,
                "message": (
                    f"The producer stopped renewing its lease, which expired at "
                    f"{op.lease_expires_at}; after a grace period of "
                    f"{self.lease_grace_seconds:g} s the operation was presumed lost."
                ),
            },
            lease_expires_at=None,
            expires_at=add_seconds(deadline, self.retain_failed),
            etag=new_etag(),
            updated_at=now,
        )

    # --- cancel ------------------------------------------------------------------------

    def request_cancel(self, op: Operation, now: str) -> Operation | None:
        """Record a cancel request; None when there is nothing to record (already asked, or
        already Canceled)."""
        if op.status == CANCELED or (not op.terminal and op.cancel_requested_at):
            return None
        if op.terminal:
            raise TerminalStatusFinal(
                f"The operation '{op.operation_id}' has already reached the terminal status "
                f"'{op.status}' and can no longer be canceled.",
            )
        if not op.cancelable:
            raise NotCancelable(
                f"The operation '{op.operation_id}' cannot be canceled: its producer declared "
                "it not cancelable.",
            )
        return op.evolve(cancel_requested_at=now, etag=new_etag(), updated_at=now)

    # --- retention ---------------------------------------------------------------------

    def is_expired(self, op: Operation | OperationStatus, now: str) -> bool:
        return op.expires_at is not None and op.expires_at <= now

    def tombstone(self, op: Operation, now: str, reason: RemovalReason) -> Tombstone:
        return Tombstone(
            subscription_id=op.subscription_id,
            operation_id=op.operation_id,
            namespace=op.namespace,
            location=op.location,
            status=op.status,
            end_time=op.end_time,
            expired_at=op.expires_at if reason == "Expired" and op.expires_at else now,
            reason=reason,
            forget_at=add_seconds(now, self.tombstone_seconds),
        )


@functools.lru_cache(maxsize=64)
def _earlier(now: str, seconds: float) -> str:
    """:func:`add_seconds` back in time, remembered: every read of an operation with a lease
    asks it of the same clock reading (``now_text`` changes once a millisecond), and parsing
    and formatting the time costs more than the rest of the check."""
    return add_seconds(now, -seconds)


def expired_error(
    operation_id: str, status: str, when: str, purged: bool = False
) -> OperationExpired:
    how = "was purged" if purged else "expired"
    return OperationExpired(
        f"The operation '{operation_id}' ended with status '{status}' and {how} at {when}; "
        "its status is no longer retained.",
        target="operationId",
    )

"""How the command line prints an operation: a table, JSON, or shell variables.

The first four rows are what System Center Orchestrator's "Get Operation Status" activity
publishes, under its names: Request ID, Status, Error Code, Error Message. The ARM form adds
the times and progress; the classic form adds the HTTP status code it reports.

- ``table``: ``Label:  value`` lines for people (``text`` is the older name).
- ``json``: the body the endpoint answered: ARM's JSON, or the classic XML's elements.
- ``env``: ``REQUEST_ID='...'`` lines, one per row, for a runbook or shell script to source
  or ``eval``. Values are quoted for a POSIX shell, and every variable is always printed
  (empty when unknown), so a value from an earlier read never lingers.
"""

from __future__ import annotations

import json
import shlex
from datetime import datetime

from .client import OperationStatus
from .models import format_time

FORMATS = ("table", "json", "env")
#: Accepted for ``table``: the name ``--output`` used before ``env`` existed.
ALIASES = {"text": "table"}
#: Table rows left out when empty (the table predates them and stays as it was).
_OPTIONAL_IN_TABLE = frozenset({"Percent Complete"})


def rows(status: OperationStatus) -> list[tuple[str, str]]:
    published = [
        ("Request ID", status.name),
        ("Status", status.status),
        ("Error Code", status.error_code or ""),
        ("Error Message", status.error_message or ""),
    ]
    if status.form == "classic":
        code = status.http_status_code
        return [*published, ("HTTP Status Code", "" if code is None else str(code))]
    percent = status.percent_complete
    return [
        *published,
        ("Start Time", _time(status.start_time)),
        ("End Time", _time(status.end_time)),
        ("Percent Complete", "" if percent is None else f"{percent:g}"),
    ]


def lifecycle_rows(status: OperationStatus) -> list[tuple[str, str]]:
    """What the table adds when something needs a person's attention: a producer whose lease
    lapsed, or a cancel request not yet acted on (the published rows stay as they were)."""
    extra = []
    if status.lease_state == "Lapsed":
        extra.append(("Producer Lease", f"Lapsed (since {_time(status.lease_expires_at)})"))
    if status.cancel_requested_at is not None:
        extra.append(("Cancel Requested", _time(status.cancel_requested_at)))
    return extra


def _time(moment: datetime | None) -> str:
    """As the wire writes times: UTC, milliseconds, 'Z'."""
    return "" if moment is None else format_time(moment)


def variable_name(label: str) -> str:
    """``Error Code`` -> ``ERROR_CODE``."""
    return label.upper().replace(" ", "_")


def render(status: OperationStatus, output: str) -> str:
    output = ALIASES.get(output, output)
    if output == "json":
        return json.dumps(status.body, indent=2)
    if output == "env":
        return "\n".join(f"{variable_name(k)}={shlex.quote(v)}" for k, v in rows(status))
    shown = [(k, v) for k, v in rows(status) if v or k not in _OPTIONAL_IN_TABLE]
    shown += lifecycle_rows(status)
    return "\n".join(f"{label + ':':<18} {value}".rstrip() for label, value in shown)

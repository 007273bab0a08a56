"""An operation, and an error, as the classic Service Management API writes them.

"Get Operation Status" (MSDN ee460783) answers ``<Operation>`` in the windowsazure namespace
with ``ID``, ``Status``, ``HttpStatusCode`` (only once the operation has ended) and
``Error/Code``, ``Error/Message`` (only when it failed). The classic form knows three
statuses, so the domain's are mapped:

- ``Succeeded`` stays ``Succeeded``;
- ``Failed`` stays ``Failed``; ``Canceled`` becomes ``Failed`` with the code
  ``OperationCanceled``, so a classic caller can still tell a cancel from a failure;
- every other status (``InProgress``, ``Accepted``, ``Running``...) is ``InProgress``.

``HttpStatusCode`` is what the producer reported for the original request, else 200 for
Succeeded and 500 for Failed: a failure nobody attributed to the caller is the server's.

The XML is written by hand because it is tiny and on the read path, and every value goes
through :func:`_text`: escaped, with the characters XML 1.0 cannot carry replaced by U+FFFD,
so the document is well-formed whatever a producer stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from xml.sax.saxutils import escape

from ..models import CANCELED, FAILED, IN_PROGRESS, SUCCEEDED, Operation, default_error

NAMESPACE = "http://schemas.microsoft.com/windowsazure"
#: Live classic responses declare it too; clients built on DataContract serialisers expect it.
XSI = "http://www.w3.org/2001/XMLSchema-instance"
MEDIA_TYPE = "application/xml; charset=utf-8"
DECLARATION = '<?xml version="1.0" encoding="utf-8"?>\n'
CANCELED_CODE = "OperationCanceled"
SUCCEEDED_HTTP_STATUS = 200
FAILED_HTTP_STATUS = 500

# C0 controls other than tab, newline and carriage return; surrogates; U+FFFE and U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# Parsers normalise line ends, so a carriage return survives only as a character reference.
_ENTITIES = {"\r": "&#13;"}


@dataclass(frozen=True, slots=True)
class ClassicStatus:
    """What the classic form says about an operation (and Orchestrator publishes)."""

    request_id: str
    status: str
    http_status_code: int | None = None
    error_code: str | None = None
    error_message: str | None = None


def classic_status(op: Operation) -> ClassicStatus:
    if op.status == SUCCEEDED:
        http = op.http_status_code or SUCCEEDED_HTTP_STATUS
        return ClassicStatus(op.operation_id, SUCCEEDED, http)
    if op.status in (FAILED, CANCELED):
        error = op.error or default_error(op.status) or {}
        code = CANCELED_CODE if op.status == CANCELED else str(error.get("code", ""))
        http = op.http_status_code or FAILED_HTTP_STATUS
        return ClassicStatus(op.operation_id, FAILED, http, code, str(error.get("message", "")))
    return ClassicStatus(op.operation_id, IN_PROGRESS)


def _text(value: str) -> str:
    return escape(_NOT_XML.sub("\ufffd", value), _ENTITIES)


def _element(name: str, value: str) -> str:
    return f"<{name}>{_text(value)}</{name}>"


def operation_xml(view: ClassicStatus) -> bytes:
    parts = [
        DECLARATION,
        f'<Operation xmlns="{NAMESPACE}" xmlns:i="{XSI}">',
        _element("ID", view.request_id),
        _element("Status", view.status),
    ]
    if view.http_status_code is not None:
        parts.append(_element("HttpStatusCode", str(view.http_status_code)))
    if view.error_code is not None:
        code, message = (
            _element("Code", view.error_code),
            _element("Message", view.error_message or ""),
        )
        parts.append(f"<Error>{code}{message}</Error>")
    parts.append("</Operation>")
    return "".join(parts).encode("utf-8")


def error_xml(code: str, message: str) -> bytes:
    """The classic error body (ee460801), in the namespace live responses used."""
    return (
        f'{DECLARATION}<Error xmlns="{NAMESPACE}" xmlns:i="{XSI}">'
        f"{_element('Code', code)}{_element('Message', message)}</Error>"
    ).encode()

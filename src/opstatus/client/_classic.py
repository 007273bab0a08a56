"""Reading the classic Service Management form: ``GET /{subscriptionId}/operations/{id}``.

The classic form needs no namespace or location; it answers XML whose elements become an
:class:`OperationStatus` with ``form="classic"`` (``body`` keeps the element names). Its URL
is built in ``_base`` with the others (:func:`~opstatus.client._base.classic_url`), so that
this module depends on ``_base`` and not the other way round.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import httpx

from ._base import ClientError, OperationStatus, retry_after_of

#: The x-ms-version sent to the classic endpoint (the legacy Azure SDK's; any from 2009-10-01).
CLASSIC_VERSION = "2014-10-01"
CLASSIC_HEADERS = {"x-ms-version": CLASSIC_VERSION, "Accept": "application/xml"}


def xml_fields(element: ET.Element) -> dict[str, Any]:
    """Child elements by local name (the classic namespace aside); nested ones as dicts."""
    fields: dict[str, Any] = {}
    for child in element:
        name = child.tag.rpartition("}")[2]
        fields[name] = xml_fields(child) if len(child) else child.text or ""
    return fields


def parse_classic_status(response: httpx.Response) -> OperationStatus:
    """The classic ``<Operation>``; ``body`` keeps its element names (``ID``, ``Error``...)."""
    try:
        body = xml_fields(ET.fromstring(response.content))
    except ET.ParseError:
        kind = response.headers.get("content-type", "no content type")
        raise ClientError(
            response.status_code, "UnexpectedResponse", f"expected the classic XML, got {kind}"
        ) from None
    error = body.get("Error") or {}
    code = body.get("HttpStatusCode")
    if isinstance(code, str) and code.isdigit():
        body["HttpStatusCode"] = int(code)
    return OperationStatus(
        id=body.get("ID", ""),
        name=body.get("ID", ""),
        status=body.get("Status", ""),
        error_code=error.get("Code"),
        error_message=error.get("Message"),
        retry_after=retry_after_of(response.headers),
        url=str(response.request.url),
        body=body,
        http_status_code=body.get("HttpStatusCode"),
        form="classic",
    )

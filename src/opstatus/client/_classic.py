"""Reading the classic Service Management form: ``GET /{subscriptionId}/operations/{id}``.

The classic form needs no namespace or location; it answers XML whose elements become an
:class:`OperationStatus` with ``form="classic"`` (``body`` keeps the element names).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from ._base import ClientError, OperationStatus, retry_after_of

#: The x-ms-version sent to the classic endpoint (the legacy Azure SDK's; any from 2009-10-01).
CLASSIC_VERSION = "2014-10-01"
CLASSIC_HEADERS = {"x-ms-version": CLASSIC_VERSION, "Accept": "application/xml"}


def classic_url(endpoint: str, subscription_id: str, request_id: str) -> str:
    return f"{endpoint}/{quote(subscription_id, safe='')}/operations/{quote(request_id, safe='')}"


def is_classic_url(url: str) -> bool:
    """``.../{subscriptionId}/operations/{requestId}``, as :func:`classic_url` builds."""
    parts = urlsplit(url).path.strip("/").split("/")
    return len(parts) == 3 and parts[1].lower() == "operations"


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

"""The classic Service Management form: ``/{subscriptionId}/operations/{requestId}`` in XML.

What MSDN documents (ee460783, ee460801) is written out here, not imported from the code:
element names and order, the namespace, the three statuses, the error codes and messages.
Every body is also validated against ``tests/data/classic_operation.xsd``.
"""

from __future__ import annotations

import uuid
import xml.dom.minidom
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import httpx
import pytest

from opstatus.auth import key_id, load_or_create_key
from opstatus.errors import StoreError
from opstatus.http.classic_xml import ClassicStatus, error_xml, operation_xml
from opstatus.service import OperationService
from opstatus.stores import MemoryStore
from tests.support import (
    CLASSIC_HEADERS,
    CLASSIC_NS,
    SUB_A,
    SUB_B,
    app_client,
    bearer,
    classic_path,
    classic_schema,
    status_path,
    token,
)

from .conftest import JSON, assert_arm_error

pytestmark = pytest.mark.anyio

V = CLASSIC_HEADERS
PROLOG = (
    '<?xml version="1.0" encoding="utf-8"?>\n'
    '<Operation xmlns="http://schemas.microsoft.com/windowsazure" '
    'xmlns:i="http://www.w3.org/2001/XMLSchema-instance">'
)
ERROR_PROLOG = (
    '<?xml version="1.0" encoding="utf-8"?>\n'
    '<Error xmlns="http://schemas.microsoft.com/windowsazure" '
    'xmlns:i="http://www.w3.org/2001/XMLSchema-instance">'
)
VERSION_MESSAGE = "The versioning header is not specified or was specified incorrectly."
AUTH_MESSAGE = "The server failed to authenticate the request. "
NOT_FOUND_MESSAGE = "The specified resource does not exist."
CLASSIC_ARM_PATH = (
    f"/subscriptions/{SUB_A}/providers/Opstatus.Classic/locations/global/operationsStatus/"
)


def q(name: str) -> str:
    return f"{{{CLASSIC_NS}}}{name}"


def children(element: ET.Element) -> list[tuple[str, str]]:
    """(local name, text) of each child, in order; nested elements flattened as Error/Code."""
    found: list[tuple[str, str]] = []
    for child in element:
        name = child.tag.removeprefix(f"{{{CLASSIC_NS}}}")
        if len(child):
            found.extend((f"{name}/{n}", t) for n, t in children(child))
        else:
            found.append((name, child.text or ""))
    return found


def read_operation(response: httpx.Response, status: int = 200) -> list[tuple[str, str]]:
    """A valid classic Operation body: schema-checked, parsed into (element, text) pairs."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/xml; charset=utf-8"
    assert uuid.UUID(response.headers["x-ms-request-id"])
    classic_schema().validate(response.text)
    root = ET.fromstring(response.content)
    assert root.tag == q("Operation")
    return children(root)


def assert_classic_error(response: httpx.Response, status: int, code: str, message: str) -> None:
    """Exactly the classic error body, with this status, code and message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/xml; charset=utf-8"
    assert uuid.UUID(response.headers["x-ms-request-id"])
    if 400 <= status < 500:
        assert "retry-after" not in response.headers
    assert "www-authenticate" not in response.headers
    classic_schema().validate(response.text)
    root = ET.fromstring(response.content)
    assert root.tag == q("Error")
    assert children(root) == [("Code", code), ("Message", message)]
    expected_text = (
        f"{ERROR_PROLOG}<Code>{code}</Code><Message>{_escaped(message)}</Message></Error>"
    )
    assert response.text == expected_text


def _escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


async def seed(client: httpx.AsyncClient, body: dict[str, Any], op_id: str = "op1") -> None:
    response = await client.put(status_path(op_id=op_id), json=body)
    assert response.status_code == 201, response.text


# -- reading each status ----------------------------------------------------------------------

FAILURE = {"code": "DiskFull", "message": "No space left."}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param({}, "<ID>op1</ID><Status>InProgress</Status>", id="InProgress"),
        pytest.param(
            {"status": "Provisioning", "percentComplete": 40},
            "<ID>op1</ID><Status>InProgress</Status>",
            id="custom-non-terminal",
        ),
        pytest.param(
            {"status": "Succeeded"},
            "<ID>op1</ID><Status>Succeeded</Status><HttpStatusCode>200</HttpStatusCode>",
            id="Succeeded",
        ),
        pytest.param(
            {"status": "Succeeded", "httpStatusCode": 201},
            "<ID>op1</ID><Status>Succeeded</Status><HttpStatusCode>201</HttpStatusCode>",
            id="Succeeded-reported-201",
        ),
        pytest.param(
            {"status": "Failed", "error": FAILURE},
            "<ID>op1</ID><Status>Failed</Status><HttpStatusCode>500</HttpStatusCode>"
            "<Error><Code>DiskFull</Code><Message>No space left.</Message></Error>",
            id="Failed",
        ),
        pytest.param(
            {"status": "Failed", "error": FAILURE, "httpStatusCode": 409},
            "<ID>op1</ID><Status>Failed</Status><HttpStatusCode>409</HttpStatusCode>"
            "<Error><Code>DiskFull</Code><Message>No space left.</Message></Error>",
            id="Failed-reported-409",
        ),
        pytest.param(
            {"status": "Failed"},
            "<ID>op1</ID><Status>Failed</Status><HttpStatusCode>500</HttpStatusCode>"
            "<Error><Code>OperationFailed</Code><Message>The operation failed.</Message></Error>",
            id="Failed-without-error",
        ),
        pytest.param(
            {"status": "Canceled"},
            "<ID>op1</ID><Status>Failed</Status><HttpStatusCode>500</HttpStatusCode>"
            "<Error><Code>OperationCanceled</Code>"
            "<Message>The operation was canceled.</Message></Error>",
            id="Canceled",
        ),
        pytest.param(
            {"status": "Canceled", "error": {"code": "UserAborted", "message": "Bob stopped it."}},
            "<ID>op1</ID><Status>Failed</Status><HttpStatusCode>500</HttpStatusCode>"
            "<Error><Code>OperationCanceled</Code><Message>Bob stopped it.</Message></Error>",
            id="Canceled-with-producer-error",
        ),
    ],
)
async def test_each_status_reads_as_documented(
    client: httpx.AsyncClient, body: dict[str, Any], expected: str
) -> None:
    await seed(client, body)
    response = await client.get(classic_path(), headers=V)
    read_operation(response)
    assert response.text == f"{PROLOG}{expected}</Operation>"


async def test_retry_after_only_while_in_progress(client: httpx.AsyncClient) -> None:
    await seed(client, {})
    running = await client.get(classic_path(), headers=V)
    assert running.headers["retry-after"] == "10"
    await client.patch(status_path(), json={"status": "Succeeded"})
    done = await client.get(classic_path(), headers=V)
    assert "retry-after" not in done.headers


async def test_head_answers_like_get_without_a_body(client: httpx.AsyncClient) -> None:
    await seed(client, {})
    response = await client.head(classic_path(), headers=V)
    assert response.status_code == 200
    assert response.content == b""


@pytest.mark.parametrize("version", ["2009-10-01", "2014-10-01", "2099-12-31", " 2014-10-01 "])
async def test_every_version_from_2009_10_01_is_accepted(
    client: httpx.AsyncClient, version: str
) -> None:
    await seed(client, {})
    response = await client.get(classic_path(), headers={"x-ms-version": version})
    assert read_operation(response)[1] == ("Status", "InProgress")


# -- one operation, two forms -------------------------------------------------------------


async def test_the_request_id_is_the_operation_id_in_any_case(client: httpx.AsyncClient) -> None:
    await seed(client, {"status": "Succeeded"}, op_id="Job-42")
    for asked in ("Job-42", "job-42", "JOB-42"):
        response = await client.get(classic_path(asked), headers=V)
        assert read_operation(response)[0] == ("ID", "Job-42")
    upper_sub = await client.get(classic_path("job-42", sub=SUB_A.upper()), headers=V)
    assert read_operation(upper_sub)[0] == ("ID", "Job-42")
    caseless_path = await client.get(f"/{SUB_A}/OPERATIONS/job-42", headers=V)
    assert read_operation(caseless_path)[0] == ("ID", "Job-42")


async def test_classic_create_is_stored_under_the_classic_defaults(
    client: httpx.AsyncClient,
) -> None:
    created = await client.put(classic_path("req-1"), json={"percentComplete": 5}, headers=V)
    assert read_operation(created, 201) == [("ID", "req-1"), ("Status", "InProgress")]
    assert created.headers["retry-after"] == "10"
    replay = await client.put(classic_path("req-1"), json={"percentComplete": 5}, headers=V)
    assert read_operation(replay, 200) == [("ID", "req-1"), ("Status", "InProgress")]
    arm = await client.get(CLASSIC_ARM_PATH + "req-1?api-version=2025-07-01")
    assert arm.status_code == 200, arm.text
    body = arm.json()
    assert body["id"] == CLASSIC_ARM_PATH + "req-1"
    assert (body["name"], body["status"], body["percentComplete"]) == ("req-1", "InProgress", 5)
    elsewhere = await client.get(status_path(op_id="req-1"))
    assert_arm_error(elsewhere, 404, "ResourceNotFound", target="operationId")


async def test_classic_create_with_a_different_body_is_a_conflict(
    client: httpx.AsyncClient,
) -> None:
    await client.put(classic_path("req-1"), json={}, headers=V)
    response = await client.put(classic_path("req-1"), json={"status": "Succeeded"}, headers=V)
    message = (
        "The operation 'req-1' already exists with different content. Replaying the original "
        "request is allowed; changing it needs PATCH."
    )
    assert_classic_error(response, 409, "ConflictError", message)
    await seed(client, {}, op_id="arm-1")
    taken = await client.put(classic_path("arm-1"), json={}, headers=V)
    assert taken.status_code == 409


async def test_classic_patch_updates_an_operation_created_through_arm(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {"percentComplete": 10})
    failed = {"status": "Failed", "error": FAILURE, "httpStatusCode": 507}
    response = await client.patch(classic_path(), json=failed, headers=V)
    assert read_operation(response) == [
        ("ID", "op1"),
        ("Status", "Failed"),
        ("HttpStatusCode", "507"),
        ("Error/Code", "DiskFull"),
        ("Error/Message", "No space left."),
    ]
    arm = (await client.get(status_path())).json()
    assert arm["status"] == "Failed"
    assert arm["error"] == {"error": FAILURE}
    again = await client.patch(classic_path(), json={"status": "Succeeded"}, headers=V)
    message = (
        "The operation 'op1' has already reached the terminal status 'Failed'; a terminal "
        "status is final and the operation cannot change."
    )
    assert_classic_error(again, 409, "ConflictError", message)


async def test_classic_delete(client: httpx.AsyncClient) -> None:
    await client.put(classic_path("req-1"), json={}, headers=V)
    assert (await client.delete(classic_path("req-1"), headers=V)).status_code == 200
    assert (await client.delete(classic_path("req-1"), headers=V)).status_code == 204
    gone = await client.get(classic_path("req-1"), headers=V)
    assert_classic_error(gone, 404, "ResourceNotFound", NOT_FOUND_MESSAGE)


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param({"x-ms-version": ""}, id="empty"),
        pytest.param({"x-ms-version": "2009-09-30"}, id="too-old"),
        pytest.param({"x-ms-version": "2014-13-01"}, id="no-such-month"),
        pytest.param({"x-ms-version": "14-10-01"}, id="short-year"),
        pytest.param({"x-ms-version": "2014-10-01x"}, id="trailing"),
        pytest.param({"x-ms-version": "2014/10/01"}, id="slashes"),
        pytest.param({"x-ms-version": "latest"}, id="word"),
    ],
)
@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
async def test_missing_or_bad_version_header_is_400(
    bare_client: httpx.AsyncClient, headers: dict[str, str], method: str
) -> None:
    """Checked first: even an unauthenticated caller learns only that the header is wrong."""
    response = await bare_client.request(method, classic_path(), headers=headers)
    assert_classic_error(response, 400, "MissingOrIncorrectVersionHeader", VERSION_MESSAGE)


async def test_unknown_request_id_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get(classic_path("never-created"), headers=V)
    assert_classic_error(response, 404, "ResourceNotFound", NOT_FOUND_MESSAGE)


async def test_another_subscriptions_operation_is_404(client: httpx.AsyncClient) -> None:
    """Same request id, other tenant: indistinguishable from an id that never existed."""
    await seed(client, {"status": "Succeeded"}, op_id="theirs")
    assert (await client.get(classic_path("theirs"), headers=V)).status_code == 200
    response = await client.get(classic_path("theirs", sub=SUB_B), headers=V)
    assert_classic_error(response, 404, "ResourceNotFound", NOT_FOUND_MESSAGE)


BAD_FORMAT = "The 'Authorization' header is provided in an invalid format."


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        pytest.param(None, "The 'Authorization' header is missing.", id="missing"),
        pytest.param("Basic dXNlcjpwYXNz", BAD_FORMAT, id="basic"),
        pytest.param("Bearer ", BAD_FORMAT, id="empty-bearer"),
        pytest.param("Bearer not.a.token", "The access token is invalid.", id="garbage"),
    ],
)
@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
async def test_authentication_failure_is_403(
    bare_client: httpx.AsyncClient, authorization: str | None, reason: str, method: str
) -> None:
    """The classic service's first sentence, then what is wrong with the bearer token (never
    the classic advice about a management certificate, which opstatus does not take)."""
    headers = dict(V)
    if authorization is not None:
        headers["Authorization"] = authorization
    response = await bare_client.request(method, classic_path(), headers=headers)
    assert_classic_error(response, 403, "AuthenticationFailed", AUTH_MESSAGE + reason)
    assert "certificate" not in response.text


async def test_expired_or_foreign_tokens_are_403(bare_client: httpx.AsyncClient, home: Path):
    expired = token(home, expires_in=-3600)
    response = await bare_client.get(
        classic_path(), headers={**V, "Authorization": f"Bearer {expired}"}
    )
    assert_classic_error(
        response, 403, "AuthenticationFailed", AUTH_MESSAGE + "The access token has expired."
    )
    foreign = token(home.parent / "other-home")
    response = await bare_client.get(
        classic_path(), headers={**V, "Authorization": f"Bearer {foreign}"}
    )
    kid = key_id(load_or_create_key(home.parent / "other-home"))
    unknown = (
        f"The access token is signed with the key '{kid}', which this server does not know. "
        "Mint tokens with the server's own home folder (opstatus token --home, or "
        "OPSTATUS_HOME, as the server was started with)."
    )
    assert_classic_error(response, 403, "AuthenticationFailed", AUTH_MESSAGE + unknown)


def _denied(verb: str, sub: str) -> str:
    return (
        f"The client 'alice' with object id 'alice' does not have authorization to perform "
        f"action 'Opstatus.Classic/operations/{verb}' over scope '/subscriptions/{sub}/"
        "operations' or the scope is invalid. If access was recently granted, please refresh "
        "your credentials."
    )


async def test_a_token_for_another_subscription_is_403_before_any_lookup(
    bare_client: httpx.AsyncClient, home: Path
) -> None:
    headers = {**V, **bearer(home, "Owner", f"/subscriptions/{SUB_B}")}
    response = await bare_client.get(classic_path(), headers=headers)
    assert_classic_error(response, 403, "AuthenticationFailed", _denied("read", SUB_A))


@pytest.mark.parametrize(
    ("method", "verb"), [("PUT", "write"), ("PATCH", "write"), ("DELETE", "delete")]
)
async def test_a_reader_cannot_write(
    bare_client: httpx.AsyncClient, home: Path, method: str, verb: str
) -> None:
    headers = {**V, **bearer(home, "Reader", f"/subscriptions/{SUB_A}")}
    response = await bare_client.request(method, classic_path(), headers=headers, json={})
    assert_classic_error(response, 403, "AuthenticationFailed", _denied(verb, SUB_A))


async def test_malformed_subscription_is_400(client: httpx.AsyncClient) -> None:
    response = await client.get(classic_path(sub="not-a-guid"), headers=V)
    message = "The provided subscription identifier 'not-a-guid' is malformed or invalid."
    assert_classic_error(response, 400, "BadRequest", message)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            {"httpStatusCode": 700},
            "'httpStatusCode' must be an integer from 100 to 599.",
            id="httpStatusCode",
        ),
        pytest.param(
            {"percentcomplete": 5},
            "The request content has an unknown property 'percentcomplete'. Known properties "
            "are: status, percentComplete, startTime, endTime, properties, error, "
            "httpStatusCode, kind, cancelable, leaseSeconds, callbackUrl, callbackEvents.",
            id="unknown-property",
        ),
        pytest.param(
            {"status": "Cancelled"},
            "The status 'Cancelled' is not valid; the terminal status is spelled 'Canceled'.",
            id="Cancelled",
        ),
    ],
)
async def test_bad_create_body_is_400_with_the_reason(
    client: httpx.AsyncClient, body: dict[str, Any], message: str
) -> None:
    response = await client.put(classic_path("req-1"), json=body, headers=V)
    assert_classic_error(response, 400, "BadRequest", message)
    assert (await client.get(classic_path("req-1"), headers=V)).status_code == 404


async def test_non_json_body_keeps_its_http_status(client: httpx.AsyncClient) -> None:
    headers = {**V, "Content-Type": "application/xml"}
    response = await client.put(classic_path("req-1"), content=b"<Operation/>", headers=headers)
    message = "The request's content type is not supported; send application/json."
    assert_classic_error(response, 415, "UnsupportedMediaType", message)


async def test_wrong_verb_is_invalid_http_verb(client: httpx.AsyncClient) -> None:
    response = await client.post(classic_path(), headers={**V, **JSON}, content=b"{}")
    message = (
        "The HTTP verb specified was not recognized by the server or isn't valid for this resource."
    )
    assert_classic_error(response, 400, "InvalidHttpVerb", message)
    assert response.headers["allow"] == "DELETE, GET, HEAD, PATCH, PUT"


async def test_store_failure_is_503_server_busy(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unavailable(self: OperationService, ref: object) -> None:
        raise StoreError("database is locked at /secret/path")

    monkeypatch.setattr(OperationService, "get", unavailable)
    async with app_client(home, store=MemoryStore()) as c:
        response = await c.get(classic_path(), headers={**V, **bearer(home)})
    message = (
        "The server (or an internal component) is currently unavailable to receive requests. "
        "Please retry your request."
    )
    assert_classic_error(response, 503, "ServerBusy", message)
    assert response.headers["retry-after"] == "1"


async def test_unexpected_failure_is_500_internal_error(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def explode(self: OperationService, ref: object) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(OperationService, "get", explode)
    async with app_client(home, store=MemoryStore()) as c:
        response = await c.get(classic_path(), headers={**V, **bearer(home)})
    message = "The server encountered an internal error. Please retry the request."
    assert_classic_error(response, 500, "InternalError", message)
    assert "secret" not in response.text


# -- escaping ---------------------------------------------------------------------------------

NASTY_MESSAGES = [
    "a < b && c > d",
    "<Error><Code>Injected</Code></Error>",
    "]]> <![CDATA[ x ]]>",
    "quotes \" and ' and `",
    "&amp; is already escaped; &#x41; &lt;",
    "unicode: é ß 漢字 \U0001f680 \u202e reversed \u0301 combining",
    "lines\nand\r\ncarriage\rreturns\tand tabs",
    "<?xml version='1.0'?><!DOCTYPE x [<!ENTITY e 'boom'>]>&e;",
]


@pytest.mark.parametrize("message", NASTY_MESSAGES)
async def test_messages_come_back_exactly(client: httpx.AsyncClient, message: str) -> None:
    error = {"code": "Weird", "message": message}
    await seed(client, {"status": "Failed", "error": error})
    response = await client.get(classic_path(), headers=V)
    assert read_operation(response)[3:] == [("Error/Code", "Weird"), ("Error/Message", message)]
    # The DOM parser the legacy SDK uses agrees, and finds nothing but the five elements.
    dom = xml.dom.minidom.parseString(response.content)
    assert dom.doctype is None
    names = [n.localName for n in dom.documentElement.getElementsByTagName("*")]
    assert names == ["ID", "Status", "HttpStatusCode", "Error", "Code", "Message"]
    (node,) = dom.getElementsByTagNameNS(CLASSIC_NS, "Message")
    assert "".join(t.data for t in node.childNodes) == message


async def test_characters_xml_cannot_carry_are_replaced(client: httpx.AsyncClient) -> None:
    """U+FFFE/U+FFFF pass JSON but not XML 1.0: the document stays well-formed."""
    await seed(client, {"status": "Failed", "error": {"code": "X", "message": "a\uffffb\ufffe"}})
    response = await client.get(classic_path(), headers=V)
    assert read_operation(response)[4] == ("Error/Message", "a\ufffdb\ufffd")


def test_every_value_is_escaped_in_the_operation_body() -> None:
    """Ids cannot hold these characters today; the writer must not depend on that."""
    nasty = "<ID>&\"'é\r\U0001f680\x00"
    view = ClassicStatus(nasty, "Failed", 500, nasty, nasty)
    body = operation_xml(view).decode()
    classic_schema().validate(body)
    root = ET.fromstring(body)
    clean = nasty.replace("\x00", "\ufffd")
    assert children(root) == [
        ("ID", clean),
        ("Status", "Failed"),
        ("HttpStatusCode", "500"),
        ("Error/Code", clean),
        ("Error/Message", clean),
    ]
    assert children(ET.fromstring(error_xml(nasty, nasty))) == [
        ("Code", clean),
        ("Message", clean),
    ]


@pytest.mark.parametrize("op_id", ["a<b", "x&y", 'q"uote', "it's", "é", "\U0001f680"])
async def test_bad_request_ids_are_echoed_safely(client: httpx.AsyncClient, op_id: str) -> None:
    response = await client.get(classic_path(op_id), headers=V)
    message = (
        f"The operation id '{op_id}' is invalid. It must be 1 to 256 characters: letters, "
        "digits and . _ ~ : = + @ -, starting with a letter or digit."
    )
    assert_classic_error(response, 400, "BadRequest", message)

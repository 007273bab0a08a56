"""The webhook subscription API's answers to bad input, callers without the right role, and
the secret's rotation; and the signature, checked by the ``standardwebhooks`` package."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from jsonschema import Draft202012Validator
from standardwebhooks.webhooks import Webhook as Receiver
from standardwebhooks.webhooks import WebhookVerificationError

from opstatus.stores import MemoryStore
from opstatus.webhooks import address_allowed, new_secret, parse_networks, signature
from tests.support import SUB_A, app_client, bearer, status_path

from .conftest import assert_arm_error

pytestmark = pytest.mark.anyio

HOOKS = f"/subscriptions/{SUB_A}/webhookSubscriptions"


@pytest.fixture
async def api(home: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(
        home,
        store=MemoryStore(),
        webhook_allow_networks=("127.0.0.0/8",),
        webhook_concurrency=0,
    ) as client:
        client.headers.update(bearer(home))
        yield client


@pytest.mark.parametrize(
    ("body", "target"),
    [
        ({}, "url"),
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "http://127.0.0.1:9/x"}, "url"),  # plain http is not allowed by default
        ({"url": "https://user:pw@example.com/"}, "url"),
        ({"url": "https://10.1.2.3/hook"}, "url"),  # private, not in the allowlist
        ({"url": "https://169.254.169.254/latest"}, "url"),  # link-local metadata service
        ({"url": "https://127.0.0.1/", "events": ["exploded"]}, "events"),
        ({"url": "https://127.0.0.1/", "events": []}, "events"),
        ({"url": "https://127.0.0.1/", "provider": "No.Such"}, "namespace"),
        ({"url": "https://127.0.0.1/", "location": "West US!"}, "location"),
        ({"url": "https://127.0.0.1/", "secret": "whsec_short"}, "secret"),
        ({"url": "https://127.0.0.1/", "colour": "blue"}, "colour"),
    ],
)
async def test_bad_webhook_subscriptions_are_refused(
    api: httpx.AsyncClient, body: dict[str, object], target: str
) -> None:
    response = await api.post(HOOKS, json=body)
    code = {"namespace": "NoRegisteredProviderFound", "location": "InvalidLocation"}
    assert_arm_error(response, 400, code.get(target, "InvalidRequestContent"), target=target)


async def test_managing_webhooks_needs_contributor(api: httpx.AsyncClient, home: Path) -> None:
    reader = bearer(home, "Reader")
    for method, path in [("POST", HOOKS), ("GET", HOOKS), ("DELETE", HOOKS + "/wh_1")]:
        response = await api.request(method, path, headers=reader, json={"url": "https://x.io"})
        assert_arm_error(response, 403, "AuthorizationFailed")
    contributor = bearer(home, "Contributor", f"/subscriptions/{SUB_A}")
    made = await api.post(HOOKS, headers=contributor, json={"url": "https://127.0.0.1/h"})
    assert made.status_code == 201
    unknown = await api.get(HOOKS + "/wh_nope")
    assert_arm_error(unknown, 404, "ResourceNotFound", target="webhookId")


async def test_the_secret_is_shown_once_and_rotates_with_an_overlap(
    api: httpx.AsyncClient,
) -> None:
    made = (await api.post(HOOKS, json={"url": "https://127.0.0.1/h"})).json()
    item = f"{HOOKS}/{made['id']}"
    assert "secret" not in (await api.get(item)).json()
    rotated = await api.post(item + "/rotateSecret", json={"overlapSeconds": 3600})
    assert rotated.status_code == 200
    assert rotated.json()["secret"] != made["secret"]
    assert "previousSecretValidUntil" in rotated.json()
    bad = await api.post(item + "/rotateSecret", json={"overlapSeconds": -1})
    assert_arm_error(bad, 400, "InvalidRequestContent", target="overlapSeconds")
    assert (await api.delete(item)).status_code == 200
    assert (await api.delete(item)).status_code == 204
    assert (await api.get(HOOKS)).json() == {"value": []}


async def test_callback_urls_are_checked_at_create(api: httpx.AsyncClient) -> None:
    for body, target in [
        ({"callbackUrl": "http://example.com/cb"}, "callbackUrl"),
        ({"callbackUrl": 7}, "callbackUrl"),
        ({"callbackUrl": "https://example.com/cb", "callbackEvents": ["nope"]}, "callbackEvents"),
        ({"callbackEvents": ["status"]}, "callbackEvents"),
    ]:
        response = await api.put(status_path(), json=body)
        assert_arm_error(response, 400, "InvalidRequestContent", target=target)
    created = await api.put(
        status_path(), json={"callbackUrl": "https://example.com/cb", "callbackEvents": ["status"]}
    )
    assert created.status_code == 201
    shown = await api.get(status_path().replace("?", "/notifications?"))
    assert shown.json() == {"value": []}


def test_signatures_verify_with_standardwebhooks_during_a_rotation() -> None:
    old, new = new_secret(), new_secret()
    body, timestamp = b'{"type":"operation.created"}', int(time.time())
    headers = {
        "webhook-id": "msg_1_callback",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            signature(s, "msg_1_callback", timestamp, body) for s in (new, old)
        ),
    }
    for secret in (old, new):
        assert Receiver(secret).verify(body, headers) == {"type": "operation.created"}
    with pytest.raises(WebhookVerificationError):
        Receiver(new_secret()).verify(body, headers)


def test_private_addresses_need_the_allowlist() -> None:
    loopback = parse_networks(("127.0.0.0/8",))
    assert not address_allowed("127.0.0.1", ())
    assert address_allowed("127.0.0.1", loopback)
    assert not address_allowed("::ffff:127.0.0.1", ())
    assert address_allowed("::ffff:127.0.0.1", loopback)
    for private in ("10.0.0.1", "192.168.1.1", "169.254.169.254", "::1", "fe80::1", "0.0.0.0"):
        assert not address_allowed(private, loopback), private
    assert address_allowed("93.184.216.34", ())
    with pytest.raises(ValueError, match="allow-network"):
        parse_networks(("not-a-net",))


async def test_the_openapi_document_describes_webhooks(home: Path) -> None:
    async with app_client(home, store=MemoryStore()) as client:
        doc = (await client.get("/openapi.json")).json()
    assert {"post", "get"} <= set(
        doc["paths"]["/subscriptions/{subscriptionId}/webhookSubscriptions"]
    )
    operation_ids = {
        op["operationId"]
        for item in doc["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and "operationId" in op
    }
    assert {
        "WebhookSubscriptions_Create",
        "WebhookSubscriptions_RotateSecret",
        "WebhookSubscriptions_Redeliver",
        "OperationsStatus_ListNotifications_Microsoft_Cache",
    } <= operation_ids
    for name in ("WebhookSubscription", "WebhookDelivery", "WebhookSubscriptionCreate"):
        Draft202012Validator.check_schema(doc["components"]["schemas"][name])

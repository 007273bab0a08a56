"""``opstatus webhook``: webhook subscriptions, their deliveries, an operation's
notifications, and the callback secret. Answers are printed as JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click
import httpx

from .cli_common import EXIT_SERVICE, client_options, home_option, local_token
from .settings import default_home
from .webhook_dispatch import callback_secret


@click.group()
def webhook() -> None:
    """Webhook subscriptions (Contributor or above) and deliveries."""


def _call(
    method: str,
    path: str,
    endpoint: str,
    token: str | None,
    home: Path | None,
    body: dict[str, Any] | None = None,
    api_version: str = "",
) -> Any:
    if not token:
        minted = local_token(home or default_home())
        token = minted() if minted else None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    params = {"api-version": api_version} if api_version else None
    try:
        response = httpx.request(
            method, endpoint.rstrip("/") + path, json=body, headers=headers, params=params,
            timeout=30,
        )  # fmt: skip
    except httpx.HTTPError as exc:
        click.echo(f"opstatus: {endpoint} could not be reached: {exc}", err=True)
        sys.exit(EXIT_SERVICE)
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:500]
        click.echo(f"opstatus: {response.status_code}: {message}", err=True)
        sys.exit(EXIT_SERVICE)
    return response.json() if response.content else None


def _show(value: Any) -> None:
    if value is not None:
        click.echo(json.dumps(value, indent=2))


def _hooks(subscription: str) -> str:
    return f"/subscriptions/{quote(subscription, safe='')}/webhookSubscriptions"


subscription_option = click.option("--subscription", "-s", required=True, help="Subscription GUID.")


@webhook.command("create")
@client_options
@subscription_option
@click.option("--url", required=True, help="Where to send events (https).")
@click.option("--provider", help="Only this provider's operations.")
@click.option("--location", "-l", help="Only this location's operations.")
@click.option("--event", "events", multiple=True, help="Only this event type (repeatable).")
def create_webhook(
    endpoint: str,
    token: str | None,
    home: Path | None,
    namespace: str,
    api_version: str,
    subscription: str,
    url: str,
    provider: str | None,
    location: str | None,
    events: tuple[str, ...],
) -> None:
    """Subscribe a URL; prints the subscription with its secret (shown this once)."""
    body: dict[str, Any] = {"url": url}
    if provider:
        body["provider"] = provider
    if location:
        body["location"] = location
    if events:
        body["events"] = list(events)
    _show(_call("POST", _hooks(subscription), endpoint, token, home, body))


@webhook.command("list")
@client_options
@subscription_option
def list_webhooks(
    endpoint: str, token: str | None, home: Path | None, namespace: str, api_version: str,
    subscription: str,
) -> None:  # fmt: skip
    """The subscription's webhooks."""
    _show(_call("GET", _hooks(subscription), endpoint, token, home))


def _item_command(name: str, method: str, suffix: str, text: str) -> None:
    @webhook.command(name, help=text)
    @client_options
    @subscription_option
    @click.argument("webhook_id")
    def command(
        endpoint: str, token: str | None, home: Path | None, namespace: str, api_version: str,
        subscription: str, webhook_id: str,
    ) -> None:  # fmt: skip
        path = f"{_hooks(subscription)}/{quote(webhook_id, safe='')}{suffix}"
        _show(_call(method, path, endpoint, token, home))


_item_command("get", "GET", "", "One webhook subscription.")
_item_command("delete", "DELETE", "", "Delete a webhook subscription and its deliveries.")
_item_command("rotate", "POST", "/rotateSecret", "A new secret; the old one also signs for a day.")
_item_command("deliveries", "GET", "/deliveries", "A webhook subscription's newest deliveries.")


@webhook.command("redeliver")
@client_options
@subscription_option
@click.argument("webhook_id")
@click.argument("delivery_id")
def redeliver(
    endpoint: str, token: str | None, home: Path | None, namespace: str, api_version: str,
    subscription: str, webhook_id: str, delivery_id: str,
) -> None:  # fmt: skip
    """Send a delivery again."""
    path = f"{_hooks(subscription)}/{quote(webhook_id, safe='')}/deliveries/"
    _call("POST", path + quote(delivery_id, safe="") + "/redeliver", endpoint, token, home)
    click.echo(f"Delivery {delivery_id} will be sent again.")


@webhook.command("notifications")
@client_options
@subscription_option
@click.option("--location", "-l", required=True, help="Location of the operation.")
@click.argument("operation_id")
def notifications(
    endpoint: str, token: str | None, home: Path | None, namespace: str, api_version: str,
    subscription: str, location: str, operation_id: str,
) -> None:  # fmt: skip
    """An operation's deliveries: attempts, last HTTP status, last error, next retry."""
    path = (
        f"/subscriptions/{quote(subscription, safe='')}/providers/{quote(namespace, safe='')}"
        f"/locations/{quote(location, safe='')}/operationsStatus/"
        f"{quote(operation_id, safe='')}/notifications"
    )
    _show(_call("GET", path, endpoint, token, home, api_version=api_version))


@webhook.command("callback-secret")
@home_option
def show_callback_secret(home: Path | None) -> None:
    """The secret that signs operations' callbacks (unless serve has --webhook-secret)."""
    click.echo(callback_secret(home or default_home()))

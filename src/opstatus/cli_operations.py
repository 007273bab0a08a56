"""The client side of ``opstatus``: read, create, update, delete and wait on operations.

Endpoint and token come from flags or ``OPSTATUS_ENDPOINT`` / ``OPSTATUS_TOKEN``; on the
server's own machine a short-lived token is minted from its key. Exit codes are in
:mod:`opstatus.cli_common`; :mod:`opstatus.cli` adds these commands to ``opstatus``.
"""

from __future__ import annotations

import json
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import httpx

from .cli_common import (
    EXIT_FAILED,
    EXIT_TIMEOUT,
    client_options,
    describe_error,
    fail,
    make_client,
    output_option,
    print_status,
    resolve,
    target_options,
    warn_if_token_expires,
)
from .client import Client, ClientError, OperationStatus, WaitTimeout, is_transient
from .models import format_time


def _read_target(
    client: Client, target: str, subscription: str | None, location: str | None, classic: bool
) -> tuple[str, bool]:
    """The URL to read, and whether it is a classic one.

    A URL is read as given, in the form its path shows. An id needs --subscription; with
    --location it is read in the ARM form; without one (or with --classic) through the
    classic endpoint, which finds an operation by subscription and request id alone.
    """
    if classic and location:
        raise click.UsageError("--classic reads by subscription and request id: drop --location")
    if urlsplit(target).scheme in ("http", "https"):
        return target, classic or client.is_classic_url(target)
    if not subscription:
        raise click.UsageError(
            "an operation id needs --subscription (and --location for the ARM form), "
            "or pass a status URL"
        )
    if classic or not location:
        return client.classic_url(subscription, target), True
    return client.status_url(subscription, location, target), False


classic_option = click.option(
    "--classic",
    is_flag=True,
    help="Read through the classic Service Management endpoint (by subscription and request "
    "id; the default when no --location is given).",
)


def wait_options(func: Any) -> Any:
    options = [
        click.option(
            "--timeout",
            type=click.FloatRange(0),
            default=None,
            help="Give up after this many seconds (exit 3). Default: wait as long as it takes. "
            "Until then a server that cannot be reached or answers 502, 503 or 504 is tried "
            "again with backoff; if it still cannot be reached then, the exit is 3 as well, "
            "saying since when.",
        ),
        click.option(
            "--interval",
            type=click.FloatRange(0.05),
            default=None,
            help="Poll every this many seconds instead. Default: each read is held on the "
            "server until the operation changes (Prefer: wait), or the server's Retry-After "
            "between reads where it does not hold them.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.command()
@target_options
@classic_option
@click.option(
    "--wait",
    "wait_for_completion",
    is_flag=True,
    help="Wait until the operation ends, then print it (Orchestrator's 'Wait for Completion'); "
    "exit codes as for 'wait'.",
)
@wait_options
@client_options
@output_option
def get(
    target: str,
    subscription: str | None,
    location: str | None,
    classic: bool,
    wait_for_completion: bool,
    timeout: float | None,
    interval: float | None,
    endpoint: str,
    token: str | None,
    home: Path | None,
    namespace: str,
    api_version: str,
    output: str,
) -> None:
    """Print an operation's status: TARGET is an operation (request) id or its status URL.

    Prints what Orchestrator's "Get Operation Status" publishes: Request ID, Status, Error
    Code, Error Message. An id with only --subscription is read through the classic
    endpoint (Status is then InProgress, Succeeded or Failed); add --location for ARM's form.
    """
    if not wait_for_completion and (timeout is not None or interval is not None):
        raise click.UsageError("--timeout and --interval need --wait")
    if wait_for_completion:
        warn_if_token_expires(token, timeout)
    with make_client(endpoint, token, home, namespace, api_version) as client:
        url, classic = _read_target(client, target, subscription, location, classic)
        if wait_for_completion:
            wait_and_exit(client, url, timeout, interval, output, classic)
        try:
            print_status(client.get_classic(url) if classic else client.get(url), output)
        except (ClientError, httpx.HTTPError) as exc:
            fail(exc)


def _json_object(value: str | None, name: str) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint=name) from None
    if not isinstance(parsed, dict):
        raise click.BadParameter("must be a JSON object", param_hint=name)
    return parsed


def _error(code: str | None, message: str | None) -> dict[str, Any] | None:
    if code is None and message is None:
        return None
    if code is None:
        raise click.UsageError("--error-message needs --error-code")
    return {"code": code, "message": message or ""}


def write_options(func: Any) -> Any:
    options = [
        click.option(
            "--status", help="InProgress, Succeeded, Failed, Canceled, or another PascalCase word."
        ),
        click.option("--percent", type=click.FloatRange(0, 100), help="percentComplete."),
        click.option("--properties", help="JSON object; returned once Succeeded."),
        click.option("--error-code", help="Error code, with --status Failed or Canceled."),
        click.option("--error-message", help="Error message."),
        click.option(
            "--http-status-code",
            type=click.IntRange(100, 599),
            help="HTTP status of the original request (the classic form's HttpStatusCode).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.command()
@click.argument("operation_id", required=False)
@click.option("--subscription", "-s", required=True, help="Subscription GUID.")
@click.option("--location", "-l", required=True, help="Location, e.g. westus.")
@write_options
@click.option("--start-time", help="ISO 8601; default now.")
@click.option("--kind", help="What kind of work it is, to filter lists by (e.g. backup).")
@click.option(
    "--lease-seconds",
    type=click.FloatRange(0),
    help="The producer's lease: without an update for this long the operation is marked "
    "Failed (ProducerLost). Default: the server's --default-lease; 0: none.",
)
@click.option(
    "--cancelable/--not-cancelable",
    default=None,
    help="Whether a cancel may be asked for (default: cancelable).",
)
@client_options
@output_option
def create(
    operation_id: str | None,
    subscription: str,
    location: str,
    status: str | None,
    percent: float | None,
    properties: str | None,
    error_code: str | None,
    error_message: str | None,
    http_status_code: int | None,
    start_time: str | None,
    kind: str | None,
    lease_seconds: float | None,
    cancelable: bool | None,
    endpoint: str,
    token: str | None,
    home: Path | None,
    namespace: str,
    api_version: str,
    output: str,
) -> None:
    """Create an operation (with OPERATION_ID, or a server-chosen one) and print it."""
    with make_client(endpoint, token, home, namespace, api_version) as client:
        try:
            created = client.create(
                subscription,
                location,
                operation_id,
                status=status,
                percent_complete=percent,
                start_time=start_time,
                properties=_json_object(properties, "--properties"),
                error=_error(error_code, error_message),
                http_status_code=http_status_code,
                kind=kind,
                lease_seconds=lease_seconds,
                cancelable=cancelable,
            )
        except (ClientError, httpx.HTTPError) as exc:
            fail(exc)
        print_status(created, output)
        if output == "table":
            click.echo(f"{'Status URL:':<18} {created.url}")


@click.command()
@target_options
@write_options
@click.option("--reset-progress", is_flag=True, help="Allow percentComplete to go down.")
@click.option("--if-match", help="Only update if the operation's ETag is this.")
@client_options
@output_option
def update(
    target: str,
    subscription: str | None,
    location: str | None,
    status: str | None,
    percent: float | None,
    properties: str | None,
    error_code: str | None,
    error_message: str | None,
    http_status_code: int | None,
    reset_progress: bool,
    if_match: str | None,
    endpoint: str,
    token: str | None,
    home: Path | None,
    namespace: str,
    api_version: str,
    output: str,
) -> None:
    """Update an operation's status, progress, properties or error."""
    with make_client(endpoint, token, home, namespace, api_version) as client:
        url = resolve(client, target, subscription, location)
        try:
            updated = client.update(
                url,
                if_match=if_match,
                status=status,
                percent_complete=percent,
                properties=_json_object(properties, "--properties"),
                error=_error(error_code, error_message),
                http_status_code=http_status_code,
                resetProgress=True if reset_progress else None,
            )
        except (ClientError, httpx.HTTPError) as exc:
            fail(exc)
        print_status(updated, output)


@click.command()
@target_options
@client_options
@output_option
def delete(
    target: str,
    subscription: str | None,
    location: str | None,
    endpoint: str,
    token: str | None,
    home: Path | None,
    namespace: str,
    api_version: str,
    output: str,
) -> None:
    """Delete an operation (deleting one that does not exist succeeds, and says so)."""
    with make_client(endpoint, token, home, namespace, api_version) as client:
        url = resolve(client, target, subscription, location)
        try:
            deleted = client.delete(url)
        except (ClientError, httpx.HTTPError) as exc:
            fail(exc)
    if output == "json":
        click.echo(json.dumps({"url": url, "deleted": deleted}, indent=2))
    elif output == "env":
        click.echo(f"URL={shlex.quote(url)}\nDELETED={'true' if deleted else 'false'}")
    else:
        click.echo("deleted" if deleted else "not found (nothing to delete)")


@click.command()
@target_options
@classic_option
@wait_options
@client_options
@output_option
def wait(
    target: str,
    subscription: str | None,
    location: str | None,
    classic: bool,
    timeout: float | None,
    interval: float | None,
    endpoint: str,
    token: str | None,
    home: Path | None,
    namespace: str,
    api_version: str,
    output: str,
) -> None:
    """Wait until an operation ends. Exit 0 if Succeeded, 1 if Failed or Canceled, 3 when
    --timeout runs out (also while the service cannot be reached: the message says since
    when), 4 if the service answered with an error.

    TARGET is read as by 'get': a status URL, or an id with --subscription (and --location
    for the ARM form). On a terminal, a progress bar on stderr shows percentComplete and
    status. The local token (when no --token is given) is renewed for as long as the wait
    lasts; a given token is not, and a warning says when it expires before the timeout.
    """
    warn_if_token_expires(token, timeout)
    with make_client(endpoint, token, home, namespace, api_version) as client:
        url, classic = _read_target(client, target, subscription, location, classic)
        wait_and_exit(client, url, timeout, interval, output, classic)


def wait_and_exit(
    client: Client,
    url: str,
    timeout: float | None,
    interval: float | None,
    output: str,
    classic: bool,
) -> None:
    """Poll until the operation ends, print it, and exit 0 (Succeeded), 1 (Failed or
    Canceled), 3 (the timeout ran out, the service reachable or not) or 4 (it answered with
    an error that trying again would not mend)."""
    progress = ProgressLine() if sys.stderr.isatty() and output == "table" else None
    outage = Outage(timeout, progress)
    try:
        final = client.wait(
            url,
            timeout=timeout,
            interval=interval,
            on_update=outage.seen,
            classic=classic,
            on_retry=outage.retrying,
        )
    except WaitTimeout as exc:
        if progress:
            progress.done()
        print_status(exc.status, output)
        click.echo(f"opstatus: timed out after {timeout:g} s", err=True)
        sys.exit(EXIT_TIMEOUT)
    except (ClientError, httpx.HTTPError) as exc:
        if timeout is None or not is_transient(exc):
            fail(exc)
        # The client raises a passing error only once the deadline is past: the --timeout,
        # the user's own limit, ran out while the service could not answer.
        if outage.last is not None:
            print_status(outage.last, output)
        click.echo(f"opstatus: timed out after {timeout:g} s; {outage.describe(exc)}", err=True)
        sys.exit(EXIT_TIMEOUT)
    if progress:
        progress.done()
    print_status(final, output)
    sys.exit(0 if final.succeeded else EXIT_FAILED)


class Outage:
    """What a wait tells its user about the service while it waits: once per outage, on
    standard error, what failed and that the wait goes on (below the progress bar, drawn
    again at the next read); and since when it has not answered, for the timeout's message."""

    def __init__(self, timeout: float | None, progress: ProgressLine | None) -> None:
        self.until = "it answers" if timeout is None else f"the --timeout of {timeout:g} s"
        self.progress = progress
        #: The operation as last read, and when the current outage began (None: answering).
        self.last: OperationStatus | None = None
        self.since: datetime | None = None

    def seen(self, status: OperationStatus) -> None:
        self.last, self.since = status, None
        if self.progress is not None:
            self.progress.show(status)

    def retrying(self, exc: Exception, delay: float, failures: int) -> None:
        if failures == 1:
            self.since = datetime.now(UTC)
            if self.progress is not None:
                self.progress.done()
            click.echo(
                f"opstatus: {describe_error(exc)}; trying again until {self.until}", err=True
            )

    def describe(self, exc: Exception) -> str:
        """``the service was unreachable since 2026-12-06T14:20:03Z (could not reach ...)``:
        since the first failed try, which is this one when it came at the deadline."""
        state = "unavailable" if isinstance(exc, ClientError) else "unreachable"
        since = format_time(self.since or datetime.now(UTC))
        return f"the service was {state} since {since} ({describe_error(exc)})"


class ProgressLine:
    """A one-line progress bar on stderr, redrawn in place; only used on a terminal."""

    WIDTH = 30

    def show(self, status: OperationStatus) -> None:
        percent = status.percent_complete
        if percent is None:
            bar = f"[{'?' * self.WIDTH}]    "
        else:
            filled = int(self.WIDTH * percent / 100)
            bar = f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {percent:3.0f}%"
        click.echo(f"\r{bar} {status.status:<20}", err=True, nl=False)

    def done(self) -> None:
        click.echo("", err=True)

"""The ``opstatus`` command: run the server, mint tokens, and read, write and wait on operations.

Exit codes: 0 success (``wait``: Succeeded), 1 the operation Failed or was Canceled,
2 usage error, 3 timeout, 4 the service answered with an error or could not be reached.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import httpx

from . import auth
from .client import (
    DEFAULT_API_VERSION,
    DEFAULT_ENDPOINT,
    DEFAULT_NAMESPACE,
    Client,
    ClientError,
    OperationStatus,
    WaitTimeout,
)
from .errors import InvalidInput
from .settings import Settings, default_home

EXIT_FAILED, EXIT_USAGE, EXIT_TIMEOUT, EXIT_SERVICE = 1, 2, 3, 4

home_option = click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="OPSTATUS_HOME",
    default=None,
    help="Server home folder (database, signing key). [env: OPSTATUS_HOME; default: per-user "
    "data folder]",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="opstatus")
def main() -> None:
    """opstatus: track long-running operations and answer Get Operation Status."""


@main.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    envvar="OPSTATUS_HOST",
    help="Address to bind. [env: OPSTATUS_HOST]",
)
@click.option(
    "--port",
    default=8080,
    show_default=True,
    type=click.IntRange(0, 65535),
    envvar="OPSTATUS_PORT",
    help="Port to bind. [env: OPSTATUS_PORT]",
)
@home_option
@click.option(
    "--store",
    "store_url",
    default="",
    envvar="OPSTATUS_STORE",
    help="Store URL: sqlite:///PATH or memory:. [env: OPSTATUS_STORE; default: "
    "sqlite in the home folder]",
)
@click.option(
    "--providers",
    "providers_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    envvar="OPSTATUS_PROVIDERS",
    help="TOML file registering more resource providers. [env: OPSTATUS_PROVIDERS]",
)
@click.option(
    "--retry-after",
    default=10,
    show_default=True,
    type=click.IntRange(0, 600),
    envvar="OPSTATUS_RETRY_AFTER",
    help="Seconds to tell clients between polls. [env: OPSTATUS_RETRY_AFTER]",
)
@click.option(
    "--public-url",
    default=None,
    envvar="OPSTATUS_PUBLIC_URL",
    help="Base URL for absolute links, when behind a proxy. [env: OPSTATUS_PUBLIC_URL]",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
@click.option(
    "--log-format",
    default="text",
    show_default=True,
    envvar="OPSTATUS_LOG_FORMAT",
    type=click.Choice(["text", "json"]),
    help="text, or one JSON object per line with the request's x-ms-request-id. "
    "[env: OPSTATUS_LOG_FORMAT]",
)
@click.option(
    "--drain-timeout",
    default=30,
    show_default=True,
    type=click.IntRange(1, 3600),
    envvar="OPSTATUS_DRAIN_TIMEOUT",
    help="On SIGTERM, seconds to let requests in flight finish before exiting. "
    "[env: OPSTATUS_DRAIN_TIMEOUT]",
)
def serve(
    host: str,
    port: int,
    home: Path | None,
    store_url: str,
    providers_file: Path | None,
    retry_after: int,
    public_url: str | None,
    log_level: str,
    log_format: str,
    drain_timeout: int,
) -> None:
    """Run the operation-status server."""
    import uvicorn

    from .http.app import create_app
    from .logs import log_config

    settings = Settings(
        home=home or default_home(),
        store_url=store_url,
        providers_file=providers_file,
        retry_after=retry_after,
        public_url=public_url,
    )
    try:
        app = create_app(settings)
    except (ValueError, OSError) as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(f"opstatus: home {settings.home}, store {settings.resolved_store_url()}", err=True)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        log_config=log_config("json" if log_format == "json" else "text", log_level),
        http="httptools",
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        date_header=False,
        server_header=False,
        access_log=log_level == "debug",
        timeout_graceful_shutdown=drain_timeout,
    )


@main.command()
@click.option("--subject", required=True, help="Who the token is for (its 'sub').")
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    type=click.Choice(auth.ROLES, case_sensitive=False),
    help="Reader, Contributor or Owner; repeat to pair with several --scope.",
)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    help="/subscriptions/<guid>, or / for every subscription. May repeat.",
)
@click.option(
    "--expires-in",
    default=3600,
    show_default=True,
    type=click.IntRange(1),
    help="Lifetime in seconds.",
)
@home_option
def token(
    subject: str,
    roles: tuple[str, ...],
    scopes: tuple[str, ...],
    expires_in: int,
    home: Path | None,
) -> None:
    """Print a bearer token signed with the server's key.

    One --role applies to every --scope; otherwise give one --role per --scope.
    """
    if len(roles) != 1 and len(roles) != len(scopes):
        raise click.UsageError("give one --role, or one --role per --scope")
    pairs = [
        (_canonical_role(roles[0 if len(roles) == 1 else i]), scope)
        for i, scope in enumerate(scopes)
    ]
    key = auth.load_or_create_key(home or default_home())
    try:
        click.echo(auth.mint_token(key, subject, pairs, expires_in))
    except (ValueError, InvalidInput) as exc:
        raise click.UsageError(str(exc)) from exc


def _canonical_role(role: str) -> str:
    return next(r for r in auth.ROLES if r.lower() == role.lower())


# --- the client side: endpoint and token from flags or OPSTATUS_ENDPOINT / OPSTATUS_TOKEN ---

LOCAL_TOKEN_SECONDS = 300


def client_options(func: Any) -> Any:
    options = [
        click.option(
            "--endpoint",
            envvar="OPSTATUS_ENDPOINT",
            default=DEFAULT_ENDPOINT,
            show_default=True,
            help="Server URL. [env: OPSTATUS_ENDPOINT]",
        ),
        click.option(
            "--token",
            envvar="OPSTATUS_TOKEN",
            default=None,
            help="Bearer token. [env: OPSTATUS_TOKEN; default: minted from the local "
            "server's key when readable]",
        ),
        home_option,
        click.option(
            "--namespace",
            default=DEFAULT_NAMESPACE,
            show_default=True,
            help="Resource provider namespace.",
        ),
        click.option("--api-version", default=DEFAULT_API_VERSION, show_default=True),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def target_options(func: Any) -> Any:
    func = click.option("--location", "-l", help="Location of the operation (with an id).")(func)
    func = click.option("--subscription", "-s", help="Subscription GUID (with an id).")(func)
    return click.argument("target")(func)


def make_client(
    endpoint: str, token: str | None, home: Path | None, namespace: str, api_version: str
) -> Client:
    if not token:
        token = _local_token(home or default_home())
    return Client(endpoint, token, namespace=namespace, api_version=api_version)


def _local_token(home: Path) -> str | None:
    """On the server's own machine, a short-lived token from its key saves a step."""
    try:
        key = auth.load_key(home)
    except (OSError, ValueError):
        return None
    return auth.mint_token(key, "local-cli", [("Owner", "/")], LOCAL_TOKEN_SECONDS)


def _fail(exc: Exception) -> None:
    click.echo(f"opstatus: {exc}", err=True)
    sys.exit(EXIT_SERVICE)


def _resolve(client: Client, target: str, subscription: str | None, location: str | None) -> str:
    try:
        return client.resolve(target, subscription, location)
    except ValueError as exc:
        raise click.UsageError(
            f"{exc}: pass --subscription and --location, or a status URL"
        ) from None


def print_status(status: OperationStatus, output: str) -> None:
    if output == "json":
        click.echo(json.dumps(status.body, indent=2))
        return
    rows = [
        ("Request ID", status.name),
        ("Status", status.status),
        ("Error Code", status.error_code or ""),
        ("Error Message", status.error_message or ""),
        ("Start Time", status.start_time or ""),
        ("End Time", status.end_time or ""),
    ]
    if status.percent_complete is not None:
        rows.append(("Percent Complete", f"{status.percent_complete:g}"))
    for label, value in rows:
        click.echo(f"{label + ':':<18} {value}".rstrip())


output_option = click.option(
    "--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True
)


@main.command()
@target_options
@client_options
@output_option
def get(
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
    """Print an operation's status: TARGET is an operation id or its status URL."""
    with make_client(endpoint, token, home, namespace, api_version) as client:
        url = _resolve(client, target, subscription, location)
        try:
            print_status(client.get(url), output)
        except (ClientError, httpx.HTTPError) as exc:
            _fail(exc)


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
    ]
    for option in reversed(options):
        func = option(func)
    return func


@main.command()
@click.argument("operation_id", required=False)
@click.option("--subscription", "-s", required=True, help="Subscription GUID.")
@click.option("--location", "-l", required=True, help="Location, e.g. westus.")
@write_options
@click.option("--start-time", help="ISO 8601; default now.")
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
    start_time: str | None,
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
            )
        except (ClientError, httpx.HTTPError) as exc:
            _fail(exc)
        print_status(created, output)
        if output == "text":
            click.echo(f"{'Status URL:':<18} {created.url}")


@main.command()
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
        url = _resolve(client, target, subscription, location)
        try:
            updated = client.update(
                url,
                if_match=if_match,
                status=status,
                percent_complete=percent,
                properties=_json_object(properties, "--properties"),
                error=_error(error_code, error_message),
                resetProgress=True if reset_progress else None,
            )
        except (ClientError, httpx.HTTPError) as exc:
            _fail(exc)
        print_status(updated, output)


@main.command()
@target_options
@client_options
def delete(
    target: str,
    subscription: str | None,
    location: str | None,
    endpoint: str,
    token: str | None,
    home: Path | None,
    namespace: str,
    api_version: str,
) -> None:
    """Delete an operation."""
    with make_client(endpoint, token, home, namespace, api_version) as client:
        url = _resolve(client, target, subscription, location)
        try:
            deleted = client.delete(url)
        except (ClientError, httpx.HTTPError) as exc:
            _fail(exc)
        click.echo("deleted" if deleted else "not found (nothing to delete)")


@main.command()
@target_options
@click.option(
    "--timeout",
    type=click.FloatRange(0),
    default=None,
    help="Give up after this many seconds (exit 3). Default: wait as long as it takes.",
)
@click.option(
    "--interval",
    type=click.FloatRange(0.05),
    default=None,
    help="Seconds between polls. Default: the server's Retry-After.",
)
@client_options
@output_option
def wait(
    target: str,
    subscription: str | None,
    location: str | None,
    timeout: float | None,
    interval: float | None,
    endpoint: str,
    token: str | None,
    home: Path | None,
    namespace: str,
    api_version: str,
    output: str,
) -> None:
    """Wait until an operation ends. Exit 0 if Succeeded, 1 if Failed or Canceled, 3 on timeout."""
    progress = ProgressLine() if sys.stderr.isatty() and output == "text" else None
    with make_client(endpoint, token, home, namespace, api_version) as client:
        url = _resolve(client, target, subscription, location)
        try:
            final = client.wait(
                url,
                timeout=timeout,
                interval=interval,
                on_update=progress.show if progress else None,
            )
        except WaitTimeout as exc:
            if progress:
                progress.done()
            print_status(exc.status, output)
            click.echo(f"opstatus: timed out after {timeout:g} s", err=True)
            sys.exit(EXIT_TIMEOUT)
        except (ClientError, httpx.HTTPError) as exc:
            _fail(exc)
        if progress:
            progress.done()
        print_status(final, output)
        sys.exit(0 if final.succeeded else EXIT_FAILED)


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

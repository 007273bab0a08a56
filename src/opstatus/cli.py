"""The ``opstatus`` command: run the server, mint tokens, and read, write and wait on operations.

Exit codes: 0 success (``wait`` and ``get --wait``: Succeeded), 1 the operation Failed or was
Canceled, 2 usage error, 3 timeout, 4 the service answered with an error or could not be
reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import httpx

from . import admin, auth
from .cli_security import check_serve, configure_audit, role, security_options, uvicorn_options
from .client import (
    DEFAULT_API_VERSION,
    DEFAULT_ENDPOINT,
    DEFAULT_NAMESPACE,
    Client,
    ClientError,
    OperationStatus,
    WaitTimeout,
)
from .errors import InvalidInput, StoreError
from .output import ALIASES, FORMATS, render
from .security import SecuritySettings
from .settings import Settings, default_home, parse_duration
from .stores import open_store
from .stores.migrations import latest_version, redact

EXIT_FAILED, EXIT_USAGE, EXIT_TIMEOUT, EXIT_SERVICE = 1, 2, 3, 4

home_option = click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="OPSTATUS_HOME",
    default=None,
    help="Server home folder (database, signing key). [env: OPSTATUS_HOME; default: per-user "
    "data folder]",
)


def _duration(ctx: click.Context, param: click.Parameter, value: Any) -> float:
    """Seconds, written 90, 90s, 15m, 24h or 7d."""
    try:
        return parse_duration(str(value), f"--{(param.name or '').replace('_', '-')}")
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def lifecycle_options(func: Any) -> Any:
    """serve's retention, lease, sweep and paging settings (see opstatus.lifecycle)."""
    specs = [
        ("--retain-succeeded", "7d", "How long a Succeeded operation stays readable (>= 24h)."),
        ("--retain-failed", "30d", "How long a Failed operation stays readable (>= 24h)."),
        ("--retain-canceled", "7d", "How long a Canceled operation stays readable (>= 24h)."),
        ("--tombstone-for", "30d", "How long an expired operation still reads as expired."),
        ("--default-lease", "24h", "Lease of operations whose producer names none (0: none)."),
        ("--lease-grace", "5m", "Time after a lapsed lease before Failed with ProducerLost."),
        ("--maintenance-interval", "60s", "Time between background sweeps (0: none)."),
    ]
    options = [
        click.option(
            flag,
            callback=_duration,
            default=default,
            metavar="DURATION",
            show_default=True,
            envvar="OPSTATUS_" + flag[2:].upper().replace("-", "_"),
            help=f"{text} [env: OPSTATUS_{flag[2:].upper().replace('-', '_')}]",
        )
        for flag, default, text in specs
    ]
    options.append(
        click.option(
            "--max-page-size",
            type=click.IntRange(1, 10_000),
            default=1000,
            show_default=True,
            envvar="OPSTATUS_MAX_PAGE_SIZE",
            help="Most operations one list page returns. [env: OPSTATUS_MAX_PAGE_SIZE]",
        )
    )
    for option in reversed(options):
        func = option(func)
    return func


store_option = click.option(
    "--store",
    "store_url",
    default="",
    envvar="OPSTATUS_STORE",
    help="Store URL: sqlite:///PATH, postgresql://USER@HOST:PORT/DB or memory:. "
    "[env: OPSTATUS_STORE; default: sqlite in the home folder]",
)
providers_option = click.option(
    "--providers",
    "providers_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    envvar="OPSTATUS_PROVIDERS",
    help="TOML file registering more resource providers. [env: OPSTATUS_PROVIDERS]",
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
@store_option
@providers_option
@click.option(
    "--retry-after",
    default=10,
    show_default=True,
    type=click.IntRange(0, 600),
    envvar="OPSTATUS_RETRY_AFTER",
    help="Seconds to tell clients between polls. [env: OPSTATUS_RETRY_AFTER]",
)
@click.option(
    "--max-wait",
    default=60,
    show_default=True,
    type=click.IntRange(0, 3600),
    envvar="OPSTATUS_MAX_WAIT",
    help="Longest a status GET with 'Prefer: wait=N' is held, in seconds; 0 turns waiting "
    "off. [env: OPSTATUS_MAX_WAIT]",
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
@security_options
@lifecycle_options
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
    max_wait: int,
    public_url: str | None,
    log_level: str,
    max_body_bytes: int,
    security: SecuritySettings,
    retain_succeeded: float,
    retain_failed: float,
    retain_canceled: float,
    tombstone_for: float,
    default_lease: float,
    lease_grace: float,
    maintenance_interval: float,
    max_page_size: int,
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
        max_wait=max_wait,
        public_url=public_url,
        max_body_bytes=max_body_bytes,
        security=security,
        retain_succeeded=retain_succeeded,
        retain_failed=retain_failed,
        retain_canceled=retain_canceled,
        tombstone_seconds=tombstone_for,
        default_lease_seconds=default_lease,
        lease_grace_seconds=lease_grace,
        maintenance_interval=maintenance_interval,
        max_page_size=max_page_size,
    )
    check_serve(host, security)
    try:
        store = open_store(settings.resolved_store_url())
        app = create_app(settings, store)
    except (ValueError, OSError) as exc:
        raise click.UsageError(str(exc)) from exc
    try:
        asyncio.run(admin.preflight(store))
    except StoreError as exc:
        click.echo(f"opstatus: {exc.message}", err=True)
        sys.exit(EXIT_FAILED)
    shown = redact(settings.resolved_store_url())
    click.echo(f"opstatus: home {settings.home}, store {shown}", err=True)

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: Any = None) -> None:
            # Held GETs (Prefer: wait) answer now, not when their wait runs out: uvicorn waits
            # for every open request before it shuts the app down.
            store.notifier.close()
            await super().shutdown(sockets)

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        log_config=log_config("json" if log_format == "json" else "text", log_level),
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        date_header=False,
        server_header=False,
        access_log=log_level == "debug",
        **uvicorn_options(security),
        timeout_graceful_shutdown=drain_timeout,
    )
    # After uvicorn.Config, whose logging setup resets the handlers of opstatus's loggers.
    configure_audit(security.audit_log)
    server = Server(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        sys.exit(3)  # uvicorn's own code for "could not start"


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


main.add_command(role)


@main.command()
@home_option
@store_option
@providers_option
def check(home: Path | None, store_url: str, providers_file: Path | None) -> None:
    """Say whether config, store connection and schema are OK, and what to run if not.

    Exit 0 when everything is OK, 1 otherwise.
    """
    settings = Settings(
        home=home or default_home(), store_url=store_url, providers_file=providers_file
    )
    findings = asyncio.run(admin.check(settings))
    for finding in findings:
        mark = {True: "OK", False: "FAIL", None: "--"}[finding.ok]
        detail = finding.detail or ("not checked" if finding.ok is None else "")
        click.echo(f"{finding.topic:<7} {mark:<5} {detail}")
        if finding.fix:
            click.echo(f"{'':<13} {finding.fix}")
    sys.exit(0 if all(f.ok for f in findings) else EXIT_FAILED)


@main.command()
@home_option
@store_option
def migrate(home: Path | None, store_url: str) -> None:
    """Create the store's schema, or bring it to this version of opstatus.

    Safe to run again, and from several machines at once. Exit 0 when the schema is up to
    date, 1 when it could not be migrated.
    """
    settings = Settings(home=home or default_home(), store_url=store_url)
    try:
        store, done = asyncio.run(admin.migrate(settings))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    except StoreError as exc:
        click.echo(f"opstatus: {exc.message}", err=True)
        sys.exit(EXIT_FAILED)
    if store is None or done is None:
        click.echo("The memory store keeps nothing: there is no schema to migrate.")
        return
    latest = latest_version(store.dialect)
    if done.schema is not None:
        click.echo(f"Created the opstatus schema (version {latest}) in {store.describe()}.")
    elif done.steps:
        applied = ", ".join(step.label for step in done.steps)
        click.echo(f"Applied {applied}: {store.describe()} is at version {latest}.")
    else:
        click.echo(f"The opstatus schema in {store.describe()} is up to date (version {latest}).")


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


def print_status(status: OperationStatus, output: str) -> None:
    click.echo(render(status, output))


output_option = click.option(
    "--output",
    "-o",
    type=click.Choice([*FORMATS, *ALIASES]),
    default="table",
    show_default=True,
    callback=lambda ctx, param, value: ALIASES.get(value, value),
    help="table (alias: text), json (the body as answered), or env (KEY=value lines to source).",
)
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
            help="Give up after this many seconds (exit 3). Default: wait as long as it takes.",
        ),
        click.option(
            "--interval",
            type=click.FloatRange(0.05),
            default=None,
            help="Seconds between polls. Default: the server's Retry-After.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@main.command()
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
    with make_client(endpoint, token, home, namespace, api_version) as client:
        url, classic = _read_target(client, target, subscription, location, classic)
        if wait_for_completion:
            wait_and_exit(client, url, timeout, interval, output, classic)
        try:
            print_status(client.get_classic(url) if classic else client.get(url), output)
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
        click.option(
            "--http-status-code",
            type=click.IntRange(100, 599),
            help="HTTP status of the original request (the classic form's HttpStatusCode).",
        ),
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
    http_status_code: int | None,
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
                http_status_code=http_status_code,
            )
        except (ClientError, httpx.HTTPError) as exc:
            _fail(exc)
        print_status(created, output)
        if output == "table":
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
        url = _resolve(client, target, subscription, location)
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
    """Wait until an operation ends. Exit 0 if Succeeded, 1 if Failed or Canceled, 3 on timeout.

    TARGET is read as by 'get': a status URL, or an id with --subscription (and --location
    for the ARM form).
    """
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
    """Poll until the operation ends, print it, and exit 0, 1 or 3 (4 if the service fails)."""
    progress = ProgressLine() if sys.stderr.isatty() and output == "table" else None
    try:
        final = client.wait(
            url,
            timeout=timeout,
            interval=interval,
            on_update=progress.show if progress else None,
            classic=classic,
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


# list, cancel and purge live in their own module, which registers them on ``main``.
from . import cli_lifecycle  # noqa: E402, F401

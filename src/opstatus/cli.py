"""The ``opstatus`` command: run the server, mint tokens, and read, write and wait on operations.

This module makes the ``opstatus`` group, ``main``, with the server's own commands (``serve``,
``token``, ``check``, ``migrate``), and adds those of the command modules (``cli_operations``,
``cli_lifecycle``, ``cli_security``). They share their helpers and exit codes through
:mod:`opstatus.cli_common` (the exit codes are listed there) and never import this module.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import click

from . import admin, auth
from .cli_common import EXIT_CODES, EXIT_FAILED, EXIT_INTERRUPTED, home_option
from .cli_lifecycle import cancel, list_operations, purge
from .cli_operations import create, delete, get, update, wait
from .cli_push import push_options
from .cli_security import check_serve, role, security_options
from .cli_ui import ui
from .cli_watch import watch
from .cli_webhooks import webhook
from .errors import InvalidInput, StoreError, StoreMissing
from .security import SecuritySettings
from .settings import Settings, default_home, parse_duration
from .stores.base import Migratable
from .stores.migrations import latest_version, redact


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


class OpstatusGroup(click.Group):
    """The ``opstatus`` group: Ctrl-C exits 130 (as shells report a SIGINT), never 1, which
    means an operation Failed or was Canceled; also at a prompt, where click turns it (and
    the end of standard input) into ``Abort``."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (KeyboardInterrupt, click.Abort):
            click.echo("\nopstatus: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)


@click.group(
    cls=OpstatusGroup,
    epilog=EXIT_CODES,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
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
    "--allowed-hosts",
    default=None,
    envvar="OPSTATUS_ALLOWED_HOSTS",
    help="Comma-separated Host names a request may name, others get 400: name, name:port, "
    "*.domain, or * for any. Default: the server's address and localhost, 127.0.0.1 and "
    "[::1] with its port; with --public-url, any. [env: OPSTATUS_ALLOWED_HOSTS]",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
@security_options
@lifecycle_options
@push_options
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
    "--access-log",
    default=None,
    metavar="FILE|-",
    envvar="OPSTATUS_ACCESS_LOG",
    help="One JSON line per request (method, path, status, duration, principal, request id) "
    "to FILE (created 0600) or, for -, to standard error. Default: off. With it on, status "
    "reads are answered by the app, without the fast reads. [env: OPSTATUS_ACCESS_LOG]",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    envvar="OPSTATUS_WORKERS",
    help="Server processes sharing the port; each opens its own store connection. "
    "[env: OPSTATUS_WORKERS]",
)
@click.option(
    "--fast-reads/--no-fast-reads",
    default=True,
    show_default=True,
    envvar="OPSTATUS_FAST_READS",
    help="Answer status reads without the middleware stack, inside the HTTP protocol where "
    "the installed uvicorn allows it (answers are the same either way). "
    "[env: OPSTATUS_FAST_READS]",
)
@click.option(
    "--ui/--no-ui",
    default=True,
    show_default=True,
    envvar="OPSTATUS_UI",
    help="Serve the dashboard at /ui/ (static files; its data comes from the API, under the "
    "API's authorization). [env: OPSTATUS_UI]",
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
    allowed_hosts: str | None,
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
    push: dict[str, Any],
    log_format: str,
    access_log: str | None,
    drain_timeout: int,
    workers: int,
    fast_reads: bool,
    ui: bool,
) -> None:
    """Run the operation-status server."""
    from .server.running import (
        CannotServe,
        ServerOptions,
        build,
        reserve_port,
        run_server,
        run_workers,
    )

    settings = Settings(
        home=home or default_home(),
        store_url=store_url,
        providers_file=providers_file,
        retry_after=retry_after,
        max_wait=max_wait,
        public_url=public_url,
        allowed_hosts=None
        if allowed_hosts is None
        else tuple(name.strip() for name in allowed_hosts.split(",") if name.strip()),
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
        fast_reads=fast_reads,
        access_log=access_log or None,
        ui=ui,
        **push,
    )
    check_serve(host, security)
    try:
        built = build(settings)  # checks the settings and makes the key, once
    except (ValueError, OSError) as exc:
        raise click.UsageError(str(exc)) from exc
    except CannotServe as exc:
        click.echo(f"opstatus: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    store = built[0]
    try:
        asyncio.run(admin.preflight(store))
    except StoreError as exc:
        click.echo(f"opstatus: {exc.message}", err=True)
        sys.exit(EXIT_FAILED)
    shown = redact(settings.resolved_store_url())
    click.echo(f"opstatus: home {settings.home}, store {shown}", err=True)

    options = ServerOptions(
        host, port, log_level, "json" if log_format == "json" else "text", drain_timeout
    )
    if workers == 1:
        code = run_server(built, settings, options, None)
    else:
        try:
            if isinstance(store, Migratable) and store.migrates_on_open:
                asyncio.run(store.migrate())  # once, before the workers open it
            reserved = reserve_port(host, port)
        except (StoreError, OSError) as exc:
            click.echo(f"opstatus: {getattr(exc, 'message', exc)}", err=True)
            sys.exit(EXIT_FAILED)
        click.echo(f"opstatus: {workers} workers on {host}:{reserved.getsockname()[1]}", err=True)
        # Each worker builds its own: neither a SQLite connection nor a pool survives a fork.
        code = run_workers(
            workers, reserved, lambda sock: run_server(build(settings), settings, options, sock)
        )
    if code:
        sys.exit(code)


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

    One --role applies to every --scope; otherwise give one --role per --scope. Standard
    error says which home and key id signed it (a server only accepts tokens of the key in
    its own home), and when the home had no key yet, that a new one was created.
    """
    if len(roles) != 1 and len(roles) != len(scopes):
        raise click.UsageError("give one --role, or one --role per --scope")
    pairs = [
        (_canonical_role(roles[0 if len(roles) == 1 else i]), scope)
        for i, scope in enumerate(scopes)
    ]
    folder = home or default_home()
    existed = (folder / auth.KEY_FILE).exists()
    key = auth.load_or_create_key(folder)
    try:
        minted = auth.mint_token(key, subject, pairs, expires_in)
    except (ValueError, InvalidInput) as exc:
        raise click.UsageError(str(exc)) from exc
    if existed:
        click.echo(f"opstatus: signed with key {auth.key_id(key)} of home {folder}", err=True)
    else:
        click.echo(
            f"opstatus: created a new signing key {auth.key_id(key)} in home {folder}; only a "
            "server started with this home accepts the token",
            err=True,
        )
    click.echo(minted)


def _canonical_role(role: str) -> str:
    return next(r for r in auth.ROLES if r.lower() == role.lower())


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
    sources = admin.Sources(
        store=_source("store_url", "--store", "OPSTATUS_STORE", "the default store (--store)"),
        providers=_source("providers_file", "--providers", "OPSTATUS_PROVIDERS", "--providers"),
    )
    findings = asyncio.run(admin.check(settings, sources))
    for finding in findings:
        mark = {True: "OK", False: "FAIL", None: "--"}[finding.ok]
        detail = finding.detail or ("not checked" if finding.ok is None else "")
        click.echo(f"{finding.topic:<7} {mark:<5} {detail}")
        if finding.fix:
            click.echo(f"{'':<13} {finding.fix}")
    sys.exit(0 if all(f.ok for f in findings) else EXIT_FAILED)


def _source(param: str, flag: str, variable: str, default: str) -> str:
    """How the person running the command set ``param``: its flag, its variable or not at
    all, to name in a message about its value."""
    source = click.get_current_context().get_parameter_source(param)
    if source is click.core.ParameterSource.COMMANDLINE:
        return flag
    if source is click.core.ParameterSource.ENVIRONMENT:
        return variable
    return default


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
        if isinstance(exc, StoreMissing):
            click.echo(f"opstatus: create it first: {exc.create}", err=True)
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


for command in (
    role,
    get,
    create,
    update,
    delete,
    wait,
    watch,
    list_operations,
    cancel,
    purge,
    webhook,
    ui,
):
    main.add_command(command)


def _with_exit_codes(command: click.Command) -> None:
    """Every command's --help ends with the exit codes they all share."""
    command.epilog = f"{command.epilog}\n\n{EXIT_CODES}" if command.epilog else EXIT_CODES
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _with_exit_codes(sub)


for command in main.commands.values():
    _with_exit_codes(command)

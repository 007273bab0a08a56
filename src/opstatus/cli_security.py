"""The command line's security surface: ``serve``'s security options and ``opstatus role``.

Every option falls back to an ``OPSTATUS_*`` variable; the repeatable ones (``--jwks``,
``--issuer``, ``--audience``) take several whitespace-separated values from it.
"""

from __future__ import annotations

import asyncio
import functools
import getpass
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .auth import (
    OID,
    ROLES,
    SUB,
    UNBOUND,
    PrincipalId,
    RoleAssignment,
    canonical_role,
    check_private_file,
    normalize_scope,
)
from .cli_common import EXIT_SERVICE
from .errors import InvalidInput, StoreError
from .http import audit
from .http.audit import audit_to
from .security import SecuritySettings, is_loopback
from .settings import default_home
from .stores import open_store
from .stores.base import Store

_FILE = click.Path(dir_okay=False, exists=True, path_type=Path)


def _option(flag: str, dest: str, env: str, help: str, **kwargs: Any) -> Any:
    return click.option(
        flag, dest, envvar=f"OPSTATUS_{env}", help=f"{help} [env: OPSTATUS_{env}]", **kwargs
    )


_DEFAULTS = SecuritySettings()
SECURITY_OPTIONS = [
    _option("--jwks", "jwks", "JWKS",
            "JWKS file or https URL of an identity provider, as ISSUER=FILE_OR_URL: its keys "
            "sign only that issuer's tokens (a lone JWKS may leave the issuers to --issuer).",
            multiple=True),
    _option("--issuer", "issuers", "ISSUER", "Accepted 'iss' of provider tokens.", multiple=True),
    _option("--audience", "audiences", "AUDIENCE", "Accepted 'aud' of provider tokens.",
            multiple=True),
    _option("--required-scope", "required_scope", "REQUIRED_SCOPE",
            "Scope provider tokens must hold in 'scp' ('' for none).",
            default=_DEFAULTS.required_scope, show_default=True),
    _option("--clock-skew", "clock_skew", "CLOCK_SKEW", "Seconds of clock skew tolerated.",
            default=_DEFAULTS.clock_skew, show_default=True, type=click.IntRange(0, 300)),
    _option("--tls-cert", "tls_cert", "TLS_CERT", "Certificate chain (PEM): serve HTTPS.",
            type=_FILE),
    _option("--tls-key", "tls_key", "TLS_KEY", "Private key (PEM) of --tls-cert; mode 0600.",
            type=_FILE),
    _option("--rate-limit", "rate_limit", "RATE_LIMIT",
            "Requests per second per principal (0: no limit).",
            default=_DEFAULTS.rate_limit, show_default=True, type=click.FloatRange(0)),
    _option("--rate-burst", "rate_burst", "RATE_BURST", "Requests a principal may burst.",
            default=_DEFAULTS.rate_burst, show_default=True, type=click.IntRange(1)),
    _option("--max-body-bytes", "max_body_bytes", "MAX_BODY_BYTES", "Largest request body.",
            default=256 * 1024, show_default=True, type=click.IntRange(1)),
    _option("--max-header-bytes", "max_header_bytes", "MAX_HEADER_BYTES",
            "Largest request line plus headers.",
            default=_DEFAULTS.max_header_bytes, show_default=True, type=click.IntRange(1024)),
    _option("--header-timeout", "header_timeout", "HEADER_TIMEOUT",
            "Seconds to receive a request's line and headers.",
            default=_DEFAULTS.header_timeout, show_default=True, type=click.FloatRange(0.1)),
    _option("--body-timeout", "body_timeout", "BODY_TIMEOUT",
            "Seconds to receive a request's body.",
            default=_DEFAULTS.body_timeout, show_default=True, type=click.FloatRange(0.1)),
    _option("--keep-alive-timeout", "keep_alive_timeout", "KEEP_ALIVE_TIMEOUT",
            "Seconds an idle connection stays open.",
            default=_DEFAULTS.keep_alive_timeout, show_default=True, type=click.IntRange(1)),
    _option("--max-connections", "max_connections", "MAX_CONNECTIONS",
            "Open connections and requests in progress; 503 beyond.",
            default=_DEFAULTS.max_connections, show_default=True, type=click.IntRange(1)),
    _option("--max-waiters", "max_waiters", "MAX_WAITERS",
            "Long-poll requests waiting at once.",
            default=_DEFAULTS.max_waiters, show_default=True, type=click.IntRange(0)),
    _option("--audit-log", "audit_log", "AUDIT_LOG",
            "File to append audit lines to (default: standard error).",
            type=click.Path(dir_okay=False, path_type=Path)),
    _option("--metrics-token", "metrics_token", "METRICS_TOKEN",
            "Bearer token GET /metrics requires (default: none, open); prefer the variable "
            "to the flag, which other local users can see."),
]  # fmt: skip


def security_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add the options; the command receives them as ``security`` and ``max_body_bytes``."""

    @functools.wraps(func)
    def wrapper(**kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name in list(kwargs) if name in _FIELDS}
        security = SecuritySettings(**values)
        try:
            security.check()
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        return func(security=security, **kwargs)

    for option in reversed(SECURITY_OPTIONS):
        wrapper = option(wrapper)
    return wrapper


_FIELDS = frozenset(SecuritySettings.__dataclass_fields__)


def check_serve(host: str, security: SecuritySettings) -> None:
    """Secure defaults: refuse secret files others may read; warn about plain HTTP off
    loopback (bearer tokens would cross the network in clear)."""
    try:
        if security.tls_key is not None:
            check_private_file(security.tls_key, "The TLS key")
    except PermissionError as exc:
        raise click.UsageError(str(exc)) from None
    if security.tls_cert is None and not is_loopback(host):
        click.echo(
            f"opstatus: warning: serving plain HTTP on {host}; bearer tokens cross the network "
            "in clear unless a TLS proxy is in front. Use --tls-cert and --tls-key.",
            err=True,
        )


# --- opstatus role ---------------------------------------------------------------------------


audit_option = click.option(
    "--audit-log",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="OPSTATUS_AUDIT_LOG",
    default=None,
    help="File to append the audit line to (created 0600). [env: OPSTATUS_AUDIT_LOG; "
    "default: audit.log in the home folder]",
)


def store_options(func: Any) -> Any:
    func = click.option(
        "--store",
        "store_url",
        default="",
        envvar="OPSTATUS_STORE",
        help="Store URL, as for serve. [env: OPSTATUS_STORE; default: sqlite in the home]",
    )(func)
    return click.option(
        "--home",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="OPSTATUS_HOME",
        default=None,
        help="The server's home folder, as for serve. [env: OPSTATUS_HOME]",
    )(func)


def _open(home: Path | None, store_url: str) -> Store:
    url = store_url or f"sqlite:///{(home or default_home()) / 'opstatus.db'}"
    if url == "memory:":
        raise click.UsageError("role assignments need the server's persistent store")
    try:
        return open_store(url)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


def _run(home: Path | None, store_url: str, work: Callable[[Store], Any]) -> Any:
    store = _open(home, store_url)

    async def main() -> Any:
        await store.open()
        try:
            return await work(store)
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except StoreError as exc:
        click.echo(f"opstatus: {exc.message}", err=True)
        raise SystemExit(EXIT_SERVICE) from None


def _principal(
    object_id: str | None, sub: str | None, issuers: tuple[str, ...], unbound: bool = False
) -> PrincipalId:
    """The principal the options name. ``unbound``: an empty issuer names the assignments
    made before assignments named an issuer (to remove them)."""
    if (object_id is None) == (sub is None):
        raise click.UsageError("give --principal (the tokens' 'oid') or --sub (tokens without one)")
    value = object_id if object_id is not None else sub
    assert value is not None
    if not value.strip() or not value.isprintable():
        hint = "--principal" if object_id is not None else "--sub"
        raise click.BadParameter("must be a non-empty printable id", param_hint=hint)
    if len(issuers) != 1:
        raise click.UsageError(
            "name the issuer ('iss') of the principal's tokens with one --issuer"
            + (" (OPSTATUS_ISSUER names several)" if issuers else "")
        )
    issuer = issuers[0]
    if not issuer.isprintable() or (issuer == UNBOUND and not unbound) or issuer != issuer.strip():
        raise click.BadParameter("must be the tokens' 'iss' exactly", param_hint="--issuer")
    return PrincipalId(issuer, OID if object_id is not None else SUB, value)


def _assignment(principal: PrincipalId, role: str, scope: str) -> RoleAssignment:
    try:
        return RoleAssignment(canonical_role(role), normalize_scope(scope), principal)
    except (ValueError, InvalidInput) as exc:
        raise click.BadParameter(str(exc), param_hint="--scope") from None


def _audit_change(
    action: str, a: RoleAssignment, changed: bool, log: Path | None, home: Path | None
) -> None:
    """One audit line for a role change, to ``log`` or to the home folder's audit.log: a
    file that keeps it, rather than the terminal of whoever ran the command."""
    subscription = a.scope.removeprefix("/subscriptions/") if a.scope != "/" else None
    issuer, claim, principal_id = a.principal
    if log is None:
        folder = home or default_home()
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        log = folder / AUDIT_FILE
    with audit_to(log):
        audit.record(
            action=action,
            principal=f"local:{_os_user()}",
            subscription=subscription,
            operation_id=None,
            result=200 if changed else 204,
            request_id=str(uuid.uuid4()),
            target={
                "issuer": issuer,
                "claim": claim,
                "principal": principal_id,
                "role": a.role,
                "scope": a.scope,
            },
        )


#: Where role changes are audited when no --audit-log names a file.
AUDIT_FILE = "audit.log"


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return f"uid-{os.getuid()}" if hasattr(os, "getuid") else "unknown"


@click.group()
def role() -> None:
    """Role assignments for principals of external identity providers.

    A principal is named by its tokens' issuer ('iss') and their 'oid' claim; a principal
    whose tokens carry no 'oid' by the issuer and their 'sub'. Changes take effect on the
    server's next request, on every instance sharing the store.
    """


principal_option = click.option(
    "--principal", "object_id", default=None, help="The principal's object id: its tokens' 'oid'."
)
sub_option = click.option(
    "--sub", default=None, help="For a principal whose tokens carry no 'oid': their 'sub'."
)
issuer_option = click.option(
    "--issuer",
    "issuers",
    multiple=True,
    envvar="OPSTATUS_ISSUER",
    help="The issuer ('iss') of the principal's tokens. [env: OPSTATUS_ISSUER, when it names one]",
)
role_option = click.option(
    "--role", "role_name", required=True, type=click.Choice(ROLES, case_sensitive=False)
)
scope_option = click.option(
    "--scope", required=True, help="/subscriptions/<guid>, or / for every subscription."
)


@role.command()
@principal_option
@sub_option
@issuer_option
@role_option
@scope_option
@store_options
@audit_option
def assign(
    object_id: str | None,
    sub: str | None,
    issuers: tuple[str, ...],
    role_name: str,
    scope: str,
    home: Path | None,
    store_url: str,
    audit_log: Path | None,
) -> None:
    """Give a principal a role over a scope."""
    a = _assignment(_principal(object_id, sub, issuers), role_name, scope)
    added: bool = _run(home, store_url, lambda store: store.assign_role(a))
    _audit_change("role.assign", a, added, audit_log, home)
    click.echo(f"{'assigned' if added else 'already assigned'}: {a.role} over {a.scope}")


@role.command()
@principal_option
@sub_option
@issuer_option
@role_option
@scope_option
@store_options
@audit_option
def remove(
    object_id: str | None,
    sub: str | None,
    issuers: tuple[str, ...],
    role_name: str,
    scope: str,
    home: Path | None,
    store_url: str,
    audit_log: Path | None,
) -> None:
    """Take a role over a scope away from a principal (--issuer '': an assignment made
    before assignments named an issuer)."""
    a = _assignment(_principal(object_id, sub, issuers, unbound=True), role_name, scope)
    removed: bool = _run(home, store_url, lambda store: store.remove_role(a))
    _audit_change("role.remove", a, removed, audit_log, home)
    click.echo(f"{'removed' if removed else 'not assigned'}: {a.role} over {a.scope}")


@role.command(name="list")
@click.option("--issuer", "issuers", multiple=True, help="Only principals of this issuer.")
@click.option("--principal", "object_id", default=None, help="Only principals with this 'oid'.")
@click.option("--sub", default=None, help="Only principals with this 'sub' (and no 'oid').")
@store_options
def list_(
    issuers: tuple[str, ...],
    object_id: str | None,
    sub: str | None,
    home: Path | None,
    store_url: str,
) -> None:
    """List role assignments: issuer, claim (oid or sub), id, role, scope; one per line,
    tab-separated. An empty issuer: made before assignments named one. When there are none,
    standard error says so and standard output stays empty."""
    found: list[RoleAssignment] = _run(home, store_url, lambda store: store.list_role_assignments())
    shown = 0
    for a in found:
        issuer, claim, principal_id = a.principal
        if issuers and issuer not in issuers:
            continue
        if object_id is not None and (claim, principal_id) != (OID, object_id):
            continue
        if sub is not None and (claim, principal_id) != (SUB, sub):
            continue
        click.echo(f"{issuer}\t{claim}\t{principal_id}\t{a.role}\t{a.scope}")
        shown += 1
    if not shown:
        filtered = " match the filters" if issuers or object_id or sub else ""
        click.echo(f"opstatus: no role assignments{filtered}", err=True)

"""What the ``opstatus`` command modules share: exit codes, ``--home``, and the client side's
options and helpers.

The command modules import this and the layers below, never each other nor :mod:`opstatus.cli`,
which assembles them into the ``opstatus`` group.

Exit codes (:data:`EXIT_CODE_TABLE`, shown at the end of every command's ``--help``): 0
success (``wait`` and ``get --wait``: Succeeded), 1 the operation Failed or was Canceled
(``check``: something is not OK), 2 usage error, 3 timeout (also when the service could not
be reached by then: the timeout is the user's own limit), 4 the service answered with an
error or could not be reached, 130 interrupted (Ctrl-C) or a confirmation declined: the user
stopped the command, and it did nothing more.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click
import httpx
import jwt

from . import auth
from .client import (
    DEFAULT_API_VERSION,
    DEFAULT_ENDPOINT,
    DEFAULT_NAMESPACE,
    Client,
    OperationStatus,
)
from .output import ALIASES, FORMATS, render
from .settings import default_home

EXIT_FAILED, EXIT_USAGE, EXIT_TIMEOUT, EXIT_SERVICE, EXIT_INTERRUPTED = 1, 2, 3, 4, 130
#: The exit codes every command shares: the end of each one's ``--help``, and docs/cli.md.
EXIT_CODE_TABLE = (
    (0, "success (wait, get --wait, an operation's watch: it Succeeded)"),
    (EXIT_FAILED, "the operation Failed or was Canceled (check, migrate, serve: not OK)"),
    (EXIT_USAGE, "usage error"),
    (EXIT_TIMEOUT, "timeout: --timeout ran out, the service reachable or not"),
    (EXIT_SERVICE, "the service answered with an error, or could not be reached"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C), or a confirmation declined: nothing more done"),
)
#: The table as ``--help`` shows it (``\b``: click keeps the lines as they are).
EXIT_CODES = "\b\nExit codes:\n" + "\n".join(
    f"  {code:<4} {meaning}" for code, meaning in EXIT_CODE_TABLE
)

#: Lifetime of the tokens minted from the local server's key when none is given; they are
#: minted again when half of it is gone, so a command may run longer than one token lasts.
LOCAL_TOKEN_SECONDS = 300
LOCAL_TOKEN_ENV = "OPSTATUS_LOCAL_TOKEN_SECONDS"

home_option = click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="OPSTATUS_HOME",
    default=None,
    help="Server home folder (database, signing key). [env: OPSTATUS_HOME; default: per-user "
    "data folder]",
)


output_option = click.option(
    "--output",
    "-o",
    type=click.Choice([*FORMATS, *ALIASES]),
    default="table",
    show_default=True,
    callback=lambda ctx, param, value: ALIASES.get(value, value),
    help="table (alias: text), json (the body as answered), or env (KEY=value lines to source).",
)
#: ``list`` prints many operations: a table or a JSON array (``env`` holds one operation).
list_output_option = click.option(
    "--output",
    "-o",
    type=click.Choice(["table", "json", *ALIASES]),
    default="table",
    show_default=True,
    callback=lambda ctx, param, value: ALIASES.get(value, value),
    help="table (alias: text), or json (an array of the bodies as answered).",
)


def client_options(func: Any) -> Any:
    """--endpoint, --token, --home, --namespace and --api-version: what :func:`make_client`
    takes."""
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
            "server's key when readable, and minted again before it expires; lifetime "
            "OPSTATUS_LOCAL_TOKEN_SECONDS, default 300]",
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
    """TARGET (an operation id or its status URL), with --subscription and --location."""
    func = click.option("--location", "-l", help="Location of the operation (with an id).")(func)
    func = click.option("--subscription", "-s", help="Subscription GUID (with an id).")(func)
    return click.argument("target")(func)


def make_client(
    endpoint: str, token: str | None, home: Path | None, namespace: str, api_version: str
) -> Client:
    source: str | LocalToken | None = token or local_token(home or default_home())
    return Client(endpoint, source, namespace=namespace, api_version=api_version)


class LocalToken:
    """On the server's own machine, a token from its key saves a step. It is short-lived
    (``OPSTATUS_LOCAL_TOKEN_SECONDS``, default 300) and minted again once half of its
    lifetime is gone, so that a long ``wait`` never sends an expired one."""

    def __init__(self, key: bytes, lifetime: int) -> None:
        self.key = key
        self.lifetime = lifetime
        self.minted = 0
        self._token = ""
        self._renew_at = 0.0

    def __call__(self) -> str:
        now = time.monotonic()
        if not self._token or now >= self._renew_at:
            self._token = auth.mint_token(self.key, "local-cli", [("Owner", "/")], self.lifetime)
            self._renew_at = now + self.lifetime / 2
            self.minted += 1
        return self._token


def local_token(home: Path) -> LocalToken | None:
    """A renewing token from the local server's key, or None when the key is not readable."""
    try:
        key = auth.load_key(home)
    except (OSError, ValueError):
        return None
    return LocalToken(key, local_token_lifetime())


def local_token_lifetime() -> int:
    value = os.environ.get(LOCAL_TOKEN_ENV, "").strip()
    if not value:
        return LOCAL_TOKEN_SECONDS
    if not value.isdigit() or not 2 <= int(value) <= 86400:
        raise click.UsageError(f"{LOCAL_TOKEN_ENV} must be whole seconds from 2 to 86400")
    return int(value)


def warn_if_token_expires(token: str | None, timeout: float | None) -> None:
    """A given token is not renewed: say when it expires if that ends the wait before its
    timeout."""
    if not token or timeout is None:
        return
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
        expires = float(claims["exp"])
    except (jwt.InvalidTokenError, KeyError, TypeError, ValueError):
        return
    left = expires - time.time()
    if left > timeout:
        return
    when = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    click.echo(
        f"opstatus: warning: the token expires at {when} (in {max(left, 0):.0f} s), before "
        f"the --timeout of {timeout:g} s; "
        "the wait then ends with exit 4. Pass a token that lasts longer, or none on the "
        "server's machine (a local token is minted and renewed).",
        err=True,
    )


def confirm(question: str) -> None:
    """Ask before doing something that cannot be undone; a no exits 130, as Ctrl-C does: the
    user stopped the command (1 would say an operation failed, and 0 that it was done).
    Ctrl-C at the question, or standard input at its end, is no answer: 130 as well."""
    try:
        answer = click.confirm(question, err=True)
    except click.Abort:
        answer = None
    if not answer:
        said = "declined" if answer is False else "no answer (--yes skips the question)"
        click.echo(f"\nopstatus: {said}; nothing was done", err=True)
        sys.exit(EXIT_INTERRUPTED)


def fail(exc: Exception) -> NoReturn:
    """The service answered with an error or could not be reached: say so and exit 4."""
    click.echo(f"opstatus: {describe_error(exc)}", err=True)
    sys.exit(EXIT_SERVICE)


def describe_error(exc: Exception) -> str:
    """The service's error as it answered, or which URL could not be reached and why."""
    if isinstance(exc, httpx.RequestError):
        try:
            url = str(exc.request.url)
        except RuntimeError:  # no request attached
            return str(exc) or type(exc).__name__
        return f"could not reach {url}: {exc or type(exc).__name__}"
    return str(exc)


def resolve(client: Client, target: str, subscription: str | None, location: str | None) -> str:
    """TARGET's status URL, or a usage error saying what is missing."""
    try:
        return client.resolve(target, subscription, location)
    except ValueError as exc:
        raise click.UsageError(
            f"{exc}: pass --subscription and --location, or a status URL"
        ) from None


def print_status(status: OperationStatus, output: str) -> None:
    click.echo(render(status, output))

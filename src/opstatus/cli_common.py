"""What the ``opstatus`` command modules share: exit codes, ``--home``, and the client side's
options and helpers.

The command modules import this and the layers below, never each other nor :mod:`opstatus.cli`,
which assembles them into the ``opstatus`` group.

Exit codes: 0 success (``wait`` and ``get --wait``: Succeeded), 1 the operation Failed or was
Canceled, 2 usage error, 3 timeout, 4 the service answered with an error or could not be
reached.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from . import auth
from .client import (
    DEFAULT_API_VERSION,
    DEFAULT_ENDPOINT,
    DEFAULT_NAMESPACE,
    Client,
    OperationStatus,
)
from .output import render
from .settings import default_home

EXIT_FAILED, EXIT_USAGE, EXIT_TIMEOUT, EXIT_SERVICE = 1, 2, 3, 4

#: Lifetime of the token minted from the local server's key when none is given.
LOCAL_TOKEN_SECONDS = 300

home_option = click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="OPSTATUS_HOME",
    default=None,
    help="Server home folder (database, signing key). [env: OPSTATUS_HOME; default: per-user "
    "data folder]",
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
    """TARGET (an operation id or its status URL), with --subscription and --location."""
    func = click.option("--location", "-l", help="Location of the operation (with an id).")(func)
    func = click.option("--subscription", "-s", help="Subscription GUID (with an id).")(func)
    return click.argument("target")(func)


def make_client(
    endpoint: str, token: str | None, home: Path | None, namespace: str, api_version: str
) -> Client:
    if not token:
        token = local_token(home or default_home())
    return Client(endpoint, token, namespace=namespace, api_version=api_version)


def local_token(home: Path) -> str | None:
    """On the server's own machine, a short-lived token from its key saves a step."""
    try:
        key = auth.load_key(home)
    except (OSError, ValueError):
        return None
    return auth.mint_token(key, "local-cli", [("Owner", "/")], LOCAL_TOKEN_SECONDS)


def fail(exc: Exception) -> NoReturn:
    """The service answered with an error or could not be reached: say so and exit 4."""
    click.echo(f"opstatus: {exc}", err=True)
    sys.exit(EXIT_SERVICE)


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

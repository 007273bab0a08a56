"""``opstatus ui``: the dashboard's address and a short-lived token to sign in with.

The token is minted from the server's key in its home, as ``opstatus token`` does, and is
printed on its own line, never in the URL: a URL ends up in browser history, proxies' logs
and Referer headers; the token is pasted into the sign-in form, and the tab keeps it in its
session storage only.
"""

from __future__ import annotations

from pathlib import Path

import click

from . import auth
from .cli_common import home_option
from .client import DEFAULT_ENDPOINT
from .errors import InvalidInput
from .settings import default_home


def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "dashboard"


@click.command()
@click.option(
    "--endpoint",
    envvar="OPSTATUS_ENDPOINT",
    default=DEFAULT_ENDPOINT,
    show_default=True,
    help="The server's URL (its --public-url behind a proxy). [env: OPSTATUS_ENDPOINT]",
)
@click.option(
    "--role",
    default="Reader",
    show_default=True,
    type=click.Choice(auth.ROLES, case_sensitive=False),
    help="The token's role: Reader sees, Contributor may also cancel.",
)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    default=("/",),
    show_default=True,
    help="/subscriptions/<guid>, or / for every subscription. May repeat.",
)
@click.option("--subject", default=None, help="Who the token is for. [default: the OS user]")
@click.option(
    "--expires-in",
    default=3600,
    show_default=True,
    type=click.IntRange(60, 86400),
    help="Lifetime in seconds: the tab must sign in again after it.",
)
@home_option
def ui(
    endpoint: str,
    role: str,
    scopes: tuple[str, ...],
    subject: str | None,
    expires_in: int,
    home: Path | None,
) -> None:
    """Print the dashboard's URL and a short-lived token to paste on its sign-in page.

    The token is signed with the key in the server's home (only a server started with that
    home accepts it) and goes to standard output on a line of its own; it is never part of
    the URL.
    """
    role_name = next(r for r in auth.ROLES if r.lower() == role.lower())
    key = auth.load_or_create_key(home or default_home())
    try:
        minted = auth.mint_token(
            key, subject or _os_user(), [(role_name, scope) for scope in scopes], expires_in
        )
    except (ValueError, InvalidInput) as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(f"Dashboard: {endpoint.rstrip('/')}/ui/")
    click.echo(
        f"Token ({role_name} on {', '.join(scopes)}, valid {expires_in // 60} min; paste it "
        "on the sign-in page):"
    )
    click.echo(minted)

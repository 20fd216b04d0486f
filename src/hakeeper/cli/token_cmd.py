"""``hakeeper token``: create, list and revoke the operator API's bearer tokens on this node.

Tokens live hashed in ``<data dir>/api-tokens.json`` (mode 0600); a new token is printed once and cannot be
shown again. The daemon re-reads the file when it changes, so a new or revoked token takes effect at once.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from hakeeper.api.auth import TOKENS_FILE, Role, TokenError, TokenStore

DEFAULT_DATA_DIR = Path("/var/lib/hakeeper")

_data_dir = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DATA_DIR,
    show_default=True,
    help="The node's data directory (the daemon's data_dir), where the tokens file is kept.",
)


def _store(data_dir: Path) -> TokenStore:
    return TokenStore(data_dir / TOKENS_FILE)


@click.group("token")
def token() -> None:
    """Manage the API's bearer tokens (roles: read, operate, admin)."""


@token.command("create")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice(["read", "operate", "admin"]),
    required=True,
    help="read: see everything but secrets; operate: also move/ban/cleanup/standby; admin: everything.",
)
@_data_dir
def create(name: str, role: str, data_dir: Path) -> None:
    """Create a token called NAME (say who or what uses it) and print it once."""
    try:
        secret = _store(data_dir).create(name, Role.parse(role), int(time.time()))
    except (TokenError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    except OSError as err:
        raise click.ClickException(
            f"cannot write the tokens file in {data_dir}: {err.strerror or err}"
        ) from err
    click.echo(secret)
    click.echo(f"(token {name!r} with role {role}: store it now, it cannot be shown again)", err=True)


@token.command("list")
@_data_dir
def list_tokens(data_dir: Path) -> None:
    """List the tokens' names and roles (never the tokens themselves)."""
    try:
        records = _store(data_dir).records()
    except TokenError as err:
        raise click.ClickException(str(err)) from err
    if not records:
        click.echo("no tokens; create one with 'hakeeper token create NAME --role read'")
    for rec in records:
        created = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(rec.created))
        click.echo(f"{rec.name}\t{rec.role}\tcreated {created}")


@token.command("revoke")
@click.argument("name")
@_data_dir
def revoke(name: str, data_dir: Path) -> None:
    """Revoke the token called NAME: it stops working at once."""
    try:
        _store(data_dir).revoke(name)
    except TokenError as err:
        raise click.ClickException(str(err)) from err
    except OSError as err:
        raise click.ClickException(
            f"cannot write the tokens file in {data_dir}: {err.strerror or err}"
        ) from err
    click.echo(f"token {name!r} revoked")

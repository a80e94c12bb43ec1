"""`flask api-keys create|list|revoke`: the HTTP API's keys from the command line."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from ..core.api_keys import SCOPES, ApiKeyError, all_keys, create_key, revoke_key
from ..extensions import db


@click.group("api-keys", help="Keys of other systems on the HTTP API (/api/v1).")
def api_keys_cli():
    pass


@api_keys_cli.command("create")
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    type=click.Choice(SCOPES),
    multiple=True,
    default=SCOPES,
    show_default=True,
    help="What the key may do (repeatable).",
)
@with_appcontext
def create_command(name: str, scopes):
    """Make a key; it is shown once, here, with its webhook signing secret."""
    try:
        key, text = create_key(name, scopes)
    except ApiKeyError as error:
        raise click.ClickException(str(error)) from None
    db.session.commit()
    click.echo(f"API key {key.id} ({key.name}; {', '.join(key.scopes)}):")
    click.echo(f"  key:            {text}")
    click.echo(f"  webhook secret: {key.webhook_secret}")
    click.echo("The key is not kept: store it now.")


@api_keys_cli.command("list")
@with_appcontext
def list_command():
    """Every key: id, name, prefix, scopes, last use, revoked."""
    keys = all_keys()
    if not keys:
        click.echo("no API keys yet: flask api-keys create NAME")
    for key in keys:
        used = key.last_used_at.strftime("%Y-%m-%d %H:%M") if key.last_used_at else "never"
        state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "live"
        click.echo(f"{key.id}\t{key.name}\t{key.prefix}\t{','.join(key.scopes)}\t{used}\t{state}")


@api_keys_cli.command("revoke")
@click.argument("key_id", type=int)
@with_appcontext
def revoke_command(key_id: int):
    """Revoke a key: its next request is refused."""
    try:
        key = revoke_key(key_id)
    except ApiKeyError as error:
        raise click.ClickException(str(error)) from None
    db.session.commit()
    click.echo(f"revoked API key {key.id} ({key.name})")

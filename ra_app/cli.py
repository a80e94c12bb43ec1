"""Operator commands for accounts (`flask users …`) and the quality figures
(`flask quality recount`)."""

from __future__ import annotations

import sys

import click
import sqlalchemy as sa
from flask.cli import with_appcontext

from .core import tallies
from .core.accounts import (
    AccountError,
    create_account,
    find_user,
    normalize_email,
    reset_password,
    set_active,
    set_role,
)
from .core.models import Role, User
from .extensions import db

ROLE_CHOICE = click.Choice([r.value for r in Role])


def create_user(email: str, password: str, role: Role) -> User:
    try:
        return create_account(email, password, role)
    except AccountError as error:
        raise click.ClickException(str(error)) from None


def get_user_or_fail(email: str) -> User:
    user = find_user(email)
    if user is None:
        raise click.ClickException(f"no user {normalize_email(email)}")
    return user


@click.group("users", help="Manage accounts.")
def users_cli():
    pass


@users_cli.command("create")
@click.argument("email")
@click.option("--role", type=ROLE_CHOICE, default="reviewer", show_default=True)
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
@with_appcontext
def create_command(email: str, role: str, password_stdin: bool):
    """Create an account; the password is prompted for (or read from stdin)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    user = create_user(email, password, Role(role))
    click.echo(f"created {user.email} ({user.role})")


@users_cli.command("list")
@with_appcontext
def list_command():
    """List accounts with role and status."""
    users = db.session.scalars(sa.select(User).order_by(User.email)).all()
    if not users:
        click.echo("no users yet: flask users create EMAIL --role admin")
    for user in users:
        status = "active" if user.is_active else "disabled"
        click.echo(f"{user.email}\t{user.role}\t{status}")


@users_cli.command("set-role")
@click.argument("email")
@click.argument("role", type=ROLE_CHOICE)
@with_appcontext
def set_role_command(email: str, role: str):
    """Change an account's role."""
    user = get_user_or_fail(email)
    set_role(user, Role(role))
    click.echo(f"{user.email} is now {user.role}")


@users_cli.command("set-password")
@click.argument("email")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
@with_appcontext
def set_password_command(email: str, password_stdin: bool):
    """Set a new password; the account's open sessions end."""
    user = get_user_or_fail(email)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    try:
        reset_password(user, password)
    except AccountError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{user.email}: new password set, open sessions ended")


@users_cli.command("disable")
@click.argument("email")
@with_appcontext
def disable_command(email: str):
    """Disable an account: it can no longer sign in and its sessions end."""
    user = get_user_or_fail(email)
    set_active(user, False)
    click.echo(f"{user.email} is disabled")


@users_cli.command("enable")
@click.argument("email")
@with_appcontext
def enable_command(email: str):
    """Enable a disabled account."""
    user = get_user_or_fail(email)
    set_active(user, True)
    click.echo(f"{user.email} is enabled")


@click.group("quality", help="The figures of the quality and batch pages.")
def quality_cli():
    pass


@quality_cli.command("recount")
@with_appcontext
def recount_command():
    """Recount every reviewer's running figures from the tasks, revisions and decisions
    (after a restore into a database older than them, or to check them)."""
    rows = tallies.rebuild()
    db.session.commit()
    click.echo(f"{rows} reviewer tallies recounted")

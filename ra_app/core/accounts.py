"""Accounts: one place for the rules, used by `flask users …` and the admin pages."""

from __future__ import annotations

import sqlalchemy as sa

from ..extensions import db
from .models import Role, User

MIN_PASSWORD_LENGTH = 8


def normalize_email(email: str) -> str:
    return email.strip().lower()


def find_user(email: str) -> User | None:
    return db.session.scalar(sa.select(User).where(User.email == normalize_email(email)))


class AccountError(ValueError):
    pass


def check_password_rule(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")


def create_account(email: str, password: str, role: Role, in_training: bool = False) -> User:
    email = normalize_email(email)
    if "@" not in email or email.startswith("@") or email.endswith("@"):
        raise AccountError(f"'{email}' is not an email address")
    check_password_rule(password)
    if find_user(email) is not None:
        raise AccountError(f"a user {email} already exists")
    user = User(email=email, role=role, in_training=in_training)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    return user


def reset_password(user: User, password: str) -> None:
    """A new password ends every open session and remember-me cookie of the account."""
    check_password_rule(password)
    user.set_password(password)
    user.failed_logins = 0
    user.end_sessions()
    db.session.commit()


def set_active(user: User, active: bool) -> None:
    user.is_active = active
    if active:
        user.failed_logins = 0
    else:
        user.end_sessions()
    db.session.commit()


def set_role(user: User, role: Role) -> None:
    """A new role takes effect now: the account's open sessions end."""
    if user.role != role:
        user.role = role
        user.end_sessions()
    db.session.commit()

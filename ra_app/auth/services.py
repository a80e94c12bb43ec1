"""Sign-in checks: slow password hashes, and a lock after repeated wrong passwords."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from math import ceil

import sqlalchemy as sa
from flask import current_app
from werkzeug.security import check_password_hash, generate_password_hash

from ..extensions import db
from ..models import User, utcnow

WRONG_CREDENTIALS = "Wrong email or password."
_dummy_hash: str | None = None


def normalize_email(email: str) -> str:
    return email.strip().lower()


def find_user(email: str) -> User | None:
    return db.session.scalar(sa.select(User).where(User.email == normalize_email(email)))


def _spend_hash_time(password: str) -> None:
    """Check against a throwaway hash so an unknown email takes as long as a known one."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = generate_password_hash("not-a-password", method="scrypt")
    check_password_hash(_dummy_hash, password)


@dataclass
class SignInResult:
    user: User | None
    error: str | None


def authenticate(email: str, password: str) -> SignInResult:
    user = find_user(email)
    if user is None:
        _spend_hash_time(password)
        return SignInResult(None, WRONG_CREDENTIALS)
    now = utcnow()
    locked_until = user.locked_until
    if locked_until is not None and locked_until.tzinfo is None:  # SQLite drops the zone
        locked_until = locked_until.replace(tzinfo=now.tzinfo)
    if locked_until and locked_until > now:
        minutes = ceil((locked_until - now).total_seconds() / 60)
        return SignInResult(
            None,
            f"Too many wrong passwords: this account is locked for {minutes} more minute(s).",
        )
    if not user.check_password(password):
        user.failed_logins += 1
        if user.failed_logins >= current_app.config["LOGIN_MAX_FAILURES"]:
            user.locked_until = now + timedelta(seconds=current_app.config["LOGIN_LOCK_SECONDS"])
            user.failed_logins = 0
        db.session.commit()
        return SignInResult(None, WRONG_CREDENTIALS)
    if not user.is_active:
        return SignInResult(None, "This account is disabled. Ask an admin to enable it.")
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    db.session.commit()
    return SignInResult(user, None)

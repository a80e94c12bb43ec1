"""Sign-in checks: slow password hashes, and throttling that holds under parallel attempts.

Every attempt counts against two limits (Flask-Limiter's storage: Redis with a broker, else
memory; moving windows, counted atomically before the password is checked, so twelve
parallel guesses get no more than the limit checked):
- per account and address: LOGIN_MAX_FAILURES attempts in LOGIN_LOCK_SECONDS, cleared by a
  successful sign-in; someone elsewhere cannot lock a reviewer out;
- per address: LOGIN_MAX_PER_ADDRESS attempts in the same window, whatever the accounts.
An unknown email is counted and answered exactly like a known one, so the answers never
tell which accounts exist. With Redis unreachable, the limits are counted in the process
until it is back: sign-in keeps working, and keeps being limited.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from math import ceil

import sqlalchemy as sa
from flask import current_app
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from werkzeug.security import check_password_hash, generate_password_hash

from ..core.accounts import find_user, normalize_email
from ..core.models import User, utcnow
from ..extensions import db, limiter

WRONG_CREDENTIALS = "Wrong email or password."
_dummy_hash: str | None = None
_fallback = MovingWindowRateLimiter(MemoryStorage())
log = logging.getLogger(__name__)


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
    throttled: bool = False


def sign_in_limits(email: str, address: str) -> list[tuple]:
    config = current_app.config
    window = config["LOGIN_LOCK_SECONDS"]
    return [
        (RateLimitItemPerSecond(config["LOGIN_MAX_PER_ADDRESS"], window), "login-address", address),
        (RateLimitItemPerSecond(config["LOGIN_MAX_FAILURES"], window), "login", email, address),
    ]


def strategy():
    """The shared limiter, or this process's own while the shared storage is unreachable."""
    try:
        if limiter.storage.check():
            return limiter.limiter
    except Exception:  # noqa: BLE001, S110 - unreachable is what check() reports too
        pass
    log.warning("sign-in limits: their storage is unreachable; counting in this process")
    return _fallback


def throttled(limits: list[tuple]) -> SignInResult | None:
    """Count this attempt; a refusal says how long to wait (the same for every account)."""
    strategy_now = strategy()
    for item, *key in limits:
        if not strategy_now.hit(item, *key):
            reset_at = strategy_now.get_window_stats(item, *key).reset_time
            minutes = max(1, ceil((reset_at - utcnow().timestamp()) / 60))
            return SignInResult(
                None,
                f"Too many sign-in attempts. Wait {minutes} minute(s), then try again.",
                throttled=True,
            )
    return None


def authenticate(email: str, password: str, address: str) -> SignInResult:
    email = normalize_email(email)
    limits = sign_in_limits(email, address or "unknown")
    refused = throttled(limits)
    if refused is not None:
        return refused
    user = find_user(email)
    if user is None:
        _spend_hash_time(password)
        return SignInResult(None, WRONG_CREDENTIALS)
    if not user.check_password(password):
        db.session.execute(  # counted by the database: parallel failures all count
            sa.update(User).where(User.id == user.id).values(failed_logins=User.failed_logins + 1)
        )
        db.session.commit()
        return SignInResult(None, WRONG_CREDENTIALS)
    if not user.is_active:
        return SignInResult(None, "This account is disabled. Ask an admin to enable it.")
    item, *key = limits[1]
    strategy().clear(item, *key)
    user.failed_logins = 0
    user.last_login_at = utcnow()
    db.session.commit()
    return SignInResult(user, None)

"""Keys of other systems on the HTTP API: made (the key shown once), found by the key a
request presents, revoked. Only a SHA-256 of a key is kept: keys are 256 random bits, so a
slow hash buys nothing, and a check costs a hash and a constant-time compare."""

from __future__ import annotations

import hashlib
import hmac
import secrets

import sqlalchemy as sa

from ..extensions import db
from .models import ApiKey, utcnow

SCOPES = ("submit", "read")  # send recordings; read their state and text
KEY_START = "rfk_"


class ApiKeyError(ValueError):
    pass


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(name: str, scopes, created_by_id: int | None = None) -> tuple[ApiKey, str]:
    """A new key and its text (`rfk_<8 hex>.<secret>`), which is never stored."""
    name = (name or "").strip()
    scopes = sorted(set(scopes))
    if not name or len(name) > 100:
        raise ApiKeyError("a key needs a name of 1 to 100 characters")
    unknown = [s for s in scopes if s not in SCOPES]
    if not scopes or unknown:
        raise ApiKeyError(f"scopes must be among {', '.join(SCOPES)} (got {', '.join(scopes)})")
    prefix = KEY_START + secrets.token_hex(4)
    text = f"{prefix}.{secrets.token_urlsafe(32)}"
    key = ApiKey(
        name=name,
        prefix=prefix,
        key_hash=digest(text),
        scopes=scopes,
        webhook_secret="whsec_" + secrets.token_hex(24),
        created_by_id=created_by_id,
    )
    db.session.add(key)
    db.session.flush()
    return key, text


def find_key(presented: str) -> ApiKey | None:
    """The live key `presented` is, or None (unknown, wrong or revoked)."""
    prefix = presented.split(".", 1)[0]
    if not prefix.startswith(KEY_START) or len(prefix) > 16:
        return None
    key = db.session.scalar(sa.select(ApiKey).where(ApiKey.prefix == prefix))
    if key is None or not hmac.compare_digest(key.key_hash, digest(presented)):
        return None
    return None if key.revoked_at else key


def revoke_key(key_id: int) -> ApiKey:
    key = db.session.get(ApiKey, key_id)
    if key is None:
        raise ApiKeyError(f"no API key {key_id}")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    return key


def all_keys() -> list[ApiKey]:
    return db.session.scalars(sa.select(ApiKey).order_by(ApiKey.id)).all()

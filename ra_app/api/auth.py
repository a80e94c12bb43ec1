"""Who calls the API: the key in `Authorization: Bearer <key>`, its scopes, its rate.

No key, an unknown key and a revoked key are 401; a key without the scope an endpoint
needs is 403; a key over its requests per minute is 429 with Retry-After. The key's
requests are counted in the sign-in limits' shared storage (Redis with a broker)."""

from __future__ import annotations

from datetime import timedelta
from functools import wraps
from math import ceil

import sqlalchemy as sa
from flask import current_app, g, jsonify, request
from limits import RateLimitItemPerMinute

from ..auth.services import strategy
from ..core.api_keys import find_key
from ..core.models import ApiKey, utcnow
from ..extensions import db

LAST_USED_EVERY = timedelta(minutes=1)  # a key's "last used" is written at most this often


def problem(status: int, error: str, message: str, **extra):
    response = jsonify(error=error, message=message, **extra)
    response.status_code = status
    return response


def authenticate():
    """Before every API request but the OpenAPI document: the key, and its rate."""
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        answer = problem(401, "unauthorized", "send the API key as 'Authorization: Bearer KEY'")
        answer.headers["WWW-Authenticate"] = 'Bearer realm="api"'
        return answer
    key = find_key(presented.strip())
    if key is None:
        answer = problem(401, "unauthorized", "this API key is unknown or revoked")
        answer.headers["WWW-Authenticate"] = 'Bearer realm="api", error="invalid_token"'
        return answer
    limit = RateLimitItemPerMinute(current_app.config["API_RATE_PER_MINUTE"])
    limiter = strategy()
    if not limiter.hit(limit, "api-key", str(key.id)):
        reset_at = limiter.get_window_stats(limit, "api-key", str(key.id)).reset_time
        wait = max(1, ceil(reset_at - utcnow().timestamp()))
        answer = problem(429, "rate_limited", f"too many requests for this key; retry in {wait} s")
        answer.headers["Retry-After"] = str(wait)
        return answer
    if key.last_used_at is None or utcnow() - key.last_used_at > LAST_USED_EVERY:
        db.session.execute(
            sa.update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=utcnow())
        )
        db.session.commit()
    g.api_key = key
    return None


def needs(scope: str):
    """The endpoint answers only keys holding `scope`."""

    def decorate(view):
        @wraps(view)
        def checked(*args, **kwargs):
            if scope not in g.api_key.scopes:
                return problem(403, "forbidden", f"this API key lacks the '{scope}' scope")
            return view(*args, **kwargs)

        return checked

    return decorate

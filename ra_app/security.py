"""Settings that fail closed and headers on every answer.

- The signing key: production sets SECRET_KEY (ProdConfig.check refuses to start without
  one). The embedded mode, with no key set, makes a random one per installation and keeps
  it in `instance/secret_key`; that key is refused with any database but the embedded
  SQLite, so a server installation never runs on a key it did not choose.
- Every response carries a Content-Security-Policy without inline script, refuses to be
  framed, and turns off type sniffing and cross-site referrers.
- Behind the HTTPS proxy (FORWARDED_PROXIES=1), the client's address and scheme come from
  the proxy's headers, so per-address sign-in limits count clients, not the proxy.
"""

from __future__ import annotations

import functools
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from config import is_sqlite

KEY_FILE = "secret_key"


@functools.cache
def content_security_policy(media_origin: str | None = None) -> str:
    """The policy; `media_origin` lets <audio> play from the bucket (presigned redirects)."""
    media = "media-src 'self' blob:" + (f" {media_origin}" if media_origin else "")
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            # wavesurfer.js styles its shadow DOM with a <style> element
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            media,
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def media_origin(config) -> str | None:
    """Where the browser fetches audio besides this site: the bucket's public endpoint, when
    audio is delivered by redirecting to presigned URLs (ra_app/review/media.py)."""
    if config.get("STORAGE_BACKEND") != "s3" or config.get("AUDIO_DELIVERY") != "redirect":
        return None
    endpoint = config.get("S3_PUBLIC_ENDPOINT") or config.get("S3_ENDPOINT") or ""
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


CONTENT_SECURITY_POLICY = content_security_policy()
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def configure_secret_key(app: Flask) -> None:
    if app.config.get("SECRET_KEY"):
        return
    if not is_sqlite(app.config["SQLALCHEMY_DATABASE_URI"]):
        raise RuntimeError(
            "SECRET_KEY is not set. Only the embedded SQLite database runs on a generated "
            "development key; set SECRET_KEY (32+ random characters) for this database."
        )
    app.config["SECRET_KEY"] = instance_key(Path(app.instance_path) / KEY_FILE)


def instance_key(path: Path) -> str:
    """This installation's own development key, made once, readable by its owner only."""
    if path.is_file():
        return path.read_text().strip()
    key = secrets.token_urlsafe(48)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    try:
        os.link(partial, path)  # complete or absent: a second process reads the first's key
    except FileExistsError:
        return path.read_text().strip()
    finally:
        partial.unlink()
    return key


def register_security(app: Flask) -> None:
    proxies = app.config["FORWARDED_PROXIES"]
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)

    @app.after_request
    def security_headers(response):
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        origin = media_origin(app.config)
        if origin and response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY:
            response.headers["Content-Security-Policy"] = content_security_policy(origin)
        return response

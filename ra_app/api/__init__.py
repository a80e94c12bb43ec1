"""The HTTP API for other systems, under /api/v1: API keys instead of the browser's session
(so no CSRF token and no sign-in page), JSON answers, errors that name the field."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

from . import routes  # noqa: E402,F401

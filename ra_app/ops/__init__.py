"""Health for operators and load balancers: /healthz (the process answers) and /readyz (what
the app needs to serve: database, schema, broker, storage). Both answer without sign-in and
name no secret: a failed check says what failed and what kind of error, never a URL."""

from flask import Blueprint

bp = Blueprint("ops", __name__)

from . import routes  # noqa: E402,F401

"""What operators and their tools read: /healthz (the process answers), /readyz (what the
app needs to serve: database, schema, broker, storage), /readyz/queues (a consumer for each
queue) and /metrics (Prometheus). None needs a sign-in and none names a secret: a failed
check says what failed and what kind of error, never a URL."""

from flask import Blueprint, Flask

bp = Blueprint("ops", __name__)

from . import metrics, routes  # noqa: E402,F401


def register_observability(app: Flask) -> None:
    """Request timing for /metrics, and the logs' format and context (ra_app/ops/logs.py)."""
    metrics.time_requests(app)

"""What operators and their tools read: /healthz (the process answers), /readyz (what the
app needs to serve: database, schema, broker, storage), /readyz/queues (a consumer for each
queue) and /metrics (Prometheus). None needs a sign-in and none names a secret: a failed
check says what failed and what kind of error, never a URL."""

import uuid

from flask import Blueprint, Flask, g, request

from ..core import logs

bp = Blueprint("ops", __name__)

from . import metrics, routes  # noqa: E402,F401


def register_observability(app: Flask) -> None:
    """Request timing for /metrics; the logs' format (ra_app/core/logs.py) and each
    request's id in its lines and in its answer's X-Request-ID."""
    metrics.time_requests(app)
    if not app.testing:  # under pytest, its own capture keeps the records
        logs.configure(app.config)

    @app.before_request
    def _request_id():
        sent = request.headers.get("X-Request-ID", "")
        g.request_id = sent if logs.SAFE_REQUEST_ID.match(sent) else uuid.uuid4().hex
        logs.bind(request_id=g.request_id)

    @app.after_request
    def _answer_request_id(response):
        if "request_id" in g:
            response.headers["X-Request-ID"] = g.request_id
        return response

    @app.teardown_request
    def _forget(_error):
        logs.clear()

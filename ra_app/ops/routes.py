from dataclasses import asdict

from flask import jsonify

from . import bp
from .checks import readiness


@bp.route("/healthz")
def healthz():
    """The process answers (no dependency is touched: a liveness probe)."""
    return jsonify(status="ok")


@bp.route("/readyz")
def readyz():
    """Every check with its result and time; 503 when one fails."""
    checks = readiness()
    ready = all(check.ok for check in checks)
    body = {
        "status": "ready" if ready else "not ready",
        "checks": {
            check.name: {k: v for k, v in asdict(check).items() if k != "name"} for check in checks
        },
    }
    response = jsonify(body)
    response.status_code = 200 if ready else 503
    response.cache_control.no_store = True
    return response

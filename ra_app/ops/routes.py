import logging
from dataclasses import asdict

from flask import jsonify

from ..core.health import readiness
from ..core.queue_health import queue_health
from ..extensions import db
from . import bp

log = logging.getLogger(__name__)


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
    return answer(body, ready)


@bp.route("/readyz/queues")
def readyz_queues():
    """Per queue: how many workers consume it, the work waiting, when a task of it last
    finished; 503 when work waits on a queue no worker consumes (worker names stay out of
    an answer given without sign-in: `flask doctor` names them)."""
    try:
        queues = queue_health()
    except Exception as error:  # noqa: BLE001 - the database is down or behind: say so
        db.session.rollback()
        log.warning("queue health unavailable: %s", type(error).__name__)
        return answer({"status": "unknown", "error": type(error).__name__}, False)
    ok = all(queue.ok for queue in queues)
    body = {
        "status": "ok" if ok else "stranded work",
        "queues": {queue.name: queue.as_json() for queue in queues},
    }
    return answer(body, ok)


def answer(body: dict, ok: bool):
    response = jsonify(body)
    response.status_code = 200 if ok else 503
    response.cache_control.no_store = True
    return response

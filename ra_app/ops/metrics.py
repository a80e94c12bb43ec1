"""/metrics for Prometheus: what the web's processes counted (ra_app/core/metrics.py) and
the installation's state read at scrape time from the database and the broker (open
tasks, queue lengths, consumers, unsent work), which no single process could count.

Scrapers do not sign in: with METRICS_TOKEN set, /metrics wants `Authorization: Bearer
<token>`; without it, only a scraper on the web host itself may (loopback, and not
through a proxy: behind the HTTPS proxy on the same host every client is loopback).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time

import sqlalchemy as sa
from flask import Flask, Response, abort, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from ..core.metrics import REQUEST_SECONDS, process_registry
from ..core.models import Assignment, AssignmentStatus
from ..core.queue_health import queue_health
from ..extensions import db
from . import bp

log = logging.getLogger(__name__)
OPEN = (AssignmentStatus.PENDING, AssignmentStatus.IN_PROGRESS, AssignmentStatus.REJECTED)


class InstallationState:
    """Gauges read from the database and broker when scraped (a collector, so they are
    the truth at that moment whichever process answers)."""

    def collect(self):
        """Called by /metrics in its request, on the request's session."""
        up = GaugeMetricFamily(
            "review_installation_state_up",
            "1 when the database answered the state gauges of this scrape, else 0.",
        )
        try:
            families = [*self._open_tasks(), *self._queues()]
        except Exception:  # noqa: BLE001 - the process's own metrics still answer
            db.session.rollback()
            log.warning("installation state unavailable for /metrics", exc_info=True)
            families = []
        up.add_metric([], 1 if families else 0)
        yield up
        yield from families

    def _open_tasks(self):
        family = GaugeMetricFamily(
            "review_open_tasks",
            "Review tasks not yet done, by type and status.",
            labels=["task_type", "status"],
        )
        rows = db.session.execute(
            sa.select(Assignment.task_type, Assignment.status, sa.func.count())
            .where(Assignment.status.in_(OPEN))
            .group_by(Assignment.task_type, Assignment.status)
        )
        for task_type, status, count in rows:
            family.add_metric([task_type.value, status.value], count)
        yield family

    def _queues(self):
        waiting = GaugeMetricFamily(
            "review_queue_waiting",
            "Tasks waiting for a queue: in the broker and unsent.",
            labels=["queue"],
        )
        consumers = GaugeMetricFamily(
            "review_queue_consumers", "Workers seen lately consuming a queue.", labels=["queue"]
        )
        for queue in queue_health():
            waiting.add_metric([queue.name], queue.waiting)
            consumers.add_metric([queue.name], len(queue.consumers))
        yield waiting
        yield consumers


STATE = CollectorRegistry()
STATE.register(InstallationState())


def allowed(token: str | None) -> bool:
    if token:
        sent = request.headers.get("Authorization", "")
        return hmac.compare_digest(sent.encode(), f"Bearer {token}".encode())
    if any(h in request.headers for h in ("X-Forwarded-For", "Forwarded", "X-Real-IP")):
        return False  # came through a proxy: loopback is the proxy, not the scraper
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


@bp.route("/metrics")
def metrics():
    if not allowed(current_app.config.get("METRICS_TOKEN")):
        abort(403)
    # Two registries' answers one after the other: their metric names never overlap.
    text = generate_latest(process_registry()) + generate_latest(STATE)
    return Response(text, mimetype=CONTENT_TYPE_LATEST)


def time_requests(app: Flask) -> None:
    @app.before_request
    def _started():
        g.request_started = time.perf_counter()

    @app.after_request
    def _observed(response):
        began = g.pop("request_started", None)
        if began is not None:
            REQUEST_SECONDS.labels(
                request.endpoint or "unmatched", request.method, str(response.status_code)
            ).observe(time.perf_counter() - began)
        return response

"""The product's Prometheus metrics, counted where things happen.

Counters of work that commits (claims, reviewed audio, lease expiries) move only when the
transaction commits (`on_commit`): a submit that loses a race and rolls back counts
nothing. Job runs are counted by the bookkeeping that records them (pipeline/jobs.py).

Processes: under gunicorn and Celery's pool every process counts into files under
PROMETHEUS_MULTIPROC_DIR, and one answer sums them (prometheus_client's multiprocess mode;
the variable must be set before this module is imported, which gunicorn.conf.py and
celery_worker.py do). The web serves its processes' metrics, and the state of the whole
installation read from the database and broker, at /metrics (ra_app/ops/metrics.py); each
worker host serves its own pool's at WORKER_METRICS_PORT (`serve_worker_metrics`).
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess
from sqlalchemy import event
from sqlalchemy.orm import Session

REQUEST_SECONDS = Histogram(
    "review_http_request_duration_seconds",
    "Web requests by endpoint, method and status, and how long they took.",
    ["endpoint", "method", "status"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0),
)
JOB_RUNS = Counter(
    "review_job_runs_total",
    "Stage attempts by stage and outcome (succeeded, failed_transient, failed_permanent).",
    ["stage", "outcome"],
)
STAGE_SECONDS = Histogram(
    "review_stage_duration_seconds",
    "How long a stage attempt ran, by stage.",
    ["stage"],
    buckets=(0.1, 0.5, 1, 5, 15, 60, 180, 600, 1800, 3600),
)
JOB_LEASE_EXPIRIES = Counter(
    "review_job_lease_expiries_total",
    "Stage claims taken over because their worker stopped heart-beating or died.",
    ["stage"],
)
TASK_LEASE_EXPIRIES = Counter(
    "review_task_lease_expiries_total",
    "Review tasks released because their reviewer went quiet past the lease.",
)
TASK_CLAIMS = Counter(
    "review_task_claims_total", "Review tasks claimed by reviewers, by task type.", ["task_type"]
)
REVIEWED_AUDIO_SECONDS = Counter(
    "review_reviewed_audio_seconds_total",
    "Seconds of audio whose review was submitted, by task type.",
    ["task_type"],
)

PENDING = "metrics_pending"


def on_commit(metric, amount: float = 1.0, **labels: str) -> None:
    """Count `amount` on `metric` when the app session's transaction commits."""
    from ..extensions import db

    db.session.info.setdefault(PENDING, []).append((metric, labels, amount))


@event.listens_for(Session, "after_commit")
def _count_committed(session: Session) -> None:
    for metric, labels, amount in session.info.pop(PENDING, []):
        (metric.labels(**labels) if labels else metric).inc(amount)


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop(PENDING, None)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def process_registry() -> CollectorRegistry:
    """What this host's processes counted: summed over the multiprocess files, or this
    process's own (the embedded mode and tests)."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    from prometheus_client import REGISTRY

    return REGISTRY


def serve_worker_metrics(port: int, address: str) -> None:
    """A worker's pool metrics on `address:port` (from the worker's main process). Nothing
    guards them but the address: loopback unless the host's firewall admits Prometheus."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=address, registry=process_registry())


def forget_process(pid: int) -> None:
    """A pool or gunicorn process ended: drop its live-only files (counters are kept)."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid)

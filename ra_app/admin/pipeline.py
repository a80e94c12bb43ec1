"""The pipeline dashboard's queries: job runs per stage, failures, queues, workers."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from ..core.clock import db_now
from ..core.models import FailureClass, JobRun, JobStatus, WorkerSeen, utcnow
from ..core.outbox import enqueue
from ..extensions import db

RECENT_DAYS = 7


def runs_per_stage(days: int = RECENT_DAYS) -> dict[str, dict[str, int]]:
    """Job runs per stage and status in the last `days` days, and every run going on now:
    what an operator looks at, read through the started_at index instead of counting a
    million runs of all time on every view."""
    since = db_now() - timedelta(days=days)
    rows = db.session.execute(
        sa.select(JobRun.stage, JobRun.status, sa.func.count())
        .where(sa.or_(JobRun.started_at >= since, JobRun.status == JobStatus.RUNNING))
        .group_by(JobRun.stage, JobRun.status)
    ).all()
    table: dict[str, dict[str, int]] = {}
    for stage, status, count in rows:
        table.setdefault(stage, {s.value: 0 for s in JobStatus})[status.value] = count
    return dict(sorted(table.items()))


def retry_call(run: JobRun) -> dict | None:
    """The task call a failed run can be sent again with, if it can be retried."""
    if run.status is not JobStatus.FAILED or run.failure_class is not FailureClass.TRANSIENT:
        return None
    call = (run.result or {}).get("call")
    return call if call and call.get("task") else None


def retry(run: JobRun) -> str:
    """Queue the failed call again (through the outbox: sent when the broker can take it)."""
    call = retry_call(run)
    if call is None:
        raise ValueError("this run cannot be retried (it succeeded, or failed for good)")
    message = enqueue(call["task"], call["args"], call["kwargs"], sample_id=run.sample_id)
    db.session.commit()
    return message.task_id


def queue_lengths() -> dict[str, int | str]:
    """Messages waiting per queue, read from the Redis broker."""
    from ..core.queues import QUEUES

    celery = current_app.extensions["celery"]
    if celery.conf.task_always_eager:
        return dict.fromkeys(QUEUES, "in-process")
    try:
        with celery.connection_for_read() as connection:
            client = connection.default_channel.client
            return {queue: client.llen(queue) for queue in QUEUES}
    except Exception as error:  # noqa: BLE001 - the dashboard shows the broker is unreachable
        return dict.fromkeys(QUEUES, f"broker unreachable: {type(error).__name__}")


def recent_workers(within: timedelta = timedelta(hours=1)) -> list[tuple[str, object, int]]:
    """Workers that started a job run lately: (worker, last start, runs); started_at is
    indexed, so this stays cheap with millions of runs."""
    since = utcnow() - within
    return list(
        db.session.execute(
            sa.select(JobRun.worker, sa.func.max(JobRun.started_at), sa.func.count())
            .where(JobRun.started_at >= since, JobRun.worker.is_not(None))
            .group_by(JobRun.worker)
            .order_by(sa.func.max(JobRun.started_at).desc())
        ).all()
    )


def worker_sightings(within: timedelta = timedelta(hours=1)) -> list[WorkerSeen]:
    """Celery workers that stamped themselves lately, with the queues they consume."""
    return list(
        db.session.scalars(
            sa.select(WorkerSeen)
            .where(WorkerSeen.seen_at >= utcnow() - within)
            .order_by(WorkerSeen.name)
        )
    )

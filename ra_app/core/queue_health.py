"""The queues' health: for each queue, who consumes it, how much work waits for it, and when
a task of it last finished. Workers stamp themselves every 30 s (pipeline/workers.py), so a
worker not seen for WORKER_SEEN_SECONDS is taken as gone.

Work waiting for a queue is what its broker list holds plus what the outbox has not sent
yet; a queue with work waiting and no consumer is a failure (the work would wait forever),
one with no consumer and nothing waiting only a warning (a host kind this installation
may not have)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from ..extensions import db
from .clock import as_utc, db_now
from .models import JobRun, OutboxMessage, WorkerSeen
from .queues import QUEUES, STAGE_QUEUES


@dataclass
class QueueHealth:
    name: str
    consumers: list[str]  # worker names seen lately
    waiting: int  # in the broker's list and in the outbox
    last_finished: datetime | None
    embedded: bool = False
    broker_counted: bool = True  # False: the broker did not answer; only the outbox counted

    @property
    def ok(self) -> bool:
        """False when work waits and no one will take it."""
        return self.embedded or bool(self.consumers) or not self.waiting

    def as_json(self) -> dict:
        return {
            "ok": self.ok,
            "consumers": len(self.consumers),
            "waiting": self.waiting,
            "broker_counted": self.broker_counted,
            "last_finished": self.last_finished.isoformat() if self.last_finished else None,
        }


def consumers_by_queue(now: datetime) -> dict[str, list[str]]:
    since = now - timedelta(seconds=current_app.config["WORKER_SEEN_SECONDS"])
    rows = db.session.execute(
        sa.select(WorkerSeen.name, WorkerSeen.queues).where(WorkerSeen.seen_at >= since)
    )
    found: dict[str, list[str]] = {name: [] for name in QUEUES}
    for name, queues in rows:
        for queue in queues.split(","):
            found.setdefault(queue, []).append(name)
    return found


def last_finished_by_queue() -> dict[str, datetime]:
    """One indexed look-up per stage (ix_job_runs_stage_finished), not a scan of the runs."""
    latest: dict[str, datetime] = {}
    for stage in STAGE_QUEUES:
        queue = queue_of_run(stage)
        finished = db.session.scalar(
            sa.select(sa.func.max(JobRun.finished_at)).where(JobRun.stage == stage)
        )
        if finished and (queue not in latest or as_utc(finished) > latest[queue]):
            latest[queue] = as_utc(finished)
    return latest


def queue_of_run(stage: str) -> str:
    """The queue a job run's stage ran on. Denoising is one stage (one claim per sample)
    on the cpu queue or, with DeepFilterNet, on gpu_denoise."""
    if stage == "denoise" and current_app.config["DENOISE_METHOD"] == "deepfilternet":
        return "gpu_denoise"
    return STAGE_QUEUES[stage]


def unsent_by_queue() -> dict[str, int]:
    rows = db.session.execute(
        sa.select(OutboxMessage.task_name, sa.func.count())
        .where(OutboxMessage.sent_at.is_(None))
        .group_by(OutboxMessage.task_name)
    )
    counts: dict[str, int] = {}
    for task_name, count in rows:
        stage = task_name.removeprefix("pipeline.").split(".")[0]
        queue = STAGE_QUEUES.get(stage, "io")
        counts[queue] = counts.get(queue, 0) + count
    return counts


def broker_lengths() -> dict[str, int] | None:
    """Messages each queue's broker list holds (Redis); None when the broker cannot be asked."""
    celery = current_app.extensions["celery"]
    if celery.conf.task_always_eager:
        return {name: 0 for name in QUEUES}
    try:
        with celery.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)
            channel = connection.default_channel
            return {name: _queue_length(channel, name) for name in QUEUES}
    except Exception:  # noqa: BLE001 - the broker's own check names the failure
        return None


def _queue_length(channel, name: str) -> int:
    client = getattr(channel, "client", None)
    if client is not None:  # Redis: a list per queue
        return int(client.llen(name))
    return channel.queue_declare(queue=name, passive=True).message_count


def queue_health() -> list[QueueHealth]:
    embedded = bool(current_app.extensions["celery"].conf.task_always_eager)
    now = db_now()
    consumers = consumers_by_queue(now)
    finished = last_finished_by_queue()
    unsent = unsent_by_queue()
    lengths = broker_lengths()
    return [
        QueueHealth(
            name=name,
            consumers=consumers.get(name, []),
            waiting=(lengths or {}).get(name, 0) + unsent.get(name, 0),
            last_finished=finished.get(name),
            embedded=embedded,
            broker_counted=lengths is not None,
        )
        for name in QUEUES
    ]

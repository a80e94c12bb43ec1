"""What the pipeline does next after a sample reaches a state, queued through the outbox.

    reviewed ──► align (gpu, when a gpu worker serves it) ──► aligned ──► segment (cpu)
    segments_reviewed ──► denoise (cpu, or gpu with DeepFilterNet) ──► denoised ──► export (io)

`advance` moves a sample and queues its next stage in the same transaction, so a next stage
is queued exactly when the move commits: never without it (a broker that is down only
delays the send, see ra_app/core/outbox.py), never for a move that rolled back. A stage that did
not run moved nothing, so nothing after it is queued. Work is named by Celery task name;
this module imports no stage code.
"""

from __future__ import annotations

import importlib.util
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from ..extensions import db
from .clock import db_now
from .models import OutboxMessage, Sample, WorkerSeen
from .outbox import enqueue
from .states import ProcessingState as S
from .states import transition


def gpu_worker_seen() -> bool:
    """Some Celery worker consuming the gpu queue stamped itself lately (pipeline/workers.py)."""
    since = db_now() - timedelta(seconds=current_app.config["ALIGN_WORKER_SEEN_SECONDS"])
    return bool(
        db.session.scalar(
            sa.select(sa.func.count()).where(
                WorkerSeen.seen_at >= since,
                sa.or_(
                    WorkerSeen.queues == "gpu",
                    WorkerSeen.queues.like("gpu,%"),
                    WorkerSeen.queues.like("%,gpu"),
                    WorkerSeen.queues.like("%,gpu,%"),
                ),
            )
        )
    )


def alignment_wanted() -> bool:
    """ALIGN_ENABLED on: always; off: never; auto (default): when a gpu worker has been seen,
    so reviewed samples never wait on a queue no one consumes. In the embedded mode (tasks
    in-process) only where WhisperX is installed."""
    setting = current_app.config["ALIGN_ENABLED"]
    if setting in ("on", "off"):
        return setting == "on"
    if current_app.extensions["celery"].conf.task_always_eager:
        return importlib.util.find_spec("whisperx") is not None
    return gpu_worker_seen()


def next_task(sample: Sample) -> str | None:
    """The task that follows the sample's current state (None: a person, or nothing)."""
    state = sample.processing_state
    if state is S.REVIEWED:
        return "pipeline.align" if alignment_wanted() else "pipeline.segment"
    if state is S.ALIGNED:
        return "pipeline.segment"
    if state is S.SEGMENTS_REVIEWED:
        gpu = current_app.config["DENOISE_METHOD"] == "deepfilternet"
        return "pipeline.denoise_gpu" if gpu else "pipeline.denoise"
    if state is S.DENOISED:
        return "pipeline.export"
    return None


WAITING_ON_A_STAGE = (S.REVIEWED, S.ALIGNED, S.SEGMENTS_REVIEWED, S.DENOISED)


def follow_up(sample: Sample) -> OutboxMessage | None:
    """Queue (in the caller's transaction) the stage that follows the sample's state."""
    name = next_task(sample)
    if name is None:
        return None
    return enqueue(name, [str(sample.id)], sample_id=sample.id)


def advance(sample: Sample, target: S) -> OutboxMessage | None:
    """Move `sample` to `target` and queue what follows, in the caller's transaction."""
    transition(sample, target)
    return follow_up(sample)

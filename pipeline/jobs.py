"""Job runs and stage claims.

Every stage attempt writes one `job_runs` row. The `running` row is also the claim on
(stage, subject): a partial unique index lets only one run be running per (stage, subject),
so two workers never run the same stage on one sample at once. A claim carries a lease that
the worker extends with `heartbeat`; once it has expired (the worker died), the next worker
marks the old run `expired` and takes over.

Bookkeeping uses its own short transactions on the engine, apart from the stage's session,
so a stage that rolls back its work still leaves an honest record of the attempt.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from ra_app.extensions import db
from ra_app.models import FailureClass, JobRun, JobStatus, utcnow

from .errors import is_permanent

job_runs = JobRun.__table__
log = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class ClaimTaken(Exception):
    """Another worker holds a live claim on this (stage, subject)."""

    def __init__(self, stage: str, subject: str, holder: str | None):
        super().__init__(f"{stage} on {subject} is already running on {holder or 'another worker'}")
        self.holder = holder


class ClaimLost(Exception):
    """This worker's lease expired and another worker took the claim over."""


@dataclass(frozen=True)
class Claim:
    run_id: int
    stage: str
    subject: str
    attempt: int


def _lease_seconds(lease_s: float | None) -> float:
    return lease_s if lease_s is not None else current_app.config["JOB_LEASE_SECONDS"]


def claim(
    stage: str,
    subject: str,
    *,
    sample_id=None,
    task_id: str | None = None,
    lease_s: float | None = None,
    now: datetime | None = None,
) -> Claim:
    """Take the claim on (stage, subject) or raise ClaimTaken."""
    now = now or utcnow()
    with db.engine.begin() as conn:
        conn.execute(
            job_runs.update()
            .where(
                job_runs.c.stage == stage,
                job_runs.c.subject == subject,
                job_runs.c.status == JobStatus.RUNNING,
                job_runs.c.lease_expires_at < now,
            )
            .values(
                status=JobStatus.EXPIRED,
                finished_at=now,
                failure_class=FailureClass.TRANSIENT,
                error="lease expired: the worker stopped heart-beating; another worker took over",
                updated_at=now,
            )
        )
        previous = conn.execute(
            sa.select(sa.func.count()).where(
                job_runs.c.stage == stage, job_runs.c.subject == subject
            )
        ).scalar_one()
    attempt = (previous or 0) + 1
    try:
        with db.engine.begin() as conn:
            run_id = conn.execute(
                job_runs.insert()
                .values(
                    stage=stage,
                    subject=subject,
                    sample_id=sample_id,
                    status=JobStatus.RUNNING,
                    attempt=attempt,
                    worker=worker_name(),
                    task_id=task_id,
                    started_at=now,
                    updated_at=now,
                    lease_expires_at=now + timedelta(seconds=_lease_seconds(lease_s)),
                )
                .returning(job_runs.c.id)
            ).scalar_one()
    except sa.exc.IntegrityError:
        with db.engine.connect() as conn:
            holder = conn.execute(
                sa.select(job_runs.c.worker).where(
                    job_runs.c.stage == stage,
                    job_runs.c.subject == subject,
                    job_runs.c.status == JobStatus.RUNNING,
                )
            ).scalar()
        raise ClaimTaken(stage, subject, holder) from None
    return Claim(run_id, stage, subject, attempt)


def heartbeat(held: Claim, lease_s: float | None = None, engine=None) -> None:
    """Extend the lease; raise ClaimLost if another worker has taken the claim over."""
    now = utcnow()
    with (engine or db.engine).begin() as conn:
        updated = conn.execute(
            job_runs.update()
            .where(job_runs.c.id == held.run_id, job_runs.c.status == JobStatus.RUNNING)
            .values(
                lease_expires_at=now + timedelta(seconds=_lease_seconds(lease_s)),
                updated_at=now,
            )
        ).rowcount
    if updated != 1:
        raise ClaimLost(f"{held.stage} on {held.subject}: the lease expired and was taken over")


def finish(
    held: Claim,
    status: JobStatus,
    *,
    error: str | None = None,
    failure_class: FailureClass | None = None,
    result: dict | None = None,
    sample_id=None,
) -> None:
    now = utcnow()
    values = {
        "status": status,
        "finished_at": now,
        "updated_at": now,
        "lease_expires_at": None,
        "error": error,
        "failure_class": failure_class,
        "result": result,
    }
    if sample_id is not None:
        values["sample_id"] = sample_id
    with db.engine.begin() as conn:
        conn.execute(
            job_runs.update()
            .where(job_runs.c.id == held.run_id, job_runs.c.status == JobStatus.RUNNING)
            .values(**values)
        )


def describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}"[:4000]


@contextmanager
def stage_run(
    stage: str,
    subject: str,
    *,
    sample_id=None,
    task_id: str | None = None,
    lease_s: float | None = None,
) -> Iterator[StageRun]:
    """Claim (stage, subject), run the body, and record how the attempt ended.

    The body sets `run.result` (a JSON-able summary) and, for ingestion, `run.sample_id`.
    Any exception rolls the stage's session back, is recorded with its failure class, and
    propagates so the Celery task can retry or give up.
    """
    held = claim(stage, subject, sample_id=sample_id, task_id=task_id, lease_s=lease_s)
    run = StageRun(held, sample_id=sample_id, lease_s=lease_s)
    keep_alive = KeepAlive(held, _lease_seconds(lease_s), db.engine)
    try:
        with keep_alive:
            yield run
    except BaseException as error:
        db.session.rollback()
        failure = FailureClass.PERMANENT if is_permanent(error) else FailureClass.TRANSIENT
        finish(
            held,
            JobStatus.FAILED,
            error=describe(error),
            failure_class=failure,
            result=run.result,
            sample_id=run.sample_id,
        )
        raise
    finish(held, JobStatus.SUCCEEDED, result=run.result, sample_id=run.sample_id)


@dataclass
class StageRun:
    claim: Claim
    sample_id: object = None
    lease_s: float | None = None
    result: dict | None = None

    @property
    def attempt(self) -> int:
        return self.claim.attempt

    def heartbeat(self) -> None:
        heartbeat(self.claim, self.lease_s)


class KeepAlive:
    """Heart-beats the claim from a background thread while the stage works, so a long
    ffmpeg run or model call keeps its lease and a dead worker's lease runs out quickly."""

    def __init__(self, held: Claim, lease_s: float, engine):
        self.held = held
        self.lease_s = lease_s
        self.engine = engine
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="claim-keepalive", daemon=True)

    def _beat(self) -> None:
        while not self.stopped.wait(self.lease_s / 4):
            try:
                heartbeat(self.held, self.lease_s, self.engine)
            except ClaimLost:
                log.warning("lost the claim on %s %s", self.held.stage, self.held.subject)
                return
            except sa.exc.OperationalError as error:  # a busy SQLite file: try next beat
                log.info("heartbeat skipped: %s", error)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join()
        return False

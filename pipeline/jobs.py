"""Job runs and stage claims.

Every stage attempt writes one `job_runs` row. The `running` row is also the claim on
(stage, subject): a partial unique index lets only one run be running per (stage, subject),
so two workers never run the same stage on one sample at once.

A claim belongs to its Celery task id and carries a lease (on the database's clock) that a
background thread extends while the stage works:
- the same task id delivered again after its process died mid-stage (Celery redelivers the
  message) takes its own claim over at once and runs; a copy of a task whose holder may
  still be alive (another host's, or a message the sweeper sent again) waits like any other;
- a different task that meets a live claim is told how long the lease has left (ClaimTaken)
  and retries after it, so it takes over if the holder died;
- a run whose claim was taken over stops before it writes: every commit of the stage's
  session checks, under a row lock, that its run is still the running one (`fence`).

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
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import Session

from ra_app.core import logs, metrics
from ra_app.core.clock import as_utc, db_now
from ra_app.core.models import FailureClass, JobRun, JobStatus
from ra_app.extensions import db

from .errors import is_permanent

job_runs = JobRun.__table__
log = logging.getLogger(__name__)

EXPIRED_LEASE = "lease expired: the worker stopped heart-beating; another worker took over"
REDELIVERED = "redelivered: the worker running it stopped; the next delivery took over"


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def holder_gone(worker: str | None) -> bool:
    """Whether the process holding a claim has provably stopped: this very process (a pool
    process runs one task at a time, so its earlier run of this task is over), or a process
    of this host that no longer exists. Of another host's, only its lease can tell."""
    host, _, pid = (worker or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except ProcessLookupError:
        return True
    except OSError:  # not ours to signal, or no /proc: alive as far as we can tell
        return False
    return state == "Z"  # killed, not yet reaped by its pool


class ClaimTaken(Exception):
    """Another task holds a live claim on this (stage, subject); `retry_in` is the time its
    lease has left, after which it can be taken over if its worker died."""

    def __init__(self, stage: str, subject: str, holder: str | None, retry_in: float = 0.0):
        super().__init__(f"{stage} on {subject} is already running on {holder or 'another worker'}")
        self.holder = holder
        self.retry_in = retry_in


class ClaimLost(Exception):
    """This run's claim was taken over (its lease ran out, or its message was redelivered):
    whatever it has not committed must not be."""


@dataclass(frozen=True)
class Claim:
    run_id: int
    stage: str
    subject: str
    attempt: int


def _lease(lease_s: float | None) -> timedelta:
    return timedelta(
        seconds=lease_s if lease_s is not None else current_app.config["JOB_LEASE_SECONDS"]
    )


def claim(
    stage: str,
    subject: str,
    *,
    sample_id=None,
    task_id: str | None = None,
    lease_s: float | None = None,
    now: datetime | None = None,
) -> Claim:
    """Take the claim on (stage, subject) or raise ClaimTaken. `now` is for tests that play
    a worker from the past; otherwise the database's clock."""
    with db.engine.begin() as conn:
        now = now or db_now(conn)
        running = sa.and_(
            job_runs.c.stage == stage,
            job_runs.c.subject == subject,
            job_runs.c.status == JobStatus.RUNNING,
        )
        holder = conn.execute(
            sa.select(
                job_runs.c.id,
                job_runs.c.worker,
                (job_runs.c.lease_expires_at < now).label("expired"),
                (job_runs.c.task_id == task_id).label("mine"),
            ).where(running)
        ).first()
        redelivered = bool(holder and task_id and holder.mine and holder_gone(holder.worker))
        took_over = 0
        if holder and (holder.expired or redelivered):
            took_over = conn.execute(
                job_runs.update()
                .where(job_runs.c.id == holder.id, job_runs.c.status == JobStatus.RUNNING)
                .values(
                    status=JobStatus.EXPIRED,
                    finished_at=now,
                    failure_class=FailureClass.TRANSIENT,
                    error=REDELIVERED if redelivered else EXPIRED_LEASE,
                    lease_expires_at=None,
                )
            ).rowcount
        previous = conn.execute(
            sa.select(sa.func.count()).where(
                job_runs.c.stage == stage, job_runs.c.subject == subject
            )
        ).scalar_one()
        try:
            with conn.begin_nested():
                run_id = conn.execute(
                    job_runs.insert()
                    .values(
                        stage=stage,
                        subject=subject,
                        sample_id=sample_id,
                        status=JobStatus.RUNNING,
                        attempt=previous + 1,
                        worker=worker_name(),
                        task_id=task_id,
                        started_at=now,
                        lease_expires_at=now + _lease(lease_s),
                    )
                    .returning(job_runs.c.id)
                ).scalar_one()
        except sa.exc.IntegrityError:
            holder = conn.execute(
                sa.select(job_runs.c.worker, job_runs.c.lease_expires_at).where(running)
            ).first()
            left = (
                (as_utc(holder.lease_expires_at) - as_utc(now)).total_seconds() if holder else 0.0
            )
            raise ClaimTaken(stage, subject, holder.worker if holder else None, left) from None
    if took_over:  # committed: the race's loser rolled its takeover back above
        metrics.JOB_LEASE_EXPIRIES.labels(stage).inc()
    return Claim(run_id, stage, subject, previous + 1)


def heartbeat(held: Claim, lease_s: float | None = None, engine=None) -> None:
    """Extend the lease; raise ClaimLost if the claim was taken over."""
    with (engine or db.engine).begin() as conn:
        now = db_now(conn)
        updated = conn.execute(
            job_runs.update()
            .where(job_runs.c.id == held.run_id, job_runs.c.status == JobStatus.RUNNING)
            .values(lease_expires_at=now + _lease(lease_s))
        ).rowcount
    if updated != 1:
        raise ClaimLost(f"{held.stage} on {held.subject}: the claim was taken over")


def finish(
    held: Claim,
    status: JobStatus,
    *,
    error: str | None = None,
    failure_class: FailureClass | None = None,
    result: dict | None = None,
    sample_id=None,
) -> None:
    with db.engine.begin() as conn:
        values = {
            "status": status,
            "finished_at": db_now(conn),
            "lease_expires_at": None,
            "error": error,
            "failure_class": failure_class,
            "result": result,
        }
        if sample_id is not None:
            values["sample_id"] = sample_id
        ended = conn.execute(
            job_runs.update()
            .where(job_runs.c.id == held.run_id, job_runs.c.status == JobStatus.RUNNING)
            .values(**values)
            .returning(job_runs.c.started_at, job_runs.c.finished_at)
        ).first()
    if ended is None:  # the claim was taken over: the taker records and counts its own run
        return
    outcome = status.value
    if failure_class is not None:
        outcome += f"_{failure_class.value}"
    took = max((as_utc(ended.finished_at) - as_utc(ended.started_at)).total_seconds(), 0.0)
    metrics.JOB_RUNS.labels(held.stage, outcome).inc()
    metrics.STAGE_SECONDS.labels(held.stage).observe(took)
    with logs.bound(**({"sample_id": sample_id} if sample_id else {})):
        ended_as = f"{held.stage} on {held.subject} {outcome} in {took:.1f} s"
        level = logging.WARNING if error else logging.INFO
        log.log(level, "%s (attempt %d)%s", ended_as, held.attempt, f": {error}" if error else "")


def describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}"[:4000]


# The claim the stage running in this context holds (see `fence`).
_held: ContextVar[Claim | None] = ContextVar("held_claim", default=None)


def held_claim() -> Claim | None:
    return _held.get()


@sa.event.listens_for(Session, "before_commit")
def fence(session: Session) -> None:
    """A stage commits only while its run is still the running one. The row lock makes a
    takeover wait for this commit, or this commit see the takeover: never both writing."""
    held = _held.get()
    if held is None:
        return
    status = session.execute(
        sa.select(job_runs.c.status).where(job_runs.c.id == held.run_id).with_for_update()
    ).scalar()
    if status != JobStatus.RUNNING:
        raise ClaimLost(
            f"{held.stage} on {held.subject}: the claim was taken over; nothing was committed"
        )


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
    keep_alive = KeepAlive(held, _lease(lease_s).total_seconds(), db.engine)
    token = _held.set(held)
    try:
        with keep_alive, logs.bound(sample_id=sample_id or logs.context().get("sample_id")):
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
    finally:
        _held.reset(token)
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


class KeepAlive:
    """Heart-beats the claim from a background thread while the stage works, so a long
    ffmpeg run or model call keeps its lease and a dead worker's lease runs out quickly.

    A failed beat (the database restarting, a busy SQLite file) is logged and tried again at
    the next beat; the thread stops only when the stage ends or the claim was taken over."""

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
                log.warning(
                    "lost the claim on %s %s (run %s): it was taken over; this run will "
                    "commit nothing more",
                    self.held.stage,
                    self.held.subject,
                    self.held.run_id,
                )
                return
            except Exception as error:  # noqa: BLE001 - the beat must outlive any error
                log.warning(
                    "heartbeat of %s %s (run %s) failed, trying again in %.0f s: %s",
                    self.held.stage,
                    self.held.subject,
                    self.held.run_id,
                    self.lease_s / 4,
                    describe(error),
                )

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join()
        return False

"""The outbox dispatcher (`flask pipeline dispatch`): sends queued work to the broker and
finds work that was lost on the way.

One loop, one process per installation (more are safe: rows are taken with SKIP LOCKED):
- send unsent outbox rows (ra_app/core/outbox.py), woken at once by the Postgres NOTIFY of the
  transaction that wrote them, else every `poll_s`;
- every `sweep_s`, the sweeper:
  * sends again a row whose task never reached a worker or whose worker and redelivery were
    both lost (no job run of its task id is running, none succeeded or failed for good, and
    nothing happened to it for OUTBOX_RESEND_AFTER_SECONDS plus its retry backoff): a
    broker that restarted without its data, a retry whose countdown died with its worker;
  * queues the next stage of a sample that waits for one with nothing queued since it
    got there (a sample reviewed before the outbox existed, or by a path that forgot).

A broker or database that is down is logged and tried again; the loop never exits on it.
"""

from __future__ import annotations

import logging
import select
import time
from datetime import datetime, timedelta
from threading import Event

import sqlalchemy as sa
from flask import current_app

from ra_app.core.clock import as_utc, db_now
from ra_app.core.flow import WAITING_ON_A_STAGE, follow_up, next_task
from ra_app.core.models import FailureClass, JobRun, JobStatus, OutboxMessage, Sample
from ra_app.core.outbox import CHANNEL, enqueue, send_pending
from ra_app.extensions import db

from .retries import backoff_seconds, max_attempts
from .webhooks import any_waiting

log = logging.getLogger(__name__)
HORIZON = timedelta(days=7)  # older rows are history, not work in flight


def settled(now: datetime):
    """A job run that says the row's task needs nothing more: it succeeded, failed for good,
    or is running under a live lease."""
    return sa.exists().where(
        JobRun.task_id == OutboxMessage.task_id,
        sa.or_(
            JobRun.status == JobStatus.SUCCEEDED,
            sa.and_(
                JobRun.status == JobStatus.FAILED,
                JobRun.failure_class == FailureClass.PERMANENT,
            ),
            sa.and_(JobRun.status == JobStatus.RUNNING, JobRun.lease_expires_at > now),
        ),
    )


def resend_stalled(now: datetime | None = None, limit: int = 500) -> int:
    """Mark stalled rows unsent again, so the next send picks them up; returns how many."""
    now = now or db_now()
    grace = timedelta(seconds=current_app.config["OUTBOX_RESEND_AFTER_SECONDS"])
    rows = db.session.scalars(
        sa.select(OutboxMessage)
        .where(
            OutboxMessage.sent_at < now - grace,
            OutboxMessage.created_at > now - HORIZON,
            ~settled(now),
        )
        .order_by(OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    resent = 0
    for row in rows:
        runs = db.session.execute(
            sa.select(JobRun.status, JobRun.started_at, JobRun.finished_at).where(
                JobRun.task_id == row.task_id
            )
        ).all()
        failed = sum(r.status is JobStatus.FAILED for r in runs)
        if failed >= max_attempts():
            continue  # it gave up: a failure on the dashboard, with its retry button
        moments = [as_utc(row.sent_at)] + [as_utc(r.finished_at or r.started_at) for r in runs]
        wait = grace + timedelta(seconds=backoff_seconds(failed - 1) if failed else 0)
        if max(moments) + wait > now:
            continue
        log.warning(
            "outbox: %s (%s) was sent %s and has not run to an end; sending it again",
            row.task_name,
            row.task_id,
            row.sent_at.isoformat(),
        )
        row.sent_at = None
        resent += 1
    db.session.commit()
    return resent


def requeue_waiting(now: datetime | None = None, limit: int = 200) -> int:
    """Queue the next stage of samples that wait for one with nothing queued since they
    reached their state (a stage that failed for good waits for an admin instead)."""
    now = now or db_now()
    grace = timedelta(seconds=current_app.config["OUTBOX_RESEND_AFTER_SECONDS"])
    queued_since = sa.exists().where(
        OutboxMessage.sample_id == Sample.id,
        OutboxMessage.created_at >= Sample.updated_at - timedelta(minutes=1),
    )
    samples = db.session.scalars(
        sa.select(Sample)
        .where(
            Sample.processing_state.in_(WAITING_ON_A_STAGE),
            Sample.updated_at < now - grace,
            ~queued_since,
        )
        .order_by(Sample.updated_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    queued = 0
    for sample in samples:
        stage = (next_task(sample) or "").removeprefix("pipeline.").removesuffix("_gpu")
        last = db.session.execute(
            sa.select(JobRun.status, JobRun.failure_class)
            .where(JobRun.stage == stage, JobRun.sample_id == sample.id)
            .order_by(JobRun.id.desc())
            .limit(1)
        ).first()
        if (
            last
            and last.status is JobStatus.FAILED
            and last.failure_class is FailureClass.PERMANENT
        ):
            continue
        log.warning(
            "sweeper: sample %s is %s with nothing queued; queuing %s",
            sample.id,
            sample.processing_state.value,
            stage,
        )
        follow_up(sample)
        queued += 1
    db.session.commit()
    return queued


def queue_webhooks() -> int:
    """One delivery task while API webhooks may have news and none is waiting to be sent."""

    unsent = sa.select(OutboxMessage.id).where(
        OutboxMessage.task_name == "pipeline.webhooks", OutboxMessage.sent_at.is_(None)
    )
    if not any_waiting() or db.session.scalar(unsent.limit(1)) is not None:
        return 0
    enqueue("pipeline.webhooks")
    db.session.commit()
    return 1


def sweep() -> tuple[int, int]:
    return resend_stalled(), requeue_waiting() + queue_webhooks()


def run(
    *, once: bool = False, poll_s: float = 2.0, sweep_s: float = 60.0, stop: Event | None = None
) -> None:
    """Send and sweep until stopped (Ctrl+C / SIGTERM, or `stop` set); `once`: one pass."""
    listener = Listener()
    last_sweep = 0.0
    stop = stop or Event()
    while not stop.is_set():
        try:
            while send_pending():
                pass
            due = once or time.monotonic() - last_sweep >= sweep_s
            # Embedded (SQLite, tasks in-process): nothing travels, nothing can get lost.
            if due and db.engine.dialect.name == "postgresql":
                resent, queued = sweep()
                last_sweep = time.monotonic()
                if resent or queued:
                    continue  # send them now
        except Exception as error:  # noqa: BLE001 - a broker or database outage: wait, retry
            log.warning("dispatcher: %s: %s; trying again", type(error).__name__, error)
            time.sleep(min(poll_s, 1.0))
        finally:
            forget_session()
        if once:
            break
        listener.wait(poll_s)
    listener.close()


def forget_session() -> None:
    """Drop the session and its connection, even a broken one (the database restarted)."""
    try:
        db.session.remove()
    except Exception:  # noqa: BLE001 - a dead connection is discarded either way
        log.info("dispatcher: discarded a broken database connection")


class Listener:
    """Wakes the loop on `NOTIFY outbox` (Postgres); a plain sleep on SQLite or when the
    connection is down (it reconnects on the next wait)."""

    def __init__(self):
        self.conn = None

    def _connect(self):
        if db.engine.dialect.name != "postgresql":
            return None
        conn = db.engine.raw_connection()
        conn.driver_connection.autocommit = True
        with conn.driver_connection.cursor() as cursor:
            cursor.execute(f"LISTEN {CHANNEL}")
        return conn

    def wait(self, timeout: float) -> None:
        try:
            if self.conn is None:
                self.conn = self._connect()
            if self.conn is None:
                time.sleep(timeout)
                return
            raw = self.conn.driver_connection
            if select.select([raw], [], [], timeout) != ([], [], []):
                raw.poll()
                raw.notifies.clear()
        except Exception as error:  # noqa: BLE001 - the database restarted: listen again later
            log.info("dispatcher: listening stopped (%s); reconnecting", error)
            self.close()
            time.sleep(timeout)

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.invalidate()
            except Exception:  # noqa: BLE001, S110 - it is gone either way
                pass
            self.conn = None

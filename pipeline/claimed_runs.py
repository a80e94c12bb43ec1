"""Running a Celery task's body under its stage's claim: a task waiting on another's claim
retries until it ends (or its worker dies), a run whose claim was taken over stops quietly,
transient failures retry with backoff counted by what ran."""

from __future__ import annotations

import sqlalchemy as sa
from celery.exceptions import Ignore
from celery.utils.log import get_task_logger

from ra_app.core.models import JobRun, JobStatus
from ra_app.extensions import db

from .errors import is_permanent
from .jobs import ClaimLost, ClaimTaken, stage_run
from .retries import backoff_seconds, max_attempts

log = get_task_logger(__name__)

CLAIM_WAITS = 10_000  # retries of a task waiting on another's claim: until it ends or dies


def failed_attempts(task) -> int:
    """Runs of this task that failed: retries are counted by what ran, not by deliveries
    (a task waiting on another's claim ran nothing). With the database unreachable (the
    likely cause of the failure), Celery's own count of retries."""
    try:
        db.session.rollback()
        return db.session.scalar(
            sa.select(sa.func.count()).where(
                JobRun.task_id == task.request.id, JobRun.status == JobStatus.FAILED
            )
        )
    except sa.exc.SQLAlchemyError:
        db.session.rollback()
        return task.request.retries


def run_claimed(task, stage: str, subject: str, body, *, sample_id=None, lease_s=None):
    """Run `body(run)` under the (stage, subject) claim; retry transient failures.

    - Another task holds a live claim: retry once its lease can have run out (it takes the
      claim over if that worker died), never "done" for work that did not run.
    - This run's claim was taken over (a redelivery of this same task is running it): stop
      without a result of its own; the run that took over records the outcome.
    """
    try:
        with stage_run(
            stage, subject, sample_id=sample_id, task_id=task.request.id, lease_s=lease_s
        ) as run:
            # Kept if the attempt fails, so an admin can send the same call again.
            run.result = {
                "call": {
                    "task": task.name,
                    "args": list(task.request.args or []),
                    "kwargs": dict(task.request.kwargs or {}),
                }
            }
            run.result = body(run)
            return run.result
    except ClaimTaken as taken:
        if task.request.is_eager:
            raise
        log.info("%s; trying again in %.0f s", taken, taken.retry_in)
        raise task.retry(
            exc=taken, countdown=min(max(taken.retry_in, 1.0), 600.0), max_retries=CLAIM_WAITS
        ) from None
    except ClaimLost as lost:
        log.warning("%s", lost)
        raise Ignore() from lost
    except Exception as error:
        failures = failed_attempts(task)
        if is_permanent(error) or task.request.is_eager or failures >= max_attempts():
            raise
        raise task.retry(
            exc=error, countdown=backoff_seconds(failures), max_retries=CLAIM_WAITS
        ) from error

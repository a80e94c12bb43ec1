"""Celery tasks: thin wrappers that claim, call a stage, and record the job run.

Tasks receive ids, never objects, and are named `pipeline.<stage>` so that
`pipeline.queues.task_routes` sends each to its stage's queue.
"""

from __future__ import annotations

import time

from celery import shared_task
from celery.utils.log import get_task_logger

from .errors import is_permanent
from .jobs import ClaimTaken, stage_run, worker_name

log = get_task_logger(__name__)

MAX_RETRIES = 5


def backoff_seconds(retries: int) -> int:
    """30 s, 60 s, 120 s, … capped at 30 minutes."""
    return min(30 * 2**retries, 1800)


def run_claimed(task, stage: str, subject: str, body, *, sample_id=None, lease_s=None):
    """Run `body(run)` under the (stage, subject) claim, retrying transient failures."""
    try:
        with stage_run(
            stage, subject, sample_id=sample_id, task_id=task.request.id, lease_s=lease_s
        ) as run:
            run.result = body(run)
            return run.result
    except ClaimTaken as taken:
        # Another worker is on it; a redelivered duplicate simply steps aside.
        log.info("%s", taken)
        return {"skipped": str(taken)}
    except Exception as error:
        if is_permanent(error) or task.request.is_eager or task.request.retries >= MAX_RETRIES:
            raise
        raise task.retry(exc=error, countdown=backoff_seconds(task.request.retries)) from error


@shared_task(bind=True, name="pipeline.selftest", soft_time_limit=120, time_limit=150)
def selftest(self, subject: str = "selftest", hold_s: float = 0.0):
    """Prove a worker can reach the database and take claims (`flask pipeline selftest`).

    `hold_s` keeps the claim for a while, which shows that a second worker steps aside.
    """

    def body(run):
        deadline = time.monotonic() + min(hold_s, 60.0)
        while time.monotonic() < deadline:
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        return {"worker": worker_name(), "attempt": run.attempt}

    return run_claimed(self, "selftest", subject, body)

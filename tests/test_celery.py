"""A real Celery worker on the real Redis runs pipeline tasks inside the app context."""

from datetime import timedelta

import sqlalchemy as sa

from pipeline.jobs import claim
from pipeline.tasks import selftest
from ra_app.core.models import JobRun, JobStatus, utcnow
from ra_app.extensions import db

from .conftest import REDIS_URL
from .workers import thread_worker, worker_process


def job_runs(app, subject):
    with app.app_context():
        return db.session.scalars(
            sa.select(JobRun).where(JobRun.subject == subject).order_by(JobRun.id)
        ).all()


def test_task_is_routed_to_its_queue(celery_app):
    assert celery_app.amqp.router.route({}, "pipeline.selftest")["queue"].name == "io"
    assert celery_app.amqp.router.route({}, "pipeline.align")["queue"].name == "gpu"
    denoise = celery_app.amqp.router.route({}, "pipeline.denoise_gpu")["queue"].name
    assert denoise == "gpu_denoise"  # its own environment: never handed to an align worker
    assert celery_app.amqp.router.route({}, "pipeline.gemini")["queue"].name == "llm"


def test_worker_runs_a_task_that_writes_its_job_run(app, celery_app):
    with thread_worker(celery_app, "io", concurrency=1):
        result = selftest.delay(subject="ping")
        outcome = result.get(timeout=30)
    assert outcome["attempt"] == 1
    (run,) = job_runs(app, "ping")
    assert run.status is JobStatus.SUCCEEDED
    assert run.task_id == result.id
    assert run.worker and run.finished_at is not None


def test_two_workers_racing_for_one_claim_take_turns(app, celery_app, tmp_path):
    """Two tasks on one (stage, subject) on two worker processes: one runs, the other waits
    for the claim (a retry after the lease) instead of being reported done, then runs."""
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    fast = {"JOB_LEASE_SECONDS": "2"}
    with (
        worker_process(celery_app, url, REDIS_URL, tmp_path, log_path=tmp_path / "w1.log", **fast),
        worker_process(celery_app, url, REDIS_URL, tmp_path, log_path=tmp_path / "w2.log", **fast),
    ):
        results = [selftest.delay(subject="race", hold_s=3) for _ in range(2)]
        outcomes = [r.get(timeout=60) for r in results]
    assert sorted(o["attempt"] for o in outcomes) == [1, 2], outcomes  # both ran, in turn
    first, second = job_runs(app, "race")
    assert [first.status, second.status] == [JobStatus.SUCCEEDED, JobStatus.SUCCEEDED]
    assert second.started_at >= first.finished_at  # never both at once
    assert {first.task_id, second.task_id} == {r.id for r in results}


def test_an_expired_lease_is_taken_over_by_a_worker(app, celery_app):
    with app.app_context():
        claim("selftest", "orphan", lease_s=60, now=utcnow() - timedelta(minutes=10))
    with thread_worker(celery_app, "io", concurrency=1):
        outcome = selftest.delay(subject="orphan").get(timeout=30)
    assert outcome["attempt"] == 2
    assert [r.status for r in job_runs(app, "orphan")] == [JobStatus.EXPIRED, JobStatus.SUCCEEDED]

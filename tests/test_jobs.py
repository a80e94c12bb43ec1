"""Stage claims and job-run records, against the real Postgres."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from pipeline.errors import PermanentError, TransientError
from pipeline.jobs import ClaimLost, ClaimTaken, claim, heartbeat, stage_run
from ra_app.core.models import FailureClass, JobRun, JobStatus, utcnow
from ra_app.extensions import db


def runs(stage="segment"):
    return db.session.scalars(
        sa.select(JobRun).where(JobRun.stage == stage).order_by(JobRun.id)
    ).all()


def test_a_claim_is_exclusive_per_stage_and_subject(app):
    with app.app_context():
        first = claim("segment", "sample-1")
        with pytest.raises(ClaimTaken, match="already running"):
            claim("segment", "sample-1")
        claim("segment", "sample-2")  # another sample: free
        claim("denoise", "sample-1")  # another stage: free
        assert first.attempt == 1


def test_an_expired_lease_is_taken_over(app):
    with app.app_context():
        dead = claim("segment", "s", lease_s=60, now=utcnow() - timedelta(minutes=5))
        taker = claim("segment", "s")
        assert taker.attempt == 2
        old, new = runs()
        assert old.status is JobStatus.EXPIRED and "lease expired" in old.error
        assert new.status is JobStatus.RUNNING
        with pytest.raises(ClaimLost):
            heartbeat(dead)  # the first worker learns it lost the claim


def test_heartbeat_extends_the_lease(app):
    with app.app_context():
        held = claim("segment", "s", lease_s=1)
        before = runs()[0].lease_expires_at
        db.session.rollback()
        heartbeat(held, lease_s=600)
        assert runs()[0].lease_expires_at > before + timedelta(seconds=500)


def test_stage_run_records_success_with_its_result(app):
    with app.app_context():
        with stage_run("segment", "s") as run:
            run.result = {"segments": 3}
        (record,) = runs()
        assert record.status is JobStatus.SUCCEEDED
        assert record.result == {"segments": 3}
        assert record.finished_at >= record.started_at
        assert record.worker and record.lease_expires_at is None
        claim("segment", "s")  # released: the next run may claim


@pytest.mark.parametrize(
    "error,failure_class",
    [
        (PermanentError("clip is 0.4 s long"), FailureClass.PERMANENT),
        (TransientError("connection reset"), FailureClass.TRANSIENT),
        (RuntimeError("unexpected"), FailureClass.TRANSIENT),
    ],
)
def test_stage_run_records_failures_and_rolls_back(app, make_user, error, failure_class):
    with app.app_context():
        with pytest.raises(type(error)):
            with stage_run("segment", "s"):
                from ra_app.core.models import User

                db.session.add(User(email="half@made.org", password_hash="x"))
                db.session.flush()
                raise error
        (record,) = runs()
        assert record.status is JobStatus.FAILED
        assert record.failure_class is failure_class
        assert str(error) in record.error
        assert db.session.scalar(sa.select(sa.func.count()).select_from(JobRun)) == 1
        from ra_app.core.models import User

        assert db.session.scalar(sa.select(User).where(User.email == "half@made.org")) is None


def test_a_running_stage_keeps_its_lease_alive(app):
    import time

    with app.app_context():
        with stage_run("segment", "long", lease_s=0.4):
            time.sleep(1.2)  # three leases long: without heart-beats it would have expired
            with pytest.raises(ClaimTaken):
                claim("segment", "long")
        (record,) = runs()
        assert record.status is JobStatus.SUCCEEDED

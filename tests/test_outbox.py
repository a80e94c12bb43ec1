"""The outbox: work queued in the transaction that calls for it, sent by the dispatcher when
the broker can take it, sent again when the broker lost it, and never an error of the
request that queued it (with a broker down, or in the embedded mode)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from contextlib import contextmanager
from datetime import timedelta

import sqlalchemy as sa
from celery.contrib.testing.worker import start_worker

from config import celery_settings
from pipeline.dispatch import requeue_waiting, resend_stalled
from pipeline.jobs import claim, finish
from ra_app.core.flow import advance, follow_up
from ra_app.core.models import (
    FailureClass,
    JobRun,
    JobStatus,
    OutboxMessage,
    Sample,
    utcnow,
)
from ra_app.core.outbox import enqueue, send_pending, wait_idle
from ra_app.core.states import ProcessingState as S
from ra_app.extensions import db

from .conftest import AuthActions, make_app
from .review_helpers import assign, make_review_sample
from .review_helpers import claim as claim_task
from .test_review_flow import page_token, post_json
from .test_staged_review import rows_now
from .workers import wait_for


def state_of(app, sample_id):
    with app.app_context():
        return db.session.get(Sample, sample_id).processing_state


def test_a_rollback_queues_nothing_and_a_commit_queues_once(app):
    with app.app_context():
        enqueue("pipeline.selftest", kwargs={"subject": "x"})
        db.session.rollback()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 0
        message = enqueue("pipeline.selftest", kwargs={"subject": "x"})
        db.session.commit()
        assert message.sent_at is None and len(message.task_id) == 36
        rows = db.session.scalars(sa.select(OutboxMessage)).all()
        assert [(r.task_name, r.kwargs) for r in rows] == [("pipeline.selftest", {"subject": "x"})]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def redis_on(port: int):
    """A Redis of the test's own (the shared one must stay up for the other tests)."""
    server = subprocess.Popen(
        [shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: connects(port))
        yield server
    finally:
        server.terminate()
        server.wait(10)


def connects(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 1).close()
    except OSError:
        return False
    return True


def test_a_submit_with_the_broker_down_answers_at_once_and_its_stage_runs_when_it_is_back(
    app, reviewer, tmp_path
):
    port = free_port()
    broker = f"redis://127.0.0.1:{port}/0"
    own = make_app(
        app.config["SQLALCHEMY_DATABASE_URI"],
        app.config["DATA_ROOT"],
        CELERY=celery_settings(broker),
        ALIGN_ENABLED="off",
    )
    with own.app_context():
        sample = make_review_sample(tmp_path, duration_s=12.0)
        assign(sample, reviewer.id)
        task_id, sample_id = str(claim_task(reviewer.id).id), sample.id
    client = own.test_client()
    AuthActions(client).login(reviewer.email)
    token = page_token(client)
    rows = rows_now(own, sample_id)
    assert not connects(port)  # the broker is down

    started = time.monotonic()
    done = post_json(client, f"/tasks/{task_id}/submit", {"sentences": rows}, token)
    took = time.monotonic() - started
    assert done.status_code == 200, done.get_json()
    assert took < 1.0, f"the submit took {took:.2f} s"
    assert state_of(own, sample_id) is S.REVIEWED
    with own.app_context():
        assert send_pending() == 0  # the dispatcher cannot send: it keeps the row
        (message,) = db.session.scalars(sa.select(OutboxMessage)).all()
        assert message.sent_at is None and "Error" in message.last_error

    with redis_on(port):
        celery = own.extensions["celery"]
        with start_worker(
            celery, pool="threads", concurrency=1, queues=["cpu"], perform_ping_check=False
        ):
            with own.app_context():
                wait_for(send_pending, timeout=30)  # the broker is back: sent
            wait_for(lambda: state_of(own, sample_id) is S.SEGMENTED, timeout=60)
    with own.app_context():
        (run,) = db.session.scalars(sa.select(JobRun).where(JobRun.stage == "segment")).all()
        assert run.task_id == message.task_id and run.status is JobStatus.SUCCEEDED
        db.session.remove()
        db.engine.dispose()


def test_in_the_embedded_mode_a_failing_stage_is_a_failed_run_not_an_error_of_the_submit(
    embedded_app, tmp_path
):
    from ra_app.core.models import Role, User

    app = embedded_app
    with app.app_context():
        user = User(email="solo@example.org", role=Role.REVIEWER)
        user.set_password("correct horse battery")
        db.session.add(user)
        sample = make_review_sample(tmp_path, duration_s=12.0)
        assign(sample, user.id)
        task_id, sample_id = str(claim_task(user.id).id), sample.id
        master = app.config["DATA_ROOT"] / sample.master_path
        master.write_bytes(master.read_bytes()[:20000])  # the segment stage will refuse it
    client = app.test_client()
    AuthActions(client).login("solo@example.org")
    token = page_token(client)
    done = post_json(
        client, f"/tasks/{task_id}/submit", {"sentences": rows_now(app, sample_id)}, token
    )
    assert done.status_code == 200, done.get_data(as_text=True)
    assert wait_idle(60)
    with app.app_context():
        (run,) = db.session.scalars(sa.select(JobRun).where(JobRun.stage == "segment")).all()
        assert run.status is JobStatus.FAILED and run.failure_class is FailureClass.PERMANENT
        assert "ingest the recording again" in run.error
        assert db.session.get(Sample, sample_id).processing_state is S.REVIEWED


def sent_long_ago(message: OutboxMessage, hours: float = 2) -> None:
    message.sent_at = utcnow() - timedelta(hours=hours)


def test_the_sweeper_sends_again_only_what_nothing_came_of(app):
    with app.app_context():
        lost = enqueue("pipeline.selftest", kwargs={"subject": "lost"})
        done = enqueue("pipeline.selftest", kwargs={"subject": "done"})
        running = enqueue("pipeline.selftest", kwargs={"subject": "running"})
        broken = enqueue("pipeline.selftest", kwargs={"subject": "broken"})
        retrying = enqueue("pipeline.selftest", kwargs={"subject": "retrying"})
        recent = enqueue("pipeline.selftest", kwargs={"subject": "recent"})
        db.session.commit()
        for message in (lost, done, running, broken, retrying):
            sent_long_ago(message)
        recent.sent_at = utcnow()
        db.session.commit()
        finish(claim("selftest", "done", task_id=done.task_id), JobStatus.SUCCEEDED)
        claim("selftest", "running", task_id=running.task_id)  # a live lease
        finish(
            claim("selftest", "broken", task_id=broken.task_id),
            JobStatus.FAILED,
            failure_class=FailureClass.PERMANENT,
        )
        # A transient failure a minute ago: its retry is due after the backoff, not yet.
        finish(
            claim("selftest", "retrying", task_id=retrying.task_id),
            JobStatus.FAILED,
            failure_class=FailureClass.TRANSIENT,
        )
        app.config["OUTBOX_RESEND_AFTER_SECONDS"] = 600
        assert resend_stalled() == 1
        unsent = db.session.scalars(
            sa.select(OutboxMessage.kwargs).where(OutboxMessage.sent_at.is_(None))
        ).all()
        assert unsent == [{"subject": "lost"}]


def test_the_sweeper_queues_the_next_stage_of_a_sample_left_waiting(app, make_sample):
    waiting, failed, queued = (make_sample(S.REVIEWED) for _ in range(3))
    app.config["ALIGN_ENABLED"] = "off"
    with app.app_context():
        follow_up(db.session.get(Sample, queued))  # its stage was queued as it got there
        held = claim("segment", str(failed), sample_id=failed)
        finish(held, JobStatus.FAILED, failure_class=FailureClass.PERMANENT, error="no text")
        db.session.commit()
        with db.engine.begin() as conn:  # reviewed an hour ago (keep these stamps)
            conn.execute(sa.text("SET LOCAL app.restoring = 'on'"))
            conn.execute(sa.update(Sample).values(updated_at=utcnow() - timedelta(hours=1)))
            conn.execute(sa.update(OutboxMessage).values(created_at=utcnow() - timedelta(hours=1)))
        assert requeue_waiting() == 1
        queued_now = db.session.scalars(
            sa.select(OutboxMessage).where(OutboxMessage.sample_id == waiting)
        ).all()
        assert [m.task_name for m in queued_now] == ["pipeline.segment"]
        assert requeue_waiting() == 0  # queued now: not twice


def test_a_stage_queues_the_next_one_in_the_commit_that_moves_the_sample(app, make_sample):
    sample_id = make_sample(S.SEGMENTS_REVIEWED)
    with app.app_context():
        sample = db.session.get(Sample, sample_id)
        advance(sample, S.DENOISED)
        db.session.rollback()  # the stage failed before its commit: nothing queued
        assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 0
        sample = db.session.get(Sample, sample_id)
        advance(sample, S.DENOISED)
        db.session.commit()
        (message,) = db.session.scalars(sa.select(OutboxMessage)).all()
        assert (message.task_name, message.args) == ("pipeline.export", [str(sample_id)])
        assert message.sample_id == sample_id

"""Stage claims under redelivery, killed workers and lost claims: every attempt recorded,
nothing reported done that did not run, nothing written by a run that lost its claim, and
the next stage queued only by the one before it succeeding."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time

import numpy as np
import pytest
import sqlalchemy as sa

from pipeline import jobs
from pipeline.jobs import ClaimLost, ClaimTaken, KeepAlive, claim, stage_run
from pipeline.tasks import selftest
from ra_app.core.flow import follow_up
from ra_app.core.models import (
    Assignment,
    AssignmentStatus,
    JobRun,
    JobStatus,
    OutboxMessage,
    Sample,
    TaskType,
    User,
)
from ra_app.core.states import ProcessingState as S
from ra_app.extensions import db

from .conftest import REDIS_URL
from .test_denoise import as_pcm, voiced
from .test_segment import stored_sample
from .workers import wait_for, worker_process


def runs(app, **where):
    with app.app_context():
        query = sa.select(JobRun).order_by(JobRun.id)
        for name, value in where.items():
            query = query.where(getattr(JobRun, name) == value)
        return db.session.scalars(query).all()


def test_the_same_task_delivered_again_takes_its_own_claim_over(app):
    with app.app_context():
        first = claim("segment", "s", task_id="task-1", lease_s=600)
        again = claim("segment", "s", task_id="task-1", lease_s=600)  # redelivered at once
        assert again.attempt == 2
        with pytest.raises(ClaimTaken) as other:
            claim("segment", "s", task_id="task-2", lease_s=600)
        assert 590 < other.value.retry_in <= 600  # it retries after the live lease
    old, new = runs(app)
    assert (old.id, old.status) == (first.run_id, JobStatus.EXPIRED)
    assert "redelivered" in old.error
    assert new.status is JobStatus.RUNNING and new.task_id == "task-1"


def held_by(app, subject: str, worker: str) -> None:
    """The running claim on `subject` as if `worker` (host:pid) had taken it."""
    with app.app_context():
        claim("segment", subject, task_id="task-1", lease_s=600)
        db.session.execute(sa.update(JobRun).where(JobRun.subject == subject).values(worker=worker))
        db.session.commit()


def test_a_copy_of_a_task_whose_first_delivery_may_still_run_waits(app):
    """The sweeper sent a task again while its first delivery still runs in another process
    (or on another host): the copy waits for the lease instead of taking over, and takes
    over at once when that process is gone."""
    alive = subprocess.Popen(["sleep", "60"])
    try:
        for subject, worker in [
            ("here", f"{socket.gethostname()}:{alive.pid}"),
            ("elsewhere", "another-host:1"),
        ]:
            held_by(app, subject, worker)
            with app.app_context(), pytest.raises(ClaimTaken) as waits:
                claim("segment", subject, task_id="task-1", lease_s=600)
            assert 590 < waits.value.retry_in <= 600
    finally:
        alive.kill()
        alive.wait()
    with app.app_context():
        taken = claim("segment", "here", task_id="task-1", lease_s=600)  # its process died
    old, new = runs(app, subject="here")
    assert "redelivered" in old.error and new.id == taken.run_id


def test_a_run_that_lost_its_claim_commits_nothing(app):
    with app.app_context():
        with pytest.raises(ClaimLost), stage_run("segment", "s", task_id="task-1"):
            claim("segment", "s", task_id="task-1")  # its redelivery took over meanwhile
            db.session.add(User(email="half@example.org", password_hash="x"))
            db.session.commit()
        assert db.session.scalar(sa.select(User).where(User.email == "half@example.org")) is None
    assert [r.status for r in runs(app)] == [JobStatus.EXPIRED, JobStatus.RUNNING]


def test_leases_are_on_the_database_clock(app):
    with app.app_context():
        claim("segment", "s", lease_s=120)
        left = db.session.scalar(
            sa.select(sa.func.extract("epoch", JobRun.lease_expires_at - sa.func.now()))
        )
    assert 110 < float(left) <= 121


def test_the_heartbeat_outlives_errors_and_says_so(app, monkeypatch, caplog):
    calls = []

    def flaky(held, lease_s=None, engine=None):
        calls.append(held)
        if len(calls) <= 2:
            raise sa.exc.OperationalError("UPDATE job_runs", {}, Exception("server restarting"))

    monkeypatch.setattr(jobs, "heartbeat", flaky)
    with app.app_context():
        held = claim("segment", "s")
        with (
            caplog.at_level(logging.WARNING, logger="pipeline.jobs"),
            KeepAlive(held, 0.2, db.engine) as beating,
        ):
            wait_for(lambda: len(calls) >= 4, timeout=5)
            assert beating.thread.is_alive()
    assert sum("heartbeat of segment s" in r.message for r in caplog.records) == 2


def test_a_pool_process_killed_mid_stage_is_finished_by_its_redelivery(app, celery_app, tmp_path):
    """kill -9 of the pool child (not the worker): Celery redelivers the same task id at
    once; it takes its claim over and runs, long before the 60 s lease would run out."""
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    with worker_process(
        celery_app, url, REDIS_URL, tmp_path, JOB_LEASE_SECONDS="60", log_path=tmp_path / "w.log"
    ):
        result = selftest.delay(subject="killed", hold_s=20)
        (running,) = wait_for(lambda: runs(app, subject="killed", status=JobStatus.RUNNING))
        os.kill(int(running.worker.rsplit(":", 1)[1]), signal.SIGKILL)
        killed_at = time.monotonic()
        wait_for(lambda: len(runs(app, subject="killed")) == 2, timeout=20)
        assert time.monotonic() - killed_at < 15  # not the lease: the redelivery took over
        assert result.get(timeout=40)["attempt"] == 2  # and it ran to its end
    dead, redelivered = runs(app, subject="killed")
    assert dead.status is JobStatus.EXPIRED and "redelivered" in dead.error
    assert redelivered.status is JobStatus.SUCCEEDED
    assert dead.task_id == redelivered.task_id == result.id


def long_finished_sample(app) -> Sample:
    """Forty minutes of audio (a few seconds of denoising) whose text and segments are
    reviewed: waiting for denoise."""
    clean = voiced(10, seed=5)[0]
    pcm = np.tile(as_pcm(clean + np.random.default_rng(6).normal(0, 0.01, len(clean))), 240)
    rows = [{"start": 1.0, "end": 9.0, "text": "một hai ba", "translation": "one two three"}]
    sample = stored_sample(app, pcm, rows, state=S.SEGMENTS_REVIEWED)
    for task_type in (TaskType.TRANSCRIPT_CORRECTION, TaskType.AUDIO_SEGMENTATION):
        db.session.add(
            Assignment(sample_id=sample.id, task_type=task_type, status=AssignmentStatus.SUBMITTED)
        )
    db.session.commit()
    return sample


def test_a_killed_denoise_is_finished_before_export_runs(app, celery_app, dispatcher, tmp_path):
    """The case that exported a sample without its denoised audio: the denoise task's pool
    process dies mid-run; its redelivery finishes it, and only then is export queued."""
    data_root = app.config["DATA_ROOT"]
    with app.app_context():
        sample_id = long_finished_sample(app).id
        follow_up(db.session.get(Sample, sample_id))  # what the segment review's submit queues
        db.session.commit()
    spool = data_root / f"tmp/denoise-{sample_id}/denoised.f32.part"
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    with worker_process(
        celery_app,
        url,
        REDIS_URL,
        data_root,
        queues=("cpu", "io"),
        JOB_LEASE_SECONDS="60",
        log_path=tmp_path / "w.log",
    ):
        wait_for(lambda: spool.exists() and spool.stat().st_size > 1_000_000)  # mid-run
        (running,) = runs(app, stage="denoise", status=JobStatus.RUNNING)
        os.kill(int(running.worker.rsplit(":", 1)[1]), signal.SIGKILL)

        def exported():  # the stage committed, and its run recorded how it ended
            with app.app_context():
                state = db.session.get(Sample, sample_id).processing_state
            ended = runs(app, stage="export", status=JobStatus.SUCCEEDED)
            return state is S.EXPORTED and ended

        wait_for(exported, timeout=90)
    dead, denoised = runs(app, stage="denoise")
    assert dead.status is JobStatus.EXPIRED and denoised.status is JobStatus.SUCCEEDED
    (export_run,) = runs(app, stage="export")
    assert export_run.status is JobStatus.SUCCEEDED
    assert export_run.started_at >= denoised.finished_at  # queued by denoise's success
    staged = data_root / f"reviewed/audio_segmentation/{sample_id}"
    assert (staged / "denoised.wav").is_file()
    with app.app_context():
        names = db.session.scalars(
            sa.select(OutboxMessage.task_name).order_by(OutboxMessage.id)
        ).all()
    assert names == ["pipeline.denoise", "pipeline.export"]

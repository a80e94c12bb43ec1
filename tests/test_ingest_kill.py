"""A worker killed in the middle of an ingest leaves nothing half-made, and running the
task again finishes it once."""

import time

import sqlalchemy as sa

from pipeline.stages.local_files import recording_for_file
from pipeline.tasks import ingest_recording
from ra_app.core.models import JobRun, JobStatus, Sample
from ra_app.extensions import db

from . import audio
from .conftest import REDIS_URL
from .workers import kill_hard, wait_for, worker_process


def test_killed_ingest_is_finished_by_the_next_run(app, celery_app, tmp_path):
    data_root = app.config["DATA_ROOT"]
    long_file = audio.tone(tmp_path / "lecture.mp3", seconds=20 * 60, freq=233, channels=1)
    recording = recording_for_file(long_file).to_json()
    url = app.config["SQLALCHEMY_DATABASE_URI"]

    def runs():
        with app.app_context():
            return db.session.scalars(sa.select(JobRun).order_by(JobRun.id)).all()

    with worker_process(
        celery_app,
        url,
        REDIS_URL,
        data_root,
        JOB_LEASE_SECONDS="2",
        log_path=tmp_path / "worker.log",
    ) as worker:
        ingest_recording.delay(recording)
        wait_for(lambda: [r for r in runs() if r.status is JobStatus.RUNNING])
        scratch = data_root / "tmp"
        wait_for(lambda: scratch.exists() and any(scratch.rglob("*.part")))  # mid-conversion
        kill_hard(worker)

    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Sample)) == 0
    assert not (data_root / "samples").exists() or not any((data_root / "samples").iterdir())

    time.sleep(2.5)  # the dead worker's lease runs out
    with worker_process(
        celery_app,
        url,
        REDIS_URL,
        data_root,
        JOB_LEASE_SECONDS="2",
        log_path=tmp_path / "worker2.log",
    ):
        outcome = ingest_recording.delay(recording).get(timeout=180)
    assert outcome["status"] == "created", outcome

    assert [r.status for r in runs()] == [JobStatus.EXPIRED, JobStatus.SUCCEEDED]
    with app.app_context():
        (sample,) = db.session.scalars(sa.select(Sample)).all()
        assert abs(sample.duration_s - 1200) < 0.5
    assert [p.name for p in (data_root / "samples").iterdir()] == [str(sample.id)]
    assert not any((data_root / "tmp").rglob("*"))  # the killed run's scratch is gone too

"""Claiming review tasks against Postgres: leases, the pool, and 50 concurrent claimers."""

from __future__ import annotations

import threading
from datetime import timedelta

import sqlalchemy as sa

from ra_app.core.models import Assignment, AssignmentStatus, Role, TaskType, User, utcnow
from ra_app.core.tasks import claim_next, windows_of
from ra_app.extensions import db


def make_tasks(app, sample_id, count, reviewer_id=None, task_type=TaskType.TRANSCRIPT_CORRECTION):
    with app.app_context():
        db.session.execute(
            sa.insert(Assignment),
            [
                {
                    "sample_id": sample_id,
                    "task_type": task_type,
                    "window_start_s": float(i),
                    "reviewer_id": reviewer_id,
                    "status": AssignmentStatus.PENDING,
                }
                for i in range(count)
            ],
        )
        db.session.commit()


def test_windows_cover_the_recording():
    assert windows_of(200, 300) == [(0.0, None)]
    assert windows_of(340, 300) == [(0.0, None)]  # barely longer: one task
    assert windows_of(3600, 300)[:2] == [(0.0, 300.0), (300.0, 600.0)]
    assert windows_of(3600, 300)[-1] == (3300.0, None)
    assert len(windows_of(3600, 300)) == 12
    assert windows_of(3600, 0) == [(0.0, None)]


def test_fifty_reviewers_claiming_at_once_never_share_a_task(app, make_sample):
    sample_id = make_sample()
    make_tasks(app, sample_id, 1000)
    with app.app_context():
        users = []
        for i in range(50):
            user = User(email=f"r{i}@example.org", role=Role.REVIEWER, password_hash="x")
            db.session.add(user)
            users.append(user)
        db.session.commit()
        user_ids = [u.id for u in users]

    claimed: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(50)

    def reviewer(user_id):
        try:
            with app.app_context():
                user = db.session.get(User, user_id)
                db.session.commit()  # give the connection back while waiting for the others
                barrier.wait(timeout=60)
                for _ in range(20):
                    task = claim_next(user)
                    assert task is not None
                    with lock:
                        claimed.append(str(task.id))
                    task.status = AssignmentStatus.SUBMITTED  # done: the next claim is new
                    db.session.commit()
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=reviewer, args=(uid,)) for uid in user_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(claimed) == 1000 and len(set(claimed)) == 1000  # none twice, none lost
    with app.app_context():
        left = db.session.scalar(
            sa.select(sa.func.count()).where(Assignment.status == AssignmentStatus.PENDING)
        )
        assert left == 0


def test_own_tasks_before_the_pool_and_never_someone_elses(app, make_sample, make_user):
    alice = make_user("alice@example.org")
    bob = make_user("bob@example.org")
    sample_id = make_sample()
    make_tasks(app, sample_id, 1, reviewer_id=None)  # pool
    make_tasks(app, sample_id, 1, reviewer_id=bob.id)
    make_tasks(app, sample_id, 1, reviewer_id=alice.id)
    with app.app_context():
        alice = db.session.get(User, alice.id)
        first = claim_next(alice)
        assert first.reviewer_id == alice.id and not first.from_pool
        first.status = AssignmentStatus.SUBMITTED
        db.session.commit()
        second = claim_next(alice)
        assert second.from_pool and second.reviewer_id == alice.id
        second.status = AssignmentStatus.SUBMITTED
        db.session.commit()
        assert claim_next(alice) is None  # bob's task is not hers


def test_start_next_resumes_the_task_already_held(app, make_sample, reviewer):
    make_tasks(app, make_sample(), 3, reviewer_id=reviewer.id)
    with app.app_context():
        user = db.session.get(User, reviewer.id)
        assert claim_next(user).id == claim_next(user).id


def test_an_expired_lease_returns_the_task_to_the_pool(app, make_sample, make_user):
    alice = make_user("alice@example.org")
    bob = make_user("bob@example.org")
    make_tasks(app, make_sample(), 1)
    with app.app_context():
        task = claim_next(db.session.get(User, alice.id))
        task.lease_expires_at = utcnow() - timedelta(seconds=1)  # alice went home
        task.draft = {"sentences": [{"start": 0, "end": 1, "text": "đang sửa dở"}]}
        db.session.commit()
        taken = claim_next(db.session.get(User, bob.id))
        assert taken.id == task.id and taken.reviewer_id == bob.id
        assert taken.draft["sentences"][0]["text"] == "đang sửa dở"  # nothing typed is lost
        assert taken.lease_expires_at > utcnow()

"""Batches: filters and counts against SQL, each assignment mode, the cap, pause."""

from __future__ import annotations

from collections import Counter

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import MultiDict

from ra_app.admin import batches
from ra_app.core.models import Assignment, AssignmentStatus, Batch, Role, TaskType, User
from ra_app.core.states import ProcessingState
from ra_app.core.tasks import claim_next
from ra_app.extensions import db

from .conftest import csrf_token_from


@pytest.fixture
def corpus(app, make_sample):
    """30 samples: mixed states, lengths and flags."""
    ids = []
    for i in range(30):
        state = ProcessingState.TRANSCRIBED if i % 3 else ProcessingState.INGESTED
        ids.append(
            make_sample(
                state,
                duration_s=60.0 * (1 + i % 5),
                needs_translation_review=i % 4 == 0,
                translation_flag_count=i % 7,
            )
        )
    return ids


def sql_count(app, where: str) -> int:
    with app.app_context():
        return db.session.execute(sa.text(f"SELECT count(*) FROM samples WHERE {where}")).scalar()


@pytest.mark.parametrize(
    "args,where",
    [
        ({}, "true"),
        ({"state": ["transcribed"]}, "processing_state = 'transcribed'"),
        ({"min_minutes": "2", "max_minutes": "4"}, "duration_s BETWEEN 120 AND 240"),
        ({"needs_translation_review": "y"}, "needs_translation_review"),
        (
            {"state": ["ingested"], "needs_translation_review": "y", "min_minutes": "3"},
            "processing_state = 'ingested' AND needs_translation_review AND duration_s >= 180",
        ),
    ],
)
def test_filter_counts_match_sql(app, corpus, args, where):
    with app.app_context():
        count, hours = batches.count_matching(batches.Filters.from_args(MultiDict(args)))
    assert count == sql_count(app, where)
    with app.app_context():
        seconds = db.session.execute(
            sa.text(f"SELECT coalesce(sum(duration_s), 0) FROM samples WHERE {where}")
        ).scalar()
    assert hours == pytest.approx(seconds / 3600)


def reviewers(make_user, n):
    return [make_user(f"r{i}@example.org") for i in range(n)]


def users(app, people):
    return [db.session.get(User, p.id) for p in people]


def test_even_split(app, corpus, make_user):
    people = reviewers(make_user, 3)
    with app.app_context():
        batch = batches.create_batch("even", batches.Filters(), users(app, people), mode="even")
        held = Counter(
            t.reviewer_id
            for t in db.session.scalars(
                sa.select(Assignment).where(Assignment.batch_id == batch.id)
            )
        )
    assert sorted(held.values()) == [10, 10, 10]


def test_weighted_split(app, corpus, make_user):
    a, b = reviewers(make_user, 2)
    with app.app_context():
        batch = batches.create_batch(
            "weighted",
            batches.Filters(),
            users(app, [a, b]),
            mode="weighted",
            weights={a.id: 2, b.id: 1},
        )
        held = Counter(
            t.reviewer_id
            for t in db.session.scalars(
                sa.select(Assignment).where(Assignment.batch_id == batch.id)
            )
        )
    assert held == {a.id: 20, b.id: 10}


def test_pool_is_pulled_by_members_only(app, corpus, make_user):
    a, b = reviewers(make_user, 2)
    outsider = make_user("outsider@example.org")
    with app.app_context():
        batch = batches.create_batch("pool", batches.Filters(), users(app, [a, b]), mode="pool")
        assert all(
            t.reviewer_id is None
            for t in db.session.scalars(
                sa.select(Assignment).where(Assignment.batch_id == batch.id)
            )
        )
        assert claim_next(db.session.get(User, outsider.id)) is None
        task = claim_next(db.session.get(User, a.id))
        assert task.batch_id == batch.id and task.reviewer_id == a.id


def test_the_cap_limits_what_a_reviewer_holds(app, corpus, make_user):
    a, b = reviewers(make_user, 2)
    with app.app_context():
        batch = batches.create_batch(
            "capped", batches.Filters(), users(app, [a, b]), mode="even", cap=4
        )
        held = Counter(
            t.reviewer_id
            for t in db.session.scalars(
                sa.select(Assignment).where(Assignment.batch_id == batch.id)
            )
        )
        assert held == {a.id: 4, b.id: 4, None: 22}  # the rest waits in the batch's pool
        alice = db.session.get(User, a.id)
        for _ in range(4):  # alice works through her four …
            task = claim_next(alice)
            assert task.reviewer_id == a.id and not task.from_pool
            task.status = AssignmentStatus.SUBMITTED
            db.session.commit()
        pulled = claim_next(alice)  # … then pulls from the pool, one at a time
        assert pulled.from_pool
        open_now = db.session.scalar(
            sa.select(sa.func.count()).where(
                Assignment.reviewer_id == a.id,
                Assignment.status.in_((AssignmentStatus.PENDING, AssignmentStatus.IN_PROGRESS)),
            )
        )
        assert open_now <= 4


def test_a_paused_batch_hands_out_nothing(app, corpus, make_user):
    (a,) = reviewers(make_user, 1)
    with app.app_context():
        batch = batches.create_batch("paused", batches.Filters(), users(app, [a]), mode="even")
        batches.set_paused(batch, True)
        assert claim_next(db.session.get(User, a.id)) is None
        batches.set_paused(batch, False)
        assert claim_next(db.session.get(User, a.id)) is not None


def test_reassign_moves_pending_tasks(app, corpus, make_user):
    a, b = reviewers(make_user, 2)
    with app.app_context():
        batch = batches.create_batch("move", batches.Filters(), users(app, [a]), mode="even")
        moved = batches.reassign(batch, db.session.get(User, a.id), db.session.get(User, b.id))
        assert moved == 30
        assert str(b.id) in db.session.get(Batch, batch.id).weights


def test_batch_pages_end_to_end(app, client, auth, admin, corpus, make_user):
    (a,) = reviewers(make_user, 1)
    auth.login(admin.email)
    page = client.get("/admin/batches/new?state=transcribed").get_data(as_text=True)
    transcribed = sql_count(app, "processing_state = 'transcribed'")
    assert f'id="match-count">{transcribed}<' in page
    live = client.get("/admin/batches/count?needs_translation_review=y").get_json()
    assert live["count"] == sql_count(app, "needs_translation_review")
    token = csrf_token_from(page)
    created = client.post(
        "/admin/batches/new",
        data={
            "csrf_token": token,
            "name": "Tuần 1",
            "task_type": "transcript_correction",
            "state": "transcribed",
            "mode": "even",
            "reviewer": str(a.id),
            "weight_" + str(a.id): "1",
            "cap": "",
            "review_share": "0",
        },
        follow_redirects=True,
    )
    body = created.get_data(as_text=True)
    assert "Created batch “Tuần 1”" in body and "Progress" in body
    # A refused form comes back with everything as it was typed.
    refused = client.post(
        "/admin/batches/new",
        data={
            "csrf_token": token,
            "name": "Tuần 2",
            "state": "transcribed",
            "mode": "pool",
            "cap": "3",
            "review_share": "20",
        },
    )
    assert refused.status_code == 422
    again = refused.get_data(as_text=True)
    assert "Not created:" in again and 'value="Tuần 2"' in again
    assert '<option value="pool" selected>' in again
    assert 'name="cap" min="1" value="3"' in again and 'value="20"' in again
    with app.app_context():
        count = db.session.scalar(sa.select(sa.func.count()).select_from(Assignment))
        assert count == transcribed  # one task each (one window: short recordings)
        assert sql_count(app, "processing_state = 'in_review'") == transcribed
    assert "Tuần 1" in client.get("/admin/batches").get_data(as_text=True)
    assert Role and TaskType  # mapping imports


def test_batch_progress_adds_up_the_work(app, make_user, tmp_path):
    """Done / in progress / remaining, audio done, speed and tasks per day, overall and per
    reviewer, as the batch page shows them."""
    from datetime import timedelta

    from ra_app.admin.progress import batch_report
    from ra_app.review.work import submit

    from .review_helpers import make_review_sample
    from .test_staged_review import current_rows

    a, b = make_user("a@example.org"), make_user("b@example.org")
    with app.app_context():
        for freq in (300, 400, 500):
            make_review_sample(tmp_path, duration_s=30.0, freq=freq, title=f"s{freq}")
        batch = batches.create_batch(
            "speed",
            batches.Filters(task_type=TaskType.TRANSCRIPT_CORRECTION),
            [db.session.get(User, a.id), db.session.get(User, b.id)],
            mode="pool",
        )
        done = claim_next(db.session.get(User, a.id))
        done.started_at = done.started_at - timedelta(minutes=1)  # a minute for 30 s of audio
        submit(done, db.session.get(User, a.id), {"sentences": current_rows(done.sample_id)})
        claim_next(db.session.get(User, b.id))  # in progress
        report = batch_report(db.session.get(Batch, batch.id))
        overall = report["overall"]
        assert (overall.done, overall.in_progress, overall.remaining) == (1, 1, 1)
        assert overall.audio_hours_done == pytest.approx(30 / 3600)
        assert overall.minutes_per_audio_minute == pytest.approx(2.0, rel=0.05)
        # 60 s of audio left, at 2 minutes a minute, shared by the two reviewers at work.
        assert overall.eta == pytest.approx(timedelta(minutes=1.0), rel=0.05)
        per = {user.email: p for user, p in report["reviewers"] if user}
        assert (per["a@example.org"].done, per["b@example.org"].in_progress) == (1, 1)
        assert [n for _, n in report["per_day"]] == [1]

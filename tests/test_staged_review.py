"""Staged review: which tasks go to a second reviewer, listen-before-approve, the decisions,
rejection back to the author with a comment, and the agreement kept with each decision."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from ra_app.admin import batches
from ra_app.core.models import (
    Assignment,
    AssignmentStatus,
    Decision,
    ReviewDecision,
    Role,
    Sample,
    TaskType,
    User,
    utcnow,
)
from ra_app.core.revisions import latest_transcript, latest_translation
from ra_app.core.states import ProcessingState
from ra_app.extensions import db
from ra_app.review import staging

from .review_helpers import claim, make_review_sample, segmented_sample
from .test_review_flow import page_token, post_json


def batch_of(reviewers, task_type=TaskType.TRANSCRIPT_CORRECTION, share=0.0, mode="pool"):
    users = [db.session.get(User, u.id) for u in reviewers]
    return batches.create_batch(
        "staged",
        batches.Filters(task_type=task_type),
        users,
        mode=mode,
        review_share=share,
    )


def current_rows(sample_id):
    rows = [dict(r) for r in latest_transcript(sample_id).sentences]
    translation = latest_translation(sample_id).sentences
    return [{**r, "translation": translation[i]["translation"]} for i, r in enumerate(rows)]


def rows_now(app, sample_id):
    with app.app_context():
        return current_rows(sample_id)


@pytest.fixture
def trio(make_user, app):
    """An author in training, a second reviewer, an admin."""
    author = make_user("author@example.com")
    second = make_user("second@example.com")
    boss = make_user("boss@example.com", Role.ADMIN)
    with app.app_context():
        db.session.get(User, author.id).in_training = True
        db.session.commit()
    return author, second, boss


def author_submits(app, client, auth, author, tmp_path, share=0.0, edit="Câu số không, đã sửa"):
    with app.app_context():
        sample = make_review_sample(tmp_path, duration_s=12.0)
        batch_of([author, second_of(app)], share=share)
        task = claim(author.id)
        task_id, sample_id = str(task.id), str(sample.id)
        rows = current_rows(sample_id)
    rows[0]["text"] = edit
    auth.login(author.email)
    token = page_token(client)
    done = post_json(client, f"/tasks/{task_id}/submit", {"sentences": rows}, token)
    assert done.status_code == 200, done.get_json()
    auth.logout()
    return task_id, sample_id


def second_of(app):
    return db.session.scalar(sa.select(User).where(User.email == "second@example.com"))


def whole(task_id, app):
    """Listening reports covering the task's audio, as the player sends them once it has
    played it all (the task was claimed that long ago: the server allows no more)."""
    with app.app_context():
        task = db.session.get(Assignment, task_id)
        end = task.window_end_s or db.session.get(Sample, task.sample_id).duration_s
        start = task.window_start_s
        task.claimed_at = utcnow() - timedelta(seconds=end - start + 1)
        db.session.commit()
    step = 0.25
    points = [start + i * step for i in range(int((end - start) / step) + 1)]
    return [[a, b] for a, b in zip(points, points[1:], strict=False)]


def test_a_trainees_task_goes_to_a_second_reviewer_who_must_listen_first(
    app, client, auth, trio, tmp_path
):
    author, second, boss = trio
    task_id, sample_id = author_submits(app, client, auth, author, tmp_path)
    with app.app_context():
        review = db.session.scalar(sa.select(Assignment).where(Assignment.review_of_id == task_id))
        assert review is not None and review.status is AssignmentStatus.PENDING
        assert db.session.get(Assignment, task_id).status is AssignmentStatus.SUBMITTED
        # The sample waits for the second review before it moves on.
        assert db.session.get(Sample, sample_id).processing_state is ProcessingState.IN_REVIEW
        assert claim(author.id) is None  # not their own work, and not while in training
        got = claim(second.id)
        assert got is not None and str(got.id) == str(review.id)
        review_id = str(review.id)

    auth.login(second.email)
    page = client.get(f"/tasks/{review_id}").get_data(as_text=True)
    assert "author@example.com" in page and "Câu số không, đã sửa" in page
    token = page_token(client)
    rows = rows_now(app, sample_id)

    early = post_json(
        client, f"/tasks/{review_id}/decide", {"decision": "approve", "sentences": rows}, token
    )
    assert early.status_code == 409
    assert early.get_json()["error"] == "notheard"
    assert "heard 0%" in early.get_json()["message"]

    half = whole(review_id, app)[: len(whole(review_id, app)) // 2]
    touched = post_json(client, f"/tasks/{review_id}/touch", {"listened": half}, token)
    assert 0.4 < touched.get_json()["listened"] < 0.6
    still = post_json(
        client, f"/tasks/{review_id}/decide", {"decision": "approve", "sentences": rows}, token
    )
    assert still.status_code == 409 and "heard 50%" in still.get_json()["message"]

    post_json(client, f"/tasks/{review_id}/touch", {"listened": whole(review_id, app)}, token)
    rows[1]["text"] = "câu số một đã sửa thêm"
    mislabelled = post_json(
        client, f"/tasks/{review_id}/decide", {"decision": "approve", "sentences": rows}, token
    )
    assert mislabelled.status_code == 422 and "minor" in mislabelled.get_json()["message"]

    approved = post_json(
        client,
        f"/tasks/{review_id}/decide",
        {"decision": "approve_minor", "sentences": rows},
        token,
    )
    assert approved.status_code == 200, approved.get_json()
    assert approved.get_json()["wer"] > 0
    with app.app_context():
        assert db.session.get(Assignment, task_id).status is AssignmentStatus.APPROVED
        revision = latest_transcript(sample_id)
        assert revision.author_id == second.id and revision.version == 3
        assert revision.sentences[1]["text"] == "câu số một đã sửa thêm"
        decision = db.session.scalar(
            sa.select(ReviewDecision).where(ReviewDecision.assignment_id == review_id)
        )
        assert decision.decision is Decision.APPROVE_MINOR and decision.wer > 0
        assert decision.transcript_revision_id == revision.id
        assert db.session.get(Sample, sample_id).processing_state is not (ProcessingState.IN_REVIEW)


def test_a_rejected_task_returns_to_its_author_with_the_comment(app, client, auth, trio, tmp_path):
    author, second, boss = trio
    task_id, sample_id = author_submits(app, client, auth, author, tmp_path)
    with app.app_context():
        review_id = str(claim(second.id).id)
    auth.login(second.email)
    token = page_token(client)
    rows = rows_now(app, sample_id)
    bare = post_json(client, f"/tasks/{review_id}/decide", {"decision": "reject"}, token)
    assert bare.status_code == 422 and "comment" in bare.get_json()["message"]
    # Rejecting needs no listening: the reviewer may stop at the first serious problem.
    rejected = post_json(
        client,
        f"/tasks/{review_id}/decide",
        {"decision": "reject", "comment": "Sentence 1 is <b>wrong</b>: listen again."},
        token,
    )
    assert rejected.status_code == 200, rejected.get_json()
    auth.logout()

    with app.app_context():
        task = db.session.get(Assignment, task_id)
        assert task.status is AssignmentStatus.REJECTED and task.reviewer_id == author.id
        db.session.get(User, author.id).in_training = False  # a returned task is checked again
        db.session.commit()
    auth.login(author.email)
    queue = client.get("/").get_data(as_text=True)
    assert "sent back to you" in queue
    page = client.get(f"/tasks/{task_id}").get_data(as_text=True)
    assert "second@example.com" in page
    assert "Sentence 1 is \\u003cb\\u003ewrong\\u003c/b\\u003e" in page  # text, never HTML
    assert "Câu số không, đã sửa" in page  # they continue from what they submitted
    with app.app_context():
        assert db.session.get(Assignment, task_id).status is AssignmentStatus.IN_PROGRESS
    token = page_token(client)
    rows[0]["text"] = "Câu số không, sửa lần hai"
    again = post_json(client, f"/tasks/{task_id}/submit", {"sentences": rows}, token)
    assert again.status_code == 200, again.get_json()
    assert "second_review" not in again.get_json()  # the answer never tells (gold tasks)
    auth.logout()

    with app.app_context():
        second_round = claim(second.id)
        assert second_round is not None and str(second_round.review_of_id) == task_id
        round_id = str(second_round.id)
    auth.login(second.email)
    token = page_token(client)
    post_json(client, f"/tasks/{round_id}/touch", {"listened": whole(round_id, app)}, token)
    ok = post_json(
        client,
        f"/tasks/{round_id}/decide",
        {"decision": "approve", "sentences": rows_now(app, sample_id)},
        token,
    )
    assert ok.status_code == 200, ok.get_json()
    assert ok.get_json()["wer"] == 0.0
    with app.app_context():
        assert db.session.get(Assignment, task_id).status is AssignmentStatus.APPROVED
        assert latest_transcript(sample_id).sentences[0]["text"] == "Câu số không, sửa lần hai"


def test_review_share_and_who_may_take_a_second_review(app, make_user, tmp_path):
    a = make_user("a@example.com")
    b = make_user("b@example.com")
    boss = make_user("boss@example.com", Role.ADMIN)
    with app.app_context():
        make_review_sample(tmp_path, duration_s=8.0)
        batch = batch_of([a, b], share=1.0)
        task = claim(a.id)
        from ra_app.review.work import submit

        rows = current_rows(task.sample_id)
        submit(task, db.session.get(User, a.id), {"sentences": rows})
        assert claim(a.id) is None  # never one's own work
        review = claim(boss.id)  # an admin takes second reviews of any active batch
        assert review is not None and review.review_of_id == task.id
        review.status, review.reviewer_id = AssignmentStatus.PENDING, None
        db.session.commit()
        batches.set_paused(db.session.get(type(batch), batch.id), True)
        assert claim(b.id) is None  # a paused batch hands out nothing
        batches.set_paused(db.session.get(type(batch), batch.id), False)
        assert claim(b.id).id == review.id


def test_an_expired_second_review_returns_to_the_pool_unheard(app, make_user, tmp_path):
    from datetime import timedelta

    from ra_app.core.models import utcnow

    a = make_user("a@example.com")
    b = make_user("b@example.com")
    c = make_user("c@example.com")
    with app.app_context():
        make_review_sample(tmp_path, duration_s=8.0)
        batch_of([a, b, c], share=1.0)
        task = claim(a.id)
        from ra_app.review.work import submit

        submit(task, db.session.get(User, a.id), {"sentences": current_rows(task.sample_id)})
        review = claim(b.id)
        review.listened_fraction = 1.0
        review.lease_expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
        again = claim(c.id)
        assert again.id == review.id and again.reviewer_id == c.id
        assert again.listened_fraction == 0.0


def test_the_review_share_is_met_on_average():
    ids = [uuid.uuid4() for _ in range(4000)]
    for share in (0.0, 0.1, 0.5, 1.0):
        picked = sum(staging.picked_for_review(i, share) for i in ids) / len(ids)
        assert abs(picked - share) < 0.03
        # The same task always gets the same answer.
        assert [staging.picked_for_review(i, share) for i in ids[:50]] == [
            staging.picked_for_review(i, share) for i in ids[:50]
        ]


def test_listening_coverage():
    cover = staging.coverage
    assert cover([[0, 10]], 0, 10) == 1.0
    assert cover([[0.2, 4.9], [5.1, 9.8]], 0, 10) == 1.0  # report gaps and edges
    assert cover([[0, 5]], 0, 10) == 0.5
    assert cover([[0, 3], [6, 10]], 0, 10) == pytest.approx(0.7)
    assert cover([[100, 110]], 0, 10) == 0.0  # outside the task
    assert cover([["x", 1], [float("nan"), 2], "junk"], 0, 10) == 0.0


def test_boundary_shift():
    assert staging.boundary_shift([[0, 12], [12, 30]], [[0, 12], [12, 30]]) == 0.0
    shifted = staging.boundary_shift([[0, 12], [12, 30]], [[0, 14], [14, 30]])
    assert shifted == pytest.approx(2 / 3, abs=0.01)  # one cut of three moved by 2 s


def test_segment_review_records_the_boundary_shift(app, client, auth, make_user, tmp_path):
    a = make_user("a@example.com")
    b = make_user("b@example.com")
    with app.app_context():
        sample_id = str(segmented_sample(tmp_path, 45.0, [0.0, 20.0, 44.5]).id)
        batch_of([a, b], TaskType.AUDIO_SEGMENTATION, share=1.0)
        task_id = str(claim(a.id).id)
    auth.login(a.email)
    token = page_token(client)
    cut = [{"start": 0, "end": 20}, {"start": 20, "end": 44.5}]
    submitted = post_json(client, f"/tasks/{task_id}/submit", {"segments": cut}, token)
    assert submitted.status_code == 200
    auth.logout()
    with app.app_context():
        review_id = str(claim(b.id).id)
    auth.login(b.email)
    token = page_token(client)
    post_json(client, f"/tasks/{review_id}/touch", {"listened": whole(review_id, app)}, token)
    moved = [{"start": 0, "end": 22}, {"start": 22, "end": 44.5}]
    answer = post_json(
        client,
        f"/tasks/{review_id}/decide",
        {"decision": "approve_major", "segments": moved},
        token,
    )
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["boundary_diff_s"] == pytest.approx(2 / 3, abs=0.01)
    with app.app_context():
        assert db.session.get(Sample, sample_id).processing_state is not (ProcessingState.SEGMENTED)

"""Reviewer actions made twice at once (a double click, two tabs, a retry after a slow
answer), and work whose lease ran out: one effect each time, and the reviewer told why."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import sqlalchemy as sa

from ra_app.core.models import (
    Assignment,
    AssignmentStatus,
    Decision,
    ReviewDecision,
    TranscriptRevision,
    User,
)
from ra_app.core.tasks import release_expired_leases
from ra_app.extensions import db

from .conftest import PASSWORD, AuthActions, csrf_token_from
from .review_helpers import claim, make_review_sample
from .test_review_flow import page_token, post_json, setup_task
from .test_staged_review import batch_of, current_rows, rows_now, second_of, trio, whole

__all__ = ["trio"]  # the fixture, used by name below


@pytest.fixture(params=["postgres", "embedded"])
def app(request):
    """Every race here is run on Postgres and on the embedded mode's SQLite file, where the
    row locks are the database's write lock (ra_app/core/sqlite_locks.py)."""
    return request.getfixturevalue(f"{request.param}_app")


def signed_in(app, email: str):
    """A browser (its own cookies) signed in as `email`, and its CSRF token."""
    client = app.test_client()
    AuthActions(client).login(email, PASSWORD)
    return client, page_token(client)


def ids_of(task_and_sample: tuple[str, str]) -> tuple[uuid.UUID, uuid.UUID]:
    """As the database takes them on both Postgres and SQLite."""
    return tuple(uuid.UUID(i) for i in task_and_sample)


def at_once(calls):
    """Run the calls together, as parallel requests; their answers in order."""
    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(lambda call: call(), calls))


def test_ten_submits_at_once_make_one_revision_one_decision_one_second_review(app, trio, tmp_path):
    author, second, _ = trio  # the author is in training: a submit asks for a second review
    with app.app_context():
        sample = make_review_sample(tmp_path, duration_s=12.0)
        batch_of([author, second_of(app)])
        task_id, sample_id = claim(author.id).id, sample.id
        revisions_before = db.session.scalar(
            sa.select(sa.func.count()).where(TranscriptRevision.sample_id == sample.id)
        )
    rows = rows_now(app, sample_id)
    rows[0]["text"] = "Câu số không, đã sửa"
    tabs = [signed_in(app, author.email) for _ in range(10)]
    answers = at_once(
        [
            lambda c=c, t=t: post_json(c, f"/tasks/{task_id}/submit", {"sentences": rows}, t)
            for c, t in tabs
        ]
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] + [409] * 9, [a.get_json() for a in answers]
    refused = [a.get_json() for a in answers if a.status_code == 409]
    assert {r["error"] for r in refused} == {"already_submitted"}
    assert "nothing was sent twice" in refused[0]["message"]
    with app.app_context():
        assert (
            db.session.scalar(
                sa.select(sa.func.count()).where(TranscriptRevision.sample_id == sample_id)
            )
            == revisions_before + 1
        )
        decisions = db.session.scalars(
            sa.select(ReviewDecision).where(ReviewDecision.assignment_id == task_id)
        ).all()
        assert [d.decision for d in decisions] == [Decision.SUBMIT]
        reviews = db.session.scalars(
            sa.select(Assignment).where(Assignment.review_of_id == task_id)
        ).all()
        assert len(reviews) == 1


def test_submit_mine_anyway_twice_is_one_submit(app, client, auth, reviewer, tmp_path):
    task_id, sample_id = ids_of(setup_task(app, tmp_path, reviewer.id))
    auth.login(reviewer.email)
    token = page_token(client)
    rows = rows_now(app, sample_id)
    forced = {"sentences": rows, "force": True}
    first = post_json(client, f"/tasks/{task_id}/submit", forced, token)
    again = post_json(client, f"/tasks/{task_id}/submit", forced, token)
    assert first.status_code == 200 and again.status_code == 409
    assert again.get_json()["error"] == "already_submitted"


def test_approve_and_reject_at_once_make_one_decision(app, trio, tmp_path):
    author, second, _ = trio
    with app.app_context():
        sample = make_review_sample(tmp_path, duration_s=12.0)
        batch_of([author, second_of(app)])
        task = claim(author.id)
        from ra_app.review.work import submit

        submit(task, db.session.get(User, author.id), {"sentences": current_rows(sample.id)})
        task_id, review_id = task.id, claim(second.id).id
        sample_id = sample.id
    heard = whole(review_id, app)
    (a, ta), (b, tb) = signed_in(app, second.email), signed_in(app, second.email)
    post_json(a, f"/tasks/{review_id}/touch", {"listened": heard}, ta)
    rows = rows_now(app, sample_id)
    answers = at_once(
        [
            lambda: post_json(
                a, f"/tasks/{review_id}/decide", {"decision": "approve", "sentences": rows}, ta
            ),
            lambda: post_json(
                b, f"/tasks/{review_id}/decide", {"decision": "reject", "comment": "no"}, tb
            ),
        ]
    )
    assert sorted(x.status_code for x in answers) == [200, 409], [x.get_json() for x in answers]
    with app.app_context():
        decisions = db.session.scalars(
            sa.select(ReviewDecision.decision).where(ReviewDecision.assignment_id == review_id)
        ).all()
        assert len(decisions) == 1
        original = db.session.get(Assignment, task_id)
        expected = (
            AssignmentStatus.APPROVED
            if decisions[0] is Decision.APPROVE
            else AssignmentStatus.REJECTED
        )
        assert original.status is expected


def test_a_stale_autosave_from_another_tab_or_browser_is_refused(
    app, client, auth, reviewer, tmp_path
):
    task_id, sample_id = ids_of(setup_task(app, tmp_path, reviewer.id))
    rows = rows_now(app, sample_id)
    auth.login(reviewer.email)
    token = page_token(client)
    other, other_token = signed_in(app, reviewer.email)  # a second browser
    first = post_json(
        client, f"/tasks/{task_id}/draft", {"sentences": rows, "draft_version": 0}, token
    )
    assert first.status_code == 200 and first.get_json()["draft_version"] == 1
    rows_b = [dict(r) for r in rows]
    rows_b[0]["text"] = "typed in the other browser"
    stale = post_json(
        other, f"/tasks/{task_id}/draft", {"sentences": rows_b, "draft_version": 0}, other_token
    )
    assert stale.status_code == 409
    body = stale.get_json()
    assert body["error"] == "draft_conflict" and "another tab or browser" in body["message"]
    assert body["draft_version"] == 1
    with app.app_context():  # the first browser's draft was not overwritten
        draft = db.session.get(Assignment, task_id).draft
        assert draft["sentences"][0]["text"] == rows[0]["text"]
    reloaded = csrf_token_from(other.get(f"/tasks/{task_id}").get_data(as_text=True))
    after_reload = post_json(
        other, f"/tasks/{task_id}/draft", {"sentences": rows_b, "draft_version": 1}, reloaded
    )
    assert after_reload.status_code == 200 and after_reload.get_json()["draft_version"] == 2


def test_a_submit_from_a_tab_behind_another_tabs_draft_is_refused(
    app, client, auth, reviewer, tmp_path
):
    """The tab that fell behind cannot submit over the other tab's newer draft either."""
    task_id, sample_id = ids_of(setup_task(app, tmp_path, reviewer.id))
    rows = rows_now(app, sample_id)
    auth.login(reviewer.email)
    token = page_token(client)
    other, other_token = signed_in(app, reviewer.email)
    newer = [dict(r) for r in rows]
    newer[0]["text"] = "typed in the other browser"
    saved = post_json(
        other, f"/tasks/{task_id}/draft", {"sentences": newer, "draft_version": 0}, other_token
    )
    assert saved.status_code == 200
    behind = post_json(
        client, f"/tasks/{task_id}/submit", {"sentences": rows, "draft_version": 0}, token
    )
    assert behind.status_code == 409 and behind.get_json()["error"] == "draft_conflict"
    with app.app_context():
        task = db.session.get(Assignment, task_id)
        assert task.status is AssignmentStatus.IN_PROGRESS
        assert task.draft["sentences"][0]["text"] == "typed in the other browser"
    done = post_json(
        other, f"/tasks/{task_id}/submit", {"sentences": newer, "draft_version": 1}, other_token
    )
    assert done.status_code == 200 and done.get_json()["submitted"]


def test_drafts_saved_at_once_from_two_tabs_keep_one_and_refuse_the_other(app, reviewer, tmp_path):
    task_id, sample_id = ids_of(setup_task(app, tmp_path, reviewer.id))
    rows = rows_now(app, sample_id)
    tabs = [signed_in(app, reviewer.email) for _ in range(2)]
    answers = at_once(
        [
            lambda c=c, t=t, n=n: post_json(
                c,
                f"/tasks/{task_id}/draft",
                {"sentences": [dict(rows[0], text=f"tab {n}")], "draft_version": 0},
                t,
            )
            for n, (c, t) in enumerate(tabs)
        ]
    )
    assert sorted(a.status_code for a in answers) == [200, 409]
    with app.app_context():
        assert db.session.get(Assignment, task_id).draft_version == 1


def expire_lease(app, task_id):
    with app.app_context():
        task = db.session.get(Assignment, task_id)
        task.lease_expires_at = task.lease_expires_at - timedelta(hours=2)
        db.session.commit()
        release_expired_leases()
        db.session.commit()


def test_a_save_after_the_lease_went_to_someone_else_says_so(app, make_user, tmp_path):
    first, other = make_user("first@example.org"), make_user("other@example.org")
    with app.app_context():
        make_review_sample(tmp_path, duration_s=12.0)
        batch_of([first, other])
        task_id = claim(first.id).id
    client, token = signed_in(app, first.email)
    expire_lease(app, task_id)
    pooled = post_json(
        client, f"/tasks/{task_id}/draft", {"sentences": [], "draft_version": 0}, token
    )
    assert pooled.status_code == 409 and pooled.get_json()["error"] == "lease_lost"
    assert "went back to the pool" in pooled.get_json()["message"]
    with app.app_context():
        assert claim(other.id).id == task_id  # someone else takes it
    taken = post_json(client, f"/tasks/{task_id}/submit", {"sentences": []}, token)
    assert taken.status_code == 409 and taken.get_json()["error"] == "lease_lost"
    assert "another reviewer has taken it" in taken.get_json()["message"]
    stranger, stranger_token = signed_in(app, make_user("stranger@example.org").email)
    assert post_json(stranger, f"/tasks/{task_id}/draft", {}, stranger_token).status_code == 403


def test_an_assigned_task_whose_lease_ran_out_is_the_reviewers_again(
    app, client, auth, reviewer, tmp_path
):
    task_id, sample_id = ids_of(setup_task(app, tmp_path, reviewer.id))
    auth.login(reviewer.email)
    token = page_token(client)
    expire_lease(app, task_id)
    rows = rows_now(app, sample_id)
    saved = post_json(
        client, f"/tasks/{task_id}/draft", {"sentences": rows, "draft_version": 0}, token
    )
    assert saved.status_code == 200, saved.get_json()
    with app.app_context():
        assert db.session.get(Assignment, task_id).status is AssignmentStatus.IN_PROGRESS

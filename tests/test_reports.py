"""Skip and report: a task given back goes to someone else (with its draft), never back to
the reviewer who skipped it; audio reported unusable leaves every queue and the export; an
admin reverses either; each report is made once however many clicks or tabs send it."""

from __future__ import annotations

import json

import sqlalchemy as sa

from pipeline.post_review_cli import export_cmd
from ra_app.core.models import (
    Assignment,
    AssignmentStatus,
    Report,
    Sample,
    Source,
    SourceKind,
    TaskType,
    User,
)
from ra_app.core.states import ProcessingState
from ra_app.core.tasks import create_tasks, waiting_for
from ra_app.extensions import db

from .conftest import csrf_token_from
from .review_helpers import claim, make_review_sample
from .test_export import finished_sample, snapshot_folder
from .test_review_concurrency import at_once, signed_in
from .test_review_flow import post_json


def pool_task(app, tmp_path, window_s=0, **kw):
    """A recording with transcript tasks in the shared pool; returns the sample id."""
    with app.app_context():
        sample = make_review_sample(tmp_path, **kw)
        create_tasks(sample, TaskType.TRANSCRIPT_CORRECTION, window_s=window_s)
        db.session.commit()
        return sample.id


def test_a_task_given_back_goes_to_someone_else_with_its_draft(
    app, client, auth, reviewer, make_user, tmp_path
):
    other = make_user("other@example.org")
    pool_task(app, tmp_path)
    with app.app_context():
        task_id = str(claim(reviewer.id).id)
    auth.login(reviewer.email)
    token = csrf_token_from(client.get(f"/tasks/{task_id}").get_data(as_text=True))
    draft = post_json(
        client, f"/tasks/{task_id}/draft", {"sentences": [], "draft_version": 0}, token
    )
    assert draft.status_code == 200

    empty = post_json(client, f"/tasks/{task_id}/report", {"kind": "skip", "reason": "  "}, token)
    assert empty.status_code == 422 and "Say why" in empty.get_json()["message"]
    body = {"kind": "skip", "reason": "I cannot follow this accent", "draft_version": 1}
    given = post_json(client, f"/tasks/{task_id}/report", body, token)
    assert given.status_code == 200, given.get_json()
    assert given.get_json()["next_url"] == "/?submitted=1"  # nothing else waits for them
    again = post_json(client, f"/tasks/{task_id}/report", body, token)
    assert again.status_code == 409  # a double click reports once
    assert again.get_json()["message"] == "You gave this task back; nothing was sent twice."
    with app.app_context():
        task = db.session.get(Assignment, task_id)
        assert task.status is AssignmentStatus.PENDING and task.reviewer_id is None
        assert task.draft == {"sentences": []}  # nothing typed is lost
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Report)) == 1
        # Not handed back to the reviewer who gave it back; the next reviewer gets it.
        me = db.session.get(User, reviewer.id)
        assert waiting_for(me) == {} and claim(reviewer.id) is None
        assert str(claim(other.id).id) == task_id


def test_unusable_audio_leaves_the_queues_and_an_admin_reverses_it(
    app, make_user, reviewer, admin, tmp_path
):
    other = make_user("other@example.org")
    sample_id = pool_task(app, tmp_path, duration_s=60.0, window_s=20)  # three windows
    with app.app_context():
        mine, theirs = str(claim(reviewer.id).id), str(claim(other.id).id)
    me, my_token = signed_in(app, reviewer.email)
    them, their_token = signed_in(app, other.email)

    bad = post_json(me, f"/tasks/{mine}/report", {"kind": "unusable", "reason": "boring"}, my_token)
    assert bad.status_code == 422 and "No speech" in bad.get_json()["message"]
    body = {"kind": "unusable", "reason": "music", "comment": "karaoke"}
    reported = post_json(me, f"/tasks/{mine}/report", body, my_token)
    assert reported.status_code == 200, reported.get_json()
    assert reported.get_json()["withdrawn"] == 3
    with app.app_context():
        sample = db.session.get(Sample, sample_id)
        assert sample.processing_state is ProcessingState.DISCARDED
        statuses = db.session.scalars(
            sa.select(Assignment.status).where(Assignment.sample_id == sample_id)
        ).all()
        assert set(statuses) == {AssignmentStatus.WITHDRAWN}
        assert waiting_for(db.session.get(User, other.id)) == {}
    # The other window's reviewer is told, and keeps their edits in their browser.
    refused = post_json(them, f"/tasks/{theirs}/draft", {"sentences": []}, their_token)
    assert refused.status_code == 409 and "reported unusable" in refused.get_json()["message"]

    admin_client, admin_token = signed_in(app, admin.email)
    listed = admin_client.get("/admin/reports").get_data(as_text=True)
    assert "Unusable audio" in listed and "Music: “karaoke”" in listed
    sample_page = admin_client.get(f"/admin/samples/{sample_id}").get_data(as_text=True)
    assert (
        f"Reported unusable by {reviewer.email}" in sample_page
        and "Music (“karaoke”)" in sample_page
    )
    with app.app_context():
        report_id = db.session.scalar(sa.select(Report.id))
    url = f"/admin/reports/{report_id}/reverse"
    answers = at_once([lambda: admin_client.post(url, data={"csrf_token": admin_token})] * 2)
    assert [a.status_code for a in answers] == [302, 302]
    with app.app_context():
        sample = db.session.get(Sample, sample_id)
        assert sample.processing_state is ProcessingState.IN_REVIEW
        tasks = db.session.scalars(sa.select(Assignment).where(Assignment.sample_id == sample_id))
        assert {t.status for t in tasks} == {AssignmentStatus.PENDING}
        assert db.session.scalar(sa.select(Report.reversed_at)) is not None
        assert waiting_for(db.session.get(User, other.id))[TaskType.TRANSCRIPT_CORRECTION] == {
            "pool": 3
        }


def test_two_reviewers_reporting_one_recording_at_once_report_it_once(
    app, make_user, reviewer, tmp_path
):
    other = make_user("other@example.org")
    pool_task(app, tmp_path, duration_s=60.0, window_s=20)
    with app.app_context():
        tasks = [str(claim(reviewer.id).id), str(claim(other.id).id)]
    browsers = [signed_in(app, reviewer.email), signed_in(app, other.email)]
    body = {"kind": "unusable", "reason": "no_speech"}
    answers = at_once(
        [
            lambda c=c, t=t, task=task: post_json(c, f"/tasks/{task}/report", body, t)
            for (c, t), task in zip(browsers, tasks, strict=True)
        ]
    )
    assert sorted(a.status_code for a in answers) == [200, 409]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Report)) == 1


def test_an_unusable_recording_is_missing_from_the_next_export(app, runner, reviewer):
    with app.app_context():
        source = Source(kind=SourceKind.YOUTUBE, external_id="vid", info={})
        kept = finished_sample(app, source, "kept", 1).id
        dropped = finished_sample(app, source, "dropped", 2)
        dropped_id = dropped.id
        # A second look at the dropped one's translation, by the reviewer.
        create_tasks(
            dropped, TaskType.TRANSLATION_REVIEW, reviewer=db.session.get(User, reviewer.id)
        )
        db.session.commit()
        task_id = str(claim(reviewer.id).id)
    client, token = signed_in(app, reviewer.email)
    body = {"kind": "unusable", "reason": "wrong_language"}
    assert post_json(client, f"/tasks/{task_id}/report", body, token).status_code == 200
    result = runner.invoke(export_cmd, ["--task-type", "audio_segmentation"])
    assert result.exit_code == 0, result.output
    manifest = (snapshot_folder(result) / "manifest.jsonl").read_text().splitlines()
    exported = {json.loads(line)["sample_id"] for line in manifest}
    assert exported == {str(kept)} and str(dropped_id) not in exported


def test_a_second_review_given_back_is_not_handed_back(app, make_user, reviewer, tmp_path):
    other = make_user("other@example.org")
    pool_task(app, tmp_path)
    with app.app_context():
        from ra_app.review.staging import send_to_second_review

        author = claim(reviewer.id)
        author.status = AssignmentStatus.SUBMITTED
        review = send_to_second_review(author)
        db.session.commit()
        review_id = str(review.id)
        assert str(claim(other.id).id) == review_id
    browser, token = signed_in(app, other.email)
    body = {"kind": "skip", "reason": "tôi không nghe rõ"}
    assert post_json(browser, f"/tasks/{review_id}/report", body, token).status_code == 200
    with app.app_context():
        assert claim(other.id) is None  # nothing else, and not that one again


def test_a_gold_task_reported_is_withdrawn_alone(app, reviewer, admin, tmp_path):
    """A hidden gold task never takes its real recording out of the corpus, nor goes to the
    pool; its reviewer is answered as for any task (gold stays hidden)."""
    sample_id = pool_task(app, tmp_path)
    with app.app_context():
        task = claim(reviewer.id)
        task.is_gold = True
        db.session.commit()
        task_id, state = str(task.id), db.session.get(Sample, sample_id).processing_state
    client, token = signed_in(app, reviewer.email)
    body = {"kind": "unusable", "reason": "no_speech"}
    answer = post_json(client, f"/tasks/{task_id}/report", body, token)
    assert answer.status_code == 200 and answer.get_json()["reported"] == "unusable"
    with app.app_context():
        assert db.session.get(Sample, sample_id).processing_state is state
        assert db.session.get(Assignment, task_id).status is AssignmentStatus.WITHDRAWN
        report_id = db.session.scalar(sa.select(Report.id))
    admin_client, admin_token = signed_in(app, admin.email)
    admin_client.post(f"/admin/reports/{report_id}/reverse", data={"csrf_token": admin_token})
    with app.app_context():
        assert db.session.get(Assignment, task_id).status is AssignmentStatus.PENDING

"""What a task endpoint takes: malformed fields answer 422 naming them, bodies are bounded,
listening is checked against what can have been played, segments are checked as a whole,
a forced submit merges only what its task type owns, and a gold task gives nothing away."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from ra_app.core.models import (
    Assignment,
    AssignmentStatus,
    Segment,
    TaskType,
    User,
    utcnow,
)
from ra_app.core.revisions import latest_translation
from ra_app.core.tasks import start
from ra_app.extensions import db
from ra_app.security import HEADERS

from .review_helpers import assign, claim, make_review_sample, segmented_sample
from .test_review_flow import page_token, post_json, setup_task
from .test_staged_review import current_rows

GOOD = {"start": 0.5, "end": 3.0, "text": "câu", "translation": "", "flags": []}


@pytest.mark.parametrize(
    "endpoint,payload,field",
    [
        ("submit", {"sentences": [dict(GOOD, lang_overrides="x")]}, "sentences[0].lang_overrides"),
        ("submit", {"sentences": [dict(GOOD, flags=5)]}, "sentences[0].flags"),
        ("submit", {"sentences": "all of them"}, "sentences"),
        ("submit", {"sentences": [dict(GOOD, start="soon")]}, "sentences[0].start"),
        ("submit", {"sentences": [dict(GOOD, lang_overrides={"okay": "fr"})]}, "okay"),
        ("draft", {"sentences": [dict(GOOD, text=["a"])]}, "sentences[0].text"),
        ("draft", {"progress": "half"}, "progress"),
        ("draft", {"sentences": [GOOD] * 5001}, "sentences"),
        ("draft", {"sentences": [dict(GOOD, text="x" * 5001)]}, "sentences[0].text"),
        ("touch", {"listened": [[0, "a"]]}, "listened[0][1]"),
        ("touch", {"listened": 3}, "listened"),
        ("decide", {"decision": "approve", "comment": ["no"]}, "comment"),
    ],
)
def test_malformed_fields_answer_422_naming_the_field(
    app, client, auth, reviewer, tmp_path, endpoint, payload, field
):
    task_id, _ = setup_task(app, tmp_path, reviewer.id)
    auth.login(reviewer.email)
    answer = post_json(client, f"/tasks/{task_id}/{endpoint}", payload, page_token(client))
    assert answer.status_code == 422, answer.get_json()
    body = answer.get_json()
    assert body["error"] == "invalid"
    assert any(field in problem for problem in body["problems"]), body
    with app.app_context():
        task = db.session.get(Assignment, task_id)
        assert task.status is AssignmentStatus.IN_PROGRESS and task.draft is None


def test_a_body_over_the_size_limit_is_refused(app, client, auth, reviewer, tmp_path):
    task_id, _ = setup_task(app, tmp_path, reviewer.id)
    auth.login(reviewer.email)
    token = page_token(client)
    app.config["MAX_CONTENT_LENGTH"] = 100_000
    huge = {"sentences": [dict(GOOD, text="x" * 4000) for _ in range(40)]}
    answer = client.post(
        f"/tasks/{task_id}/draft",
        data=json.dumps(huge),
        content_type="application/json",
        headers={"X-CSRFToken": token, "Accept": "application/json"},
    )
    assert answer.status_code == 413 and answer.get_json()["error"] == "too_large"


def test_every_answer_carries_the_security_headers(app, client, auth, reviewer):
    for response in (client.get("/login"), client.get("/static/css/app.css")):
        for name, value in HEADERS.items():
            assert response.headers[name] == value
    policy = HEADERS["Content-Security-Policy"]
    assert (
        "script-src 'self'" in policy
        and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    )
    assert "frame-ancestors 'none'" in policy
    auth.login(reviewer.email)
    page = client.get("/").get_data(as_text=True)
    scripts = re.findall(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", page)
    assert scripts == []  # no inline script for the policy to refuse


def test_an_impossible_listened_span_is_refused(app, client, auth, reviewer, tmp_path):
    task_id, _ = setup_task(app, tmp_path, reviewer.id)
    auth.login(reviewer.email)
    answer = post_json(
        client, f"/tasks/{task_id}/touch", {"listened": [[0, 1e9]]}, page_token(client)
    )
    assert answer.status_code == 422
    assert "listened[0]" in answer.get_json()["message"]
    with app.app_context():
        assert db.session.get(Assignment, task_id).listened_fraction == 0


def test_no_more_counts_as_heard_than_the_time_since_the_claim_allows(
    app, client, auth, reviewer, tmp_path
):
    task_id, _ = setup_task(app, tmp_path, reviewer.id, duration_s=20.0)
    auth.login(reviewer.email)
    token = page_token(client)
    everything = [[0.0, 20.0]]
    at_once = post_json(client, f"/tasks/{task_id}/touch", {"listened": everything}, token)
    assert at_once.status_code == 200
    assert at_once.get_json()["listened"] < 0.2  # a second or two at double speed
    with app.app_context():  # five seconds later: ten at double speed, half of it
        task = db.session.get(Assignment, task_id)
        task.claimed_at = utcnow() - timedelta(seconds=5)
        db.session.commit()
    later = post_json(client, f"/tasks/{task_id}/touch", {"listened": everything}, token)
    assert 0.5 <= later.get_json()["listened"] < 0.6
    with app.app_context():
        task = db.session.get(Assignment, task_id)
        task.claimed_at = utcnow() - timedelta(seconds=30)
        db.session.commit()
    done = post_json(client, f"/tasks/{task_id}/touch", {"listened": everything}, token)
    assert done.get_json()["listened"] == 1.0


def segmentation_task(app, reviewer, tmp_path, duration_s, cuts, window_s):
    with app.app_context():
        sample = segmented_sample(tmp_path, duration_s, cuts)
        assign(sample, reviewer.id, TaskType.AUDIO_SEGMENTATION, window_s=window_s)
        return str(claim(reviewer.id).id), str(sample.id)


def test_segments_are_checked_with_the_rest_of_the_recording(app, client, auth, reviewer, tmp_path):
    """A 100 s recording in two windows: the first window's segments may not run into the
    second's, nor past the end of the recording."""
    cuts = [0.0, 20.0, 40.0, 52.0, 64.0, 80.0, 100.0]  # 52–64 belongs to the second window
    task_id, sample_id = segmentation_task(app, reviewer, tmp_path, 100.0, cuts, window_s=50)
    auth.login(reviewer.email)
    token = page_token(client)
    url = f"/tasks/{task_id}/submit"
    overlapping = [{"start": 0, "end": 20}, {"start": 20, "end": 35}, {"start": 35, "end": 58}]
    refused = post_json(client, url, {"segments": overlapping}, token)
    assert refused.status_code == 422
    problems = " ".join(refused.get_json()["problems"])
    assert "overlaps the segment 52.0–64.0 s of the next part" in problems
    assert "end it by 52.0 s" in problems
    with app.app_context():
        assert (
            db.session.scalar(sa.select(sa.func.count()).where(Segment.sample_id == sample_id))
            == len(cuts) - 1
        )  # nothing replaced
    good = [{"start": 0, "end": 20}, {"start": 20, "end": 35}, {"start": 35, "end": 52}]
    assert post_json(client, url, {"segments": good}, token).status_code == 200


def test_a_segment_past_the_end_of_the_recording_is_refused(app, client, auth, reviewer, tmp_path):
    task_id, _ = segmentation_task(app, reviewer, tmp_path, 60.0, [0.0, 20.0, 40.0, 60.0], 0)
    auth.login(reviewer.email)
    past = [{"start": 0, "end": 20}, {"start": 20, "end": 40}, {"start": 40, "end": 65}]
    refused = post_json(client, f"/tasks/{task_id}/submit", {"segments": past}, page_token(client))
    assert refused.status_code == 422
    assert "ends at 65.0 s, after the end of the recording (60.0 s)" in " ".join(
        refused.get_json()["problems"]
    )


def test_a_forced_transcript_submit_keeps_a_concurrent_translation_review(app, make_user, tmp_path):
    """The transcript page sends back the translations it opened with; a translation review
    submitted meanwhile must not be overwritten by them ("Submit mine anyway")."""
    from ra_app.review.work import submit

    writer, translator = make_user("writer@example.org"), make_user("translator@example.org")
    with app.app_context():
        sample = make_review_sample(tmp_path, duration_s=20.0)
        assign(sample, writer.id, TaskType.TRANSCRIPT_CORRECTION)
        assign(sample, translator.id, TaskType.TRANSLATION_REVIEW)
        transcript_task = claim(writer.id, TaskType.TRANSCRIPT_CORRECTION)
        opened = current_rows(sample.id)  # what the transcript page loaded
        translation_task = claim(translator.id, TaskType.TRANSLATION_REVIEW)
        rows = current_rows(sample.id)
        for i, row in enumerate(rows):
            row["translation"] = f"bản dịch mới {i}"
        submit(translation_task, db.session.get(User, translator.id), {"sentences": rows})
        opened[0]["text"] = "câu số 0 đã sửa lại"
        with pytest.raises(Exception, match="changed by"):
            submit(transcript_task, db.session.get(User, writer.id), {"sentences": opened})
        db.session.rollback()
        submit(
            db.session.get(Assignment, transcript_task.id),
            db.session.get(User, writer.id),
            {"sentences": opened, "force": True},
        )
        translations = [s["translation"] for s in latest_translation(sample.id).sentences]
        assert translations == [f"bản dịch mới {i}" for i in range(len(rows))]
        assert current_rows(sample.id)[0]["text"] == "câu số 0 đã sửa lại"


def test_a_gold_task_looks_and_answers_like_any_other(app, client, auth, reviewer, tmp_path):
    """The page carries nothing of the gold answer (not even through the sample's
    segments), and the page data and the submit's answer have the same shape."""
    from ra_app.core.models import Origin, TranscriptRevision
    from ra_app.core.revisions import write_revisions

    with app.app_context():
        gold_sample = make_review_sample(tmp_path, duration_s=9.0, title="vàng", freq=440)
        rows = current_rows(gold_sample.id)
        for row in rows:
            row["text"] = "đáp án vàng " + row["text"]
        gold, _ = write_revisions(gold_sample, rows, origin=Origin.HUMAN, with_translation=True)
        gold.is_gold = True
        db.session.add(
            Segment(
                sample_id=gold_sample.id,
                position=0,
                start_s=0.0,
                end_s=9.0,
                text=" ".join(r["text"] for r in rows),
            )
        )
        draft = db.session.scalars(
            sa.select(TranscriptRevision)
            .where(TranscriptRevision.sample_id == gold_sample.id)
            .order_by(TranscriptRevision.version)
        ).first()
        gold_task = Assignment(
            sample_id=gold_sample.id,
            task_type=TaskType.TRANSCRIPT_CORRECTION,
            reviewer_id=reviewer.id,
            status=AssignmentStatus.PENDING,
            is_gold=True,
            gold_revision_id=gold.id,
            base_transcript_revision_id=draft.id,
        )
        db.session.add(gold_task)
        normal_sample = make_review_sample(tmp_path, duration_s=9.0, title="thường", freq=300)
        (normal_task,) = assign(normal_sample, reviewer.id)
        user = db.session.get(User, reviewer.id)
        for task in (gold_task, normal_task):  # both opened, as a reviewer would in turn
            start(task, user)
        db.session.commit()
        ids = {"gold": str(gold_task.id), "normal": str(normal_task.id)}
    auth.login(reviewer.email)

    def page_data(task_id):
        html = client.get(f"/tasks/{task_id}").get_data(as_text=True)
        raw = re.search(
            r'<script id="task-data" type="application/json">(.*?)</script>', html, re.S
        )
        return html, json.loads(raw.group(1))

    def shape(value):
        if isinstance(value, dict):
            return {k: shape(v) for k, v in value.items()}
        return type(value).__name__ if value is not None else "null"

    gold_html, gold_data = page_data(ids["gold"])
    normal_html, normal_data = page_data(ids["normal"])
    assert "đáp án vàng" not in gold_html and "gold" not in gold_html.lower()
    assert gold_data["segments"] == [] == normal_data["segments"]
    for key in ("task", "sample", "base", "rules", "urls"):
        assert shape(gold_data[key]) == shape(normal_data[key]), key
    assert set(gold_data) == set(normal_data)

    token = page_token(client)
    answers = {}
    for kind, task_id in ids.items():
        sent = gold_data["sentences"] if kind == "gold" else normal_data["sentences"]
        answer = post_json(client, f"/tasks/{task_id}/submit", {"sentences": sent}, token)
        assert answer.status_code == 200, answer.get_json()
        answers[kind] = answer.get_json()
    assert set(answers["gold"]) == set(answers["normal"])

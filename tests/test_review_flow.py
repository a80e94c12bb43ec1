"""Saving and submitting review work through the HTTP API, and who may do it."""

from __future__ import annotations

import re
from datetime import timedelta

import sqlalchemy as sa

from ra_app.core.models import (
    Assignment,
    AssignmentStatus,
    Decision,
    Origin,
    ReviewDecision,
    Sample,
    Segment,
    TaskType,
    TranscriptRevision,
    TranslationRevision,
)
from ra_app.core.revisions import latest_transcript, latest_translation
from ra_app.core.states import ProcessingState
from ra_app.core.tasks import create_tasks
from ra_app.extensions import db

from .conftest import csrf_token_from
from .review_helpers import assign, claim, make_review_sample, segmented_sample


def post_json(client, url, payload, token=None):
    headers = {"X-CSRFToken": token} if token else {}
    return client.post(url, json=payload, headers=headers)


def page_token(client, url="/"):
    return csrf_token_from(client.get(url).get_data(as_text=True))


def setup_task(app, tmp_path, user_id, task_type=TaskType.TRANSCRIPT_CORRECTION, window_s=0, **kw):
    with app.app_context():
        sample = make_review_sample(tmp_path, **kw)
        assign(sample, user_id, task_type, window_s=window_s)
        task = claim(user_id, task_type)
        return str(task.id), str(sample.id)


def test_edit_autosave_and_submit_a_transcript(app, client, auth, reviewer, tmp_path):
    task_id, sample_id = setup_task(app, tmp_path, reviewer.id)
    auth.login(reviewer.email)
    page = client.get(f"/tasks/{task_id}")
    assert page.status_code == 200
    token = csrf_token_from(page.get_data(as_text=True))
    with app.app_context():
        rows = [dict(r) for r in latest_transcript(sample_id).sentences]
        translations = latest_translation(sample_id).sentences
    rows = [{**r, "translation": translations[i]["translation"]} for i, r in enumerate(rows)]
    rows[0]["text"] = "Câu số không có laptop mới"  # an edit
    del rows[1]  # a false sentence
    saved = post_json(
        client, f"/tasks/{task_id}/draft", {"sentences": rows, "progress": 0.5}, token
    )
    assert saved.status_code == 200, saved.get_json()
    analysis = saved.get_json()["analysis"]
    words = analysis["sentences"][0]["words"]
    assert {"text": "laptop", "lang": "en"}.items() <= next(
        w for w in words if w["text"] == "laptop"
    ).items()
    assert analysis["wer"] > 0 and any(op["op"] != "equal" for op in analysis["diff"])

    reloaded = client.get(f"/tasks/{task_id}").get_data(as_text=True)
    assert "Câu số không có laptop mới" in reloaded  # the draft survives a reload
    # The page asks for the analysis of what it opened with once it is ready.
    opened = client.get(f"/tasks/{task_id}/analysis").get_json()
    assert opened["wer"] == analysis["wer"] and len(opened["sentences"]) == len(rows)

    done = post_json(client, f"/tasks/{task_id}/submit", {"sentences": rows}, token)
    assert done.status_code == 200, done.get_json()
    with app.app_context():
        revision = latest_transcript(sample_id)
        assert revision.origin is Origin.HUMAN and revision.version == 2
        assert revision.author_id == reviewer.id
        assert revision.base_revision_id is not None and revision.wer > 0
        assert revision.sentences[0]["text"] == "Câu số không có laptop mới"
        translation = latest_translation(sample_id)
        assert translation.transcript_revision_id == revision.id
        assert len(translation.sentences) == len(revision.sentences)
        task = db.session.get(Assignment, task_id)
        assert task.status is AssignmentStatus.SUBMITTED and task.draft is None
        sample = db.session.get(Sample, sample_id)
        assert sample.processing_state is ProcessingState.REVIEWED
        (decision,) = db.session.scalars(sa.select(ReviewDecision)).all()
        assert decision.decision is Decision.SUBMIT
        assert decision.transcript_revision_id == revision.id


def test_invalid_sentences_are_refused_with_reasons(app, client, auth, reviewer, tmp_path):
    task_id, _ = setup_task(app, tmp_path, reviewer.id)
    auth.login(reviewer.email)
    token = page_token(client)
    bad = [
        {"start": 5, "end": 4, "text": "ngược"},
        {"start": 1, "end": 2, "text": ""},
        {"start": 1, "end": 99, "text": "quá dài"},
    ]
    response = post_json(client, f"/tasks/{task_id}/submit", {"sentences": bad}, token)
    assert response.status_code == 422
    problems = " ".join(response.get_json()["problems"])
    assert "ends before it starts" in problems and "is empty" in problems
    assert "outside the recording" in problems


def test_a_stale_submit_is_refused_and_the_draft_kept(
    app, client, auth, reviewer, make_user, tmp_path
):
    task_id, sample_id = setup_task(app, tmp_path, reviewer.id)
    with app.app_context():  # someone else corrects the same stretch meanwhile
        from ra_app.core.revisions import rows_of, write_revisions

        sample = db.session.get(Sample, sample_id)
        rows = rows_of(latest_transcript(sample_id), latest_translation(sample_id))
        rows[0]["text"] = "người khác đã sửa"
        other = make_user("other@example.org")
        write_revisions(
            sample, rows, origin=Origin.HUMAN, with_translation=True, author_id=other.id
        )
        db.session.commit()
        mine = [dict(r) for r in rows]
    mine[0]["text"] = "bản của tôi"
    auth.login(reviewer.email)
    token = page_token(client)
    post_json(client, f"/tasks/{task_id}/draft", {"sentences": mine}, token)
    response = post_json(client, f"/tasks/{task_id}/submit", {"sentences": mine}, token)
    assert response.status_code == 409
    body = response.get_json()
    assert body["error"] == "stale" and "other@example.org" in body["message"]
    assert "Your draft is kept" in body["message"]
    assert body["current"][0]["text"] == "người khác đã sửa"
    with app.app_context():
        task = db.session.get(Assignment, task_id)
        assert task.draft["sentences"][0]["text"] == "bản của tôi"
        assert task.status is AssignmentStatus.IN_PROGRESS
    forced = post_json(
        client, f"/tasks/{task_id}/submit", {"sentences": mine, "force": True}, token
    )
    assert forced.status_code == 200
    with app.app_context():
        assert latest_transcript(sample_id).sentences[0]["text"] == "bản của tôi"


def test_windows_merge_without_touching_neighbours(
    app, client, auth, reviewer, make_user, tmp_path
):
    other = make_user("other@example.org")
    with app.app_context():
        sample = make_review_sample(tmp_path, duration_s=40.0)
        tasks = assign(sample, reviewer.id, window_s=20)
        assert len(tasks) == 2
        tasks[1].reviewer_id = other.id
        db.session.commit()
        sample_id = str(sample.id)
        first = claim(reviewer.id)
        second = claim(other.id)
        assert (first.window_start_s, second.window_start_s) == (0.0, 20.0)
        first_id, second_id = str(first.id), str(second.id)
        rows = [dict(r) for r in latest_transcript(sample_id).sentences]

    def window(rows, start, end):
        return [dict(r, text=r["text"] + " (sửa)") for r in rows if start <= r["start"] < end]

    auth.login(reviewer.email)
    token = page_token(client)
    response = post_json(
        client, f"/tasks/{first_id}/submit", {"sentences": window(rows, 0, 20)}, token
    )
    assert response.status_code == 200, response.get_json()
    auth.logout()
    auth.login(other.email)
    token = page_token(client)
    response = post_json(
        client, f"/tasks/{second_id}/submit", {"sentences": window(rows, 20, 1e9)}, token
    )
    assert response.status_code == 200, response.get_json()  # not stale: other window
    with app.app_context():
        final = latest_transcript(sample_id)
        assert final.version == 3
        assert all(r["text"].endswith("(sửa)") for r in final.sentences)
        assert len(final.sentences) == len(rows)
        assert db.session.get(Sample, sample_id).processing_state is ProcessingState.REVIEWED


def test_translation_review_edits_translations_and_clears_flags(
    app, client, auth, reviewer, tmp_path
):
    rows = [
        {
            "start": 0.5,
            "end": 3.0,
            "text": "Anh ấy đi meeting rồi.",
            "translation": "Anh ấy đi meeting rồi.",
            "flags": ["english_untranslated: meeting"],
        },
        {
            "start": 4.0,
            "end": 6.0,
            "text": "Okay let's go.",
            "translation": "",
            "flags": ["empty_translation"],
        },
    ]
    task_id, sample_id = setup_task(
        app, tmp_path, reviewer.id, TaskType.TRANSLATION_REVIEW, duration_s=8.0, rows=rows
    )
    with app.app_context():
        assert db.session.get(Sample, sample_id).needs_translation_review
    auth.login(reviewer.email)
    token = page_token(client)
    edited = [
        dict(rows[0], translation="Anh ấy đi họp rồi.", flags=[]),
        dict(
            rows[1],
            translation="Được rồi, đi thôi.",
            flags=["empty_translation"],
            text="attempted change of the transcript",
        ),
    ]
    response = post_json(client, f"/tasks/{task_id}/submit", {"sentences": edited}, token)
    assert response.status_code == 200, response.get_json()
    # It says what it wrote: a translation revision, and no transcript revision at all.
    assert response.get_json()["translation_version"] == 2
    assert "transcript_version" not in response.get_json()
    with app.app_context():
        assert latest_transcript(sample_id).version == 1
        decision = db.session.scalar(sa.select(ReviewDecision))
        assert decision.transcript_revision_id is None and decision.translation_revision_id
        translation = latest_translation(sample_id)
        assert [s["translation"] for s in translation.sentences] == [
            "Anh ấy đi họp rồi.",
            "Được rồi, đi thôi.",
        ]
        assert translation.origin is Origin.HUMAN
        assert [s["text"] for s in latest_transcript(sample_id).sentences] == [
            "Anh ấy đi meeting rồi.",
            "Okay let's go.",
        ]  # the transcript is not this form's
        sample = db.session.get(Sample, sample_id)
        assert sample.translation_flag_count == 1 and sample.needs_translation_review


def test_segmentation_enforces_the_length_rule_and_carries_text(
    app, client, auth, reviewer, tmp_path
):
    with app.app_context():
        sample = segmented_sample(tmp_path, 45.0, [0.0, 12.0, 20.0, 44.5])
        sample_id = str(sample.id)
        assign(sample, reviewer.id, TaskType.AUDIO_SEGMENTATION)
        task_id = str(claim(reviewer.id).id)
    auth.login(reviewer.email)
    token = page_token(client)
    too_short = [{"start": 0, "end": 12}, {"start": 12, "end": 20}, {"start": 20, "end": 44.5}]
    refused = post_json(client, f"/tasks/{task_id}/submit", {"segments": too_short}, token)
    assert refused.status_code == 422
    assert "8.0 s long" in " ".join(refused.get_json()["problems"])
    merged = [{"start": 0, "end": 20}, {"start": 20, "end": 44.5}]
    done = post_json(client, f"/tasks/{task_id}/submit", {"segments": merged}, token)
    assert done.status_code == 200, done.get_json()
    with app.app_context():
        segments = db.session.scalars(sa.select(Segment).order_by(Segment.position)).all()
        assert [(s.start_s, s.end_s) for s in segments] == [(0.0, 20.0), (20.0, 44.5)]
        assert segments[0].text.startswith("câu số 0 có laptop") and "câu số 4" in segments[0].text
        assert segments[0].translation.startswith("bản dịch 0")
        assert db.session.get(Sample, sample_id).processing_state is (
            ProcessingState.SEGMENTS_REVIEWED
        )


def test_another_reviewers_task_and_audio_are_forbidden(
    app, client, auth, reviewer, make_user, tmp_path
):
    task_id, _ = setup_task(app, tmp_path, reviewer.id)
    intruder = make_user("intruder@example.org")
    auth.login(intruder.email)
    token = page_token(client)
    for name in ("", "/audio", "/peaks", "/analysis"):
        assert client.get(f"/tasks/{task_id}{name}").status_code == 403, name
    for name in ("draft", "submit", "touch", "decide"):
        url = f"/tasks/{task_id}/{name}"
        assert post_json(client, url, {"sentences": []}, token).status_code == 403, url


def test_audio_streams_with_range_requests(app, client, auth, reviewer, tmp_path):
    task_id, _ = setup_task(app, tmp_path, reviewer.id)
    auth.login(reviewer.email)
    whole = client.get(f"/tasks/{task_id}/audio")
    assert whole.status_code == 200 and whole.headers["Accept-Ranges"] == "bytes"
    assert whole.mimetype == "audio/mp4"
    size = len(whole.get_data())
    part = client.get(f"/tasks/{task_id}/audio", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and len(part.get_data()) == 100
    assert part.headers["Content-Range"] == f"bytes 100-199/{size}"
    peaks = client.get(f"/tasks/{task_id}/peaks?max_points=500").get_json()
    assert peaks["duration_s"] == 20.0 and len(peaks["data"]) <= 1000
    assert all(-1 <= v <= 1 for v in peaks["data"])
    assert max(peaks["data"]) > 0.1  # ffmpeg's sine is at 1/8 of full scale


def test_a_window_task_plays_only_its_window(app, client, auth, reviewer, tmp_path):
    with app.app_context():
        sample = make_review_sample(tmp_path, duration_s=50.0)
        assign(sample, reviewer.id, window_s=20)
        task_id = str(claim(reviewer.id).id)
    auth.login(reviewer.email)
    clip = client.get(f"/tasks/{task_id}/audio").get_data()
    path = tmp_path / "clip.m4a"
    path.write_bytes(clip)
    from pipeline.probe import probe

    assert abs(probe(path).duration_s - 20.0) < 0.1
    peaks = client.get(f"/tasks/{task_id}/peaks").get_json()
    assert peaks["duration_s"] == 20.0 and peaks["start_s"] == 0.0


def test_saving_without_csrf_is_refused(app, client, auth, reviewer, tmp_path):
    task_id, _ = setup_task(app, tmp_path, reviewer.id)
    auth.login(reviewer.email)
    assert post_json(client, f"/tasks/{task_id}/draft", {"sentences": []}).status_code == 400
    assert post_json(client, f"/tasks/{task_id}/submit", {"sentences": []}).status_code == 400


def test_vendor_route_rejects_path_tricks(client, auth, reviewer):
    auth.login(reviewer.email)
    assert client.get("/vendor/wavesurfer/wavesurfer.esm.js").status_code == 200
    for url in (
        "/vendor/wavesurfer/../../package.json",
        "/vendor/wavesurfer/..%2f..%2fpackage.js",
        "/vendor/nope/x.js",
        "/vendor/wavesurfer/%2e%2e/%2e%2e/%2e%2e/etc/passwd.js",
    ):
        assert client.get(url).status_code in (400, 404), url


def test_script_tags_in_a_transcript_render_as_text(app, client, auth, reviewer, tmp_path):
    rows = [
        {
            "start": 0.5,
            "end": 3.0,
            "text": "<script>alert('x')</script> xin chào",
            "translation": "</script><b>x</b>",
            "flags": [],
        }
    ]
    task_id, _ = setup_task(app, tmp_path, reviewer.id, duration_s=5.0, rows=rows)
    auth.login(reviewer.email)
    page = client.get(f"/tasks/{task_id}").get_data(as_text=True)
    assert "<script>alert" not in page and "</script><b>" not in page
    assert "\\u003cscript\\u003ealert" in page  # inside the JSON island, escaped


def waiting_line(page: str, task_type: str) -> str | None:
    """The queue's "Waiting for you" line of a task type, as text (None: not shown)."""
    found = re.search(rf'<li data-task-type="{task_type}">(.*?)</li>', page, re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split()) if found else None


def test_queue_shows_what_start_next_gives(app, client, auth, reviewer, tmp_path):
    """The queue counts the pool tasks a reviewer can take, by type; "Start next" gives
    one of them, the count drops, and an empty queue offers nothing to start."""
    auth.login(reviewer.email)
    page = client.get("/").get_data(as_text=True)
    assert "Nothing to review right now." in page and "Start next" not in page
    with app.app_context():
        for freq in (300, 400, 500):  # three recordings in the shared pool
            sample = make_review_sample(tmp_path, freq=freq, title=f"pool {freq}")
            create_tasks(sample, TaskType.TRANSLATION_REVIEW, window_s=0)
        db.session.commit()
    page = client.get("/").get_data(as_text=True)
    assert waiting_line(page, "translation_review") == (
        "Translation review 3 (3 in the shared pool) Start translation review"
    )
    assert waiting_line(page, "transcript_correction") is None
    assert "Start next" in page and "Nothing to review" not in page
    token = csrf_token_from(page)
    answer = client.post(
        "/tasks/next", data={"csrf_token": token, "task_type": "translation_review"}
    )
    assert answer.status_code == 302 and "/tasks/" in answer.location
    page = client.get("/").get_data(as_text=True)
    assert waiting_line(page, "translation_review").startswith("Translation review 2 (2 in the")
    # The task it gave is held: the queue offers to continue it, and lists it as the reviewer's.
    assert "Continue translation review" in page and "<progress" in page
    assert answer.location.endswith(re.search(r'href="(/tasks/[^"]+)">Open', page).group(1))
    # Its lease runs out: the queue counts it as waiting again, as Start next would.
    with app.app_context():
        held = db.session.get(Assignment, answer.location.rsplit("/", 1)[1])
        held.lease_expires_at = held.lease_expires_at - timedelta(days=1)
        db.session.commit()
    page = client.get("/").get_data(as_text=True)
    assert waiting_line(page, "translation_review").startswith("Translation review 3 (3 in")
    assert TranscriptRevision and TranslationRevision  # imported for the models' mapping

"""The review workspace in a real browser: playing, editing, autosave, shortcuts, structural
edits, the stale-submit conflict, segment dragging, translation review and escaping."""

from __future__ import annotations

import re
import time

import pytest
import sqlalchemy as sa

from ra_app.core.models import Assignment, AssignmentStatus, Origin, Sample, Segment, TaskType
from ra_app.core.revisions import latest_transcript, latest_translation, rows_of, write_revisions
from ra_app.core.states import ProcessingState
from ra_app.extensions import db

from ..review_helpers import assign, claim, make_review_sample, segmented_sample
from .conftest import LoginPage, QueuePage, TaskPage, clock

expect = pytest.importorskip("playwright.sync_api", reason="e2e: no playwright package").expect
pytestmark = pytest.mark.e2e


def new_task(app, tmp_path, user_id, task_type=TaskType.TRANSCRIPT_CORRECTION, claimed=True, **kw):
    """A sample with a tone recording and a machine transcript, and a task on it for the
    user (claimed unless `claimed=False`). Returns (task id or None, sample id)."""
    with app.app_context():
        sample = make_review_sample(tmp_path, **kw)
        assign(sample, user_id, task_type)
        task = claim(user_id, task_type) if claimed else None
        return (str(task.id) if task else None), str(sample.id)


def test_transcript_correction_end_to_end(page, live_server, browser_log, reviewer, tmp_path):
    app = live_server.app
    _, sample_id = new_task(app, tmp_path, reviewer.id, claimed=False)

    queue = LoginPage(page).sign_in(reviewer.email)
    queue.expect_shown()
    waiting = page.locator('li[data-task-type="transcript_correction"]')
    expect(waiting).to_contain_text("Transcript correction 1 (1 assigned to you)")
    task = queue.start_next().wait_ready()
    expect(task.rows()).to_have_count(5)
    assert task.sentence_text(3) == "câu số 2 có laptop"
    expect(task.status).to_have_text("No changes yet")

    # Play: the audio element advances, streamed with Range requests.
    task.button("Play").click()
    task.wait_audio("!audio.paused && audio.currentTime > 0.5")
    expect(task.button("Pause")).to_have_attribute("aria-pressed", "true")
    task.button("Pause").click()
    task.wait_audio("audio.paused")
    assert 206 in browser_log.statuses("/audio"), browser_log.statuses("/audio")

    # Edit; the autosave says so and the analysis comes back (chips, WER).
    task.edit_sentence(2, "câu số một có cái laptop mới")
    expect(task.status).to_have_text("Unsaved changes")
    task.wait_saved()
    row = task.row(2)
    expect(row.locator('.word[data-key="laptop"][data-lang="en"]')).to_have_count(1)
    expect(row.locator('.word[data-key="một"][data-lang="vi"]')).to_have_count(1)
    expect(page.locator(".scores[data-wer]")).not_to_have_attribute("data-wer", re.compile(r"^0?$"))
    with app.app_context():
        task_row = db.session.scalar(sa.select(Assignment))
        assert task_row.draft["sentences"][1]["text"] == "câu số một có cái laptop mới"

    # The draft survives a reload.
    page.reload()
    task.wait_ready()
    assert task.sentence_text(2) == "câu số một có cái laptop mới"
    expect(task.status).to_have_text(re.compile(r"^Saved "))

    task.submit_and_wait()
    QueuePage(page).expect_shown()
    expect(page.get_by_text(re.compile(r"^Submitted: bài nói"))).to_be_visible()
    with app.app_context():
        revision = latest_transcript(sample_id)
        assert revision.origin is Origin.HUMAN and revision.version == 2
        assert revision.author_id == reviewer.id
        assert revision.sentences[1]["text"] == "câu số một có cái laptop mới"
        assert [s["text"] for s in revision.sentences[2:]] == [
            f"câu số {i} có laptop" for i in (2, 3, 4)
        ]
        assert revision.wer > 0


def test_split_merge_insert_delete(page, live_server, reviewer, tmp_path):
    app = live_server.app
    task_id, sample_id = new_task(app, tmp_path, reviewer.id)
    LoginPage(page).sign_in(reviewer.email)
    task = TaskPage(page).open(task_id).wait_ready()
    expect(task.rows()).to_have_count(5)

    # Alt+Enter splits sentence 1 (0.5–3.5 s) at the caret; the time is shared in proportion.
    first = "câu số 0 có laptop"
    caret = len("câu số")
    task.text_field(1).click()
    task.text_field(1).evaluate(f"(field) => field.setSelectionRange({caret}, {caret})")
    task.press("Alt+Enter")
    expect(task.rows()).to_have_count(6)
    assert task.sentence_texts()[:3] == ["câu số", "0 có laptop", "câu số 1 có laptop"]
    at = round(0.5 + 3.0 * caret / len(first), 3)
    expect(task.time_field(1, "end")).to_have_value(clock(at))
    expect(task.time_field(2, "start")).to_have_value(clock(at))
    expect(task.text_field(2)).to_be_focused()

    # "Merge with next" joins sentences 2 and 3.
    task.row(2).get_by_role("button", name="Merge with next").click()
    expect(task.rows()).to_have_count(5)
    assert task.sentence_text(2) == "0 có laptop câu số 1 có laptop"
    expect(task.time_field(2, "start")).to_have_value(clock(at))
    expect(task.time_field(2, "end")).to_have_value("0:07.50")

    # "Insert sentence after" 3 fills the gap up to sentence 4; type the missed words.
    task.row(3).get_by_role("button", name="Insert sentence after").click()
    expect(task.rows()).to_have_count(6)
    expect(task.text_field(4)).to_be_focused()
    expect(task.time_field(4, "start")).to_have_value("0:11.50")
    expect(task.time_field(4, "end")).to_have_value("0:12.50")
    page.keyboard.type("một câu bị sót")

    # Alt+X deletes the sentence being edited; Alt+Z undoes.
    task.text_field(6).click()
    task.press("Alt+x")
    expect(task.rows()).to_have_count(5)
    assert "câu số 4 có laptop" not in task.sentence_texts()
    task.press("Alt+z")
    expect(task.rows()).to_have_count(6)
    assert task.sentence_text(6) == "câu số 4 có laptop"
    task.row(6).get_by_role("button", name="Delete sentence").click()
    expect(task.rows()).to_have_count(5)

    expected = [
        ("câu số", 0.5, at),
        ("0 có laptop câu số 1 có laptop", at, 7.5),
        ("câu số 2 có laptop", 8.5, 11.5),
        ("một câu bị sót", 11.5, 12.5),
        ("câu số 3 có laptop", 12.5, 15.5),
    ]
    assert task.sentence_texts() == [text for text, _, _ in expected]
    task.submit_and_wait()
    with app.app_context():
        revision = latest_transcript(sample_id)
        assert [(s["text"], s["start"], s["end"]) for s in revision.sentences] == expected
        assert [s["translation"] for s in latest_translation(sample_id).sentences] == [
            "bản dịch 0",
            "bản dịch 1",
            "bản dịch 2",
            "",
            "bản dịch 3",
        ]


def test_a_stale_submit_keeps_the_draft(
    page, live_server, browser_log, reviewer, make_user, tmp_path
):
    app = live_server.app
    browser_log.allow(409, "/submit")
    other = make_user("other@example.org")
    task_id, sample_id = new_task(app, tmp_path, reviewer.id)
    LoginPage(page).sign_in(reviewer.email)
    task = TaskPage(page).open(task_id).wait_ready()
    task.edit_sentence(1, "bản của tôi")
    task.save()
    task.wait_saved()

    with app.app_context():  # meanwhile someone else corrects the same stretch
        sample = db.session.get(Sample, sample_id)
        rows = rows_of(latest_transcript(sample_id), latest_translation(sample_id))
        rows[0]["text"] = "người khác đã sửa"
        write_revisions(
            sample, rows, origin=Origin.HUMAN, with_translation=True, author_id=other.id
        )
        db.session.commit()

    with page.expect_response(lambda r: r.url.endswith("/submit")) as answer:
        task.submit()
    assert answer.value.status == 409
    stale = task.message("stale")
    expect(stale).to_be_visible()
    expect(stale).to_contain_text("other@example.org")
    expect(stale).to_contain_text("Your draft is kept")
    expect(stale.locator(".compare")).to_contain_text("người khác đã sửa")
    expect(task.text_field(1)).to_have_value("bản của tôi")
    stale.get_by_role("button", name="Keep editing").click()
    expect(stale).to_be_hidden()

    page.reload()
    task.wait_ready()
    expect(task.text_field(1)).to_have_value("bản của tôi")

    with page.expect_response(lambda r: r.url.endswith("/submit")) as answer:
        task.submit()
    assert answer.value.status == 409
    with page.expect_response(lambda r: r.url.endswith("/submit")) as answer:
        task.button("Submit mine anyway").click()
    assert answer.value.status == 200
    assert answer.value.request.post_data_json["force"] is True
    expect(task.message("submitted")).to_be_visible()
    page.wait_for_url(re.compile(r"/\?submitted=1$"))
    with app.app_context():
        revision = latest_transcript(sample_id)
        assert revision.version == 3 and revision.author_id == reviewer.id
        assert revision.sentences[0]["text"] == "bản của tôi"


def segmentation_task(app, tmp_path, user_id, cuts) -> tuple[str, str]:
    """A 45 s recording whose text was reviewed, cut into segments at `cuts`, and an
    audio_segmentation task on it claimed by the user."""
    with app.app_context():
        sample = segmented_sample(tmp_path, 45.0, cuts)
        assign(sample, user_id, TaskType.AUDIO_SEGMENTATION)
        return str(claim(user_id).id), str(sample.id)


def drag(page, handle, dx: float) -> None:
    """Press on a region's edge handle and move it `dx` pixels, in steps."""
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx, y, steps=12)
    page.mouse.up()


def test_segmentation_drag_and_length_rule(page, live_server, browser_log, reviewer, tmp_path):
    app = live_server.app
    task_id, sample_id = segmentation_task(app, tmp_path, reviewer.id, [0.0, 15.0, 30.0, 44.5])
    LoginPage(page).sign_in(reviewer.email)
    task = TaskPage(page, noun="Segment").open(task_id).wait_ready()
    expect(task.rows()).to_have_count(3)
    rule = page.locator(".rule-count")
    expect(rule).to_have_text("All 3 segments follow the rule.")

    # Drag the end of segment 1 (shared with segment 2's start) from 15 s to about 22 s.
    region = page.locator('#waveform [data-row="1"]')
    px_per_s = region.bounding_box()["width"] / 15.0
    handle = page.locator('#waveform [data-row="1"] [part~="region-handle-right"]')
    drag(page, handle, 7.0 * px_per_s)
    end = task.time_field(1, "end")
    expect(end).not_to_have_value("0:15.00")
    moved = page.evaluate("() => window.reviewApp.state.items[0].end")
    assert 21.5 < moved < 22.5, moved
    expect(task.time_field(2, "start")).to_have_value(clock(moved))
    expect(end).to_have_value(clock(moved))
    expect(task.time_field(2, "end")).to_have_value("0:30.00")
    second = task.row(2)
    expect(second).to_have_class(re.compile(r"\bbad\b"))
    expect(second.locator(".seg-len")).to_have_text(f"{30 - moved:.1f} s")
    expect(second.locator(".rule-flag")).to_contain_text("too short")
    expect(rule).to_have_text("1 of 3 segments break the rule.")
    expect(task.row(1).locator(".seg-len")).to_have_text(f"{moved:.1f} s")

    # Submit is refused in the page: nothing is sent.
    task.submit()
    problems = task.message("problems")
    expect(problems).to_be_visible()
    expect(problems).to_contain_text("Segment 2 is too short")
    assert browser_log.statuses("/submit", "POST") == []

    # Fix it in the field: segment 1 ends at 0:18 (typed as the clock shows it), segment 2
    # follows.
    end.fill("0:18")
    end.press("Tab")
    expect(end).to_have_value("0:18.00")
    expect(task.time_field(2, "start")).to_have_value("0:18.00")
    expect(second).not_to_have_class(re.compile(r"\bbad\b"))
    expect(rule).to_have_text("All 3 segments follow the rule.")
    task.submit_and_wait()
    with app.app_context():
        segments = db.session.scalars(
            sa.select(Segment).where(Segment.sample_id == sample_id).order_by(Segment.position)
        ).all()
        assert [(s.start_s, s.end_s) for s in segments] == [(0.0, 18.0), (18.0, 30.0), (30.0, 44.5)]
        assert segments[0].text == " ".join(f"câu số {i} có laptop" for i in range(4))
        assert segments[0].translation == " ".join(f"bản dịch {i}" for i in range(4))
        sample = db.session.get(Sample, sample_id)
        assert sample.processing_state is ProcessingState.SEGMENTS_REVIEWED


def test_translation_review(page, live_server, reviewer, tmp_path):
    app = live_server.app
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
    task_id, sample_id = new_task(
        app, tmp_path, reviewer.id, TaskType.TRANSLATION_REVIEW, duration_s=8.0, rows=rows
    )
    LoginPage(page).sign_in(reviewer.email)

    def later(route):  # the word tags land after the rows are drawn, as on a long task
        time.sleep(1.0)
        route.continue_()

    page.route(re.compile(r"/tasks/[0-9a-f-]+/analysis$"), later)
    task = TaskPage(page).open(task_id).wait_ready()
    expect(task.rows()).to_have_count(2)
    # The server's word tags replace the page's first guess (drawn dashed) once they arrive.
    expect(page.locator(".word.pending")).to_have_count(0)
    meeting = task.row(1).locator('.word[data-key="meeting"]')
    expect(meeting).to_have_attribute("data-lang", "en")
    expect(task.row(1).locator(".share")).to_have_text("EN 20%")
    expect(page.get_by_label("Sentence 2 source")).to_have_text("Okay let's go.")
    expect(page.get_by_label("Sentence 1 text")).to_have_count(0)  # the source is not editable

    # An empty translation is refused before anything is sent.
    task.submit()
    expect(task.message("problems")).to_contain_text("Sentence 2 has no translation.")

    task.edit_translation(1, "Anh ấy đi họp rồi.")
    first = task.row(1)
    expect(first.locator(".flag-text")).to_have_text(["English left untranslated: meeting"])
    first.get_by_role("button", name="Clear flag").click()
    expect(first.locator(".flag")).to_have_count(0)
    expect(page.locator("#toast")).to_contain_text("cleared")
    task.edit_translation(2, "Được rồi, đi thôi.")
    expect(task.row(2).locator(".flag-text")).to_have_text(["No translation"])
    task.submit_and_wait()

    with app.app_context():
        translation = latest_translation(sample_id)
        assert translation.origin is Origin.HUMAN and translation.author_id == reviewer.id
        assert [s["translation"] for s in translation.sentences] == [
            "Anh ấy đi họp rồi.",
            "Được rồi, đi thôi.",
        ]
        assert [s.get("flags", []) for s in translation.sentences] == [[], ["empty_translation"]]
        transcript = latest_transcript(sample_id)
        assert [s["text"] for s in transcript.sentences] == [
            "Anh ấy đi meeting rồi.",
            "Okay let's go.",
        ]
        assert transcript.version == 1  # a translation review writes no transcript
        assert db.session.get(Sample, sample_id).translation_flag_count == 1


def test_markup_renders_as_text_and_others_are_kept_out(
    page, live_server, browser_log, reviewer, make_user, tmp_path
):
    app = live_server.app
    script = "<script>alert('x')</script> xin chào"
    rows = [
        {"start": 0.5, "end": 3.0, "text": script, "translation": "</script><b>x</b>", "flags": []},
        {"start": 3.5, "end": 4.5, "text": "câu hai", "translation": "", "flags": []},
    ]
    task_id, _ = new_task(app, tmp_path, reviewer.id, duration_s=5.0, rows=rows)
    intruder = make_user("intruder@example.org")
    login = LoginPage(page)
    login.sign_in(reviewer.email)
    task = TaskPage(page).open(task_id).wait_ready()

    expect(task.text_field(1)).to_have_value(script)
    first = task.row(1)
    expect(first.locator(".word").first).to_have_text("<script>alert('x')</script>")
    expect(first.locator(".translation-ro")).to_have_text("Translation: </script><b>x</b>")
    expect(page.locator("#editor b, #editor img, #messages img")).to_have_count(0)

    # Typed markup is saved and shown back as text too (fields, chips, the diff).
    payload = "<img src=x onerror=alert(document.domain)> câu hai"
    task.edit_sentence(2, payload)
    task.save()
    task.wait_saved()
    page.reload()
    task.wait_ready()
    expect(task.text_field(2)).to_have_value(payload)
    expect(page.locator(".diff")).to_contain_text("<img")
    expect(task.row(2).locator(".word").first).to_have_text("<img")
    expect(page.locator("#editor img, #editor b")).to_have_count(0)
    assert browser_log.dialogs == []

    # Another reviewer gets the 403 page for the task, its audio and its peaks.
    login.sign_out()
    login.sign_in(intruder.email)
    browser_log.allow(403, f"/tasks/{task_id}")
    answer = page.goto(f"/tasks/{task_id}")
    assert answer.status == 403
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    expect(page.locator("#review-app")).to_have_count(0)
    for suffix in ("/audio", "/peaks"):
        assert page.request.get(f"/tasks/{task_id}{suffix}").status == 403


def second_browser(browser, live_server, browser_log):
    """Another browser (its own cookies and storage), logged like the test's page."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    other = context.new_page()
    other.on("console", browser_log.on_console)
    other.on("pageerror", browser_log.on_page_error)
    other.on("response", browser_log.on_response)
    return context, other


def test_two_browsers_on_one_task_never_overwrite_each_other(
    page, browser, live_server, browser_log, reviewer, tmp_path
):
    """The same task open in two browsers: the first saves; the second's older autosave is
    refused, it says so and offers a reload, and its edits stay in that browser."""
    app = live_server.app
    task_id, _ = new_task(app, tmp_path, reviewer.id)
    browser_log.allow(409, "/draft")
    context, other = second_browser(browser, live_server, browser_log)
    LoginPage(page).sign_in(reviewer.email)
    LoginPage(other).sign_in(reviewer.email)
    first = TaskPage(page).open(task_id).wait_ready()
    second = TaskPage(other).open(task_id).wait_ready()

    first.edit_sentence(1, "sửa ở trình duyệt thứ nhất")
    first.wait_saved()
    second.edit_sentence(2, "sửa ở trình duyệt thứ hai")
    refused = second.message("blocked")
    expect(refused).to_be_visible()
    expect(refused).to_contain_text("Saved from another tab or browser")
    expect(refused.get_by_role("button", name="Reload this task")).to_be_visible()
    other.screenshot(path=str(tmp_path / "draft-conflict.png"), full_page=True)
    with app.app_context():
        draft = db.session.get(Assignment, task_id).draft
        assert draft["sentences"][0]["text"] == "sửa ở trình duyệt thứ nhất"
        assert draft["sentences"][1]["text"] != "sửa ở trình duyệt thứ hai"
    kept = other.evaluate(f"localStorage.getItem('review-task:{task_id}')")
    assert "sửa ở trình duyệt thứ hai" in kept  # nothing typed is lost
    context.close()


def test_a_browser_behind_another_cannot_submit_over_its_draft(
    page, browser, live_server, browser_log, reviewer, tmp_path
):
    """The second browser opened the task before the first saved: its Submit is refused,
    says why, and the first browser's draft is still the task's."""
    app = live_server.app
    task_id, _ = new_task(app, tmp_path, reviewer.id)
    browser_log.allow(409, "/submit")
    context, other = second_browser(browser, live_server, browser_log)
    LoginPage(page).sign_in(reviewer.email)
    LoginPage(other).sign_in(reviewer.email)
    first = TaskPage(page).open(task_id).wait_ready()
    second = TaskPage(other).open(task_id).wait_ready()
    first.edit_sentence(1, "sửa ở trình duyệt thứ nhất")
    first.wait_saved()
    second.button("Submit").click()
    refused = second.message("blocked")
    expect(refused).to_contain_text("Saved from another tab or browser")
    second.button("Submit").click()  # pressed again: told again, nothing sent
    expect(refused).to_be_visible()
    assert browser_log.statuses("/submit", "POST") == [409]
    with app.app_context():
        task = db.session.get(Assignment, task_id)
        assert task.status is AssignmentStatus.IN_PROGRESS
        assert task.draft["sentences"][0]["text"] == "sửa ở trình duyệt thứ nhất"
    context.close()


def test_a_double_click_on_submit_submits_once(page, live_server, browser_log, reviewer, tmp_path):
    app = live_server.app
    task_id, sample_id = new_task(app, tmp_path, reviewer.id)
    browser_log.allow(409, "/submit")
    LoginPage(page).sign_in(reviewer.email)
    task = TaskPage(page).open(task_id).wait_ready()
    task.edit_sentence(1, "một lần thôi")
    task.wait_saved()
    task.button("Submit").dblclick()
    expect(task.message("submitted")).to_be_visible()
    page.wait_for_url(re.compile(r"/\?submitted=1$"))
    with app.app_context():
        assert latest_transcript(sample_id).version == 2  # one revision, not two

"""The keyboard-first review page in a real browser: the transport keys inside and outside
text fields (and the text-editing keys they leave alone), keys rebound on the settings page
and found again in another browser, submit-and-next, split at the caret with each source of
its time, and a click on a word playing from it or selecting it."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from ra_app.core.models import TaskType, User, WordAlignment
from ra_app.core.revisions import latest_transcript
from ra_app.extensions import db

from ..review_helpers import assign, claim, make_review_sample
from .conftest import TASK_URL, TIMEOUT_MS, LoginPage, QueuePage, TaskPage, clock, seconds

expect = pytest.importorskip("playwright.sync_api", reason="e2e: no playwright package").expect
pytestmark = pytest.mark.e2e

# make_review_sample's machine transcript: "câu số {i} có laptop" at 0.5+4i … 3.5+4i s.
LAST_WORD = len("câu số 1 có ")


def new_task(app, tmp_path, user_id, **kw) -> tuple[str, str]:
    with app.app_context():
        sample = make_review_sample(tmp_path, **kw)
        assign(sample, user_id, TaskType.TRANSCRIPT_CORRECTION)
        return str(claim(user_id).id), str(sample.id)


def shortcut_panel(page) -> dict[str, str]:
    """The help panel as {what it does: its keys}."""
    return page.locator("#shortcuts-list dl").evaluate(
        """dl => Object.fromEntries([...dl.querySelectorAll("dt")].map(
            (dt) => [dt.nextElementSibling.textContent, dt.textContent]))"""
    )


def watch_keys(field) -> None:
    """Record, on the field itself, each keydown and whether the page took it over."""
    field.evaluate(
        """(field) => { window.keysSeen = [];
            field.addEventListener("keydown", (e) => window.keysSeen.push(
                {code: e.code, prevented: e.defaultPrevented})); }"""
    )


def click_word(page, task: TaskPage, n: int, key: str, modifier: str) -> None:
    """Click, holding `modifier`, on the word of sentence n's text field (where its coloured
    copy under the field is drawn)."""
    box = task.row(n).locator(f'.word[data-key="{key}"]').bounding_box()
    field = task.text_field(n).bounding_box()
    position = {"x": box["x"] - field["x"] + box["width"] / 2, "y": box["y"] - field["y"] + 8}
    task.text_field(n).click(position=position, modifiers=[modifier])


def test_transport_keys_work_in_text_and_leave_editing_alone(page, live_server, reviewer, tmp_path):
    app = live_server.app
    task_id, _ = new_task(app, tmp_path, reviewer.id)
    LoginPage(page).sign_in(reviewer.email)
    task = TaskPage(page).open(task_id).wait_ready()

    keys = shortcut_panel(page)
    assert keys["Play / pause"] == "Esc or Ctrl+Space"
    assert (keys["Back 2 s"], keys["Forward 2 s"]) == ("F1", "F2")
    assert (keys["Slower"], keys["Faster"]) == ("F3", "F4")
    assert keys["Loop the current sentence (on / off)"] == "Alt+O"
    assert keys["Submit and open the next task"] == "Ctrl+Enter"
    assert keys["Delete the sentence"] == "Alt+X"

    # Esc plays and pauses from inside a text field; resuming rewinds about a second.
    field = task.text_field(2)
    field.click()
    task.press("Escape")
    task.wait_audio("!audio.paused && audio.currentTime > 2.2")
    task.press("Escape")
    task.wait_audio("audio.paused")
    paused_at = task.audio("audio.currentTime")
    task.press("Escape")
    task.wait_audio(f"!audio.paused && audio.currentTime < {paused_at - 0.6}")
    task.press("Escape")
    task.wait_audio("audio.paused")
    expect(field).to_be_focused()

    # F1/F2 go back and forward 2 s, F3/F4 change the speed, still from the text field.
    # (The player's time: a seek while the audio is still loading is applied on play.)
    playhead = "window.reviewApp.player.now()"
    before = page.evaluate(f"() => {playhead}")
    task.press("F1")
    page.wait_for_function(f"() => Math.abs({playhead} - {max(0.0, before - 2)}) < 0.05")
    task.press("F2")
    task.press("F2")
    page.wait_for_function(f"() => Math.abs({playhead} - {max(0.0, before - 2) + 4}) < 0.05")
    task.press("F4")
    task.wait_audio("Math.abs(audio.playbackRate - 1.1) < 1e-6")
    task.press("F3")
    task.press("F3")
    task.wait_audio("Math.abs(audio.playbackRate - 0.9) < 1e-6")
    expect(page.locator("#speed-out")).to_have_text("0.90×")

    # Outside any text field the same keys do the same.
    page.evaluate("() => document.activeElement.blur()")
    task.press("F2")
    page.wait_for_function(f"() => Math.abs({playhead} - {max(0.0, before - 2) + 6}) < 0.05")
    task.press("Escape")
    task.wait_audio("!audio.paused")
    task.press("Escape")
    task.wait_audio("audio.paused")
    field.click()

    # Ctrl+←/→ move the caret a word inside text, and the playhead stays where it is.
    at = page.evaluate(f"() => {playhead}")
    watch_keys(field)
    field.press("End")
    task.press("Control+ArrowLeft")
    assert field.evaluate("(f) => f.selectionStart") == LAST_WORD
    task.press("Control+ArrowRight")
    assert field.evaluate("(f) => f.selectionStart") == len(field.input_value())
    # Alt+Backspace is the platform's own (a word on macOS): the sentence stays.
    task.press("Alt+Backspace")
    expect(task.rows()).to_have_count(5)
    assert page.evaluate(f"() => {playhead}") == at
    seen = page.evaluate("window.keysSeen")
    edits = [k for k in seen if k["code"] in ("ArrowLeft", "ArrowRight", "Backspace")]
    assert [k["code"] for k in edits] == ["ArrowLeft", "ArrowRight", "Backspace"]
    assert not any(k["prevented"] for k in edits), edits

    # Ctrl+R replays the current sentence (2: 4.5–7.5 s) from its start.
    task.press("Control+r")
    task.wait_audio("!audio.paused && audio.currentTime >= 4.5 && audio.currentTime < 7.6")
    task.press("Escape")
    task.wait_audio("audio.paused")

    # Alt+O loops it: past its end the playhead comes back to its start, until Alt+O again.
    page.evaluate(
        """() => { const audio = document.getElementById("audio"); window.loopWraps = 0;
            let last = audio.currentTime;
            audio.addEventListener("timeupdate", () => {
              if (audio.currentTime < last - 1) window.loopWraps += 1;
              last = audio.currentTime; }); }"""
    )
    task.press("F4")  # faster: the 3 s sentence comes round sooner
    task.press("F4")
    task.press("Alt+o")
    expect(task.button("Loop")).to_have_attribute("aria-pressed", "true")
    page.wait_for_function("() => window.loopWraps >= 1", timeout=TIMEOUT_MS)
    task.wait_audio("!audio.paused && audio.currentTime >= 4.4 && audio.currentTime < 7.6")
    task.press("Alt+o")
    expect(task.button("Loop")).to_have_attribute("aria-pressed", "false")
    task.press("Escape")


def test_rebound_keys_follow_the_reviewer_to_another_browser(
    page, browser, live_server, browser_log, reviewer, tmp_path
):
    app = live_server.app
    browser_log.allow(422, "/settings")  # the refused form comes back with its problem
    task_id, _ = new_task(app, tmp_path, reviewer.id)
    LoginPage(page).sign_in(reviewer.email)
    page.get_by_role("link", name="My settings").click()

    # Record F8 for play/pause; try Ctrl+← for the loop, which edits text: refused, and
    # the form comes back with what was typed.
    page.get_by_role("button", name="Record keys for Play / pause").click()
    page.keyboard.press("F8")
    expect(page.get_by_label("Play / pause", exact=True)).to_have_value("F8")
    page.get_by_role("button", name="Record keys for Loop the current sentence (on / off)").click()
    page.keyboard.press("Control+ArrowLeft")
    page.get_by_label("Rewind on resume (seconds; 0 = none)").fill("2")
    page.get_by_role("button", name="Save my settings").click()
    expect(page.get_by_role("alert")).to_contain_text("“Ctrl+←” edits text inside a field")
    expect(page.get_by_label("Play / pause", exact=True)).to_have_value("F8")
    expect(page.get_by_label("Rewind on resume (seconds; 0 = none)")).to_have_value("2")

    page.get_by_label("Loop the current sentence (on / off)", exact=True).fill("")
    page.get_by_role("button", name="Save my settings").click()
    expect(page.get_by_text("Your settings are saved")).to_be_visible()
    with app.app_context():
        saved = db.session.get(User, reviewer.id).preferences
        assert saved == {"keys": {"playPause": ["F8"]}, "rewind_s": 2.0}

    # Another browser, signed in afresh: F8 plays, Esc no longer does, the panel says so.
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    try:
        other = context.new_page()
        LoginPage(other).sign_in(reviewer.email)
        task = TaskPage(other).open(task_id).wait_ready()
        assert shortcut_panel(other)["Play / pause"] == "F8"
        expect(task.button("Play")).to_have_attribute("title", "Play / pause (F8)")
        task.text_field(1).click()
        task.press("Escape")
        other.wait_for_timeout(300)
        assert task.audio("audio.paused")
        task.press("F8")
        task.wait_audio("!audio.paused && audio.currentTime > 0.3")
        task.press("F8")
        task.wait_audio("audio.paused")
    finally:
        context.close()


def test_submit_opens_the_next_task_or_the_queue(page, live_server, reviewer, tmp_path):
    app = live_server.app
    with app.app_context():
        for freq in (300, 400):
            assign(make_review_sample(tmp_path, freq=freq, title=f"bài {freq}"), reviewer.id)
    LoginPage(page).sign_in(reviewer.email)
    task = QueuePage(page).start_next().wait_ready()
    first = page.url

    # Ctrl+Enter submits and lands on the next task, with the submit confirmed there.
    task.edit_sentence(1, "câu đầu tiên")
    with page.expect_response(lambda r: r.url.endswith("/submit")) as answer:
        task.press("Control+Enter")
    assert answer.value.status == 200
    assert answer.value.json()["next_url"].startswith("/tasks/")
    page.wait_for_url(lambda url: TASK_URL.search(url) and url != first)
    expect(
        page.get_by_text(re.compile(r"^Submitted: bài \d+, transcript correction"))
    ).to_be_visible()
    task.wait_ready()

    # With "Go back to my queue" chosen, the last submit returns to the queue instead.
    with app.app_context():
        db.session.get(User, reviewer.id).preferences = {"after_submit": "queue"}
        db.session.commit()
    page.reload()
    task.wait_ready()
    assert shortcut_panel(page)["Submit and go back to the queue"] == "Ctrl+Enter"
    task.submit_and_wait()
    expect(page.get_by_text("Nothing to review right now.")).to_be_visible()


def test_split_at_the_caret_and_play_from_a_word(page, live_server, reviewer, tmp_path):
    app = live_server.app
    task_id, sample_id = new_task(app, tmp_path, reviewer.id)
    with app.app_context():  # sentence 3 (8.5–11.5 s) was aligned word by word
        transcript = latest_transcript(sample_id)
        times = [(8.6, 8.9), (9.0, 9.3), (9.4, 9.6), (10.2, 10.5), (10.6, 11.3)]
        db.session.add_all(
            WordAlignment(
                sample_id=transcript.sample_id,
                transcript_revision_id=transcript.id,
                sentence_index=2,
                word_index=k,
                word=word,
                start_s=start,
                end_s=end,
            )
            for k, (word, (start, end)) in enumerate(
                zip("câu số 2 có laptop".split(), times, strict=True)
            )
        )
        db.session.commit()
    LoginPage(page).sign_in(reviewer.email)
    task = TaskPage(page).open(task_id).wait_ready()

    # The Split button splits where the caret was (not in the middle); with no word times
    # and the playhead elsewhere the time is an estimate, and shown as one.
    caret = len("câu số")
    task.text_field(1).click()
    task.text_field(1).evaluate(f"(f) => f.setSelectionRange({caret}, {caret})")
    task.row(1).get_by_role("button", name="Split at the caret").click()
    expect(task.rows()).to_have_count(6)
    assert task.sentence_texts()[:2] == ["câu số", "0 có laptop"]
    estimate = round(0.5 + 3.0 * caret / len("câu số 0 có laptop"), 3)
    expect(task.time_field(1, "end")).to_have_value(clock(estimate))
    expect(task.time_field(1, "end")).to_have_class(re.compile(r"\bestimate\b"))
    expect(page.locator("#toast")).to_contain_text("estimated from the text")

    # With the playhead inside the sentence, Alt+Enter splits at the playhead.
    task.text_field(3).click()  # sentence 2: 4.5–7.5 s
    page.evaluate("() => window.reviewApp.player.seek(6.25)")
    task.text_field(3).evaluate(f"(f) => f.setSelectionRange({caret}, {caret})")
    task.press("Alt+Enter")
    expect(task.rows()).to_have_count(7)
    # (The element settles on the audio frame nearest the seek: within 30 ms.)
    assert abs(seconds(task.time_field(3, "end").input_value()) - 6.25) < 0.03
    expect(task.time_field(3, "end")).not_to_have_class(re.compile(r"\bestimate\b"))

    # An aligned sentence splits between its words: "câu số 2 | có laptop" at 9.9 s.
    field = task.text_field(5)
    field.click()
    after_two = len("câu số 2")
    field.evaluate(f"(f) => f.setSelectionRange({after_two}, {after_two})")
    task.press("Alt+Enter")
    expect(task.time_field(5, "end")).to_have_value("0:09.90")
    expect(page.locator("#toast")).to_contain_text("between the aligned words")

    # Ctrl+click on a word in the text plays from it: "laptop" of sentence 6 (its aligned
    # time, 10.6 s) and, without word times, "laptop" of the last sentence (an estimate).
    click_word(page, task, 6, "laptop", "Control")
    task.wait_audio("!audio.paused && audio.currentTime >= 10.55 && audio.currentTime < 11.2")
    task.press("Escape")
    click_word(page, task, 8, "laptop", "Control")
    start = 16.5 + 3.0 * LAST_WORD / len("câu số 4 có laptop")
    task.wait_audio(
        f"!audio.paused && audio.currentTime >= {start - 0.05} && audio.currentTime < 19.5"
    )
    task.press("Escape")

    # The words are coloured by language in the text itself; Alt+L switches the word at the
    # caret (set by the reviewer, so marked manual).
    laptop = task.row(8).locator('.word[data-key="laptop"]')
    expect(laptop).to_have_attribute("data-lang", "en")
    task.text_field(8).press("End")
    task.press("Alt+l")
    expect(laptop).to_have_attribute("data-lang", "vi")
    expect(laptop).to_have_class(re.compile(r"\bmanual\b"))
    # Alt+click selects the word clicked, to be typed over.
    click_word(page, task, 8, "có", "Alt")
    page.keyboard.type("với")
    expect(task.text_field(8)).to_have_value("câu số 4 với laptop")
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(WordAlignment)) == 5


def test_undo_covers_typed_times_and_a_deleted_row_takes_its_problem(
    page, live_server, reviewer, tmp_path
):
    task_id, _ = new_task(live_server.app, tmp_path, reviewer.id)
    LoginPage(page).sign_in(reviewer.email)
    task = TaskPage(page).open(task_id).wait_ready()

    # A typed start time is undone in one step (Alt+Z), back to what it was.
    start = task.time_field(2, "start")
    start.fill("5.25")
    start.press("Tab")
    expect(start).to_have_value("0:05.25")  # typed in seconds, shown as the clock
    task.press("Alt+z")
    expect(task.time_field(2, "start")).to_have_value("0:04.50")
    expect(page.locator("#toast")).to_contain_text("Undone: edit the start of sentence 2")

    # An empty sentence stops the submit; deleting that sentence clears the message.
    task.edit_sentence(3, "")
    task.submit()
    problems = task.message("problems")
    expect(problems).to_contain_text("Sentence 3 is empty")
    task.text_field(3).click()
    task.press("Alt+x")
    expect(task.rows()).to_have_count(4)
    expect(problems).to_have_count(0)

"""An admin runs a batch from creation to approved work in the browser: build and assign
the batch, a reviewer in training corrects, a second reviewer listens and approves, and the
admin sees the decision in the batch's quality table and the sample's audit."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from ra_app.admin import uploads
from ra_app.core.models import (
    Assignment,
    AssignmentStatus,
    Decision,
    ReviewDecision,
    Role,
    Sample,
    User,
)
from ra_app.core.revisions import latest_transcript
from ra_app.extensions import db

from .. import audio
from ..review_helpers import make_review_sample
from ..workers import wait_for
from .conftest import LoginPage

expect = pytest.importorskip("playwright.sync_api", reason="e2e: no playwright package").expect
pytestmark = pytest.mark.e2e


def test_batch_to_approved_work(page, live_server, make_user, tmp_path):
    app = live_server.app
    boss = make_user("boss@example.com", Role.ADMIN)
    trainee = make_user("trainee@example.com")
    second = make_user("second@example.com")
    with app.app_context():
        db.session.get(User, trainee.id).in_training = True
        sample = make_review_sample(tmp_path, duration_s=6.0, title="buổi họp ngắn")
        sample_id = str(sample.id)

    # The admin builds the batch: the live count, two reviewers in a shared pool.
    login = LoginPage(page)
    login.sign_in(boss.email)
    page.goto("/admin/batches/new")
    expect(page.locator("#match-count")).to_have_text("1")
    page.get_by_label("Name").fill("Họp tháng 11")
    page.get_by_label("Assignment").select_option("pool")
    page.get_by_role("checkbox", name="trainee@example.com (in training)").check()
    page.get_by_role("checkbox", name="second@example.com").check()
    page.get_by_role("button", name="Create batch").click()
    expect(page.get_by_role("heading", name="Họp tháng 11")).to_be_visible()
    login.sign_out()

    # The trainee corrects a sentence and submits; in training, it goes to a second review.
    queue = login.sign_in(trainee.email)
    task = queue.start_next().wait_ready()
    task.edit_sentence(1, "câu số không có cái laptop")
    task.submit_and_wait()
    login.sign_out()

    # The second reviewer gets it; approval waits until the whole task has been heard.
    queue = login.sign_in(second.email)
    review = queue.start_next().wait_ready()
    expect(
        page.get_by_text(re.compile("Second review of work by trainee@example.com"))
    ).to_be_visible()
    assert review.sentence_text(1) == "câu số không có cái laptop"
    approve = page.locator("#approve")
    expect(approve).to_be_disabled()
    expect(approve).to_have_text(re.compile(r"play it all first: 0% heard"))
    review.press("Control+Enter")  # the shortcut obeys the same rule
    expect(review.message("not-heard")).to_contain_text("Play the whole task before approving")
    review.button("Play").click()
    expect(page.locator("#heard")).to_have_text("Heard all ✓", timeout=15_000)
    expect(approve).to_be_enabled()
    expect(approve).to_have_text("Approve")
    with page.expect_response(lambda r: r.url.endswith("/decide")) as answer:
        review.press("Control+Enter")
    assert answer.value.status == 200, answer.value.text()
    page.wait_for_url(re.compile(r"/\?submitted=1$"))
    expect(page.get_by_text(re.compile(r"^Approved: buổi họp ngắn"))).to_be_visible()
    login.sign_out()

    with app.app_context():
        original = db.session.scalar(
            sa.select(Assignment).where(
                Assignment.reviewer_id == trainee.id, Assignment.review_of_id.is_(None)
            )
        )
        assert original.status is AssignmentStatus.APPROVED
        decision = db.session.scalar(
            sa.select(ReviewDecision).where(ReviewDecision.decision == Decision.APPROVE)
        )
        assert decision.reviewer_id == second.id and decision.wer == 0.0
        assert latest_transcript(sample_id).sentences[0]["text"] == "câu số không có cái laptop"
        batch_id = original.batch_id

    # The admin sees the approval in the batch's quality table and in the sample's audit.
    login.sign_in(boss.email)
    page.goto(f"/admin/batches/{batch_id}")
    quality = page.get_by_role("table", name="Quality by reviewer")
    trainee_row = quality.get_by_role("row").filter(has_text="trainee@example.com")
    expect(trainee_row).to_contain_text("approve 1")
    page.goto(f"/admin/samples/{sample_id}")
    expect(page.get_by_role("table", name="Review tasks")).to_contain_text("approve")
    expect(page.get_by_role("table", name="Transcript revisions")).to_contain_text(
        "trainee@example.com"
    )


def test_the_admin_charts_show_the_tables_figures(page, live_server, make_user, tmp_path):
    """In the browser, every bar of the backlog chart reads its state's count in the table
    beside it, and the chart names the figures for screen readers."""
    app = live_server.app
    boss = make_user("boss@example.com", Role.ADMIN)
    with app.app_context():
        for freq in (300, 400):
            make_review_sample(tmp_path, duration_s=6.0, freq=freq, title=f"bài {freq}")
    LoginPage(page).sign_in(boss.email)
    expect(page.get_by_role("heading", name="Admin", exact=True)).to_be_visible()
    chart = page.locator('figure[data-chart="backlog"]')
    bars = chart.locator("g.bar").evaluate_all(
        "bars => bars.map((b) => [b.dataset.label, Number(b.dataset.value),"
        " b.querySelector('rect').getBoundingClientRect().width])"
    )
    table = page.get_by_role("table", name="Samples by processing state")
    for label, value, width in bars:
        cell = table.locator(f'td[data-state="{label.replace(" ", "_")}"]')
        expect(cell).to_have_text(str(int(value)))
        assert (width > 0) == (value > 0), (label, value, width)
    assert dict((label, value) for label, value, _ in bars)["transcribed"] == 2
    expect(chart.get_by_role("img")).to_have_accessible_name(re.compile(r"transcribed 2"))


def test_recordings_uploaded_in_the_browser_become_samples(
    page, live_server, make_user, io_worker, dispatcher, tmp_path, monkeypatch
):
    monkeypatch.setattr(uploads, "PART_BYTES", 64 * 1024)  # several parts per file
    boss = make_user("boss@example.com", Role.ADMIN)
    files = [
        audio.tone(tmp_path / "họp sáng.wav", seconds=5, freq=330, channels=1),
        audio.tone(tmp_path / "phỏng vấn.wav", seconds=3, freq=550, channels=1),
    ]
    LoginPage(page).sign_in(boss.email)
    page.get_by_role("link", name="Upload").click()
    expect(page.get_by_role("heading", name="Upload recordings")).to_be_visible()
    page.get_by_label("Recordings").set_input_files([str(f) for f in files])
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-status")).to_have_text("2 of 2 file(s) queued for ingest.")
    expect(page.locator("#upload-list li[data-state=queued]")).to_have_count(2)
    expect(page.get_by_label("họp sáng.wav sent")).to_have_attribute(
        "value", str(files[0].stat().st_size)
    )

    app = live_server.app

    def titles():
        with app.app_context():
            db.session.rollback()
            return sorted(db.session.scalars(sa.select(Sample.title)).all())

    wait_for(lambda: titles() == ["họp sáng", "phỏng vấn"], timeout=60, interval=0.5)

"""Skip and report in a real browser: a reviewer reports one recording unusable and gives
another back, each time moving straight on; an admin sees both reports and reverses one."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from ra_app.core.models import Assignment, AssignmentStatus, Sample
from ra_app.core.states import ProcessingState
from ra_app.extensions import db

from ..review_helpers import assign, make_review_sample
from .conftest import TASK_URL, LoginPage, QueuePage

expect = pytest.importorskip("playwright.sync_api", reason="e2e: no playwright package").expect
pytestmark = pytest.mark.e2e


def test_skip_and_unusable_then_an_admin_reverses(page, live_server, reviewer, admin, tmp_path):
    app = live_server.app
    with app.app_context():
        for freq, title in ((300, "bài nhạc"), (400, "bài khó")):
            assign(make_review_sample(tmp_path, freq=freq, title=title), reviewer.id)
    LoginPage(page).sign_in(reviewer.email)
    task = QueuePage(page).start_next().wait_ready()
    first = page.url

    # Unusable: music. The page moves on to the next task and says what happened.
    task.button("Skip or report…").click()
    panel = task.message("report")
    panel.get_by_label("Music").check()
    panel.get_by_label("A note for the admins (optional)").fill("karaoke")
    with page.expect_response(lambda r: r.url.endswith("/report")) as answer:
        panel.get_by_role("button", name="Report the audio unusable").click()
    assert answer.value.status == 200
    page.wait_for_url(lambda url: TASK_URL.search(url) and url != first)
    expect(page.get_by_text(re.compile(r"^Reported unusable \(music\)"))).to_be_visible()
    task.wait_ready()

    # Give back: a reason is needed; then back to the queue, where nothing is offered.
    task.button("Skip or report…").click()
    panel = task.message("report")
    panel.get_by_role("button", name="Give it back").click()
    expect(task.message("report-problem")).to_contain_text("Say why you give it back.")
    panel.get_by_label("Why you give it back").fill("Chủ đề y khoa, tôi không rành")
    panel.get_by_role("button", name="Give it back").click()
    page.wait_for_url(re.compile(r"/\?submitted=1$"))
    expect(page.get_by_text("Given back: someone else will take it.")).to_be_visible()
    expect(page.get_by_text("Nothing to review right now.")).to_be_visible()
    with app.app_context():
        music = db.session.scalar(sa.select(Sample).where(Sample.title == "bài nhạc"))
        assert music.processing_state is ProcessingState.DISCARDED
        hard = db.session.scalar(
            sa.select(Assignment).join(Sample).where(Sample.title == "bài khó")
        )
        assert hard.status is AssignmentStatus.PENDING and hard.reviewer_id is None

    # The admin sees both, and reverses the unusable one.
    LoginPage(page).sign_out()
    LoginPage(page).sign_in(admin.email)
    page.get_by_role("link", name="Reports").click()
    rows = page.get_by_role("table", name="Reports").locator("tbody tr")
    expect(rows).to_have_count(2)
    unusable = rows.filter(has_text="Unusable audio")
    expect(unusable).to_contain_text("Music: “karaoke”")
    expect(rows.filter(has_text="Given back")).to_contain_text("Chủ đề y khoa")
    unusable.get_by_role("button", name="Reverse").click()
    expect(page.get_by_text("Report reversed: bài nhạc is back in the queues.")).to_be_visible()
    expect(rows.filter(has_text="Unusable audio")).to_contain_text("reversed")
    with app.app_context():
        music = db.session.scalar(sa.select(Sample).where(Sample.title == "bài nhạc"))
        assert music.processing_state is ProcessingState.IN_REVIEW

"""The task page reads at a glance on a laptop screen: at 1280×720, with the player on top,
at least 8 sentences of ordinary length (with their translations) are in view, and the
diff panel and the shortcut list stay as the reviewer left them."""

from __future__ import annotations

import pytest

from ra_app.core.models import TaskType

from ..review_helpers import assign, claim, make_review_sample
from .conftest import LoginPage, TaskPage

expect = pytest.importorskip("playwright.sync_api", reason="e2e: no playwright package").expect
pytestmark = pytest.mark.e2e

SENTENCES = [
    (
        "Hôm nay mình sẽ review cái laptop mới của hãng này nha.",
        "Hôm nay mình sẽ đánh giá chiếc máy tính xách tay mới.",
    ),
    (
        "Màn hình rất sáng và cái keyboard gõ rất là sướng.",
        "Màn hình rất sáng và bàn phím gõ rất thích.",
    ),
    (
        "Nhưng mà giá hơi cao so với các bạn sinh viên.",
        "Nhưng giá hơi cao so với các bạn sinh viên.",
    ),
    (
        "Deadline của project là thứ sáu tuần này.",
        "Hạn chót của dự án là thứ sáu tuần này.",
    ),
    (
        "Anh ấy đang đi meeting với khách hàng ở quận một.",
        "Anh ấy đang họp với khách hàng ở quận một.",
    ),
    (
        "Let's check the report before lunch, okay?",
        "Hãy kiểm tra báo cáo trước bữa trưa nhé?",
    ),
    (
        "Team mình cần thêm hai người nữa cho phần backend.",
        "Nhóm mình cần thêm hai người nữa cho phần máy chủ.",
    ),
    (
        "Nếu thấy video hay thì nhớ subscribe kênh nhé.",
        "Nếu thấy video hay thì nhớ đăng ký kênh nhé.",
    ),
    (
        "Pin dùng được khoảng tám tiếng nếu làm việc văn phòng.",
        "Pin dùng được khoảng tám tiếng khi làm việc văn phòng.",
    ),
    (
        "Cuối cùng thì mình vẫn recommend cho mọi người.",
        "Cuối cùng thì mình vẫn khuyên mọi người nên mua.",
    ),
    (
        "Cảm ơn các bạn đã xem hết video này.",
        "Cảm ơn các bạn đã xem hết video này.",
    ),
    (
        "Hẹn gặp lại trong video tiếp theo nha.",
        "Hẹn gặp lại trong video tiếp theo nhé.",
    ),
]


def test_eight_sentences_in_view_at_1280x720(page, live_server, reviewer, tmp_path):
    app = live_server.app
    rows = [
        {"start": 0.5 + 4 * i, "end": 3.5 + 4 * i, "text": text, "translation": tr, "flags": []}
        for i, (text, tr) in enumerate(SENTENCES)
    ]
    with app.app_context():
        assign(make_review_sample(tmp_path, duration_s=50.0, rows=rows), reviewer.id)
        task_id = str(claim(reviewer.id, TaskType.TRANSCRIPT_CORRECTION).id)
    page.set_viewport_size({"width": 1280, "height": 720})
    LoginPage(page).sign_in(reviewer.email)
    task = TaskPage(page).open(task_id).wait_ready()
    expect(task.rows()).to_have_count(len(SENTENCES))

    # With the diff panel and the shortcut list open, working down the list (the page
    # scrolled so the first row sits under the sticky player), every sentence counted is
    # whole and visible.
    task.text_field(1).click()
    page.evaluate("() => document.querySelector('#editor li.row').scrollIntoView()")
    in_view = page.evaluate(
        """() => {
            const top = document.getElementById("player").getBoundingClientRect().bottom;
            return [...document.querySelectorAll("#editor li.row")].filter((li) => {
                const box = li.getBoundingClientRect();
                return box.top >= top - 1 && box.bottom <= window.innerHeight + 1;
            }).length; }"""
    )
    page.screenshot(path=str(tmp_path / "task-1280x720.png"))
    assert in_view >= 8, f"{in_view} sentences in view at 1280×720"

    # The diff panel and the shortcut list are open on a first visit; closed, they stay
    # closed after a reload.
    diff = page.locator("details.summary")
    expect(diff).to_have_attribute("open", "")
    page.locator("details.summary > summary").click()
    task.button("Shortcuts").click()
    page.reload()
    task.wait_ready()
    expect(diff).not_to_have_attribute("open", "")
    expect(page.get_by_role("heading", name="Keyboard shortcuts")).to_be_hidden()

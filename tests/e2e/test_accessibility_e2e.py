"""Every page passes axe-core (WCAG 2 A and AA, and axe's best practices), and every
button's label can be read: its text colour stands out from its background. axe leaves
that last one "to review" for some controls (a white-on-white sign-in button passed it),
so it is measured here directly.

axe-core comes from npm (package.json) and is injected into each page; the browser context
bypasses the page's Content-Security-Policy for that script only in these tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from ra_app.admin import batches
from ra_app.core.models import TaskType, User
from ra_app.extensions import db

from ..conftest import PASSWORD
from ..review_helpers import assign, claim, make_review_sample, segmented_sample
from .conftest import TIMEOUT_MS, LoginPage, TaskPage

expect = pytest.importorskip("playwright.sync_api", reason="e2e: no playwright package").expect
pytestmark = pytest.mark.e2e

AXE = Path(__file__).resolve().parents[2] / "node_modules/axe-core/axe.min.js"
RULES = ["wcag2a", "wcag2aa", "best-practice"]

# Contrast of each visible control's text against the first opaque background behind it
# (WCAG's relative luminance); the lowest ratio with the control that has it.
LABEL_CONTRAST = """() => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map((v) => {
    v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  }).reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0);
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || c[3] > 0) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const found = [];
  for (const el of document.querySelectorAll("button, input[type=submit], a")) {
    const box = el.getBoundingClientRect();
    const label = (el.value || el.textContent || "").trim();
    if (!box.width || !box.height || !label || el.disabled) continue;
    const [a, b] = [lum(rgb(getComputedStyle(el).color)), lum(background(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    found.push([Math.round(ratio * 100) / 100, label.slice(0, 40)]);
  }
  return found.filter(([ratio]) => ratio < 4.5);
}"""


@pytest.fixture
def open_page(browser, live_server, browser_log):
    """Pages in a context that lets axe's script in; console errors fail the test."""
    contexts = []

    def make():
        context = browser.new_context(
            base_url=live_server.url, viewport={"width": 1280, "height": 900}, bypass_csp=True
        )
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on("console", browser_log.on_console)
        page.on("pageerror", browser_log.on_page_error)
        return page

    yield make
    for context in contexts:
        context.close()
    assert not browser_log.errors, "\n".join(browser_log.errors)


def problems(page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        "async (rules) => (await axe.run(document, {runOnly: rules})).violations"
        ".map(v => `${v.id} (${v.impact}): ${v.nodes.length}× e.g. ${v.nodes[0].target}`)",
        RULES,
    )
    unreadable = page.evaluate(LABEL_CONTRAST)
    return found + [f"label contrast {ratio}:1 on {label!r}" for ratio, label in unreadable]


def check(page, path: str | None = None) -> None:
    if path:
        page.goto(path)
    page.wait_for_load_state("networkidle")
    assert problems(page) == [], page.url


def test_the_sign_in_pages_are_accessible(open_page, browser_log, reviewer):
    page = open_page()
    check(page, "/login")
    browser_log.allow(401, "/login")
    page.get_by_label("Email").fill(reviewer.email)
    page.get_by_label("Password", exact=True).fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Wrong email or password.")).to_be_visible()
    check(page)


def test_the_reviewers_pages_are_accessible(open_page, live_server, reviewer, tmp_path):
    app = live_server.app
    with app.app_context():
        for task_type, title in [
            (TaskType.TRANSCRIPT_CORRECTION, "bài một"),
            (TaskType.TRANSLATION_REVIEW, "bài hai"),
        ]:
            sample = make_review_sample(tmp_path, title=title, duration_s=12.0)
            assign(sample, reviewer.id, task_type)
        segmented = segmented_sample(tmp_path, 45.0, [0.0, 15.0, 30.0, 44.5])
        assign(segmented, reviewer.id, TaskType.AUDIO_SEGMENTATION)
        tasks = [claim(reviewer.id, t).id for t in TaskType]
    page = open_page()
    LoginPage(page).sign_in(reviewer.email, PASSWORD)
    check(page, "/")
    check(page, "/settings")
    for task_id, noun in zip(tasks, ["Sentence", "Sentence", "Segment"], strict=True):
        task = TaskPage(page, noun=noun).open(str(task_id)).wait_ready()
        expect(page.locator(".word.pending")).to_have_count(0)  # the server's tags are in
        check(page)
        task.row(1).click()
        check(page)  # a selected row shows its buttons
    task.button("Skip or report…").click()
    expect(page.get_by_role("heading", name="Skip or report this task")).to_be_visible()
    check(page)  # the skip-and-report panel


def test_the_admin_pages_are_accessible(open_page, live_server, admin, reviewer, tmp_path):
    app = live_server.app
    with app.app_context():
        sample_id = make_review_sample(tmp_path, duration_s=8.0).id
        batch_id = batches.create_batch(
            "Tháng 11",
            batches.Filters(),
            [db.session.get(User, reviewer.id)],
            mode="pool",
        ).id
    page = open_page()
    LoginPage(page).sign_in(admin.email, PASSWORD)
    for path in [
        "/admin/",
        "/admin/batches",
        "/admin/batches/new",
        f"/admin/batches/{batch_id}",
        "/admin/users",
        "/admin/pipeline",
        "/admin/samples",
        f"/admin/samples/{sample_id}",
        "/admin/quality",
        "/admin/lexicon",
        "/admin/reports",
        "/admin/uploads",
        "/admin/api-keys",
        "/",
        "/settings",
    ]:
        check(page, path)
    check(page, "/admin/api-keys")
    page.get_by_label("Name").fill("partner gateway")
    page.get_by_role("button", name="Make key").click()
    expect(page.get_by_role("heading", name="Key “partner gateway” made")).to_be_visible()
    check(page)  # the new key, shown once

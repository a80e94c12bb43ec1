"""Browser tests: the real app served by werkzeug in a thread of this process (so it sees the
test's Postgres database and the test can look at what the browser wrote), driven by
Debian's headless Chromium through Playwright, with small page objects for the pages.

Run: `.venv/bin/python -m pytest -q tests/e2e -p no:cacheprovider`. Without
/usr/bin/chromium (or the playwright package) every test here is skipped.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from werkzeug.serving import make_server

from ..conftest import PASSWORD

try:
    from playwright.sync_api import Locator, Page, expect, sync_playwright
except ImportError:  # the e2e tests are skipped below
    sync_playwright = None

CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
# Generous: the CI machine is shared, and a page that loads its audio under load can take
# several seconds. A passing test never waits this long.
TIMEOUT_MS = 20_000
TASK_URL = re.compile(r"/tasks/[0-9a-f-]{36}$")


@pytest.fixture(scope="session", autouse=True)
def _needs_chromium():
    if sync_playwright is None:
        pytest.skip("e2e: the playwright package is not installed (requirements-dev.txt)")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"e2e: no Chromium at {CHROMIUM} (apt-get install chromium)")


# --- the server ----------------------------------------------------------------------------


@dataclass
class LiveServer:
    url: str
    app: object

    def __call__(self, path: str = "/") -> str:
        return self.url + path


class InFlight:
    """Counts the requests being answered, so the server's teardown can wait for the last
    one (a draft the page saves as it closes) before the next test empties the tables."""

    def __init__(self, app):
        self.app = app
        self.count = 0
        self.idle = threading.Condition()

    def __call__(self, environ, start_response):
        with self.idle:
            self.count += 1
        try:
            yield from self.app(environ, start_response)
        finally:
            with self.idle:
                self.count -= 1
                self.idle.notify_all()

    def wait_idle(self, timeout: float) -> None:
        with self.idle:
            self.idle.wait_for(lambda: self.count == 0, timeout)


@pytest.fixture
def live_server(app):
    """The test's app (same Postgres database as the test) on a free port, in a thread."""
    in_flight = InFlight(app)
    server = make_server("127.0.0.1", 0, in_flight, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="e2e-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(f"http://127.0.0.1:{server.server_port}", app)
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()
        in_flight.wait_idle(10)


# --- the browser ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser(_needs_chromium):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        expect.set_options(timeout=TIMEOUT_MS)
        yield browser
        browser.close()


FAILED_LOAD = re.compile(r"Failed to load resource: the server responded with a status of (\d+)")


@dataclass
class BrowserLog:
    """Console errors, uncaught exceptions and dialogs of a test's pages. Every one fails
    the test at teardown unless allowed: `allow(409, "/submit")` accepts the console error
    Chromium logs for a fetch of a URL containing "/submit" answered 409."""

    base_url: str
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    # base.html links no icon, so Chromium's automatic /favicon.ico request is a 404 on
    # every page but the task page (which has <link rel="icon" href="data:,">).
    allowed: list[tuple[int, str]] = field(default_factory=list)
    responses: list[tuple[str, str, int, str]] = field(default_factory=list)

    def allow(self, status: int, path: str) -> None:
        self.allowed.append((status, path))

    def on_console(self, message) -> None:
        if message.type != "error":
            return
        url = (message.location or {}).get("url", "")
        found = FAILED_LOAD.search(message.text)
        if found and any(
            int(found.group(1)) == status and path in url for status, path in self.allowed
        ):
            return
        self.errors.append(f"console error: {message.text} ({url})")

    def on_page_error(self, error) -> None:
        self.errors.append(f"uncaught exception: {error}")

    def on_dialog(self, dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def on_response(self, response) -> None:
        request = response.request
        path = urlsplit(response.url).path
        self.responses.append((request.method, path, response.status, request.resource_type))

    def statuses(self, path_part: str, method: str = "GET") -> list[int]:
        return [s for m, p, s, _ in self.responses if m == method and path_part in p]


@pytest.fixture
def browser_log(live_server):
    return BrowserLog(live_server.url)


@pytest.fixture
def page(browser, live_server, browser_log):
    """A fresh browser context (own cookies and localStorage) per test."""
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 900}, locale="en-GB"
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.on("console", browser_log.on_console)
    page.on("pageerror", browser_log.on_page_error)
    page.on("dialog", browser_log.on_dialog)
    page.on("response", browser_log.on_response)
    yield page
    context.close()
    assert not browser_log.dialogs, f"dialogs opened: {browser_log.dialogs}"
    assert not browser_log.errors, "\n".join(browser_log.errors)


# --- page objects -----------------------------------------------------------------------------


def clock(seconds: float) -> str:
    """A time as the task page's time fields write it: m:ss.cc."""
    minutes, rest = divmod(round(seconds, 2), 60)
    return f"{int(minutes)}:{rest:05.2f}"


def seconds(text: str) -> float:
    """A time field's m:ss.cc back in seconds."""
    minutes, _, rest = text.rpartition(":")
    return int(minutes or 0) * 60 + float(rest)


class LoginPage:
    def __init__(self, page: Page):
        self.page = page

    def sign_in(self, email: str, password: str = PASSWORD) -> QueuePage:
        self.page.goto("/login")
        self.page.get_by_label("Email").fill(email)
        self.page.get_by_label("Password", exact=True).fill(password)
        self.page.get_by_role("button", name="Sign in").click()
        expect(self.page.get_by_text(f"{email} ·")).to_be_visible()
        return QueuePage(self.page)

    def sign_out(self) -> None:
        self.page.get_by_role("button", name="Sign out").click()
        expect(self.page.get_by_role("heading", name="Sign in")).to_be_visible()


class QueuePage:
    def __init__(self, page: Page):
        self.page = page

    def open(self) -> QueuePage:
        self.page.goto("/")
        return self

    def expect_shown(self) -> None:
        expect(self.page.get_by_role("heading", name="My queue")).to_be_visible()

    def start_next(self) -> TaskPage:
        self.page.get_by_role("button", name="Start next", exact=True).click()
        self.page.wait_for_url(TASK_URL)
        return TaskPage(self.page)


class TaskPage:
    """The review workspace of one task (all three task types)."""

    def __init__(self, page: Page, noun: str = "Sentence"):
        self.page = page
        self.noun = noun

    def open(self, task_id: str) -> TaskPage:
        self.page.goto(f"/tasks/{task_id}")
        return self

    def wait_ready(self) -> TaskPage:
        """The waveform is drawn and the audio element has data to play."""
        self.page.locator('body[data-review-ready="1"]').wait_for(state="attached")
        self.page.wait_for_function("() => document.getElementById('audio').readyState >= 2")
        return self

    # rows and fields
    def row(self, n: int) -> Locator:
        return self.page.get_by_role("listitem", name=f"{self.noun} {n}", exact=True)

    def rows(self) -> Locator:
        return self.page.get_by_role("listitem", name=re.compile(rf"^{self.noun} \d+$"))

    def text_field(self, n: int) -> Locator:
        return self.page.get_by_label(f"Sentence {n} text", exact=True)

    def translation_field(self, n: int) -> Locator:
        return self.page.get_by_label(f"Sentence {n} translation", exact=True)

    def time_field(self, n: int, side: str) -> Locator:
        return self.page.get_by_label(f"{self.noun} {n} {side}", exact=True)

    def sentence_text(self, n: int) -> str:
        return self.text_field(n).input_value()

    def sentence_texts(self) -> list[str]:
        return self.page.locator("#editor textarea.text").evaluate_all(
            "fields => fields.map((f) => f.value)"
        )

    def edit_sentence(self, n: int, text: str) -> None:
        self.text_field(n).fill(text)

    def edit_translation(self, n: int, text: str) -> None:
        self.translation_field(n).fill(text)

    # the status line, messages, buttons
    @property
    def status(self) -> Locator:
        return self.page.get_by_role("status")

    def status_text(self) -> str:
        return self.status.inner_text()

    def wait_saved(self) -> None:
        expect(self.status).to_have_text(re.compile(r"^Saved \d\d:\d\d:\d\d$"))

    def message(self, name: str) -> Locator:
        return self.page.locator(f'[data-message="{name}"]')

    def button(self, name: str) -> Locator:
        return self.page.get_by_role("button", name=name, exact=True)

    def save(self) -> None:
        self.button("Save").click()

    def submit(self) -> None:
        self.button("Submit").click()

    def submit_and_wait(self) -> None:
        """Submit, see the confirmation, and land back on the queue."""
        with self.page.expect_response(lambda r: r.url.endswith("/submit")) as answer:
            self.submit()
        assert answer.value.status == 200, answer.value.text()
        expect(self.message("submitted")).to_be_visible()
        self.page.wait_for_url(re.compile(r"/\?submitted=1$"))

    # the audio element
    def audio(self, expression: str):
        """Evaluate `expression` with `audio` bound to the page's <audio> element."""
        return self.page.evaluate(
            f"(() => {{ const audio = document.getElementById('audio'); return {expression}; }})()"
        )

    def wait_audio(self, condition: str) -> None:
        # A function, not an expression: Playwright polls an expression with eval, which
        # the page's Content-Security-Policy (script-src 'self') rightly refuses.
        self.page.wait_for_function(
            f"() => {{ const audio = document.getElementById('audio'); return {condition}; }}"
        )

    def press(self, keys: str) -> None:
        self.page.keyboard.press(keys)

"""The drill's reviewers: people working through the web app over HTTP as a browser does
(sign in, "Start next", autosave, submit), careless ones included: a double click on
Submit, the same task open in two tabs, pressing again after an error page.

Each reviewer remembers the tasks it saw submitted (a 200, or a 409 "already submitted"
after a retry): the drill checks every one of them is submitted in the database."""

from __future__ import annotations

import json
import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests

from ._support import sign_in

CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')
TASK_DATA = re.compile(r'<script id="task-data" type="application/json">(.*?)</script>', re.S)
TASK_URL = re.compile(r"/tasks/([0-9a-f-]{36})$")


class Retry(Exception):
    """The server could not answer (it, or its database, is restarting): try again."""


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    submitted: set = field(default_factory=set)  # task ids the reviewers saw submitted
    double_submits: int = 0
    double_submit_answers: list = field(default_factory=list)
    two_tab_conflicts: int = 0
    two_tab_attempts: int = 0
    retries: int = 0
    tasks: int = 0  # tasks taken, by all reviewers: every 4th double-clicked, 5th in 2 tabs
    errors: list = field(default_factory=list)

    def add(self, **counts) -> None:
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


class Reviewer:
    def __init__(self, base: str, email: str, password: str, truth: dict, tally: Tally):
        self.base, self.email, self.password = base, email, password
        self.truth = truth  # sample id -> the sentences as they were said
        self.tally = tally
        self.session = self.browser()

    def browser(self) -> requests.Session:
        session = requests.Session()
        self.call(lambda: sign_in(session, self.base, self.email, self.password))
        return session

    def call(self, request, attempts: int = 60):
        """Do `request()`, pressing again (after a pause) while the server cannot answer."""
        for _ in range(attempts):
            try:
                answer = request()
            except (requests.ConnectionError, requests.Timeout, RuntimeError):
                pass  # the server (or the sign-in page) could not answer
            else:
                if not isinstance(answer, requests.Response) or answer.status_code < 500:
                    return answer
            self.tally.add(retries=1)
            time.sleep(1.0)
        raise Retry(f"{self.email}: the server did not answer after {attempts} tries")

    def token(self, session=None) -> str:
        page = self.call(lambda: (session or self.session).get(self.base + "/", timeout=30))
        return CSRF.search(page.text).group(1)

    def post_json(self, url: str, body: dict, session=None, token=None):
        session = session or self.session
        headers = {"X-CSRFToken": token or self.token(session)}
        return self.call(
            lambda: session.post(self.base + url, json=body, headers=headers, timeout=60)
        )

    def next_task(self) -> tuple[str, dict] | None:
        token = self.token()
        answer = self.call(
            lambda: self.session.post(
                self.base + "/tasks/next", data={"csrf_token": token}, timeout=60
            )
        )
        found = TASK_URL.search(answer.url)
        if not found:
            return None  # back on the queue: nothing waiting
        return found.group(1), self.task_data(found.group(1))

    def task_data(self, task_id: str, session=None) -> dict:
        session = session or self.session
        page = self.call(lambda: session.get(f"{self.base}/tasks/{task_id}", timeout=60))
        return json.loads(TASK_DATA.search(page.text).group(1))

    def work(self, task_id: str, data: dict) -> None:
        """Correct the task, save a draft, submit (carelessly now and then)."""
        with self.tally.lock:
            self.tally.tasks += 1
            number = self.tally.tasks
        if data["task"]["type"] == "audio_segmentation":
            body = {"segments": [{"start": s["start"], "end": s["end"]} for s in data["segments"]]}
        else:
            body = {"sentences": self.corrected(data)}
        time.sleep(random.uniform(0.5, 1.5))  # listening, typing
        saved = self.post_json(
            f"/tasks/{task_id}/draft", {**body, "draft_version": data["draft_version"]}
        )
        if number % 5 == 0 and saved.status_code == 200:
            self.second_tab(task_id, body)
        url = f"/tasks/{task_id}/submit"
        if number % 4 == 0:
            self.double_submit(url, body)
        else:
            self.submit(url, body)

    def corrected(self, data: dict) -> list[dict]:
        """The machine's sentences with its mistakes fixed (the drill knows what was said)."""
        said = self.truth[data["sample"]["id"]]
        rows = []
        for row, truth in zip(data["sentences"], said, strict=False):
            rows.append({**row, "text": truth["text"]})
        return rows

    def second_tab(self, task_id: str, body: dict) -> None:
        """The same task open in another browser, which saves a draft it opened before the
        first one saved: refused, and told so."""
        other = self.browser()
        stale = self.task_data(task_id, other)["draft_version"] - 1
        answer = self.post_json(
            f"/tasks/{task_id}/draft", {**body, "draft_version": stale}, session=other
        )
        self.tally.add(two_tab_attempts=1)
        if answer.status_code == 409 and answer.json().get("error") == "draft_conflict":
            self.tally.add(two_tab_conflicts=1)

    def submit(self, url: str, body: dict) -> None:
        answer = self.post_json(url, body)
        self.record(url, answer)

    def double_submit(self, url: str, body: dict) -> None:
        token = self.token()
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda _: self.post_json(url, body, token=token), range(2)))
        self.tally.add(double_submits=1)
        with self.tally.lock:
            self.tally.double_submit_answers.append(sorted(a.status_code for a in answers))
        for answer in answers:
            self.record(url, answer)

    def record(self, url: str, answer) -> None:
        task_id = url.split("/")[2]
        error = answer.json().get("error") if answer.status_code != 200 else None
        if answer.status_code == 200 or error == "already_submitted":
            with self.tally.lock:
                self.tally.submitted.add(task_id)
        else:
            with self.tally.lock:
                self.tally.errors.append((task_id, answer.status_code, answer.text[:300]))

    def day(self, finished) -> None:
        """Take tasks until the pipeline has finished (`finished()`), waiting when none is
        there (segmentation tasks come after the pipeline has cut the reviewed samples)."""
        while not finished():
            try:
                task = self.next_task()
            except Retry as error:
                self.tally.errors.append(("next", 0, str(error)))
                continue
            if task is None:
                time.sleep(1.0)
                continue
            try:
                self.work(*task)
            except Retry as error:
                self.tally.errors.append((task[0], 0, str(error)))

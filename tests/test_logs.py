"""Logs: one JSON object a line in production, each with the request id or the task and
sample ids of its work, and no secret in any of them. The full run starts the real
processes (gunicorn, a Celery worker, the dispatcher, `flask ingest`) at DEBUG, drives a
recording from ingestion through Gemini (the fake server) to a submitted review over HTTP,
then reads every line they wrote for the configured secrets and the session cookies."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import uuid
from contextlib import ExitStack

import requests
import sqlalchemy as sa
from flask_migrate import upgrade

from ra_app.core import logs
from ra_app.core.models import JobRun, JobStatus, Role, Sample, User
from ra_app.core.revisions import latest_transcript, latest_translation
from ra_app.core.states import ProcessingState
from ra_app.extensions import db

from . import audio
from .conftest import PASSWORD, REDIS_URL, csrf_token_from, make_app
from .fake_gemini import KEY_1, KEY_2, FakeGemini, transcript_reply
from .test_metrics import free_port
from .workers import ROOT, wait_for, worker_process

DB_PASSWORD = "db-password-7731"
SECRET_KEY = "session-signing-key-" + "q" * 30
METRICS_TOKEN = "metrics-token-5519"


def test_each_line_is_redacted_tracebacks_included():
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    config = {
        "LOG_FORMAT": "json",
        "SECRET_KEY": SECRET_KEY,
        "GEMINI_API_KEYS": [KEY_1],
        "SQLALCHEMY_DATABASE_URI": f"postgresql://u:{DB_PASSWORD}@db/x",
    }
    logs.configure(config, stream=stream)
    try:
        log = logging.getLogger("tests.logs")
        with logs.bound(task_id="t-1", sample_id="s-1"):
            try:
                raise RuntimeError(f"refused key {KEY_1} for {DB_PASSWORD}")
            except RuntimeError:
                log.exception("calling with %s failed", KEY_1)
        log.warning("outside")
    finally:
        for handler in [h for h in root.handlers if getattr(h, "ours", False)]:
            root.removeHandler(handler)
        root.setLevel(level)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "calling with [redacted] failed"
    assert first["task_id"] == "t-1" and first["sample_id"] == "s-1" and first["level"] == "error"
    assert "RuntimeError: refused key [redacted] for [redacted]" in first["error"]
    assert "task_id" not in second  # the block's context ended with it
    assert KEY_1 not in stream.getvalue() and DB_PASSWORD not in stream.getvalue()


def test_secrets_are_hidden_as_a_url_encodes_them_and_as_json_escapes_them():
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    url = "postgresql://u:p%40ss%22w%5Crd-91@db/x"  # the password is p@ss"w\rd-91
    logs.configure({"LOG_FORMAT": "json", "SQLALCHEMY_DATABASE_URI": url}, stream=stream)
    try:
        logging.getLogger("tests.logs").warning('connecting with p@ss"w\\rd-91 to %s', url)
    finally:
        for handler in [h for h in root.handlers if getattr(h, "ours", False)]:
            root.removeHandler(handler)
        root.setLevel(level)
    line = stream.getvalue()
    assert "rd-91" not in line, line
    assert (
        json.loads(line)["message"]
        == "connecting with [redacted] to postgresql://u:[redacted]@db/x"
    )


def sign_in(base: str, email: str) -> requests.Session:
    session = requests.Session()
    token = csrf_token_from(session.get(base + "/login").text)
    signed = session.post(
        base + "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": token, "remember": "y"},
    )
    assert signed.ok and "Sign out" in signed.text, signed.status_code
    return session


def test_a_full_run_logs_no_secret(celery_app, empty_database, tmp_path):
    url = empty_database()
    app = make_app(url, tmp_path / "data")
    with app.app_context():
        upgrade()
        for email, role in (("admin@example.org", Role.ADMIN), ("rev@example.org", Role.REVIEWER)):
            user = User(email=email, role=role, is_active=True)
            user.set_password(PASSWORD)
            db.session.add(user)
        db.session.commit()
    fake = FakeGemini()
    rows = [
        {"start": 0.5, "end": 3.5, "text": "xin chào các bạn", "translation": "hello all"},
        {"start": 4.0, "end": 7.5, "text": "hôm nay học Python", "translation": "today: Python"},
    ]
    fake.responder = lambda request: transcript_reply(rows)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "APP_ENV": "development",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "DEBUG",
        "DATABASE_URL": url.replace(
            "postgresql+psycopg2://postgres@", f"postgresql://postgres:{DB_PASSWORD}@"
        ),
        "CELERY_BROKER_URL": REDIS_URL,
        "SECRET_KEY": SECRET_KEY,
        "METRICS_TOKEN": METRICS_TOKEN,
        "DATA_ROOT": str(tmp_path / "data"),
        "GEMINI_API_KEY_1": KEY_1,
        "GEMINI_API_KEY_2": KEY_2,
        "GEMINI_BASE_URL": fake.base_url,
        "GEMINI_REQUESTS_PER_MINUTE": "1000",
        "BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "web-metrics"),
        "FLASK_APP": "ra_app",
    }
    log_files = {
        name: tmp_path / f"{name}.log" for name in ("web", "worker", "dispatch", "ingest", "gemini")
    }
    recording = audio.tone(tmp_path / "talk.wav", seconds=9.0, freq=320, channels=1)
    cookies = []
    with ExitStack() as stack:
        stack.enter_context(
            worker_process(
                celery_app,
                env["DATABASE_URL"],
                REDIS_URL,
                tmp_path / "data",
                queues=("io", "cpu", "llm"),
                log_path=log_files["worker"],
                **{
                    k: env[k]
                    for k in (
                        "LOG_FORMAT",
                        "LOG_LEVEL",
                        "SECRET_KEY",
                        "GEMINI_API_KEY_1",
                        "GEMINI_API_KEY_2",
                        "GEMINI_BASE_URL",
                        "METRICS_TOKEN",
                        "GEMINI_REQUESTS_PER_MINUTE",
                    )
                },
            )
        )
        for name, command in (
            ("web", ["-m", "gunicorn", "-c", "gunicorn.conf.py", "ra_app:create_app()"]),
            ("dispatch", ["-m", "flask", "pipeline", "dispatch", "--poll", "0.2"]),
        ):
            out = stack.enter_context(open(log_files[name], "w"))
            process = subprocess.Popen(
                [sys.executable, *command], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
            stack.callback(process.wait, 30)
            stack.callback(process.terminate)
        stack.callback(fake.stop)
        for name, command in (
            ("ingest", ["ingest", "files", str(recording)]),
            ("gemini", ["pipeline", "run", "gemini", "--batch"]),
        ):
            with open(log_files[name], "w") as out:
                ran = subprocess.run(
                    [sys.executable, "-m", "flask", *command],
                    cwd=ROOT,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=120,
                )
            assert ran.returncode == 0, log_files[name].read_text()

        def transcribed():
            with app.app_context():
                sample = db.session.scalar(sa.select(Sample))
                db.session.remove()
                return sample and sample.processing_state is ProcessingState.TRANSCRIBED and sample

        sample = wait_for(transcribed, timeout=120, interval=0.3)
        wait_for(lambda: _up(base), timeout=60, interval=0.3)

        admin = sign_in(base, "admin@example.org")
        form = admin.get(base + "/admin/batches/new?state=transcribed").text
        with app.app_context():
            reviewer_id = db.session.scalar(sa.select(User.id).where(User.role == Role.REVIEWER))
        created = admin.post(
            base + "/admin/batches/new",
            data={
                "csrf_token": csrf_token_from(form),
                "name": "Logs",
                "state": "transcribed",
                "task_type": "transcript_correction",
                "mode": "even",
                "reviewer": str(reviewer_id),
                f"weight_{reviewer_id}": "1",
                "cap": "",
                "review_share": "0",
            },
        )
        assert created.ok and "Created batch" in created.text

        reviewer = sign_in(base, "rev@example.org")
        token = csrf_token_from(reviewer.get(base + "/").text)
        opened = reviewer.post(base + "/tasks/next", data={"csrf_token": token})
        task_id = opened.url.rstrip("/").rsplit("/", 1)[-1]
        with app.app_context():
            sentences = [dict(r) for r in latest_transcript(sample.id).sentences]
            for row, translated in zip(
                sentences, latest_translation(sample.id).sentences, strict=True
            ):
                row["translation"] = translated["translation"]
        sentences[0]["text"] = "xin chào tất cả các bạn"
        request_id = f"req-{uuid.uuid4().hex[:12]}"
        done = reviewer.post(
            base + f"/tasks/{task_id}/submit",
            json={"sentences": sentences},
            headers={"X-CSRFToken": token, "X-Request-ID": request_id},
        )
        assert done.status_code == 200, done.text
        assert done.headers["X-Request-ID"] == request_id
        scraped = requests.get(
            base + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
        )
        assert scraped.ok

        def segmented():
            with app.app_context():
                found = db.session.scalar(
                    sa.select(JobRun).where(
                        JobRun.stage == "segment", JobRun.status == JobStatus.SUCCEEDED
                    )
                )
                db.session.remove()
                return found

        wait_for(segmented, timeout=120, interval=0.3)
        for session in (admin, reviewer):
            cookies += [c.value for c in session.cookies]

    written = {name: path.read_text() for name, path in log_files.items()}
    everything = "\n".join(written.values())
    secrets = [KEY_1, KEY_2, SECRET_KEY, DB_PASSWORD, METRICS_TOKEN, PASSWORD, *cookies]
    assert len(cookies) >= 4  # a session and a remember-me cookie for each
    leaked = [s[:6] + "…" for s in secrets if s in everything]
    assert not leaked, f"secrets in the logs: {leaked}"

    lines = {
        name: [json.loads(x) for x in text.splitlines() if x.startswith("{")]
        for name, text in written.items()
    }
    assert len(lines["web"]) >= 10 and len(lines["worker"]) >= 10
    assert any(line.get("request_id") == request_id for line in lines["web"])
    stage_lines = [
        line for line in lines["worker"] if re.match(r"\w+ on .* succeeded in ", line["message"])
    ]
    assert {line["message"].split()[0] for line in stage_lines} >= {"ingest", "gemini", "segment"}
    assert all(
        line.get("task_id") and line.get("sample_id") == str(sample.id) for line in stage_lines
    )
    assert any(
        line["level"] == "debug" for line in lines["worker"]
    )  # DEBUG was on: still no secret


def _up(base: str) -> bool:
    try:
        requests.get(base + "/healthz", timeout=2)
        return True
    except requests.ConnectionError:
        return False

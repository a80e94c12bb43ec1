"""The HTTP API (/api/v1) against the real app on Postgres: keys made by the CLI and the
admin page, recordings sent by URL, file and YouTube id and carried by real Celery workers
on Redis through ingest and Gemini (the fake server), the signed webhook received on a
loopback server, the rate limit, the refusals, and the OpenAPI document validated."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa
from openapi_spec_validator import validate

from pipeline import dispatch, webhooks
from ra_app.core.models import (
    ApiKey,
    ApiSubmission,
    JobRun,
    JobStatus,
    OutboxMessage,
    Sample,
    Segment,
)
from ra_app.core.states import transition
from ra_app.extensions import db

from . import audio
from .conftest import csrf_token_from
from .fake_gemini import audio_dir as audio_dir  # noqa: F401  (fixture)
from .fake_gemini import fake as fake  # noqa: F401
from .fake_gemini import gemini_app as gemini_app  # noqa: F401
from .fake_gemini import transcript_reply
from .workers import wait_for
from .ytserver import fake_site as fake_site  # noqa: F401
from .ytserver import no_internet as no_internet  # noqa: F401

SENTENCES = [
    {"start": 0.2, "end": 1.4, "text": "Xin chào các bạn.", "translation": "Xin chào các bạn."},
    {
        "start": 1.6,
        "end": 2.8,
        "text": "Let's check the report.",
        "translation": "Hãy xem báo cáo.",
    },
]


def make_key(runner, *scopes: str) -> tuple[str, str]:
    args = ["api-keys", "create", "gateway"] + [f"--scope={s}" for s in scopes]
    result = runner.invoke(args=args)
    assert result.exit_code == 0, result.output
    key = re.search(r"key:\s+(rfk_\S+)", result.output).group(1)
    secret = re.search(r"webhook secret:\s+(whsec_\S+)", result.output).group(1)
    return key, secret


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


class Hooks:
    """A webhook receiver on loopback: answers the first `failures` calls with 500."""

    def __init__(self, failures: int = 0):
        self.calls: list[dict] = []
        self.failures = failures
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hooks.calls.append({"headers": dict(self.headers), "body": body})
                failing = len(hooks.calls) <= hooks.failures
                self.send_response(500 if failing else 204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hooks():
    receiver = Hooks(failures=1)
    yield receiver
    receiver.stop()


def test_openapi_document_is_valid_and_served_without_a_key(client):
    answer = client.get("/api/v1/openapi.json")
    assert answer.status_code == 200
    document = answer.get_json()
    validate(document)
    assert set(document["paths"]) == {"/recordings", "/recordings/{id}", "/openapi.json"}
    responses = document["paths"]["/recordings"]["post"]["responses"]
    assert {"202", "401", "403", "422", "429"} <= set(responses)


def test_no_key_a_wrong_key_a_revoked_key_and_a_missing_scope_are_refused(
    app, client, runner, auth, admin
):
    read_only, _ = make_key(runner, "read")
    submit_only, _ = make_key(runner, "submit")
    body = {"url": "http://127.0.0.1:9/a.wav"}
    assert client.post("/api/v1/recordings", json=body).status_code == 401
    missing = client.get("/api/v1/recordings/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = read_only[:-4] + "xxxx"
    assert client.post("/api/v1/recordings", json=body, headers=bearer(wrong)).status_code == 401
    refused = client.post("/api/v1/recordings", json=body, headers=bearer(read_only))
    assert refused.status_code == 403 and "'submit' scope" in refused.get_json()["message"]
    unreadable = client.get(
        "/api/v1/recordings/00000000-0000-0000-0000-000000000000", headers=bearer(submit_only)
    )
    assert unreadable.status_code == 403
    # The session is not the API's way in: a signed-in admin without a key is refused too.
    auth.login(admin.email)
    assert client.post("/api/v1/recordings", json=body).status_code == 401
    with app.app_context():
        key_id = db.session.scalar(sa.select(ApiKey.id).where(ApiKey.scopes == ["read"]))
    assert runner.invoke(args=["api-keys", "revoke", str(key_id)]).exit_code == 0
    gone = client.get(
        "/api/v1/recordings/00000000-0000-0000-0000-000000000000", headers=bearer(read_only)
    )
    assert gone.status_code == 401 and "revoked" in gone.get_json()["message"]
    listing = runner.invoke(args=["api-keys", "list"]).output
    assert "revoked" in listing and "live" in listing
    with app.app_context():  # only the hash is kept
        stored = db.session.scalars(sa.select(ApiKey.key_hash)).all()
        assert hashlib.sha256(submit_only.encode()).hexdigest() in stored
        assert submit_only not in stored


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({}, "url", "exactly one of url, youtube_id and file"),
        ({"url": "ftp://x/a.wav"}, "url", "http(s) address"),
        ({"url": "http://93.184.216.34/a.wav", "youtube_id": "abcdefghijk"}, "url", "exactly one"),
        ({"youtube_id": "short"}, "youtube_id", "11-character"),
        (
            {"url": "http://93.184.216.34/a.wav", "webhook_url": "mailto:a@b"},
            "webhook_url",
            "http(s)",
        ),
        (
            {"url": "http://93.184.216.34/a.wav", "external_id": "has space"},
            "external_id",
            "without spaces",
        ),
        ({"url": 5}, "url", "must be a string"),
        ({"url": "http://127.0.0.1:5432/"}, "url", "not one inside this network"),
        ({"url": "http://[::1]/a.wav"}, "url", "not one inside this network"),
        (
            {"url": "http://93.184.216.34/a.wav", "webhook_url": "http://169.254.169.254/x"},
            "webhook_url",
            "not one inside this network",
        ),
    ],
)
def test_bad_fields_are_422_naming_the_field(client, runner, body, field, says):
    key, _ = make_key(runner)
    answer = client.post("/api/v1/recordings", json=body, headers=bearer(key))
    assert answer.status_code == 422
    assert says in answer.get_json()["fields"][field]


def test_a_file_of_the_wrong_kind_and_a_body_that_is_not_an_object_are_422(client, runner):
    key, _ = make_key(runner)
    answer = client.post(
        "/api/v1/recordings",
        data={"file": (io.BytesIO(b"MZ"), "setup.exe")},
        headers=bearer(key),
    )
    assert answer.status_code == 422 and "audio or video" in answer.get_json()["fields"]["file"]
    answer = client.post(
        "/api/v1/recordings", data="[1]", content_type="application/json", headers=bearer(key)
    )
    assert answer.status_code == 422


def test_the_same_external_id_sent_twice_at_once_is_one_recording(app, runner):
    """A client retrying on a timeout while the first request is still in flight."""
    key, _ = make_key(runner)
    body = {"url": "http://93.184.216.34/talk.wav", "external_id": "order-99"}
    answers, start = [], threading.Barrier(2)

    def send():
        client = app.test_client()
        start.wait()
        answers.append(client.post("/api/v1/recordings", json=body, headers=bearer(key)))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(a.status_code for a in answers) == [200, 202]
    assert answers[0].get_json()["id"] == answers[1].get_json()["id"]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(ApiSubmission.id))) == 1
        assert (
            db.session.scalar(
                sa.select(sa.func.count(OutboxMessage.id)).where(
                    OutboxMessage.task_name == "pipeline.ingest.url"
                )
            )
            == 1
        )


def test_a_key_over_its_rate_gets_429_with_retry_after(app, client, runner):
    import redis

    from .conftest import REDIS_URL

    redis.Redis.from_url(REDIS_URL).flushdb()  # the shared limiter's counts
    app.config["API_RATE_PER_MINUTE"] = 3
    key, _ = make_key(runner)
    other, _ = make_key(runner)
    url = "/api/v1/recordings/00000000-0000-0000-0000-000000000000"
    assert [client.get(url, headers=bearer(key)).status_code for _ in range(3)] == [404] * 3
    refused = client.get(url, headers=bearer(key))
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert client.get(url, headers=bearer(other)).status_code == 404  # each key its own


def test_the_admin_page_makes_shows_once_lists_and_revokes_keys(app, client, auth, admin):
    auth.login(admin.email)
    page = client.get("/admin/api-keys")
    assert page.status_code == 200
    made = client.post(
        "/admin/api-keys",
        data={
            "csrf_token": csrf_token_from(page.text),
            "name": "partner gateway",
            "scopes": ["read"],
        },
    )
    assert made.status_code == 200
    key = re.search(r'value="(rfk_[^"]+)"', made.text).group(1)
    assert client.get("/admin/api-keys").text.count(key) == 0  # shown once
    listed = client.get("/admin/api-keys").text
    assert "partner gateway" in listed and key.split(".")[0] in listed
    answer = client.get(
        "/api/v1/recordings/00000000-0000-0000-0000-000000000000", headers=bearer(key)
    )
    assert answer.status_code == 404
    with app.app_context():
        key_id = db.session.scalar(sa.select(ApiKey.id))
    revoked = client.post(
        f"/admin/api-keys/{key_id}/revoke",
        data={"csrf_token": csrf_token_from(listed)},
        follow_redirects=True,
    )
    assert "revoked" in revoked.text
    answer = client.get(
        "/api/v1/recordings/00000000-0000-0000-0000-000000000000", headers=bearer(key)
    )
    assert answer.status_code == 401
    no_token = client.post("/admin/api-keys", data={"name": "x", "scopes": ["read"]})
    assert no_token.status_code == 400  # the admin page keeps CSRF


def test_a_reviewer_cannot_open_the_keys_page(client, auth, reviewer):
    auth.login(reviewer.email)
    assert client.get("/admin/api-keys").status_code == 403


def settled(app, timeout: float = 90.0) -> None:
    """No stage still running: the workers can stop (a run still going says which)."""

    def running():
        with app.app_context():
            return db.session.execute(
                sa.select(JobRun.stage, JobRun.subject).where(JobRun.status == JobStatus.RUNNING)
            ).all()

    try:
        wait_for(lambda: not running(), timeout=timeout, interval=0.2)
    except AssertionError:
        raise AssertionError(f"still running: {running()}") from None


@pytest.fixture
def io_llm_worker(celery_app):
    """One real Celery worker (in a thread) for the io and llm queues: ingest, then Gemini."""
    from .workers import thread_worker

    with thread_worker(celery_app, "io", "llm", concurrency=3) as worker:
        yield worker


def deliver_webhooks(app):
    with app.app_context():
        dispatch.queue_webhooks()


def test_a_recording_by_url_goes_through_ingest_and_gemini_and_its_webhook_is_told(
    gemini_app, fake, client, runner, io_llm_worker, dispatcher, fake_site, hooks, tmp_path
):
    app = gemini_app
    app.config.update(
        WEBHOOK_RETRY_SECONDS=0.2, API_RATE_PER_MINUTE=10_000, API_PRIVATE_ADDRESSES_ALLOWED=True
    )
    key, secret = make_key(runner)
    fake_site.add_video("vid00000001", "bài nói", "kênh", duration_s=3)
    url = fake_site.url(fake_site.media_path("vid00000001"))
    fake.queue(transcript_reply(SENTENCES))
    body = {"url": url, "external_id": "order-17", "webhook_url": hooks.url}
    first = client.post("/api/v1/recordings", json=body, headers=bearer(key))
    assert first.status_code == 202, first.get_json()
    recording = first.get_json()
    assert recording["state"] == "queued" and first.headers["Location"].endswith(recording["id"])
    again = client.post("/api/v1/recordings", json=body, headers=bearer(key))
    assert again.status_code == 200 and again.get_json()["id"] == recording["id"]

    def state():
        answer = client.get(f"/api/v1/recordings/{recording['id']}", headers=bearer(key))
        assert answer.status_code == 200, answer.get_json()
        return answer.get_json()

    done = wait_for(lambda: (s := state())["state"] == "transcribed" and s, timeout=120)
    assert [s["text"] for s in done["transcript"]["sentences"]] == [s["text"] for s in SENTENCES]
    assert [s["text"] for s in done["translation"]["sentences"]] == [
        s["translation"] for s in SENTENCES
    ]
    assert done["transcript"]["origin"] == "gemini" and done["segments"] is None

    deliver_webhooks(app)  # the first call is answered 500: tried again after its wait
    wait_for(lambda: len(hooks.calls) >= 1, timeout=30)
    wait_for(lambda: deliver_webhooks(app) or len(hooks.calls) >= 2, timeout=30, interval=0.3)
    failed, call = hooks.calls
    assert failed["headers"]["X-Event-Id"] == call["headers"]["X-Event-Id"]
    headers = call["headers"]
    expected = hmac.new(
        secret.encode(), headers["X-Timestamp"].encode() + b"." + call["body"], hashlib.sha256
    ).hexdigest()
    assert headers["X-Signature"] == f"sha256={expected}"
    told = json.loads(call["body"])
    assert told["event"] == "transcribed" and told["recording"]["id"] == recording["id"]
    assert told["recording"]["transcript"] == done["transcript"]
    with app.app_context():
        assert db.session.scalar(sa.select(ApiSubmission.notified)) == "transcribed"
        assert webhooks.deliver_due() == 0  # nothing new: nobody is called again
    assert len(hooks.calls) == 2

    # People review it and its segments (the review pages' own tests drive those): the
    # segments appear, and the webhook hears where the recording is now, once.
    with app.app_context():
        sample = db.session.get(Sample, uuid.UUID(done["sample_id"]))
        for target in ("in_review", "reviewed", "segmented", "segments_reviewed"):
            transition(sample, target)
        db.session.add(
            Segment(
                sample_id=sample.id,
                position=0,
                start_s=0.2,
                end_s=2.8,
                text="Xin chào các bạn. Let's check the report.",
                translation="Xin chào các bạn. Hãy xem báo cáo.",
            )
        )
        db.session.commit()
        assert webhooks.deliver_due() == 1
    reviewed = state()
    assert reviewed["state"] == "segments_reviewed"
    assert reviewed["segments"] == [
        {
            "start": 0.2,
            "end": 2.8,
            "text": "Xin chào các bạn. Let's check the report.",
            "translation": "Xin chào các bạn. Hãy xem báo cáo.",
        }
    ]
    last = json.loads(hooks.calls[-1]["body"])
    assert last["event"] == "segments_reviewed" and len(hooks.calls) == 3
    assert last["recording"]["segments"] == reviewed["segments"]
    settled(app)


def test_a_file_and_a_youtube_id_are_ingested_and_a_missing_url_fails_with_its_webhook(
    gemini_app, fake, client, runner, io_llm_worker, dispatcher, fake_site, hooks, tmp_path
):
    app = gemini_app
    app.config.update(
        YOUTUBE_WATCH_URL=fake_site.base_url + "/watch/{id}",
        WEBHOOK_RETRY_SECONDS=0.2,
        YTDLP_RETRIES=0,
        API_RATE_PER_MINUTE=10_000,
        API_PRIVATE_ADDRESSES_ALLOWED=True,  # the test servers are on loopback
    )
    key, _ = make_key(runner)
    fake.queue(transcript_reply(SENTENCES), transcript_reply(SENTENCES))
    wav = audio.tone(tmp_path / "phỏng vấn.wav", 3.0)
    with wav.open("rb") as handle:
        by_file = client.post(
            "/api/v1/recordings",
            data={"file": (handle, wav.name), "external_id": "file-1"},
            headers=bearer(key),
        )
    assert by_file.status_code == 202, by_file.get_json()
    fake_site.add_video("vid00000002", "video", "kênh", duration_s=3)
    by_id = client.post(
        "/api/v1/recordings", json={"youtube_id": "vid00000002"}, headers=bearer(key)
    )
    assert by_id.status_code == 202
    missing = client.post(
        "/api/v1/recordings",
        json={"url": fake_site.url("/media/nothing.wav"), "webhook_url": hooks.url},
        headers=bearer(key),
    )

    def state(answer):
        got = client.get(f"/api/v1/recordings/{answer.get_json()['id']}", headers=bearer(key))
        assert got.status_code == 200, got.get_json()
        return got.get_json()

    for answer in (by_file, by_id):
        done = wait_for(lambda a=answer: (s := state(a))["state"] == "transcribed" and s, 120)
        assert len(done["transcript"]["sentences"]) == 2
    assert state(by_file)["title"] == "phỏng vấn"
    failed = wait_for(lambda: (s := state(missing))["state"] == "failed" and s, timeout=60)
    assert "404" in failed["error"]
    wait_for(lambda: deliver_webhooks(app) or len(hooks.calls) >= 2, timeout=30, interval=0.3)
    assert json.loads(hooks.calls[-1]["body"])["event"] == "failed"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Sample.id))) == 2
    settled(app)

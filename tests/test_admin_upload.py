"""The admin's Upload page calls (ra_app/admin/uploads.py): a file sent in parts becomes a
sample through the real io worker; choosing it again resumes with only the missing parts;
finishing twice at once queues one ingest; wrong files, strangers, bad ids and calls without
the CSRF token are refused."""

from __future__ import annotations

import threading
import uuid

import pytest
import sqlalchemy as sa

from ra_app.admin import uploads
from ra_app.core.models import OutboxMessage, Role, Sample
from ra_app.extensions import db

from . import audio
from .conftest import PASSWORD, AuthActions
from .test_review_flow import page_token
from .workers import wait_for

PART = 64 * 1024


@pytest.fixture(autouse=True)
def small_parts(monkeypatch):
    monkeypatch.setattr(uploads, "PART_BYTES", PART)


def signed_in(app, email: str):
    client = app.test_client()
    AuthActions(client).login(email, PASSWORD)
    return client, {"X-CSRFToken": page_token(client, "/admin/uploads")}


def begin(client, headers, name: str, size: int, modified: int = 1700000000000):
    return client.post(
        "/admin/uploads",
        json={"name": name, "size": size, "modified": modified},
        headers=headers,
    )


def test_a_file_sent_in_parts_resumes_and_becomes_one_sample(
    app, admin, io_worker, dispatcher, tmp_path
):
    wav = audio.tone(tmp_path / "phỏng vấn.wav", seconds=3, freq=440, channels=1)
    data = wav.read_bytes()
    client, headers = signed_in(app, admin.email)

    first = begin(client, headers, wav.name, len(data)).get_json()
    parts = -(-len(data) // PART)
    assert parts > 2 and first["parts"] == parts and first["part_bytes"] == PART
    assert first["received"] == []
    url = f"/admin/uploads/{first['upload_id']}"

    def send(n: int):
        chunk = data[(n - 1) * PART : n * PART]
        return client.put(f"{url}/parts/{n}", data=chunk, headers=headers)

    assert send(parts).status_code == 200 and send(2).status_code == 200
    # The tab closed; the same file chosen again: the parts here are known.
    again = begin(client, headers, wav.name, len(data)).get_json()
    assert again["upload_id"] == first["upload_id"] and again["received"] == [2, parts]
    short = client.put(f"{url}/parts/1", data=data[:100], headers=headers)
    assert short.status_code == 400 and "100 bytes" in short.get_json()["error"]
    early = client.post(f"{url}/finish", headers=headers)
    assert early.status_code == 409 and "have not arrived" in early.get_json()["error"]
    for n in range(1, parts + 1):
        if n not in again["received"]:
            assert send(n).status_code == 200
    assert send(2).status_code == 200  # a part sent twice (a retry) is harmless

    # A double click on two tabs: both finish calls answer, one ingest is queued.
    other, other_headers = signed_in(app, admin.email)
    answers = []

    def finish(c, h):
        answers.append(c.post(f"{url}/finish", headers=h))

    threads = [
        threading.Thread(target=finish, args=(client, headers)),
        threading.Thread(target=finish, args=(other, other_headers)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].get_json() == answers[1].get_json()
    assert answers[0].get_json()["status"] == "queued"

    with app.app_context():
        sample = wait_for(lambda: db.session.scalar(sa.select(Sample)) or db.session.rollback())
        assert (
            sample.title == "phỏng vấn"
            and sample.checksum_sha256 == answers[0].get_json()["sha256"]
        )
        assert abs(sample.duration_s - 3.0) < 0.05
        queued = db.session.scalar(
            sa.select(sa.func.count()).where(OutboxMessage.task_name == "pipeline.ingest.recording")
        )
        assert queued == 1
    data_root = app.config["DATA_ROOT"]
    wait_for(lambda: not any((data_root / "uploads").rglob("*.wav")))  # removed once ingested
    assert not list((data_root / "tmp" / "uploads" / first["upload_id"]).glob("part-*"))
    # Chosen again after it is done: nothing is sent, it says so.
    done = begin(client, headers, wav.name, len(data)).get_json()
    assert done["finished"]["status"] == "queued"


def test_wrong_files_strangers_bad_ids_and_missing_tokens_are_refused(
    app, admin, reviewer, make_user
):
    client, headers = signed_in(app, admin.email)
    wrong = begin(client, headers, "notes.txt", 10)
    assert wrong.status_code == 400
    assert "notes.txt is not an audio or video file" in wrong.get_json()["error"]
    huge = begin(client, headers, "long.wav", app.config["UPLOAD_MAX_BYTES"] + 1)
    assert huge.status_code == 413
    assert client.post("/admin/uploads/..%2Fetc/finish", headers=headers).status_code == 404
    unknown = f"/admin/uploads/{uuid.uuid4().hex}/parts/1"
    assert client.put(unknown, data=b"x", headers=headers).status_code == 404
    url = f"/admin/uploads/{begin(client, headers, 'a.wav', 10).get_json()['upload_id']}"
    assert client.put(f"{url}/parts/1", data=b"x" * 10).status_code == 400  # the CSRF check
    assert client.put(f"{url}/parts/2", data=b"x", headers=headers).status_code == 400  # 1 part

    # Another admin cannot write into, or finish, this admin's upload.
    other_admin = make_user("boss2@example.org", Role.ADMIN)
    second, second_headers = signed_in(app, other_admin.email)
    assert second.put(f"{url}/parts/1", data=b"x" * 10, headers=second_headers).status_code == 404
    assert second.post(f"{url}/finish", headers=second_headers).status_code == 404

    stranger = app.test_client()
    AuthActions(stranger).login(reviewer.email, PASSWORD)
    token = {"X-CSRFToken": page_token(stranger)}
    assert stranger.get("/admin/uploads").status_code == 403
    assert begin(stranger, token, "a.wav", 10).status_code == 403
    assert app.test_client().get("/admin/uploads").status_code in (302, 401)

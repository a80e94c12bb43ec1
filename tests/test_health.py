"""/healthz and /readyz: no sign-in, no secrets, and each dependency that is down named by
its own failed check with a 503 (the broker unreachable, a wrong database URL, storage
that cannot be written, a schema behind the code)."""

from __future__ import annotations

import os

import pytest
from flask_migrate import upgrade

from config import celery_settings
from ra_app.extensions import db

from .conftest import make_app


def ready(app) -> tuple[int, dict]:
    answer = app.test_client().get("/readyz")
    return answer.status_code, answer.get_json()


def failed(body: dict) -> set[str]:
    return {name for name, check in body["checks"].items() if not check["ok"]}


def test_healthz_and_readyz_answer_without_sign_in(app):
    client = app.test_client()
    assert client.get("/healthz").get_json() == {"status": "ok"}
    status, body = ready(app)
    assert status == 200 and body["status"] == "ready", body
    assert set(body["checks"]) == {"database", "migrations", "broker", "storage"}
    assert body["checks"]["migrations"]["detail"].startswith("at head ")
    assert all(check["ms"] >= 0 for check in body["checks"].values())


def test_an_unreachable_broker_fails_its_check(database_url_for_session, tmp_path):
    app = make_app(
        database_url_for_session,
        tmp_path / "data",
        CELERY=celery_settings("redis://:s3cret@127.0.0.1:1/0"),
    )
    status, body = ready(app)
    assert status == 503 and failed(body) == {"broker"}, body
    assert "s3cret" not in str(body) and "127.0.0.1:1" not in str(body)


def test_a_wrong_database_fails_its_checks(tmp_path):
    app = make_app(
        "postgresql+psycopg2://postgres:hunter2@127.0.0.1:5432/no_such_database", tmp_path / "d"
    )
    status, body = ready(app)
    assert status == 503 and failed(body) == {"database", "migrations"}, body
    assert "hunter2" not in str(body) and "no_such_database" not in str(body)
    assert body["checks"]["database"]["detail"] == "OperationalError"
    queues = app.test_client().get("/readyz/queues")
    assert queues.status_code == 503
    assert queues.get_json() == {"status": "unknown", "error": "OperationalError"}
    scraped = app.test_client().get("/metrics")  # the processes' own figures still answer
    assert scraped.status_code == 200
    assert "review_installation_state_up 0.0" in scraped.get_data(as_text=True)


def test_storage_that_cannot_be_written_fails_its_check(database_url_for_session, tmp_path):
    app = make_app(database_url_for_session, tmp_path / "data")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    app.config["DATA_ROOT"] = blocker / "data"  # the disk went away: under a file, no folder
    status, body = ready(app)
    assert status == 503 and failed(body) == {"storage"}, body


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through a read-only mode")
def test_a_read_only_storage_folder_fails_its_check(database_url_for_session, tmp_path):
    folder = tmp_path / "data"
    app = make_app(database_url_for_session, folder)
    folder.chmod(0o555)
    try:
        status, body = ready(app)
        assert status == 503 and failed(body) == {"storage"}, body
    finally:
        folder.chmod(0o755)


def test_a_schema_behind_the_code_says_to_upgrade(empty_database, tmp_path):
    app = make_app(empty_database(), tmp_path / "data")
    with app.app_context():
        upgrade(revision="c3f5a8d2e1b4")  # behind the head
        db.engine.dispose()
    status, body = ready(app)
    assert status == 503 and failed(body) == {"migrations"}, body
    assert body["checks"]["migrations"]["detail"].startswith("at c3f5a8d2e1b4, head is ")
    assert body["checks"]["migrations"]["detail"].endswith("run flask db upgrade")

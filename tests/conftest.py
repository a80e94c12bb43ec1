"""Fixtures: a Postgres database per test session (created with `flask db upgrade`, dropped
after), an app per test, a client, a CLI runner, an `auth` helper and small factories."""

from __future__ import annotations

import os
import re
import uuid

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from config import TestConfig, celery_settings
from ra_app import create_app
from ra_app.core.models import Role, Sample, Source, SourceKind, User
from ra_app.core.states import ProcessingState
from ra_app.extensions import db

ADMIN_URL = os.environ.get(
    "TEST_DATABASE_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
PASSWORD = "correct horse battery"


def database_url(name: str) -> str:
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def create_database(name: str) -> str:
    engine = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return database_url(name)


def drop_database(name: str) -> None:
    engine = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture(scope="session")
def empty_database():
    """A factory of empty Postgres databases, all dropped at the end of the session."""
    names: list[str] = []

    def make() -> str:
        name = f"ra_test_{uuid.uuid4().hex[:12]}"
        names.append(name)
        return create_database(name)

    yield make
    for name in names:
        drop_database(name)


@pytest.fixture(scope="session")
def database_url_for_session(empty_database, tmp_path_factory):
    url = empty_database()
    migrate_app = make_app(url, tmp_path_factory.mktemp("data"))
    with migrate_app.app_context():
        upgrade()  # what `flask db upgrade` runs
        db.engine.dispose()
    return url


def make_app(db_url: str, data_root, **extra):
    class Config(TestConfig):
        SQLALCHEMY_DATABASE_URI = db_url
        DATA_ROOT = data_root
        CELERY = celery_settings(REDIS_URL)

    for key, value in extra.items():
        setattr(Config, key, value)
    return create_app(Config)


@pytest.fixture
def app(postgres_app):
    """The app on Postgres (a module about races overrides this to run on both databases)."""
    return postgres_app


@pytest.fixture
def postgres_app(database_url_for_session, tmp_path):
    app = make_app(database_url_for_session, tmp_path / "data")
    yield app
    empty_tables(app)


def empty_tables(app) -> None:
    """The session's shared database emptied for the next test. A connection a failed test
    left behind (a request thread still answering) is ended first rather than let it block
    or deadlock the TRUNCATE and fail every later test with it."""
    with app.app_context():
        db.session.remove()
        tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
        with db.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND state <> 'idle'"
                )
            )
            conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def csrf_token_from(html: str) -> str:
    match = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert match, "page has no CSRF token"
    return match.group(1)


class AuthActions:
    def __init__(self, client):
        self.client = client

    def csrf_token(self, path: str = "/login") -> str:
        return csrf_token_from(self.client.get(path).get_data(as_text=True))

    def login(self, email: str, password: str = PASSWORD, follow_redirects: bool = False):
        token = self.csrf_token()
        return self.client.post(
            "/login",
            data={"email": email, "password": password, "csrf_token": token},
            follow_redirects=follow_redirects,
        )

    def logout(self):
        token = self.csrf_token("/")
        return self.client.post("/logout", data={"csrf_token": token})


@pytest.fixture
def auth(client):
    return AuthActions(client)


@pytest.fixture
def make_user(app):
    def make(email: str, role: Role = Role.REVIEWER, password: str = PASSWORD, active=True) -> User:
        with app.app_context():
            user = User(email=email, role=role, is_active=active)
            user.set_password(password)
            db.session.add(user)
            db.session.commit()
            return db.session.get(User, user.id)

    return make


@pytest.fixture
def admin(make_user):
    return make_user("admin@example.org", Role.ADMIN)


@pytest.fixture
def reviewer(make_user):
    return make_user("reviewer@example.org", Role.REVIEWER)


@pytest.fixture
def make_sample(app):
    def make(state: ProcessingState = ProcessingState.INGESTED, duration_s: float = 60.0, **kw):
        with app.app_context():
            source = Source(kind=SourceKind.FILE, external_id=f"test/{uuid.uuid4()}.wav", info={})
            sample = Sample(
                source=source,
                title=kw.pop("title", "a test recording"),
                duration_s=duration_s,
                checksum_sha256=uuid.uuid4().hex + uuid.uuid4().hex,
                master_path="x/master.wav",
                rendition_path="x/audio.m4a",
                peaks_path="x/peaks.bin",
                processing_state=state,
                **kw,
            )
            db.session.add(sample)
            db.session.commit()
            return sample.id

    return make


@pytest.fixture
def celery_app(app):
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()  # no task left over from an earlier test
    return app.extensions["celery"]


@pytest.fixture
def io_worker(celery_app):
    """A real Celery worker (in a thread of this process) consuming the io queue."""
    from .workers import thread_worker

    with thread_worker(celery_app, "io") as worker:
        yield worker


@pytest.fixture
def dispatcher(app, celery_app):
    """The outbox dispatcher (`flask pipeline dispatch`) in a thread of the test process."""
    import threading

    from pipeline import dispatch

    stop = threading.Event()

    def loop():
        with app.app_context():
            dispatch.run(poll_s=0.2, sweep_s=3600, stop=stop)

    thread = threading.Thread(target=loop, name="test-dispatcher", daemon=True)
    thread.start()
    yield thread
    stop.set()
    thread.join(timeout=10)


@pytest.fixture
def gpu_worker_seen(app):
    """A worker consuming the gpu queue stamped itself (what `flask pipeline …` asks)."""
    from pipeline.workers import stamp

    with app.app_context():
        stamp("gpu-host@test", ["gpu"])


@pytest.fixture
def embedded_app(tmp_path):
    """The embedded mode as `scripts/run.sh` starts it: SQLite under the instance folder,
    tasks in-process, no broker (migrated with `flask db upgrade`)."""
    from ra_app.core.outbox import wait_idle

    app = make_app(
        f"sqlite:///{tmp_path / 'embedded.sqlite3'}",
        tmp_path / "data",
        CELERY=celery_settings(None),
    )
    with app.app_context():
        upgrade()
    yield app
    wait_idle(60)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(scope="module")
def s3_endpoint():
    """An S3 server on loopback (moto's), one per test module; tests make their own buckets."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()

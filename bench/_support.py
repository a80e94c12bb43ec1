"""What the web benchmarks share: a throwaway Postgres database, an app bound to it, the
app served by gunicorn on a free loopback port, signing in, and percentiles.

Nothing here is a benchmark itself; `bench.review_page`, `bench.claims` and `bench.web` use it.
"""

from __future__ import annotations

import math
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

from .common import RESULTS

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get(
    "BENCH_DATABASE_ADMIN_URL",
    os.environ.get(
        "TEST_DATABASE_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
    ),
)
PASSWORD = "bench horse battery staple"  # noqa: S105 (a throwaway database's users)
# Signs the benchmark's sessions; only the embedded SQLite runs without a key of its own.
BENCH_SECRET_KEY = "bench-secret-key-of-a-throwaway-installation"  # noqa: S105


# --- databases ---------------------------------------------------------------------------


def database_url(name: str) -> str:
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def create_database(prefix: str) -> tuple[str, str]:
    """A new empty Postgres database; returns (name, SQLAlchemy URL)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return name, database_url(name)


def drop_database(name: str) -> None:
    engine = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def make_app(db_url: str, data_root: Path, **extra):
    """The app on `db_url`, embedded Celery, no .env surprises; `extra` overrides config."""
    from config import Config, celery_settings
    from ra_app import create_app

    class BenchConfig(Config):
        SQLALCHEMY_DATABASE_URI = db_url
        DATA_ROOT = Path(data_root)
        CELERY = celery_settings(None)
        SECRET_KEY = BENCH_SECRET_KEY

    for key, value in extra.items():
        setattr(BenchConfig, key, value)
    return create_app(BenchConfig)


def migrate(app) -> None:
    """What `flask db upgrade` runs."""
    from flask_migrate import upgrade

    from ra_app.extensions import db

    with app.app_context():
        upgrade()
        db.engine.dispose()


def make_users(emails: list[str], role=None) -> list[int]:
    """Users with PASSWORD (inside an app context); one scrypt hash shared by all."""
    from ra_app.core.models import Role, User
    from ra_app.extensions import db

    template = User(email="x")
    template.set_password(PASSWORD)
    ids = []
    for email in emails:
        user = User(email=email, role=role or Role.REVIEWER, is_active=True)
        user.password_hash = template.password_hash
        db.session.add(user)
        db.session.flush()
        ids.append(user.id)
    db.session.commit()
    return ids


# --- the server --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    """`gunicorn -c gunicorn.conf.py "ra_app:create_app()"` on 127.0.0.1:<free port>, with
    the app's configuration from the environment, as production starts it."""

    def __init__(
        self,
        db_url: str,
        data_root: Path,
        log_path: Path,
        workers: int = 2,
        app_spec: str = "ra_app:create_app()",
        **env,
    ):
        self.app_spec = app_spec
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "SECRET_KEY")
        }
        self.env.update(
            APP_ENV="development",
            DATABASE_URL=db_url.replace("postgresql+psycopg2://", "postgresql://"),
            DATA_ROOT=str(data_root),
            BIND=f"127.0.0.1:{self.port}",
            WEB_CONCURRENCY=str(workers),
            SECRET_KEY=BENCH_SECRET_KEY,
            **env,
        )
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Gunicorn:
        gunicorn = Path(sys.executable).with_name("gunicorn")
        self.log = open(self.log_path, "ab")  # noqa: SIM115 (closed in __exit__)
        self.proc = subprocess.Popen(
            [str(gunicorn), "-c", "gunicorn.conf.py", self.app_spec],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_up()
        return self

    def wait_up(self, timeout: float = 60.0) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.proc.returncode}); see {self.log_path}")
            try:
                with urllib.request.urlopen(self.base + "/login", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer in {timeout:.0f} s; see {self.log_path}")

    def restart(self) -> None:
        """Kill and start again on a new port: drops requests still computing in a worker
        (a graceful stop would wait up to graceful_timeout for them)."""
        self.stop(hard=True)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env["BIND"] = f"127.0.0.1:{self.port}"
        self.__enter__()

    def stop(self, hard: bool = False) -> None:
        if self.proc and self.proc.poll() is None:
            if hard:
                os.killpg(self.proc.pid, signal.SIGKILL)  # our own session: master + workers
            else:
                self.proc.send_signal(signal.SIGTERM)  # the master stops its own workers
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()

    def __exit__(self, *exc) -> None:
        self.stop()


# --- signing in --------------------------------------------------------------------------

CSRF_META = re.compile(r'name="csrf-token" content="([^"]+)"')


def sign_in(session, base: str, email: str, password: str = PASSWORD) -> None:
    """Sign in through the /login form (CSRF token from the page) with a requests.Session."""
    page = session.get(base + "/login", timeout=30)
    match = CSRF_META.search(page.text)
    if not match:
        raise RuntimeError("the sign-in page has no CSRF token")
    answer = session.post(
        base + "/login",
        data={"email": email, "password": password, "csrf_token": match.group(1)},
        allow_redirects=False,
        timeout=30,
    )
    if answer.status_code != 302:
        raise RuntimeError(f"sign-in of {email} answered {answer.status_code}")


# --- figures -----------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(p / 100 * len(ordered))))
    return ordered[rank - 1]


def summary_ms(values_s: list[float]) -> dict:
    """p50/p95/p99/max of durations given in seconds, in ms."""
    ms = [v * 1000 for v in values_s]
    if not ms:
        return {"n": 0}
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 2),
        "p95_ms": round(percentile(ms, 95), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(max(ms), 2),
        "mean_ms": round(statistics.fmean(ms), 2),
    }


def write_markdown(name: str, text: str) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.md"
    path.write_text(text.rstrip() + "\n")
    print(f"written to {path}")
    return path

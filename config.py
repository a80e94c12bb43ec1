"""Configuration from the environment (and a `.env` file, if present).

Defaults give the embedded mode: a SQLite file under `instance/`, data under `./data`, and
Celery tasks executed in-process. Setting `DATABASE_URL=postgresql://…` and
`CELERY_BROKER_URL=redis://…` gives the production mode.
"""

from __future__ import annotations

import os
from pathlib import Path

from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent
load_dotenv(BASE_DIR / ".env")

# The embedded default's key: fine on a laptop, refused in production.
DEV_SECRET_KEY = "dev-only-not-secret"  # noqa: S105


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def env_int(name: str, default: int) -> int:
    return int(env(name, str(default)))


def env_float(name: str, default: float) -> float:
    return float(env(name, str(default)))


def database_url() -> str:
    url = env("DATABASE_URL")
    if not url:
        return f"sqlite:///{BASE_DIR / 'instance' / 'review.sqlite3'}"
    # Heroku-style URLs say postgres://, which SQLAlchemy no longer accepts.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            # SQLAlchemy 2.1 would pick psycopg 3 for a bare postgresql://; we ship psycopg2.
            url = "postgresql+psycopg2://" + url.removeprefix(prefix)
    return url


# The longest any task may run; the broker must not redeliver a task before this.
LONGEST_TASK_S = 3 * 3600


def celery_settings(broker_url: str | None) -> dict:
    """The one Celery settings block. No broker means embedded: tasks run in-process."""
    embedded = broker_url is None
    return {
        "broker_url": broker_url or "memory://",
        "result_backend": env("CELERY_RESULT_BACKEND", broker_url) if broker_url else None,
        "task_always_eager": embedded,
        # In-process tasks keep their failure in the result, as a worker's would, so one
        # bad file in a batch is reported in the summary instead of stopping the batch.
        "task_eager_propagates": False,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        # A task is acknowledged after it finishes, and a worker lost mid-task means the
        # task is delivered again: stages are idempotent, so a redelivery finishes once.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_soft_time_limit": env_int("CELERY_TASK_SOFT_TIME_LIMIT", 3600),
        "task_time_limit": env_int("CELERY_TASK_TIME_LIMIT", 3600 + 300),
        # Redis redelivers unacknowledged tasks after the visibility timeout (default one
        # hour); it must be longer than the longest task, or a long task runs twice.
        "broker_transport_options": {"visibility_timeout": 2 * LONGEST_TASK_S},
        "result_expires": 7 * 24 * 3600,
        "worker_send_task_events": True,
        "broker_connection_retry_on_startup": True,
    }


class Config:
    SECRET_KEY = env("SECRET_KEY", DEV_SECRET_KEY)
    SQLALCHEMY_DATABASE_URI = database_url()
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    DATA_ROOT = Path(env("DATA_ROOT", str(BASE_DIR / "data"))).resolve()
    PRODUCTION = False
    CELERY = celery_settings(env("CELERY_BROKER_URL"))

    # Sessions: the cookie is never readable from scripts and never sent cross-site.
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    WTF_CSRF_TIME_LIMIT = None  # a token lives as long as the session; reviews take hours

    # S3-compatible storage for archives to ingest; all four set = S3 backend.
    S3_ENDPOINT = env("S3_ENDPOINT")
    S3_ACCESS_KEY = env("S3_ACCESS_KEY")
    S3_SECRET_KEY = env("S3_SECRET_KEY")
    S3_BUCKET = env("S3_BUCKET")

    # Ingestion: the shortest clip worth reviewing; yt-dlp's network patience.
    MIN_CLIP_SECONDS = env_float("MIN_CLIP_SECONDS", 1.0)
    YTDLP_SOCKET_TIMEOUT = env_float("YTDLP_SOCKET_TIMEOUT", 30.0)
    YTDLP_RETRIES = env_int("YTDLP_RETRIES", 10)

    # Review: long recordings are cut into windows so several people can work on one; a
    # claimed task is held this long after the reviewer's last activity.
    REVIEW_WINDOW_SECONDS = env_int("REVIEW_WINDOW_SECONDS", 300)
    REVIEW_LEASE_SECONDS = env_int("REVIEW_LEASE_SECONDS", 30 * 60)
    SEGMENT_MIN_SECONDS = env_float("SEGMENT_MIN_SECONDS", 10.0)
    SEGMENT_MAX_SECONDS = env_float("SEGMENT_MAX_SECONDS", 30.0)

    # Sign-in throttling: after this many wrong passwords the account is locked a while.
    LOGIN_MAX_FAILURES = env_int("LOGIN_MAX_FAILURES", 5)
    LOGIN_LOCK_SECONDS = env_int("LOGIN_LOCK_SECONDS", 15 * 60)

    # Stage claims: running stages heart-beat every quarter of this; a dead worker's claim
    # can be taken over once it has gone this long without a beat.
    JOB_LEASE_SECONDS = env_int("JOB_LEASE_SECONDS", 120)


class DevConfig(Config):
    """The embedded default: SQLite, in-process tasks, the development key."""


class ProdConfig(Config):
    PRODUCTION = True
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True

    @classmethod
    def check(cls) -> None:
        if cls.SECRET_KEY in (None, DEV_SECRET_KEY) or len(cls.SECRET_KEY) < 32:
            raise RuntimeError(
                "Production needs a real SECRET_KEY (32+ random characters), e.g. "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`."
            )


class TestConfig(Config):
    TESTING = True
    SECRET_KEY = "test-secret-key"  # noqa: S105
    LOGIN_LOCK_SECONDS = 60


def config_from_env() -> type[Config]:
    """Production when asked for, or when both production services are configured."""
    app_env = env("APP_ENV")
    if app_env == "production":
        return ProdConfig
    if app_env == "development":
        return DevConfig
    if env("DATABASE_URL", "").startswith("postgres") and env("CELERY_BROKER_URL"):
        return ProdConfig
    return DevConfig

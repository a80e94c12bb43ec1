"""Configuration from the environment (and a `.env` file, if present).

Defaults give the embedded mode: a SQLite file under `instance/`, data under `./data`, and
Celery tasks executed in-process. Production (`APP_ENV=production`, and any installation
whose DATABASE_URL is not the embedded SQLite) needs Postgres, a broker and a real
SECRET_KEY, and refuses to start without them: a missing setting never opens the app with
development defaults.
"""

from __future__ import annotations

import os
from pathlib import Path

from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent
load_dotenv(BASE_DIR / ".env")


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def env_int(name: str, default: int) -> int:
    return int(env(name, str(default)))


def env_float(name: str, default: float) -> float:
    return float(env(name, str(default)))


def env_switch(name: str, default: str) -> str:
    """on | off | auto from the usual spellings (1/0, true/false, yes/no, on/off)."""
    value = (env(name, default) or default).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return "on"
    if value in ("0", "false", "no", "off"):
        return "off"
    if value == "auto":
        return "auto"
    raise RuntimeError(f"{name} must be on, off or auto, not {value!r}")


def is_sqlite(url: str | None) -> bool:
    return not url or url.startswith("sqlite")


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


def engine_options(url: str) -> dict:
    if is_sqlite(url):
        # The embedded mode's background sender writes beside the requests: wait for the
        # file's write lock instead of failing at once.
        return {"connect_args": {"timeout": 30}}
    return {"pool_pre_ping": True}


class Config:
    # Unset: the embedded mode makes a random key per installation (instance/secret_key);
    # anything else must set one (ra_app/security.py).
    SECRET_KEY = env("SECRET_KEY")
    SQLALCHEMY_DATABASE_URI = database_url()
    # SQLALCHEMY_ENGINE_OPTIONS: set by create_app from the URI (engine_options)
    DATA_ROOT = Path(env("DATA_ROOT", str(BASE_DIR / "data"))).resolve()
    PRODUCTION = False
    CELERY = celery_settings(env("CELERY_BROKER_URL"))

    # Sessions: the cookie is never readable from scripts and never sent cross-site.
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    WTF_CSRF_TIME_LIMIT = None  # a token lives as long as the session; reviews take hours
    # Requests larger than this are refused (413) before anything reads them.
    MAX_CONTENT_LENGTH = env_int("MAX_CONTENT_LENGTH", 16 * 1024 * 1024)
    # Proxies in front of the app that set X-Forwarded-For/-Proto (the HTTPS proxy: 1).
    # 0 trusts none: behind a proxy, sign-in limits would count every client as one.
    FORWARDED_PROXIES = env_int("FORWARDED_PROXIES", 0)

    # Where media lives (ra_app/core/media_store.py): "local" (files under DATA_ROOT, one
    # host or a shared disk) or "s3" (the bucket below; hosts share no disk).
    STORAGE_BACKEND = env("STORAGE_BACKEND", "local")
    # With s3, the browser gets audio by a redirect to a presigned URL of this lifetime
    # ("redirect"; the page's media-src then names the bucket) or through the web ("stream").
    # A redirect's URL is signed for S3_PUBLIC_ENDPOINT (what browsers reach; unset: S3_ENDPOINT)
    # and lasts a review session: the browser reuses it for every seek.
    AUDIO_DELIVERY = env("AUDIO_DELIVERY", "stream")
    PRESIGNED_URL_SECONDS = env_int("PRESIGNED_URL_SECONDS", 4 * 3600)
    S3_PUBLIC_ENDPOINT = env("S3_PUBLIC_ENDPOINT")
    # The S3-compatible bucket: media with STORAGE_BACKEND=s3, and archives to ingest.
    S3_ENDPOINT = env("S3_ENDPOINT")
    S3_ACCESS_KEY = env("S3_ACCESS_KEY")
    S3_SECRET_KEY = env("S3_SECRET_KEY")
    S3_BUCKET = env("S3_BUCKET")
    S3_PREFIX = env("S3_PREFIX", "")  # this installation's keys live under it in the bucket
    # A worker host's bounded cache of storage objects (ra_app/core/media_cache.py).
    MEDIA_CACHE_DIR = env("MEDIA_CACHE_DIR")
    MEDIA_CACHE_MAX_GB = env_float("MEDIA_CACHE_MAX_GB", 50.0)

    # The admin's Upload page: the largest file it takes (sent in parts under the limit above).
    UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", 8 * 1024**3)
    # The HTTP API (/api/v1): requests per minute per key; where a YouTube id is fetched
    # from ({id} is the id); webhook calls: seconds to answer, attempts before giving up
    # (their waits double from 30 s).
    API_RATE_PER_MINUTE = env_int("API_RATE_PER_MINUTE", 120)
    YOUTUBE_WATCH_URL = env("YOUTUBE_WATCH_URL", "https://www.youtube.com/watch?v={id}")
    WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 10)
    WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 8)
    WEBHOOK_RETRY_SECONDS = env_float("WEBHOOK_RETRY_SECONDS", 30.0)
    # A url or webhook_url that points inside the installation's network (loopback, private,
    # link-local) is refused unless this is on (a gateway on the same private network).
    API_PRIVATE_ADDRESSES_ALLOWED = env_switch("API_PRIVATE_ADDRESSES_ALLOWED", "off") == "on"
    # `flask sync`: the DVC remote (a folder, s3://bucket/prefix with the S3_* settings, or
    # gdrive://folder-id) and this machine's name there (default: the host name).
    SYNC_REMOTE = env("SYNC_REMOTE")
    SYNC_MACHINE = env("SYNC_MACHINE")
    # Ingestion: the shortest clip worth reviewing; yt-dlp's network patience.
    MIN_CLIP_SECONDS = env_float("MIN_CLIP_SECONDS", 1.0)
    YTDLP_SOCKET_TIMEOUT = env_float("YTDLP_SOCKET_TIMEOUT", 30.0)
    YTDLP_RETRIES = env_int("YTDLP_RETRIES", 10)

    # Review: long recordings are cut into windows so several people can work on one; a
    # claimed task is held this long after the reviewer's last activity.
    REVIEW_WINDOW_SECONDS = env_int("REVIEW_WINDOW_SECONDS", 300)
    REVIEW_LEASE_SECONDS = env_int("REVIEW_LEASE_SECONDS", 30 * 60)
    # A second reviewer approves only after playing this share of the task's audio.
    REVIEW_LISTEN_REQUIRED = env_float("REVIEW_LISTEN_REQUIRED", 0.98)
    # The player's fastest speed: no more can have been heard than the time since the task
    # was claimed at this speed.
    REVIEW_MAX_PLAYBACK_RATE = env_float("REVIEW_MAX_PLAYBACK_RATE", 2.0)
    SEGMENT_MIN_SECONDS = env_float("SEGMENT_MIN_SECONDS", 10.0)
    SEGMENT_MAX_SECONDS = env_float("SEGMENT_MAX_SECONDS", 30.0)
    # A single sentence longer than the maximum may be one segment, up to this long.
    SEGMENT_LONG_MAX_SECONDS = env_float("SEGMENT_LONG_MAX_SECONDS", 60.0)

    # Gemini (the `gemini` and `gemini_repair` stages on the llm queue).
    # Keys GEMINI_API_KEY_1…N, tried in order; a key out of quota (429) rests a while.
    GEMINI_API_KEYS = [
        os.environ[f"GEMINI_API_KEY_{i}"].strip()
        for i in range(1, 101)
        if os.environ.get(f"GEMINI_API_KEY_{i}", "").strip()
    ]
    GEMINI_MODEL = env("GEMINI_MODEL", "gemini-2.5-flash")
    GEMINI_BASE_URL = env("GEMINI_BASE_URL")  # a gateway or proxy; unset = Google's endpoint
    GEMINI_API_VERSION = env("GEMINI_API_VERSION", "v1beta")
    GEMINI_TIMEOUT_SECONDS = env_float("GEMINI_TIMEOUT_SECONDS", 600.0)  # one HTTP request
    # Each API key gets at most this many generateContent calls a minute, all workers
    # together (counted in Redis): keys from different projects add up their quotas.
    GEMINI_REQUESTS_PER_MINUTE = env_int("GEMINI_REQUESTS_PER_MINUTE", 10)
    GEMINI_RATE_LIMIT_MAX_WAIT_SECONDS = env_float("GEMINI_RATE_LIMIT_MAX_WAIT_SECONDS", 300.0)
    # 5xx answers and timeouts are retried this many times in the task (backoff doubling
    # from GEMINI_BACKOFF_SECONDS) before the task itself is retried later.
    GEMINI_RETRIES = env_int("GEMINI_RETRIES", 2)
    GEMINI_BACKOFF_SECONDS = env_float("GEMINI_BACKOFF_SECONDS", 2.0)
    GEMINI_KEY_COOLDOWN_SECONDS = env_float("GEMINI_KEY_COOLDOWN_SECONDS", 60.0)
    GEMINI_KEY_DAILY_COOLDOWN_SECONDS = env_float("GEMINI_KEY_DAILY_COOLDOWN_SECONDS", 3600.0)
    # Audio up to this size goes inside the request (limit 20 MB); larger through the Files API.
    GEMINI_INLINE_MAX_BYTES = env_int("GEMINI_INLINE_MAX_BYTES", 14 * 1024 * 1024)
    GEMINI_FILE_POLL_SECONDS = env_float("GEMINI_FILE_POLL_SECONDS", 2.0)
    GEMINI_FILE_ACTIVE_TIMEOUT_SECONDS = env_float("GEMINI_FILE_ACTIVE_TIMEOUT_SECONDS", 300.0)
    # Recordings longer than this are sent in overlapping chunks of at most this length.
    GEMINI_LONG_AUDIO_SECONDS = env_float("GEMINI_LONG_AUDIO_SECONDS", 27 * 60.0)
    GEMINI_CHUNK_OVERLAP_SECONDS = env_float("GEMINI_CHUNK_OVERLAP_SECONDS", 30.0)
    GEMINI_MAX_OUTPUT_TOKENS = env_int("GEMINI_MAX_OUTPUT_TOKENS", 65536)
    GEMINI_TEMPERATURE = float(env("GEMINI_TEMPERATURE")) if env("GEMINI_TEMPERATURE") else None
    GEMINI_THINKING_BUDGET = (
        int(env("GEMINI_THINKING_BUDGET")) if env("GEMINI_THINKING_BUDGET") else None
    )
    GEMINI_SAFETY_THRESHOLD = env("GEMINI_SAFETY_THRESHOLD", "BLOCK_ONLY_HIGH")
    GEMINI_REPAIR_CONTEXT = env_int("GEMINI_REPAIR_CONTEXT", 2)  # neighbours on each side
    # Translation checks (a flagged sentence goes to translation review with its reasons).
    GEMINI_KEEP_ENGLISH = env(
        "GEMINI_KEEP_ENGLISH", "ok,okay,video,email,internet,wifi,website,online,offline,app"
    )
    GEMINI_FLAG_ENGLISH_MIN_WORDS = env_int("GEMINI_FLAG_ENGLISH_MIN_WORDS", 1)
    GEMINI_FLAG_ENGLISH_SKIP_NAMES = env("GEMINI_FLAG_ENGLISH_SKIP_NAMES", "1") != "0"
    GEMINI_FLAG_LENGTH_RATIO_MIN = env_float("GEMINI_FLAG_LENGTH_RATIO_MIN", 0.4)
    GEMINI_FLAG_LENGTH_RATIO_MAX = env_float("GEMINI_FLAG_LENGTH_RATIO_MAX", 2.5)
    GEMINI_FLAG_LENGTH_MIN_CHARS = env_int("GEMINI_FLAG_LENGTH_MIN_CHARS", 15)
    GEMINI_FLAG_SENTENCE_COUNT_TOLERANCE = env_int("GEMINI_FLAG_SENTENCE_COUNT_TOLERANCE", 1)
    GEMINI_FLAG_OVERLAP_TOLERANCE_SECONDS = env_float("GEMINI_FLAG_OVERLAP_TOLERANCE_SECONDS", 0.25)
    GEMINI_FLAG_END_TOLERANCE_SECONDS = env_float("GEMINI_FLAG_END_TOLERANCE_SECONDS", 0.5)
    # Lexicon: a term corrected this often by reviewers becomes a candidate for the prompt.
    GEMINI_LEXICON_MIN_CORRECTIONS = env_int("GEMINI_LEXICON_MIN_CORRECTIONS", 3)
    GEMINI_LEXICON_MAX_TERMS = env_int("GEMINI_LEXICON_MAX_TERMS", 300)

    # Post-review stages
    # align (GPU hosts with requirements-gpu-align.txt): on, off, or auto = when a worker
    # consuming the gpu queue was seen within ALIGN_WORKER_SEEN_SECONDS
    ALIGN_ENABLED = env_switch("ALIGN_ENABLED", "auto")
    ALIGN_WORKER_SEEN_SECONDS = env_int("ALIGN_WORKER_SEEN_SECONDS", 600)
    ALIGN_DEVICE = env("ALIGN_DEVICE", "cuda")
    ALIGN_MODEL_DIR = env("ALIGN_MODEL_DIR")  # wav2vec2 weights, fetched beforehand
    # Alignment model per language; unset = WhisperX's default for that language.
    ALIGN_MODELS = {
        lang: name
        for lang, name in (("vi", env("ALIGN_MODEL_VI")), ("en", env("ALIGN_MODEL_EN")))
        if name
    }
    # denoise: spectral_gating (CPU) or deepfilternet (GPU, requirements-gpu-denoise.txt)
    DENOISE_METHOD = env("DENOISE_METHOD", "spectral_gating")
    DENOISE_TARGET_DBFS = env_float("DENOISE_TARGET_DBFS", -23.0)
    DENOISE_DEVICE = env("DENOISE_DEVICE", "cuda")
    DENOISE_MODEL_DIR = env("DENOISE_MODEL_DIR")  # the unpacked DeepFilterNet3 model
    # export: root of reviewed/ and exports/ (unset = DATA_ROOT); the share of sources in dev/test
    EXPORT_DIR = env("EXPORT_DIR")
    EXPORT_DEV_PERCENT = env_float("EXPORT_DEV_PERCENT", 5.0)
    EXPORT_TEST_PERCENT = env_float("EXPORT_TEST_PERCENT", 5.0)
    # backup: where the gzip JSONL goes (unset = DATA_ROOT/db_sync); incremental overlap
    BACKUP_DIR = env("BACKUP_DIR")
    BACKUP_OVERLAP_SECONDS = env_int("BACKUP_OVERLAP_SECONDS", 3600)

    # Sign-in throttling (Flask-Limiter; Redis with a broker, else in memory): this many
    # attempts per account and address, and per address, in LOGIN_LOCK_SECONDS.
    LOGIN_MAX_FAILURES = env_int("LOGIN_MAX_FAILURES", 5)
    LOGIN_MAX_PER_ADDRESS = env_int("LOGIN_MAX_PER_ADDRESS", 50)
    LOGIN_LOCK_SECONDS = env_int("LOGIN_LOCK_SECONDS", 15 * 60)
    RATELIMIT_STORAGE_URI = env("RATELIMIT_STORAGE_URI") or (
        CELERY["broker_url"] if CELERY["broker_url"].startswith("redis") else "memory://"
    )
    RATELIMIT_STRATEGY = "moving-window"
    # A Redis that does not answer must not hold a sign-in: fall back within a second.
    RATELIMIT_STORAGE_OPTIONS = {"socket_connect_timeout": 1, "socket_timeout": 1}

    # Stage claims: running stages heart-beat every quarter of this; a dead worker's claim
    # can be taken over once it has gone this long without a beat.
    JOB_LEASE_SECONDS = env_int("JOB_LEASE_SECONDS", 120)
    # A stage that failed transiently runs again after TASK_RETRY_BACKOFF_SECONDS, doubling,
    # at most TASK_MAX_RETRIES times.
    TASK_MAX_RETRIES = env_int("TASK_MAX_RETRIES", 5)
    TASK_RETRY_BACKOFF_SECONDS = env_int("TASK_RETRY_BACKOFF_SECONDS", 30)
    # The dispatcher sends a queued task again when nothing came of it for this long (its
    # message was lost with a broker that restarted empty), and queues the next stage of a
    # sample left waiting with nothing queued.
    OUTBOX_RESEND_AFTER_SECONDS = env_int("OUTBOX_RESEND_AFTER_SECONDS", 900)
    # A worker not seen for this long (they stamp every 30 s) no longer counts as a consumer.
    WORKER_SEEN_SECONDS = env_int("WORKER_SEEN_SECONDS", 120)
    # Logs: json (one object a line, for a log shipper) or text; unset = json in production.
    LOG_FORMAT = env("LOG_FORMAT")
    LOG_LEVEL = env("LOG_LEVEL", "INFO")
    # /metrics: scrapers send `Authorization: Bearer <METRICS_TOKEN>`; unset, loopback only.
    METRICS_TOKEN = env("METRICS_TOKEN")
    # A worker serves its pool's metrics on this port (unset: none); one port per worker.
    WORKER_METRICS_PORT = env_int("WORKER_METRICS_PORT", 0) or None
    # …on this address: loopback, or the host's internal one that only Prometheus reaches.
    WORKER_METRICS_ADDR = env("WORKER_METRICS_ADDR", "127.0.0.1")
    # `flask doctor`: the least free disk, the oldest last backup, the oldest unsent outbox
    # message it accepts before it reports a failure.
    DOCTOR_MIN_FREE_GB = env_float("DOCTOR_MIN_FREE_GB", 5.0)
    DOCTOR_BACKUP_MAX_AGE_HOURS = env_float("DOCTOR_BACKUP_MAX_AGE_HOURS", 26.0)
    DOCTOR_DISPATCH_LATE_SECONDS = env_int("DOCTOR_DISPATCH_LATE_SECONDS", 300)


class DevConfig(Config):
    """Development: the embedded default (SQLite, in-process tasks, a key kept under
    instance/), or a developer's own services with their own SECRET_KEY."""


def media_problems(config) -> list[str]:
    """What the media settings lack (ra_app/core/media_store.py)."""
    if config.STORAGE_BACKEND not in ("local", "s3"):
        return [f"STORAGE_BACKEND=local or s3, not {config.STORAGE_BACKEND!r}"]
    problems = []
    if config.STORAGE_BACKEND == "s3":
        names = ("S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_BUCKET")
        missing = [name for name in names if not getattr(config, name)]
        if missing:
            problems.append(", ".join(missing) + " (STORAGE_BACKEND=s3 keeps the media there)")
    if config.AUDIO_DELIVERY not in ("stream", "redirect"):
        problems.append(f"AUDIO_DELIVERY=stream or redirect, not {config.AUDIO_DELIVERY!r}")
    return problems


class ProdConfig(Config):
    PRODUCTION = True
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True

    @classmethod
    def check(cls) -> None:
        """Refuse to start, naming every missing piece, rather than run half-configured."""
        problems = []
        if not cls.SQLALCHEMY_DATABASE_URI.startswith("postgresql"):
            problems.append("DATABASE_URL=postgresql://… (production runs on Postgres)")
        if cls.CELERY["task_always_eager"]:
            problems.append("CELERY_BROKER_URL=redis://… (production runs tasks on workers)")
        if not cls.SECRET_KEY or len(cls.SECRET_KEY) < 32:
            problems.append(
                "SECRET_KEY of 32+ random characters, e.g. "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
            )
        problems += media_problems(cls)
        if problems:
            raise RuntimeError("Production needs " + "; ".join(problems) + ".")


class TestConfig(Config):
    TESTING = True
    SECRET_KEY = "test-secret-key"  # noqa: S105
    LOGIN_LOCK_SECONDS = 60
    RATELIMIT_STORAGE_URI = "memory://"


def config_from_env() -> type[Config]:
    """APP_ENV decides; unset, only the embedded SQLite database runs as development:
    a server database means production, with all its checks."""
    app_env = env("APP_ENV")
    if app_env == "production":
        return ProdConfig
    if app_env == "development":
        return DevConfig
    if app_env:
        raise RuntimeError(f"APP_ENV must be development or production, not {app_env!r}")
    return DevConfig if is_sqlite(env("DATABASE_URL")) else ProdConfig

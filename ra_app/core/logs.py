"""The logs of every process (web, workers, commands): one line per record, JSON in
production (LOG_FORMAT=json, for the log shipper) and readable text in development, each
with the request id, task id and sample id of the work it belongs to where there is one.

Secrets never reach a log: every line is written through `Redactor`, which replaces the
configured secrets (the session key, the Gemini keys, storage and metrics credentials, the
passwords in the database and broker URLs) wherever they appear, tracebacks included.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from contextlib import contextmanager
from contextvars import ContextVar
from urllib.parse import unquote, urlsplit

CONTEXT: dict[str, ContextVar[str | None]] = {
    name: ContextVar(name, default=None) for name in ("request_id", "task_id", "sample_id")
}
SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
HIDDEN = "[redacted]"


def bind(**values) -> None:
    """Attach context (request_id, task_id, sample_id) to the lines this context logs."""
    for name, value in values.items():
        CONTEXT[name].set(None if value is None else str(value))


@contextmanager
def bound(**values):
    """`bind` for the length of a block, then back to what was bound before."""
    tokens = [
        (CONTEXT[n], CONTEXT[n].set(None if v is None else str(v))) for n, v in values.items()
    ]
    try:
        yield
    finally:
        for variable, token in reversed(tokens):
            variable.reset(token)


def clear() -> None:
    for variable in CONTEXT.values():
        variable.set(None)


def context() -> dict[str, str]:
    return {name: v.get() for name, v in CONTEXT.items() if v.get() is not None}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **context(),
        }
        if record.name == "gunicorn.access" and isinstance(record.args, dict):
            # gunicorn's line for a request, logged after the app's context ended.
            line["request_id"] = record.args.get("{x-request-id}o") or None
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self):
        super().__init__("%(asctime)s %(levelname)-7s %(name)s%(where)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        where = " ".join(f"{k.removesuffix('_id')}={v}" for k, v in context().items())
        record.where = f" [{where}]" if where else ""
        return super().format(record)


class Redactor(logging.Formatter):
    """Another formatter's line with every secret replaced."""

    def __init__(self, inner: logging.Formatter, secrets: list[str]):
        super().__init__()
        self.inner = inner
        # Each as written and as a JSON line escapes it; longest first, so a secret that
        # contains another is hidden whole.
        forms = {
            f
            for s in secrets
            if s and len(s) >= 4
            for f in (s, json.dumps(s, ensure_ascii=False)[1:-1])
        }
        self.secrets = sorted(forms, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        line = self.inner.format(record)
        for secret in self.secrets:
            line = line.replace(secret, HIDDEN)
        return line


def secrets_of(config) -> list[str]:
    found = [
        config.get("SECRET_KEY"),
        config.get("S3_SECRET_KEY"),
        config.get("S3_ACCESS_KEY"),
        config.get("METRICS_TOKEN"),
        *config.get("GEMINI_API_KEYS", []),
    ]
    celery = config.get("CELERY") or {}
    for url in (
        config.get("SQLALCHEMY_DATABASE_URI"),
        celery.get("broker_url"),
        celery.get("result_backend"),
        config.get("RATELIMIT_STORAGE_URI"),
    ):
        if url and "://" in str(url):
            password = urlsplit(str(url)).password
            found += [password, unquote(password)] if password else []
    return [s for s in found if s]


def formatter_for(config) -> logging.Formatter:
    kind = config.get("LOG_FORMAT") or ("json" if config.get("PRODUCTION") else "text")
    inner = JsonFormatter() if kind == "json" else TextFormatter()
    return Redactor(inner, secrets_of(config))


def configure(config, stream=None) -> None:
    """Send the process's records (root logger) through one handler with our format. Run
    once per process; running again replaces the handler (a test's app, a new config)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "ours", False)]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.ours = True
    handler.setFormatter(formatter_for(config))
    root.addHandler(handler)
    root.setLevel(config.get("LOG_LEVEL", "INFO").upper())
    if root.level > logging.DEBUG:
        # Their lines at INFO are one per HTTP call: kept at WARNING unless debugging.
        for noisy in ("httpx", "httpcore", "urllib3", "google_genai"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def config_of(config_class) -> dict:
    """A Config class's settings as the dict `configure` reads (gunicorn.conf.py: its own
    lines are formatted before any app exists)."""
    return {name: getattr(config_class, name) for name in dir(config_class) if name.isupper()}

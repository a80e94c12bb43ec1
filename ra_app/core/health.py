"""The readiness checks, each named, timed and told in words an operator acts on."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from flask import current_app

from ..extensions import db
from .media_store import is_local, media_storage


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    ms: float


def timed(name: str, probe) -> Check:
    """Run `probe` (it returns what it found, or raises); the error's kind, not its text,
    goes into the answer (the text can hold a URL with a password)."""
    began = time.perf_counter()
    try:
        ok, detail = probe()
    except Exception as error:  # noqa: BLE001 - any failure is the check's answer
        ok, detail = False, f"{type(error).__name__}"
    return Check(name, ok, detail, round((time.perf_counter() - began) * 1000, 1))


def database() -> tuple[bool, str]:
    db.session.execute(sa.text("SELECT 1"))
    return True, f"reachable ({db.engine.dialect.name})"


def migrations() -> tuple[bool, str]:
    directory = current_app.extensions["migrate"].directory
    heads = set(ScriptDirectory(directory).get_heads())
    current = set(db.session.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())
    if current == heads:
        return True, f"at head {', '.join(sorted(heads))}"
    at = ", ".join(sorted(current)) or "nothing"
    return False, f"at {at}, head is {', '.join(sorted(heads))}: run flask db upgrade"


def broker() -> tuple[bool, str]:
    celery = current_app.extensions["celery"]
    if celery.conf.task_always_eager:
        return True, "none: tasks run in-process (embedded mode)"
    with celery.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=2)
        return True, f"reachable ({connection.transport_cls})"


def storage() -> tuple[bool, str]:
    root = Path(current_app.config["DATA_ROOT"])
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=root, prefix=".readyz-") as probe:
        probe.write(b"ok")
        probe.flush()
    store = media_storage()
    if is_local(store):
        return True, "writable"
    store.client.head_bucket(Bucket=store.bucket)  # reachable, and these credentials work
    return True, "work folder writable, bucket reachable"


CHECKS = {"database": database, "migrations": migrations, "broker": broker, "storage": storage}


def readiness() -> list[Check]:
    results = [timed(name, probe) for name, probe in CHECKS.items()]
    db.session.rollback()  # a failed statement must not poison the session of the request
    return results
